//! A launch, top to bottom: check the event against Auto Scaling, claim a member through the
//! claim engine, record the lease, and complete the action once. Running out of time, or
//! AWS's errors running out the time, is not a failure: the action is then left pending for a
//! redelivery, which finds what this one claimed.

use tokio::time::Instant;
use tracing::{Span, error, info, warn};

use super::check;
use super::lease;
use super::outcome::{Ending, Handled, Story};
use crate::aws::{AutoScalingApi, AwsError, Ec2Api, SplitTransient};
use crate::claim::{self, ClaimReport, Claimed, Request, Subject};
use crate::config::{HookConfig, Pin, Takeover, Unusable};
use crate::context::{CallWindow, Ctx, Deadline};
use crate::decide::{Checked, Stale};
use crate::event::LifecycleAction;
use crate::member::{Binding, EipKind, EniKind, MemberKind};
use crate::metrics;

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
            let kind = || EniKind::new(on, device_index);
            launch_with(ctx, action, config, kind, Takeover::Off, deadline).await
        }
        Pin::Eip {
            interface,
            takeover,
        } => {
            let kind = || EipKind::new(on, interface);
            launch_with(ctx, action, config, kind, takeover, deadline).await
        }
    }
}

/// How one try at a launch ended.
enum Tried {
    /// The action ends so.
    Ends(Ending),
    /// AWS's transient errors, or the time, stopped it; a later try carries on from what AWS
    /// then holds.
    Unfinished(String),
}

/// Tries the launch until it ends, again from its reads after AWS's transient errors until the
/// time before the completion's reserve is up, as a redelivery would; then the action is left
/// pending for the redelivery.
async fn launch_with<A: AutoScalingApi, E: Ec2Api, K: MemberKind>(
    ctx: Ctx<'_, A, E>,
    action: &LifecycleAction,
    config: &HookConfig,
    kind: impl Fn() -> K,
    takeover: Takeover,
    deadline: Deadline,
) -> Handled {
    let started = Instant::now();
    let action_ref = action.action_ref();
    let mut story = Story::of(action, Some(&config.pool));
    // Every AWS call of the launch ends before the completion's reserve.
    let until = deadline.keeping(ctx.settings.completion_reserve);
    let mut pause = RETRY_PAUSE;
    // The first try's reason: the later ones often only say that the window ran out.
    let mut first: Option<String> = None;
    let mut tries = 0;
    // Tries may go on for longer than the hook's heartbeat timeout: the action is kept alive.
    let mut heartbeat_due = started + ctx.settings.heartbeat_interval;
    loop {
        tries += 1;
        let tried = try_launch(ctx, action, config, kind(), takeover, until, &mut story).await;
        let reason = match tried {
            Tried::Ends(ending) => {
                if matches!(ending, Ending::Done(_)) && story.summary.member.is_some() {
                    story.metrics.set(
                        metrics::TIME_TO_PIN,
                        started.elapsed().as_millis() as f64,
                        "Milliseconds",
                    );
                }
                return story.end(ctx, &action_ref, deadline, ending).await;
            }
            Tried::Unfinished(reason) => reason,
        };
        // Tries go on until the window ends: the action is left pending only once AWS's errors
        // have had all of it.
        let left = until.saturating_duration_since(Instant::now());
        if left < LAST_TRY {
            let reason = match first {
                Some(first) if first != reason => {
                    format!("{first} (in {tries} tries; the last: {reason})")
                }
                _ if tries > 1 => format!("{reason} (in {tries} tries)"),
                _ => reason,
            };
            return story
                .leave_pending(ctx, &action_ref, deadline, reason)
                .await;
        }
        first.get_or_insert_with(|| reason.clone());
        warn!(%reason, pause_ms = pause.as_millis() as u64, "unfinished; trying again from the reads");
        story.metrics.add(metrics::TRIED_AGAIN, 1.0);
        if Instant::now() >= heartbeat_due {
            let window = CallWindow {
                end: until,
                attempt: ctx.settings.attempt_timeout,
            };
            match window.bound(ctx.asg.record_heartbeat(&action_ref)).await {
                Ok(()) => info!("lifecycle heartbeat sent between tries"),
                Err(err) => warn!(error = %err, "could not send a lifecycle heartbeat"),
            }
            heartbeat_due = Instant::now() + ctx.settings.heartbeat_interval;
        }
        tokio::time::sleep(pause.min(left - LAST_TRY / 2)).await;
        pause = (pause * 2).min(ctx.settings.max_backoff);
    }
}

/// The first pause before a launch is tried again within its invocation, doubled each time.
const RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(500);
/// Less time than this left in the window is no time for another try.
const LAST_TRY: std::time::Duration = std::time::Duration::from_millis(200);

/// One try: check the event against Auto Scaling (reading the pool meanwhile), claim a member
/// through the claim engine, record the lease.
async fn try_launch<A: AutoScalingApi, E: Ec2Api, K: MemberKind>(
    ctx: Ctx<'_, A, E>,
    action: &LifecycleAction,
    config: &HookConfig,
    kind: K,
    takeover: Takeover,
    until: Instant,
    story: &mut Story,
) -> Tried {
    let window = CallWindow {
        end: until,
        attempt: ctx.settings.attempt_timeout,
    };

    // 1. Check the event against Auto Scaling, reading the pool meanwhile.
    let reads = async {
        tokio::join!(
            check::converged(ctx, action),
            claim::first_reads(&kind, None)
        )
    };
    let (checked, first) = window.bound(Box::pin(reads)).await;
    let checked = match checked {
        Ok(checked) => checked,
        Err(err) => return ended_by(err, config),
    };
    let zone = match checked {
        Checked::Pin { availability_zone } => availability_zone,
        Checked::EnterWarmPool => {
            info!(
                "instance is launching into the warm pool; it is pinned when it leaves it for the group"
            );
            return Tried::Ends(Ending::Done("launching into the warm pool".into()));
        }
        Checked::Stale(stale) => return Tried::Ends(Ending::Stale(stale)),
        Checked::Release { .. } | Checked::Behind(_) => {
            let stale = Stale("the instance is leaving the group".into());
            return Tried::Ends(Ending::Stale(stale));
        }
    };
    story.in_zone(&zone);
    let first = match first {
        Ok(first) => first,
        Err(err) => return ended_by(err, config),
    };

    // 2–4. Claim a member through the claim engine.
    let request = Request {
        subject: Subject::of(action),
        zone: &zone,
        takeover,
        until,
    };
    let claiming = Box::pin(claim::pin(ctx, request, kind, first));
    let ClaimReport { claimed, tally } = match window.bound(claiming).await {
        Ok(report) => report,
        Err(err) => return ended_by(err, config),
    };
    story.count(&tally);
    let (member, note) = match claimed {
        Claimed::Pinned { member, note } => (member, note),
        Claimed::NotPinned(reason) => {
            warn!(%reason, on_failure = %config.on_failure, "nothing pinned");
            return Tried::Ends(Ending::Failed {
                result: config.on_failure,
                reason,
            });
        }
        Claimed::ActionEnded(stale) => return Tried::Ends(Ending::Stale(stale)),
        Claimed::Unfinished(reason) => return Tried::Unfinished(reason),
    };
    Span::current().record("member", member.id.as_str());

    // 5. Record the lease.
    let lease = lease::record(ctx.ec2, &member.id, &action.instance, K::INSTANCE_TAG);
    let lease_note = match window.bound(lease).await {
        Ok(note) => note,
        Err(transient) => {
            return Tried::Unfinished(format!(
                "pinned {}, but the lease tags wait: {}",
                member.id, transient.0
            ));
        }
    };

    // 6. Complete with CONTINUE.
    let mut reason = lease_note
        .or(note)
        .unwrap_or_else(|| format!("pinned {}", member.id));
    if !tally.booted.is_zero() {
        reason.push_str(&format!(
            ", after waiting {:.1} s for the instance to boot",
            tally.booted.as_secs_f64()
        ));
    }
    story.metrics.add(metrics::PINNED, 1.0);
    info!(
        mac_address = member.mac_address.as_deref(),
        public_ip = member.public_ip.as_deref(),
        "pinned"
    );
    story.summary.member = Some(member.id);
    story.summary.mac_address = member.mac_address;
    story.summary.private_ip = member.private_ip;
    story.summary.public_ip = member.public_ip;
    Tried::Ends(Ending::Done(reason))
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
    let window = CallWindow {
        end: deadline.keeping(ctx.settings.completion_reserve),
        attempt: ctx.settings.attempt_timeout,
    };
    let failed = Ending::Failed {
        result: unusable.on_failure,
        reason: unusable.error.to_string(),
    };
    let ending = match window
        .bound(check::converged(ctx, action))
        .await
        .split_transient()
    {
        Err(transient) => {
            let reason = format!("the check could not be made: {}", transient.0);
            return story
                .leave_pending(ctx, &action_ref, deadline, reason)
                .await;
        }
        Ok(Ok(Checked::Stale(stale))) => Ending::Stale(stale),
        // Nothing is pinned in the warm pool, so the metadata does not matter yet.
        Ok(Ok(Checked::EnterWarmPool)) => Ending::Done(format!(
            "launching into the warm pool; the hook metadata must be fixed before it leaves: {}",
            unusable.error
        )),
        Ok(Ok(Checked::Pin { .. } | Checked::Release { .. } | Checked::Behind(_))) => failed,
        // Unchecked: harmless, because Auto Scaling refuses a token that is not active.
        Ok(Err(err)) => {
            error!(error = %err, "could not check the instance with Auto Scaling; completing unchecked");
            failed
        }
    };
    story.end(ctx, &action_ref, deadline, ending).await
}

/// An AWS error stops the try: a transient one leaves it unfinished (it is no reason to give
/// up); any other ends the action with the failure outcome, naming the error (and a missing
/// permission).
fn ended_by(err: AwsError, config: &HookConfig) -> Tried {
    match Err::<(), _>(err).split_transient() {
        Err(transient) => Tried::Unfinished(transient.0.to_string()),
        Ok(result) => {
            let reason = result.err().map(|e| e.to_string()).unwrap_or_default();
            error!(%reason, on_failure = %config.on_failure, "nothing pinned");
            Tried::Ends(Ending::Failed {
                result: config.on_failure,
                reason,
            })
        }
    }
}
