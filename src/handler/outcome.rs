//! How an action ends: the summary an invocation returns, the errors returned to Lambda, and
//! the one `CompleteLifecycleAction` that ends each of pinhook's lifecycle actions.

use serde::Serialize;
use tracing::{error, info};

use super::{Deadline, Pinhook};
use crate::aws::{AutoScalingApi, AwsError, Ec2Api, ErrorKind};
use crate::config::PoolName;
use crate::event::LifecycleAction;
use crate::model::{ActionRef, InstanceId, LifecycleResult, Transition};

/// What became of the lifecycle action.
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
    pub sweep: Option<Box<super::sweep::SweepReport>>,
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
        }
    }

    pub(super) fn about(action: &LifecycleAction, outcome: Outcome) -> Self {
        Self {
            transition: Some(action.transition),
            group: Some(action.group.clone()),
            instance: Some(action.instance.clone()),
            ..Self::new(outcome)
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
        "could not complete the lifecycle action for instance {instance} with {result}: {source}"
    )]
    Complete {
        instance: InstanceId,
        result: LifecycleResult,
        #[source]
        source: AwsError,
    },
}

/// How pinhook's handling of one of its lifecycle actions ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Ending {
    /// Complete the action with `result`; `reason` says why.
    Complete {
        result: LifecycleResult,
        reason: String,
    },
    /// The event does not match Auto Scaling (stale, out of order, forged): complete nothing.
    Stale(String),
}

impl<A: AutoScalingApi, E: Ec2Api> Pinhook<A, E> {
    /// Ends pinhook's handling of an action: its one `CompleteLifecycleAction`, bounded by
    /// Lambda's deadline (past it, the runtime would end the invocation anyway, and an error
    /// lets the event be delivered again).
    pub(super) async fn finish(
        &self,
        action: &ActionRef,
        deadline: Deadline,
        mut summary: Summary,
        ending: Ending,
    ) -> Result<Summary, HandlerError> {
        let (result, reason) = match ending {
            Ending::Stale(reason) => {
                info!(%reason, "stale or out-of-order event; nothing changed");
                summary.outcome = Outcome::Stale;
                return Ok(summary.reason(reason));
            }
            Ending::Complete { result, reason } => (result, reason),
        };
        summary.outcome = result.into();
        summary.reason = Some(reason);
        let completion = tokio::time::timeout(
            deadline.remaining(),
            self.asg.complete_lifecycle_action(action, result),
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
                summary.completion = Some(Completion::Completed);
                Ok(summary)
            }
            Err(err) if err.is(ErrorKind::NoActiveAction) => {
                info!(%result, "lifecycle action was already completed or timed out");
                summary.completion = Some(Completion::AlreadyCompleted);
                Ok(summary)
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
}
