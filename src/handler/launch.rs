//! A launch, top to bottom: check the event against Auto Scaling, claim a member through the
//! claim engine, record the lease, and complete the action once.

use std::future::Future;

use tokio::time::Instant;
use tracing::{Span, error, info, warn};

use super::check;
use super::lease;
use super::outcome::{Ending, Handled, Story};
use crate::aws::{AutoScalingApi, AwsError, Ec2Api, SplitTransient, Transient};
use crate::claim::{self, Budget, ClaimReport, Claimed, Request, Subject};
use crate::config::{HookConfig, Pin, Takeover, Unusable};
use crate::context::{Ctx, Deadline};
use crate::decide::{Checked, Stale};
use crate::event::LifecycleAction;
use crate::member::{Binding, EipKind, EniKind, MemberKind};
use crate::metrics;
use crate::model::ActionRef;

/// A launch action of one of pinhook's hooks.
pub(super) async fn launch<A: AutoScalingApi, E: Ec2Api>(
    ctx: Ctx<'_, A, E>,
    action: &LifecycleAction,
    config: &HookConfig,
    deadline: Deadline,
) -> Handled {
    let on = Binding::new(ctx, &config.pool, &action.instance);
    match config.pin {
        Pin::Eni { device_index } => {
            let kind = EniKind::new(on, device_index);
            launch_with(ctx, action, config, kind, Takeover::Off, deadline).await
        }
        Pin::Eip {
            interface,
            takeover,
        } => {
            let kind = EipKind::new(on, interface);
            launch_with(ctx, action, config, kind, takeover, deadline).await
        }
    }
}

async fn launch_with<A: AutoScalingApi, E: Ec2Api, K: MemberKind>(
    ctx: Ctx<'_, A, E>,
    action: &LifecycleAction,
    config: &HookConfig,
    kind: K,
    takeover: Takeover,
    deadline: Deadline,
) -> Handled {
    let started = Instant::now();
    let action_ref = action.action_ref();
    let mut story = Story::of(action, Some(&config.pool));
    let budget = Budget::until(deadline.keeping(ctx.settings.completion_reserve));
    let failed = |reason: String| Ending::Failed {
        result: config.on_failure,
        reason,
    };

    // 1. Check the event against Auto Scaling, reading the pool meanwhile.
    let reads = async { tokio::join!(check::converged(ctx, action), claim::first_reads(&kind)) };
    let (checked, first) = match within(&budget, reads).await {
        Some(reads) => reads,
        None => {
            return story
                .end(ctx, &action_ref, deadline, out_of_time(&budget, config))
                .await;
        }
    };
    let checked = match checked {
        Ok(checked) => checked,
        Err(err) => return fail_on(err, story, ctx, &action_ref, deadline, config).await,
    };
    let zone = match checked {
        Checked::Pin { availability_zone } => availability_zone,
        Checked::EnterWarmPool => {
            info!(
                "instance is launching into the warm pool; it is pinned when it leaves it for the group"
            );
            let done = Ending::Done("launching into the warm pool".into());
            return story.end(ctx, &action_ref, deadline, done).await;
        }
        Checked::Stale(stale) => {
            return story
                .end(ctx, &action_ref, deadline, Ending::Stale(stale))
                .await;
        }
        Checked::Release { .. } | Checked::Behind(_) => {
            let stale = Ending::Stale(Stale("the instance is leaving the group".into()));
            return story.end(ctx, &action_ref, deadline, stale).await;
        }
    };
    story.in_zone(&zone);
    let first = match first {
        Ok(first) => first,
        Err(err) => return fail_on(err, story, ctx, &action_ref, deadline, config).await,
    };

    // 2–4. Claim a member through the claim engine.
    let request = Request {
        subject: Subject::of(action),
        zone: &zone,
        takeover,
        budget: &budget,
    };
    let report = match within(&budget, claim::pin(ctx, request, kind, first)).await {
        Some(Ok(report)) => report,
        Some(Err(err)) => return fail_on(err, story, ctx, &action_ref, deadline, config).await,
        None => {
            return story
                .end(ctx, &action_ref, deadline, out_of_time(&budget, config))
                .await;
        }
    };
    let ClaimReport { claimed, tally } = report;
    story
        .metrics
        .add(metrics::CLAIM_CONFLICTS, f64::from(tally.conflicts));
    if let Some(free) = tally.free_members {
        story
            .metrics
            .set(metrics::FREE_MEMBERS, free as f64, "Count");
    }
    if tally.taken_over {
        story.metrics.add(metrics::TAKEN_OVER, 1.0);
    }
    let (member, note) = match claimed {
        Claimed::Pinned { member, note } => (member, note),
        Claimed::NotPinned(reason) => {
            if tally.exhausted {
                story.metrics.add(metrics::POOL_EXHAUSTED, 1.0);
            }
            warn!(%reason, on_failure = %config.on_failure, "nothing pinned");
            return story.end(ctx, &action_ref, deadline, failed(reason)).await;
        }
        Claimed::ActionEnded(stale) => {
            return story
                .end(ctx, &action_ref, deadline, Ending::Stale(stale))
                .await;
        }
    };
    Span::current().record("member", member.id.as_str());

    // 5. Record the lease.
    let lease = lease::record(ctx.ec2, &member.id, &action.instance, K::INSTANCE_TAG);
    let lease_note = match within(&budget, lease).await {
        Some(Ok(note)) => note,
        Some(Err(err)) => return story.retry(Transient(err)),
        None => Some(format!(
            "pinned {}, but the function's deadline came before the lease tags were written",
            member.id
        )),
    };

    // 6. Complete with CONTINUE.
    let mut reason = lease_note
        .or(note)
        .unwrap_or_else(|| format!("pinned {}", member.id));
    if !tally.booted.is_zero() {
        story.metrics.set(
            metrics::BOOT_WAIT,
            tally.booted.as_millis() as f64,
            "Milliseconds",
        );
        reason.push_str(&format!(
            ", after waiting {:.1} s for the instance to boot",
            tally.booted.as_secs_f64()
        ));
    }
    story.metrics.add(metrics::PINNED, 1.0);
    story.metrics.set(
        metrics::TIME_TO_PIN,
        started.elapsed().as_millis() as f64,
        "Milliseconds",
    );
    info!(
        mac_address = member.mac_address.as_deref(),
        public_ip = member.public_ip.as_deref(),
        "pinned"
    );
    story.summary.member = Some(member.id);
    story.summary.mac_address = member.mac_address;
    story.summary.private_ip = member.private_ip;
    story.summary.public_ip = member.public_ip;
    story
        .end(ctx, &action_ref, deadline, Ending::Done(reason))
        .await
}

/// pinhook's launch hook whose metadata cannot be used: completed with the hook's failure
/// outcome once the check confirms the action waits, so the instance never waits out the
/// hook's timeout.
pub(super) async fn refuse<A: AutoScalingApi, E>(
    ctx: Ctx<'_, A, E>,
    action: &LifecycleAction,
    unusable: &Unusable,
    deadline: Deadline,
) -> Handled {
    error!(error = %unusable.error, "bad hook metadata");
    let action_ref = action.action_ref();
    let story = Story::of(action, unusable.pool.as_ref());
    let checked = match check::converged(ctx, action).await.split_transient() {
        Err(transient) => return story.retry(transient),
        Ok(Ok(checked)) => checked,
        // Unchecked: harmless, because Auto Scaling refuses a token that is not active.
        Ok(Err(err)) => {
            error!(error = %err, "could not check the instance with Auto Scaling; completing unchecked");
            Checked::Pin {
                availability_zone: String::new(),
            }
        }
    };
    let ending = match checked {
        Checked::Stale(stale) => Ending::Stale(stale),
        // Nothing is pinned in the warm pool, so the metadata does not matter yet.
        Checked::EnterWarmPool => Ending::Done(format!(
            "launching into the warm pool; the hook metadata must be fixed before it leaves: {}",
            unusable.error
        )),
        Checked::Pin { .. } | Checked::Release { .. } | Checked::Behind(_) => Ending::Failed {
            result: unusable.on_failure,
            reason: unusable.error.to_string(),
        },
    };
    story.end(ctx, &action_ref, deadline, ending).await
}

/// Runs a step of the launch until the budget's end: `None` when the end came first. Whatever
/// was under way is dropped.
async fn within<T>(budget: &Budget, step: impl Future<Output = T>) -> Option<T> {
    tokio::time::timeout_at(budget.end, step).await.ok()
}

/// The launch ran out of time: a claim sent but not settled may still land, and the member then
/// stays with the instance without lease tags, where its release (or the sweep) finds it.
fn out_of_time(budget: &Budget, config: &HookConfig) -> Ending {
    let reason = match budget.in_flight() {
        Some(member) => format!(
            "the function's deadline came while claiming {member}; if that claim lands after all, {member} stays with the instance without lease tags, where its release finds it"
        ),
        None => "the function's deadline came before a member could be pinned".into(),
    };
    warn!(%reason, "nothing pinned");
    Ending::Failed {
        result: config.on_failure,
        reason,
    }
}

/// An AWS error ends the launch: a transient one is returned for redelivery, nothing completed;
/// any other is completed with the failure outcome, naming the error (and a missing permission).
async fn fail_on<A: AutoScalingApi, E>(
    err: AwsError,
    story: Story,
    ctx: Ctx<'_, A, E>,
    action: &ActionRef,
    deadline: Deadline,
    config: &HookConfig,
) -> Handled {
    if err.is_transient() {
        return story.retry(Transient(err));
    }
    error!(error = %err, on_failure = %config.on_failure, "nothing pinned");
    let ending = Ending::Failed {
        result: config.on_failure,
        reason: err.to_string(),
    };
    story.end(ctx, action, deadline, ending).await
}
