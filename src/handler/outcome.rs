//! How an action ends: the one `CompleteLifecycleAction` that ends each of pinhook's lifecycle
//! actions (or none, for a stale event), the summary an invocation returns, and the errors
//! returned to Lambda.

use serde::Serialize;
use tracing::{error, info, warn};

use super::sweep::SweepReport;
use crate::aws::{AutoScalingApi, AwsError, ErrorKind, Transient};
use crate::claim::Tally;
use crate::config::PoolName;
use crate::context::{CallWindow, Ctx, Deadline};
use crate::decide::Stale;
use crate::event::LifecycleAction;
use crate::metrics::{self, Metrics};
use crate::model::{ActionRef, InstanceId, LifecycleResult, Transition};

/// What became of the lifecycle action, as the summary reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Outcome {
    /// Completed with CONTINUE.
    #[serde(rename = "CONTINUE")]
    Continue,
    /// Completed with ABANDON.
    #[serde(rename = "ABANDON")]
    Abandon,
    /// Not pinhook's to act on (a test notification, not a lifecycle action, another tool's
    /// hook): nothing was changed or completed.
    #[serde(rename = "ignored")]
    Ignored,
    /// The event no longer matches Auto Scaling: nothing was changed or completed.
    #[serde(rename = "stale")]
    Stale,
    /// A broken event that names no lifecycle action: nothing could be done.
    #[serde(rename = "rejected")]
    Rejected,
    /// A scheduled sweep ran (the summary's `sweep` says what it did).
    #[serde(rename = "swept")]
    Swept,
    /// An instance without a group got its member (or already held it).
    #[serde(rename = "pinned")]
    Pinned,
    /// An instance without a group got no member: counted, and left to the sweep.
    #[serde(rename = "not-pinned")]
    NotPinned,
    /// An instance without a group that is leaving or gone gave back what it held.
    #[serde(rename = "released")]
    Released,
    /// An instance without a group stopped: it keeps its member.
    #[serde(rename = "kept")]
    Kept,
}

impl From<LifecycleResult> for Outcome {
    fn from(result: LifecycleResult) -> Self {
        match result {
            LifecycleResult::Continue => Self::Continue,
            LifecycleResult::Abandon => Self::Abandon,
        }
    }
}

/// Whether Auto Scaling took the completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Completion {
    Completed,
    /// Auto Scaling had no active action any more (completed before, or timed out): done.
    AlreadyCompleted,
}

/// The invocation's answer, so that a replayed event shows what happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub transition: Option<Transition>,
    pub group: Option<String>,
    pub instance: Option<InstanceId>,
    pub pool: Option<PoolName>,
    pub availability_zone: Option<String>,
    pub member: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_ip: Option<String>,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion: Option<Completion>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sweep: Option<Box<SweepReport>>,
    /// The state an EC2 state-change event reported, for an instance without a group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ec2_state: Option<String>,
    /// How long after the instance reached `running` its member was pinned, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pinned_after_running_ms: Option<u64>,
}

impl Summary {
    pub(super) fn new(outcome: Outcome) -> Self {
        Self {
            transition: None,
            group: None,
            instance: None,
            pool: None,
            availability_zone: None,
            member: None,
            mac_address: None,
            private_ip: None,
            public_ip: None,
            outcome,
            completion: None,
            reason: None,
            sweep: None,
            ec2_state: None,
            pinned_after_running_ms: None,
        }
    }

    pub(super) fn about(action: &ActionRef, transition: Option<Transition>) -> Self {
        Self {
            transition,
            group: Some(action.group.clone()),
            instance: Some(action.instance.clone()),
            ..Self::new(Outcome::Stale)
        }
    }

    pub(super) fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
}

/// Errors returned to Lambda, so that the event is delivered again: only for what a
/// redelivery can fix.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error(
        "AWS did not answer in time ({0}); nothing was completed, so a redelivery of the event can finish the job"
    )]
    Transient(#[source] AwsError),
    #[error(
        "the lifecycle action of {instance} is left pending (kept alive) for a redelivery to finish the job: {reason}"
    )]
    Unfinished {
        instance: InstanceId,
        reason: String,
    },
    #[error(
        "instance {instance} is not done with yet: {reason}; a redelivery of the event (or the sweep) carries on"
    )]
    NotYet {
        instance: InstanceId,
        reason: String,
    },
    #[error(
        "could not complete the lifecycle action for instance {instance} with {result}: {source}"
    )]
    Complete {
        instance: InstanceId,
        result: LifecycleResult,
        #[source]
        source: AwsError,
    },
}

impl From<Transient> for HandlerError {
    fn from(transient: Transient) -> Self {
        Self::Transient(transient.0)
    }
}

/// How pinhook's handling of one of its lifecycle actions ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Ending {
    /// The job is done: complete with CONTINUE; why.
    Done(String),
    /// The job failed: complete with `result` (the hook's `on_failure` on launch, CONTINUE on
    /// terminate, which is never blocked), and count it.
    Failed {
        result: LifecycleResult,
        reason: String,
    },
    /// The event does not match Auto Scaling, or its action ended meanwhile: complete nothing.
    Stale(Stale),
}

/// What handling one event came to: the answer, and the figures to emit as EMF.
#[derive(Debug)]
pub(crate) struct Handled {
    pub result: Result<Summary, HandlerError>,
    pub metrics: Vec<Metrics>,
}

impl Handled {
    pub(super) fn answer(summary: Summary) -> Self {
        Self {
            result: Ok(summary),
            metrics: Vec::new(),
        }
    }
}

/// One lifecycle action's summary and figures, as its story fills them in.
#[derive(Debug)]
pub(super) struct Story {
    pub summary: Summary,
    pub metrics: Metrics,
}

impl Story {
    pub fn of(action: &LifecycleAction, pool: Option<&PoolName>) -> Self {
        Self {
            summary: Summary {
                pool: pool.cloned(),
                ..Summary::about(&action.action_ref(), Some(action.transition))
            },
            metrics: Metrics {
                pool: pool.map(PoolName::to_string),
                ..Metrics::default()
            },
        }
    }

    /// The pool, for the summary and the metrics' dimension.
    pub fn about_pool(&mut self, pool: &PoolName) {
        tracing::Span::current().record("pool", pool.as_str());
        self.summary.pool = Some(pool.clone());
        self.metrics.pool = Some(pool.to_string());
    }

    /// The availability zone of the instance, for the summary and the metrics' dimension.
    pub fn in_zone(&mut self, zone: &str) {
        self.summary.availability_zone = Some(zone.to_owned());
        self.metrics.availability_zone = Some(zone.to_owned());
    }

    /// The claim's figures.
    pub fn count(&mut self, tally: &Tally) {
        self.metrics
            .add(metrics::CLAIM_CONFLICTS, f64::from(tally.conflicts));
        if let Some(free) = tally.free_members {
            self.metrics
                .set(metrics::FREE_MEMBERS, free as f64, "Count");
        }
        if tally.taken_over {
            self.metrics.add(metrics::TAKEN_OVER, 1.0);
        }
        if tally.exhausted {
            self.metrics.add(metrics::POOL_EXHAUSTED, 1.0);
        }
        if !tally.booted.is_zero() {
            self.metrics.set(
                metrics::BOOT_WAIT,
                tally.booted.as_millis() as f64,
                "Milliseconds",
            );
        }
    }

    /// A failure a redelivery can get past: nothing completed.
    pub fn retry(self, err: impl Into<HandlerError>) -> Handled {
        let err = err.into();
        error!(error = %err, "returning the error to Lambda for redelivery");
        Handled {
            result: Err(err),
            metrics: vec![self.metrics],
        }
    }

    /// Time or AWS's errors ran out before the job was done or a failure confirmed, which is
    /// not a failure: nothing is completed. The action is kept alive with a heartbeat while
    /// the deadline leaves time for one, counted, and an error returned, so that the redelivery
    /// (Lambda's retries, the queue's) carries on from what AWS now holds.
    pub async fn leave_pending<A: AutoScalingApi, E>(
        mut self,
        ctx: Ctx<'_, A, E>,
        action: &ActionRef,
        deadline: Deadline,
        reason: String,
    ) -> Handled {
        self.metrics.add(metrics::LEFT_PENDING, 1.0);
        warn!(%reason, "leaving the lifecycle action pending for a redelivery");
        let window = CallWindow {
            end: deadline.instant(),
            attempt: ctx.settings.attempt_timeout,
        };
        match window.bound(ctx.asg.record_heartbeat(action)).await {
            Ok(()) => info!("lifecycle heartbeat sent: the action waits for the redelivery"),
            Err(err) => warn!(error = %err, "could not send a lifecycle heartbeat"),
        }
        Handled {
            result: Err(HandlerError::Unfinished {
                instance: action.instance.clone(),
                reason,
            }),
            metrics: vec![self.metrics],
        }
    }

    /// Ends pinhook's handling of the action: its one `CompleteLifecycleAction`, bounded by
    /// Lambda's deadline (past it, the runtime would end the invocation anyway, and an error
    /// lets the event be delivered again), or nothing for a stale event.
    pub async fn end<A: AutoScalingApi, E>(
        mut self,
        ctx: Ctx<'_, A, E>,
        action: &ActionRef,
        deadline: Deadline,
        ending: Ending,
    ) -> Handled {
        let (result, reason) = match ending {
            Ending::Stale(stale) => {
                info!(reason = %stale, "stale or out-of-order event; nothing changed");
                self.summary.outcome = Outcome::Stale;
                self.summary.reason = Some(stale.0);
                return Handled {
                    result: Ok(self.summary),
                    metrics: vec![self.metrics],
                };
            }
            Ending::Done(reason) => (LifecycleResult::Continue, reason),
            Ending::Failed { result, reason } => {
                self.metrics.add(metrics::FAILED_ACTIONS, 1.0);
                (result, reason)
            }
        };
        self.summary.outcome = result.into();
        self.summary.reason = Some(reason);
        let result = complete(ctx, action, deadline, result)
            .await
            .map(|completion| Summary {
                completion: Some(completion),
                ..self.summary
            });
        Handled {
            result,
            metrics: vec![self.metrics],
        }
    }
}

/// The one `CompleteLifecycleAction` of an action; an answer that it is no longer active
/// counts as done.
async fn complete<A: AutoScalingApi, E>(
    ctx: Ctx<'_, A, E>,
    action: &ActionRef,
    deadline: Deadline,
    result: LifecycleResult,
) -> Result<Completion, HandlerError> {
    let window = CallWindow {
        end: deadline.instant(),
        attempt: ctx.settings.attempt_timeout,
    };
    let completion = tokio::time::timeout(
        deadline.remaining(),
        window.bound(ctx.asg.complete_lifecycle_action(action, result)),
    )
    .await
    .unwrap_or_else(|_| {
        Err(AwsError::transient(
            "autoscaling:CompleteLifecycleAction",
            "no answer before the function's deadline".into(),
        ))
    });
    match completion {
        Ok(()) => {
            info!(%result, "lifecycle action completed");
            Ok(Completion::Completed)
        }
        Err(err) if err.is(ErrorKind::NoActiveAction) => {
            info!(%result, "lifecycle action was already completed or timed out");
            Ok(Completion::AlreadyCompleted)
        }
        Err(source) => {
            error!(error = %source, %result, "could not complete the lifecycle action");
            Err(HandlerError::Complete {
                instance: action.instance.clone(),
                result,
                source,
            })
        }
    }
}
