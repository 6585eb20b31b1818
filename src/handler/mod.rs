//! The handler: one event in, at most one `CompleteLifecycleAction`, one summary out. It parses
//! the event, decides whose hook the action belongs to, and routes pinhook's own to a launch
//! (`launch.rs`) or a release (`release.rs`); both end in `outcome.rs`, and every claim goes
//! through the claim engine (`claim.rs`).

mod batch;
mod claim;
mod launch;
mod outcome;
mod release;
mod sweep;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::time::Instant;
use tracing::{Instrument, Span, error, field, info, info_span, warn};

pub use self::batch::Answer;
use self::outcome::Ending;
pub use self::outcome::{Completion, HandlerError, Outcome, Summary};
pub use self::sweep::{Done, SweepOptions, SweepReport};
use crate::aws::{AutoScalingApi, AwsError, Ec2Api, ErrorKind};
use crate::config::{HookConfig, Owner, PoolName, Settings};
use crate::decide;
use crate::event::{Incoming, LifecycleAction};
use crate::member::Binding;
use crate::metrics::{self, Metrics, MetricsSink};
use crate::model::{ActionRef, GroupInstance, InstanceId, LifecycleState, Location, Transition};

/// When the invocation must be done by: Lambda's deadline, on tokio's clock.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(Instant);

impl Deadline {
    pub fn after(budget: Duration) -> Self {
        Self(Instant::now() + budget)
    }

    /// From the deadline Lambda gives in milliseconds since the Unix epoch.
    ///
    /// Local Lambda emulators differ: `cargo lambda watch` sends the timeout itself (600000)
    /// rather than a date. No real deadline lies before 2001, so a smaller value is read as a
    /// duration, capped at Lambda's 15-minute maximum.
    pub fn from_epoch_millis(deadline_ms: u64) -> Self {
        const EPOCH_2001_MS: u64 = 1_000_000_000_000;
        const LAMBDA_MAX_MS: u64 = 15 * 60 * 1000;
        if deadline_ms < EPOCH_2001_MS {
            return Self::after(Duration::from_millis(deadline_ms.min(LAMBDA_MAX_MS)));
        }
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        Self::after(Duration::from_millis(deadline_ms.saturating_sub(now_ms)))
    }

    pub fn remaining(&self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }

    /// Until when work may go on while `reserve` is kept back before the deadline.
    pub fn keeping(&self, reserve: Duration) -> Instant {
        Instant::now() + self.remaining().saturating_sub(reserve)
    }
}

/// pinhook, over an Auto Scaling and an EC2 adapter.
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

    /// A member kind's binding to a pool and an instance, on this function's EC2 adapter.
    fn binding<'a>(&'a self, pool: &'a PoolName, instance: &'a InstanceId) -> Binding<'a, E> {
        Binding {
            ec2: &self.ec2,
            pool,
            instance,
            poll: self.settings.poll_interval,
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

    /// Handles one parsed event or record.
    async fn handle_incoming(
        &self,
        incoming: Incoming,
        deadline: Deadline,
    ) -> Result<Summary, HandlerError> {
        let mut metrics = Metrics::default();
        let result = match incoming {
            Incoming::TestNotification { group } => {
                info!(
                    group = group.as_deref().unwrap_or("-"),
                    "ignoring autoscaling:TEST_NOTIFICATION"
                );
                Ok(Summary {
                    group,
                    ..Summary::new(Outcome::Ignored).reason("test notification")
                })
            }
            Incoming::Scheduled => {
                let span = info_span!("sweep");
                Box::pin(self.scheduled(deadline).instrument(span)).await
            }
            Incoming::NotLifecycle { reason } => {
                warn!(%reason, "ignoring an event that is not an Auto Scaling lifecycle action");
                Ok(Summary::new(Outcome::Ignored).reason(reason))
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
                Box::pin(
                    self.malformed(
                        deadline,
                        error.to_string(),
                        action,
                        transition,
                        metadata,
                        &mut metrics,
                    )
                    .instrument(span),
                )
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
                // Boxed: the SDK's futures nest deeply, and this keeps the task small.
                Box::pin(self.act(&action, deadline, &mut metrics).instrument(span)).await
            }
        };
        self.metrics
            .record(&metrics, &self.settings.metrics_namespace);
        result
    }

    /// The schedule's sweep of the groups in `PINHOOK_GROUPS`.
    async fn scheduled(&self, deadline: Deadline) -> Result<Summary, HandlerError> {
        if self.settings.groups.is_empty() {
            warn!("a scheduled sweep, but PINHOOK_GROUPS names no group: nothing to sweep");
            return Ok(Summary::new(Outcome::Ignored)
                .reason("scheduled sweep: PINHOOK_GROUPS names no group"));
        }
        let report = match self.sweep(&SweepOptions::default(), deadline).await {
            Ok(report) => report,
            Err(err) if err.is(ErrorKind::Transient) => return Err(HandlerError::Transient(err)),
            Err(err) => {
                error!(error = %err, "the sweep could not read what it sweeps");
                return Ok(Summary::new(Outcome::Swept).reason(format!("the sweep failed: {err}")));
            }
        };
        let reason = format!("swept {}", report.headline());
        info!(%reason, "sweep done");
        Ok(Summary {
            sweep: Some(Box::new(report)),
            ..Summary::new(Outcome::Swept).reason(reason)
        })
    }

    /// A lifecycle action: pinhook's own are launched or released, other tools' left alone.
    async fn act(
        &self,
        action: &LifecycleAction,
        deadline: Deadline,
        metrics: &mut Metrics,
    ) -> Result<Summary, HandlerError> {
        let (metadata, owner) = self
            .owner(&action.action_ref(), action.metadata.clone())
            .await?;
        let config = match owner {
            Owner::Pinhook(config) => config,
            Owner::Other(why) => {
                let action_ref = action.action_ref();
                return Ok(self.foreign(&action_ref, Some(action.transition), &why, metrics));
            }
        };
        if let Ok(config) = &config {
            Span::current().record("pool", config.pool.as_str());
            metrics.pool = Some(config.pool.to_string());
        }
        match action.transition {
            Transition::Launch => {
                self.launch(action, config, metadata.as_deref(), deadline, metrics)
                    .await
            }
            Transition::Terminate => {
                self.terminate(action, config, metadata.as_deref(), deadline, metrics)
                    .await
            }
        }
    }

    /// Whose hook the action belongs to, and the hook's `NotificationMetadata` that says so:
    /// as the event carries it, or read back from the hook when the event carries none (a
    /// hand-made or replayed event).
    async fn owner(
        &self,
        action: &ActionRef,
        carried: Option<String>,
    ) -> Result<(Option<String>, Owner), HandlerError> {
        let metadata = match carried {
            Some(metadata) => Some(metadata),
            None => match self.asg.hook_metadata(&action.group, &action.hook).await {
                Ok(metadata) => metadata,
                Err(err) if err.is(ErrorKind::Transient) => {
                    return Err(HandlerError::Transient(err));
                }
                Err(err) => {
                    warn!(error = %err, "could not read the hook's metadata");
                    None
                }
            },
        };
        let owner = HookConfig::owner(metadata.as_deref());
        Ok((metadata, owner))
    }

    /// Another tool's lifecycle action (DESIGN.md, "Whose hooks"): nothing changed, nothing
    /// completed, one log line and a count.
    fn foreign(
        &self,
        action: &ActionRef,
        transition: Option<Transition>,
        why: &str,
        metrics: &mut Metrics,
    ) -> Summary {
        info!(
            group = %action.group,
            hook = %action.hook,
            instance = %action.instance,
            reason = why,
            "another tool's lifecycle hook: leaving its action alone"
        );
        metrics.add(metrics::FOREIGN_ACTIONS, 1.0);
        Summary {
            transition,
            group: Some(action.group.clone()),
            instance: Some(action.instance.clone()),
            ..Summary::new(Outcome::Ignored)
        }
        .reason(format!(
            "hook {:?} belongs to another tool: {why}",
            action.hook
        ))
    }

    /// A lifecycle event that cannot be acted on: complete it with the failure result if it
    /// still names a waiting lifecycle action, so nothing is left waiting for its timeout.
    async fn malformed(
        &self,
        deadline: Deadline,
        error: String,
        action: Option<ActionRef>,
        transition: Option<Transition>,
        metadata: Option<String>,
        metrics: &mut Metrics,
    ) -> Result<Summary, HandlerError> {
        let Some(action) = action else {
            error!(%error, "rejecting a malformed lifecycle event that names no lifecycle action");
            return Ok(Summary::new(Outcome::Rejected).reason(error));
        };
        let (metadata, owner) = self.owner(&action, metadata).await?;
        if let Owner::Other(why) = owner {
            return Ok(self.foreign(&action, transition, &why, metrics));
        }
        error!(%error, "malformed lifecycle event; completing its action with the failure result");
        let summary = Summary {
            transition,
            group: Some(action.group.clone()),
            instance: Some(action.instance.clone()),
            ..Summary::new(Outcome::Stale)
        };
        let described = match self
            .asg
            .describe_instances(std::slice::from_ref(&action.instance))
            .await
        {
            Ok(described) => Some(described),
            Err(err) if err.is(ErrorKind::Transient) => return Err(HandlerError::Transient(err)),
            Err(err) => {
                error!(error = %err, "could not check the instance with Auto Scaling; completing unchecked");
                None
            }
        };
        let waiting = match described {
            // Unchecked: harmless, because Auto Scaling refuses a token that is not active.
            None => transition,
            Some(described) => described
                .iter()
                .find(|d| d.group == action.group)
                .and_then(|d| waiting_for(&d.state)),
        };
        let ending = match waiting {
            None => Ending::Stale(format!(
                "{error}; instance {} is not waiting in group {:?}, so nothing was completed",
                action.instance, action.group
            )),
            Some(waiting) => {
                metrics.add(metrics::FAILED_ACTIONS, 1.0);
                Ending::Complete {
                    result: decide::failure_result(
                        Some(waiting),
                        HookConfig::on_failure_lenient(metadata.as_deref()),
                    ),
                    reason: error,
                }
            }
        };
        self.finish(&action, deadline, summary, ending).await
    }

    /// Step 1's read: the instance as Auto Scaling knows it, looking in the warm pool too when
    /// the event concerns it.
    async fn describe_raw(
        &self,
        action: &LifecycleAction,
    ) -> Result<Option<GroupInstance>, AwsError> {
        let found = self
            .asg
            .describe_instances(std::slice::from_ref(&action.instance))
            .await?;
        if let Some(instance) = found.into_iter().next() {
            return Ok(Some(instance));
        }
        let warm = [action.origin, action.destination].contains(&Some(Location::WarmPool));
        if !warm {
            return Ok(None);
        }
        let pool = self.asg.warm_pool_instances(&action.group).await?;
        Ok(pool.into_iter().find(|i| i.instance == action.instance))
    }

    /// [`Self::describe_raw`] for paths that have no fallback: a transient failure is returned
    /// for redelivery, any other failure lets the completion go ahead unchecked, which is
    /// harmless because Auto Scaling refuses a stale token.
    async fn describe(
        &self,
        action: &LifecycleAction,
    ) -> Result<Option<GroupInstance>, HandlerError> {
        match self.describe_raw(action).await {
            Ok(found) => Ok(found),
            Err(err) if err.is(ErrorKind::Transient) => Err(HandlerError::Transient(err)),
            Err(err) => {
                error!(error = %err, "could not check the instance with Auto Scaling; acting on the event as given");
                Ok(Some(GroupInstance {
                    instance: action.instance.clone(),
                    group: action.group.clone(),
                    availability_zone: String::new(),
                    state: match (action.transition, action.destination) {
                        (Transition::Launch, Some(Location::WarmPool)) => {
                            LifecycleState::WarmedPendingWait
                        }
                        (Transition::Launch, _) => LifecycleState::PendingWait,
                        (Transition::Terminate, _) => LifecycleState::TerminatingWait,
                    },
                    healthy: true,
                }))
            }
        }
    }
}

/// Which transition an instance in this state is waiting on.
fn waiting_for(state: &LifecycleState) -> Option<Transition> {
    match state {
        LifecycleState::PendingWait | LifecycleState::WarmedPendingWait => Some(Transition::Launch),
        LifecycleState::TerminatingWait | LifecycleState::WarmedTerminatingWait => {
            Some(Transition::Terminate)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_lambda_deadline_is_read_as_a_date_and_an_emulators_as_a_duration() {
        let in_a_minute = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
            + 60_000;
        let remaining = Deadline::from_epoch_millis(in_a_minute).remaining();
        assert!(
            remaining > Duration::from_secs(58) && remaining <= Duration::from_secs(60),
            "{remaining:?}"
        );
        assert_eq!(
            Deadline::from_epoch_millis(600_000).remaining(),
            Duration::from_secs(600)
        );
        assert_eq!(
            Deadline::from_epoch_millis(u64::from(u32::MAX)).remaining(),
            Duration::from_secs(900)
        );
        assert_eq!(
            Deadline::from_epoch_millis(1_500_000_000_000).remaining(),
            Duration::ZERO
        );
    }
}
