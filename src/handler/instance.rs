//! An instance without a group, top to bottom (DESIGN.md, "Instances without a group"): read
//! it once, act on the later of the event's state and the read's, then pin through the claim
//! engine or give back what it holds. No lifecycle action waits: a failure is logged, counted
//! and left to the sweep; one a redelivery can get past is also returned to Lambda.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;
use tracing::{Span, error, info, warn};

use super::lease;
use super::outcome::{Handled, HandlerError, Outcome, Story, Summary};
use super::release::release_holder;
use crate::aws::{AutoScalingApi, AwsError, Ec2Api};
use crate::claim::{self, ClaimReport, Claimed, Request, Subject, Tally};
use crate::config::{DeviceIndex, HookConfig, Pin, PinKind, PoolName, Takeover};
use crate::context::{CallWindow, Ctx, Deadline};
use crate::decide::{self, Acting};
use crate::event::StateChange;
use crate::member::{Binding, EipKind, EniKind, Member, MemberKind};
use crate::metrics;
use crate::model::{Ec2Instance, InstanceId, RunState};

/// EC2's state change of an instance that may be pinhook's.
pub(super) async fn state_change<A: AutoScalingApi, E: Ec2Api>(
    ctx: Ctx<'_, A, E>,
    change: &StateChange,
    deadline: Deadline,
) -> Handled {
    let until = deadline.keeping(ctx.settings.completion_reserve);
    let window = CallWindow {
        end: until,
        attempt: ctx.settings.attempt_timeout,
    };
    let mut story = Story::of_instance(&change.instance, &change.state);
    let acting = match window.bound(converged(ctx, change)).await {
        Ok(acting) => acting,
        Err(err) => return not_pinned(story, change, err),
    };
    match acting {
        Acting::Pin {
            config,
            availability_zone,
        } => {
            story.about_pool(&config.pool);
            story.in_zone(&availability_zone);
            let pinning = pin(ctx, change, &config, &availability_zone, until, &mut story);
            match window.bound(pinning).await {
                Ok(()) => Handled {
                    result: Ok(story.summary),
                    metrics: vec![story.metrics],
                },
                Err(err) => not_pinned(story, change, err),
            }
        }
        Acting::Release { pool, kind } => {
            story.about_pool(&pool);
            let releasing = release(ctx, &change.instance, &pool, kind, until, story);
            window.bound(releasing).await
        }
        Acting::Keep(reason) => {
            info!(%reason, "nothing to change");
            story.summary.outcome = Outcome::Kept;
            story.summary.reason = Some(reason);
            Handled::answer(story.summary)
        }
        Acting::Refused(error) => {
            error!(%error, "the instance cannot be pinned");
            story.metrics.add(metrics::NOT_PINNED, 1.0);
            story.summary.outcome = Outcome::NotPinned;
            story.summary.reason = Some(error);
            Handled {
                result: Ok(story.summary),
                metrics: vec![story.metrics],
            }
        }
        Acting::Ignore(reason) | Acting::Behind(reason) => {
            info!(%reason, "not pinhook's to act on");
            story.summary.outcome = Outcome::Ignored;
            story.summary.reason = Some(reason);
            Handled::answer(story.summary)
        }
    }
}

/// The event against EC2's read of the instance, on a read that can have caught up with it:
/// a read that shows the instance before the event's state is repeated with backoff within the
/// consistency window, and then believed.
async fn converged<A, E: Ec2Api>(
    ctx: Ctx<'_, A, E>,
    change: &StateChange,
) -> Result<Acting, AwsError> {
    let window = ctx.settings.consistency_window;
    let started = Instant::now();
    let mut pause = (window / 8).max(Duration::from_millis(50));
    loop {
        let read = ctx
            .ec2
            .instances(std::slice::from_ref(&change.instance))
            .await?;
        let read: Option<&Ec2Instance> = read.first();
        let reason = match decide::state_change(&change.state, read) {
            Acting::Behind(reason) => reason,
            acting => return Ok(acting),
        };
        let waited = started.elapsed();
        if waited >= window {
            return Ok(decide::caught_up(&change.state, read));
        }
        info!(%reason, "EC2's read may not have caught up with the event; looking again");
        tokio::time::sleep(pause.min(window - waited)).await;
        pause *= 2;
    }
}

/// Pins a member of the pool the instance's tags name, and records the lease; the summary says
/// which, and how long after the instance reached `running`.
async fn pin<A: AutoScalingApi, E: Ec2Api>(
    ctx: Ctx<'_, A, E>,
    change: &StateChange,
    config: &HookConfig,
    zone: &str,
    until: Instant,
    story: &mut Story,
) -> Result<(), AwsError> {
    let started = Instant::now();
    let on = Binding::new(ctx, &config.pool, &change.instance);
    let pinned = match config.pin {
        Pin::Eni { device_index } => {
            let kind = EniKind::new(on, device_index);
            pin_without_action(ctx, kind, None, zone, Takeover::Off, until).await?
        }
        Pin::Eip {
            interface,
            takeover,
        } => {
            let kind = EipKind::new(on, interface);
            pin_without_action(ctx, kind, None, zone, takeover, until).await?
        }
    };
    let PinnedOrNot { result, tally } = pinned;
    story.count(&tally);
    let (member, note) = match result {
        Ok(pinned) => pinned,
        Err(reason) => {
            warn!(%reason, "nothing pinned; the sweep tries again");
            story.metrics.add(metrics::NOT_PINNED, 1.0);
            story.summary.outcome = Outcome::NotPinned;
            story.summary.reason = Some(reason);
            return Ok(());
        }
    };
    Span::current().record("member", member.id.as_str());
    // How long after `running`: from the event's time when it says so, else from the moment
    // pinhook saw the instance run after waiting for it to boot.
    let after_running = match (&change.state, change.time) {
        // (an event stamped a little ahead of this clock counts as just now)
        (RunState::Running, Some(time)) => {
            Some(SystemTime::now().duration_since(time).unwrap_or_default())
        }
        _ if !tally.booted.is_zero() => Some(started.elapsed().saturating_sub(tally.booted)),
        _ => None,
    };
    info!(
        mac_address = member.mac_address.as_deref(),
        public_ip = member.public_ip.as_deref(),
        after_running_ms = after_running.map(|d| d.as_millis() as u64),
        "pinned"
    );
    story.metrics.add(metrics::PINNED, 1.0);
    story.metrics.set(
        metrics::TIME_TO_PIN,
        started.elapsed().as_millis() as f64,
        "Milliseconds",
    );
    let summary = &mut story.summary;
    summary.outcome = Outcome::Pinned;
    summary.pinned_after_running_ms = after_running.map(|d| d.as_millis() as u64);
    summary.reason = Some(note.unwrap_or_else(|| format!("pinned {}", member.id)));
    summary.member = Some(member.id);
    summary.mac_address = member.mac_address;
    summary.private_ip = member.private_ip;
    summary.public_ip = member.public_ip;
    Ok(())
}

/// What a pin with no lifecycle action came to: the member and a note, or why not; and the
/// claim's figures.
pub(super) struct PinnedOrNot {
    pub result: Result<(Member, Option<String>), String>,
    pub tally: Tally,
}

/// Pins a member to an instance through the claim engine with no lifecycle action (an instance
/// without a group, or one the sweep found holding nothing): no heartbeats, no waiting for
/// releases; then records the lease. An error is one a later try may get past.
pub(super) async fn pin_without_action<A: AutoScalingApi, E: Ec2Api, K: MemberKind>(
    ctx: Ctx<'_, A, E>,
    kind: K,
    group: Option<&str>,
    zone: &str,
    takeover: Takeover,
    until: Instant,
) -> Result<PinnedOrNot, AwsError> {
    let instance = kind.instance().clone();
    let first = claim::first_reads(&kind, Some(zone)).await?;
    let request = Request {
        subject: Subject {
            group,
            instance: &instance,
            action: None,
        },
        zone,
        takeover,
        until,
    };
    let ClaimReport { claimed, tally } = claim::pin(ctx, request, kind, first).await?;
    let result = match claimed {
        Claimed::Pinned { member, note } => {
            let recorded = lease::record(ctx.ec2, &member.id, &instance, K::INSTANCE_TAG).await;
            match recorded {
                Ok(lease) => Ok((member, lease.or(note))),
                Err(transient) => {
                    let reason = format!(
                        "pinned {}, but the lease tags wait: {}",
                        member.id, transient.0
                    );
                    return Err(AwsError::transient("ec2:CreateTags", reason.into()));
                }
            }
        }
        Claimed::Unfinished(reason) => {
            return Err(AwsError::transient("pinhook:claim", reason.into()));
        }
        Claimed::NotPinned(reason) => Err(reason),
        Claimed::ActionEnded(stale) => Err(stale.0),
    };
    Ok(PinnedOrNot { result, tally })
}

/// Gives back what the instance holds of the pool its tags name (of both kinds when its kind
/// is unknown): it is leaving or gone, and takes its own tags with it. A release that AWS's
/// transient errors kept from finishing is returned to Lambda for a retry; the sweep also
/// comes back to it.
async fn release<A: AutoScalingApi, E: Ec2Api>(
    ctx: Ctx<'_, A, E>,
    instance: &InstanceId,
    pool: &PoolName,
    kind: Option<PinKind>,
    until: Instant,
    mut story: Story,
) -> Handled {
    let on = Binding::new(ctx, pool, instance);
    // The device index plays no part in a release.
    let index = DeviceIndex::PRIMARY;
    let mut results = Vec::new();
    if kind != Some(PinKind::Eip) {
        results.push(release_holder(ctx, EniKind::new(on, index), until, false).await);
    }
    if kind != Some(PinKind::Eni) {
        results.push(release_holder(ctx, EipKind::new(on, index), until, false).await);
    }
    let given_back: Vec<String> = results
        .iter()
        .flat_map(|r| r.given_back())
        .map(str::to_owned)
        .collect();
    let released: usize = results.iter().map(|r| r.members().len()).sum();
    let failed: usize = results.iter().map(|r| r.failed()).sum();
    story.metrics.add(metrics::RELEASED, released as f64);
    story.metrics.add(metrics::RELEASE_FAILED, failed as f64);
    story.summary.member = given_back.first().cloned();
    let reasons: Vec<String> = results
        .iter()
        .map(|r| r.outcome(pool).unwrap_or_else(|failure| failure))
        .collect();
    let reason = reasons.join("; ");
    if results.iter().any(|r| r.transient()) {
        warn!(%reason, "release unfinished; a retry or the sweep goes on");
        return story.retry(HandlerError::NotYet {
            instance: instance.clone(),
            reason,
        });
    }
    story.summary.outcome = Outcome::Released;
    story.summary.reason = Some(reason);
    Handled {
        result: Ok(story.summary),
        metrics: vec![story.metrics],
    }
}

/// An AWS error stopped the story: counted (for a start), left to the sweep, and returned to
/// Lambda when a redelivery may get past it.
fn not_pinned(mut story: Story, change: &StateChange, err: AwsError) -> Handled {
    // Only a start is a pin that did not happen; a stop or a termination read in vain is not.
    if matches!(change.state, RunState::Pending | RunState::Running) {
        story.metrics.add(metrics::NOT_PINNED, 1.0);
    }
    if err.is_transient() {
        let error = HandlerError::NotYet {
            instance: change.instance.clone(),
            reason: err.to_string(),
        };
        return story.retry(error);
    }
    error!(error = %err, "nothing pinned; the sweep tries again");
    story.summary.outcome = Outcome::NotPinned;
    story.summary.reason = Some(err.to_string());
    Handled {
        result: Ok(story.summary),
        metrics: vec![story.metrics],
    }
}

impl Story {
    /// The story of an instance without a group.
    fn of_instance(instance: &InstanceId, state: &RunState) -> Self {
        Self {
            summary: Summary {
                instance: Some(instance.clone()),
                ec2_state: Some(state.to_string()),
                ..Summary::new(Outcome::Ignored)
            },
            metrics: Default::default(),
        }
    }
}
