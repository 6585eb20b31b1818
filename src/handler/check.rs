//! Step 1's reads: the instance as Auto Scaling knows it, looked at again while a read shows it
//! before the event's transition, until Auto Scaling's reads can have caught up.

use std::time::Duration;

use tokio::time::Instant;
use tracing::info;

use crate::aws::{AutoScalingApi, AwsError};
use crate::context::Ctx;
use crate::decide::{self, Checked, Stale};
use crate::event::LifecycleAction;
use crate::model::{GroupInstance, Location};

/// The event against Auto Scaling, on a read that can have caught up with it: never
/// [`Checked::Behind`]. The happy path is one call; a read that shows the instance before the
/// transition is repeated with backoff within the consistency window, and only then called
/// stale; a read that shows it past the transition ends the check at once.
pub(super) async fn converged<A: AutoScalingApi, E>(
    ctx: Ctx<'_, A, E>,
    action: &LifecycleAction,
) -> Result<Checked, AwsError> {
    let window = ctx.settings.consistency_window;
    let started = Instant::now();
    let mut pause = (window / 8).max(Duration::from_millis(50));
    loop {
        let described = describe(ctx, action).await?;
        let reason = match decide::check(action, described.as_ref()) {
            Checked::Behind(reason) => reason,
            checked => return Ok(checked),
        };
        let waited = started.elapsed();
        if waited >= window {
            return Ok(Checked::Stale(Stale(format!(
                "{reason}, and still so {:.1} s later, when Auto Scaling's reads have caught up",
                waited.as_secs_f64()
            ))));
        }
        info!(%reason, "Auto Scaling's read may not have caught up with the event; looking again");
        tokio::time::sleep(pause.min(window - waited)).await;
        pause *= 2;
    }
}

/// The instance as Auto Scaling knows it, looking in the warm pool too when the event concerns
/// it; `None` when it is in no group.
pub(super) async fn describe<A: AutoScalingApi, E>(
    ctx: Ctx<'_, A, E>,
    action: &LifecycleAction,
) -> Result<Option<GroupInstance>, AwsError> {
    let found = ctx
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
    let pool = ctx.asg.warm_pool_instances(&action.group).await?;
    Ok(pool.into_iter().find(|i| i.instance == action.instance))
}
