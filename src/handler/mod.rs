//! The handler: one event in, at most one `CompleteLifecycleAction`, one summary out. It parses
//! the event once into a typed input, decides whose hook an action belongs to, and routes it:
//! each path is one story in one file — a launch (`launch.rs`), a release (`release.rs`), an
//! instance without a group (`instance.rs`), the sweep (`sweep.rs`) — and every claim goes
//! through the claim engine (`crate::claim`).

mod batch;
mod check;
mod instance;
mod launch;
mod lease;
mod outcome;
mod release;
mod sweep;

use serde_json::Value;
use tracing::{Instrument, error, field, info, info_span, warn};

pub use self::batch::Answer;
pub use self::outcome::{Completion, HandlerError, Outcome, Summary};
use self::outcome::{Ending, Handled, Story};
pub use self::sweep::{RepairResult, SweepOptions, SweepReport};
use crate::aws::{AutoScalingApi, AwsError, Ec2Api, SplitTransient, Transient};
use crate::config::{HookMetadata, Settings};
use crate::context::{Ctx, Deadline};
use crate::decide::{self, Stale};
use crate::event::{Incoming, LifecycleAction};
use crate::metrics::{self, Metrics, MetricsSink};
use crate::model::{ActionRef, Transition};

/// pinhook, over an Auto Scaling and an EC2 adapter, built once per process.
pub struct Pinhook<A, E> {
    asg: A,
    ec2: E,
    settings: Settings,
    metrics: MetricsSink,
}

impl<A: AutoScalingApi, E: Ec2Api> Pinhook<A, E> {
    pub fn new(asg: A, ec2: E, settings: Settings) -> Self {
        Self {
            asg,
            ec2,
            settings,
            metrics: MetricsSink::default(),
        }
    }

    /// Sends the metrics elsewhere than standard output.
    pub fn with_metrics(mut self, sink: MetricsSink) -> Self {
        self.metrics = sink;
        self
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn ctx(&self) -> Ctx<'_, A, E> {
        Ctx {
            asg: &self.asg,
            ec2: &self.ec2,
            settings: &self.settings,
        }
    }

    /// Handles one event as EventBridge delivers it (or any single event invoked directly).
    pub async fn handle(
        &self,
        payload: &Value,
        deadline: Deadline,
    ) -> Result<Summary, HandlerError> {
        self.handle_incoming(Incoming::parse(payload), deadline)
            .await
    }

    /// Sweeps the pools of the served groups (or only reports, in a dry run).
    pub async fn sweep(
        &self,
        options: &SweepOptions,
        deadline: Deadline,
    ) -> Result<SweepReport, AwsError> {
        let (report, metrics) = sweep::sweep(self.ctx(), options, deadline).await?;
        self.record(&metrics);
        Ok(report)
    }

    /// Handles one parsed event or record, and emits its figures.
    async fn handle_incoming(
        &self,
        incoming: Incoming,
        deadline: Deadline,
    ) -> Result<Summary, HandlerError> {
        // Boxed: the SDK's futures nest deeply, and this keeps the task small.
        let handled = Box::pin(route(self.ctx(), incoming, deadline)).await;
        self.record(&handled.metrics);
        handled.result
    }

    fn record(&self, metrics: &[Metrics]) {
        for m in metrics {
            self.metrics.record(m, &self.settings.metrics_namespace);
        }
    }
}

/// Routes one input to its story.
async fn route<A: AutoScalingApi, E: Ec2Api>(
    ctx: Ctx<'_, A, E>,
    incoming: Incoming,
    deadline: Deadline,
) -> Handled {
    match incoming {
        Incoming::TestNotification { group } => {
            info!(
                group = group.as_deref().unwrap_or("-"),
                "ignoring autoscaling:TEST_NOTIFICATION"
            );
            Handled::answer(Summary {
                group,
                ..Summary::new(Outcome::Ignored).reason("test notification")
            })
        }
        Incoming::NotLifecycle { reason } => {
            warn!(%reason, "ignoring an event that is not an Auto Scaling lifecycle action");
            Handled::answer(Summary::new(Outcome::Ignored).reason(reason))
        }
        Incoming::Scheduled => {
            sweep::scheduled(ctx, deadline)
                .instrument(info_span!("sweep"))
                .await
        }
        Incoming::Malformed {
            error,
            action,
            transition,
            metadata,
        } => {
            let span = info_span!(
                "lifecycle_action",
                group = action.as_ref().map(|a| a.group.as_str()),
                hook = action.as_ref().map(|a| a.hook.as_str()),
                instance = action.as_ref().map(|a| a.instance.as_str()),
                transition = transition.map(Transition::as_str),
            );
            let error = error.to_string();
            let metadata = metadata.map(|m| *m);
            malformed(ctx, error, action, transition, metadata, deadline)
                .instrument(span)
                .await
        }
        Incoming::StateChange(change) => {
            let span = info_span!(
                "state_change",
                instance = %change.instance,
                state = %change.state,
                pool = field::Empty,
                member = field::Empty,
            );
            // Boxed: the SDK's futures nest deeply, and this keeps the task small.
            Box::pin(instance::state_change(ctx, &change, deadline))
                .instrument(span)
                .await
        }
        Incoming::Action(action) => {
            let span = info_span!(
                "lifecycle_action",
                group = %action.group,
                hook = %action.hook,
                instance = %action.instance,
                transition = action.transition.as_str(),
                pool = field::Empty,
                member = field::Empty,
            );
            act(ctx, &action, deadline).instrument(span).await
        }
    }
}

/// A lifecycle action: pinhook's own are launched or released, other tools' left alone.
async fn act<A: AutoScalingApi, E: Ec2Api>(
    ctx: Ctx<'_, A, E>,
    action: &LifecycleAction,
    deadline: Deadline,
) -> Handled {
    let action_ref = action.action_ref();
    let hook = match whose_hook(ctx, &action_ref, action.metadata.clone()).await {
        Ok(hook) => hook,
        Err(transient) => return Story::of(action, None).retry(transient),
    };
    if let Some(pool) = hook.pool() {
        tracing::Span::current().record("pool", pool.as_str());
    }
    match (&hook, action.transition) {
        (HookMetadata::Foreign(why), _) => foreign(&action_ref, Some(action.transition), why),
        // Boxed: the SDK's futures nest deeply, and this keeps each task's stack small.
        (HookMetadata::Pinhook(config), Transition::Launch) => {
            Box::pin(launch::launch(ctx, action, config, deadline)).await
        }
        (HookMetadata::Unusable(unusable), Transition::Launch) => {
            Box::pin(launch::refuse(ctx, action, unusable, deadline)).await
        }
        (_, Transition::Terminate) => {
            Box::pin(release::terminate(ctx, action, &hook, deadline)).await
        }
    }
}

/// Whose hook the action belongs to, from the hook's `NotificationMetadata`: as the event
/// carries it (read when the event was parsed), or read back from the hook when the event
/// carries none (a hand-made or replayed event).
async fn whose_hook<A: AutoScalingApi, E>(
    ctx: Ctx<'_, A, E>,
    action: &ActionRef,
    carried: Option<HookMetadata>,
) -> Result<HookMetadata, Transient> {
    if let Some(hook) = carried {
        return Ok(hook);
    }
    let read = ctx.asg.hook_metadata(&action.group, &action.hook).await;
    match read.split_transient()? {
        Ok(metadata) => Ok(HookMetadata::parse(metadata.as_deref())),
        // Whose it is cannot be told: left alone, as another tool's would be, saying why.
        Err(err) => {
            error!(error = %err, "could not read the hook's metadata");
            Ok(HookMetadata::Foreign(format!(
                "its NotificationMetadata could not be read ({err}), so pinhook cannot tell it is its own"
            )))
        }
    }
}

/// The transition the instance waits in, if it waits in the named group: on a converged read
/// when the event says which transition (a read that has not caught up is looked at again),
/// else on one read.
async fn waiting<A: AutoScalingApi, E>(
    ctx: Ctx<'_, A, E>,
    action: &ActionRef,
    transition: Option<Transition>,
) -> Result<Option<Transition>, AwsError> {
    if let (Some(transition), Some(token)) = (transition, &action.token) {
        let as_event = LifecycleAction {
            transition,
            group: action.group.clone(),
            hook: action.hook.clone(),
            instance: action.instance.clone(),
            token: token.clone(),
            metadata: None,
            origin: None,
            destination: None,
        };
        return Ok(match check::converged(ctx, &as_event).await? {
            decide::Checked::Pin { .. } | decide::Checked::EnterWarmPool => {
                Some(Transition::Launch)
            }
            decide::Checked::Release { .. } => Some(Transition::Terminate),
            decide::Checked::Behind(_) | decide::Checked::Stale(_) => None,
        });
    }
    let described = ctx
        .asg
        .describe_instances(std::slice::from_ref(&action.instance))
        .await?;
    Ok(described
        .iter()
        .find(|d| d.group == action.group)
        .and_then(|d| decide::waiting_for(&d.state)))
}

/// Another tool's lifecycle action (DESIGN.md, "Whose hooks"): nothing changed, nothing
/// completed, one log line and a count.
fn foreign(action: &ActionRef, transition: Option<Transition>, why: &str) -> Handled {
    info!(
        group = %action.group,
        hook = %action.hook,
        instance = %action.instance,
        reason = why,
        "another tool's lifecycle hook: leaving its action alone"
    );
    let mut counted = Metrics::default();
    counted.add(metrics::FOREIGN_ACTIONS, 1.0);
    let summary = Summary {
        outcome: Outcome::Ignored,
        ..Summary::about(action, transition)
    }
    .reason(format!(
        "hook {:?} belongs to another tool: {why}",
        action.hook
    ));
    Handled {
        result: Ok(summary),
        metrics: vec![counted],
    }
}

/// A lifecycle event that cannot be acted on: complete it with the failure result if it still
/// names a waiting lifecycle action of pinhook's, so nothing is left waiting for its timeout.
async fn malformed<A: AutoScalingApi, E: Ec2Api>(
    ctx: Ctx<'_, A, E>,
    error: String,
    action: Option<ActionRef>,
    transition: Option<Transition>,
    metadata: Option<HookMetadata>,
    deadline: Deadline,
) -> Handled {
    let Some(action) = action else {
        error!(%error, "rejecting a malformed lifecycle event that names no lifecycle action");
        return Handled::answer(Summary::new(Outcome::Rejected).reason(error));
    };
    let story = Story {
        summary: Summary::about(&action, transition),
        metrics: Metrics::default(),
    };
    let hook = match whose_hook(ctx, &action, metadata).await {
        Ok(hook) => hook,
        Err(transient) => return story.retry(transient),
    };
    let on_failure = match &hook {
        HookMetadata::Foreign(why) => return foreign(&action, transition, why),
        HookMetadata::Pinhook(config) => config.on_failure,
        HookMetadata::Unusable(unusable) => unusable.on_failure,
    };
    error!(%error, "malformed lifecycle event; completing its action with the failure result");
    let waiting = match waiting(ctx, &action, transition).await.split_transient() {
        Err(transient) => return story.retry(transient),
        // Unchecked: harmless, because Auto Scaling refuses a token that is not active.
        Ok(Err(err)) => {
            error!(error = %err, "could not check the instance with Auto Scaling; completing unchecked");
            transition
        }
        Ok(Ok(waiting)) => waiting,
    };
    let ending = match waiting {
        None => Ending::Stale(Stale(format!(
            "{error}; instance {} is not waiting in group {:?}, so nothing was completed",
            action.instance, action.group
        ))),
        Some(waiting) => Ending::Failed {
            result: decide::failure_result(Some(waiting), on_failure),
            reason: error,
        },
    };
    story.end(ctx, &action, deadline, ending).await
}
