//! A termination (or a return to the warm pool), top to bottom: check the event against Auto
//! Scaling, give the instance's members back to the pool, and complete the action once, with
//! CONTINUE whatever happened: termination is never blocked, and what could not be released is
//! logged, counted and left to the sweep.

use std::future::Future;

use tokio::time::Instant;
use tracing::{Span, error, info, warn};

use super::check;
use super::outcome::{Ending, Handled, Story};
use crate::aws::{AutoScalingApi, AwsError, Ec2Api, SplitTransient, Transient};
use crate::config::{DeviceIndex, HOLDER_TAG, HookMetadata, Pin, PoolName};
use crate::context::{CallWindow, Ctx, Deadline};
use crate::decide::{self, Checked, Release, Stale};
use crate::event::LifecycleAction;
use crate::member::{Binding, EipKind, EniKind, MemberKind, NotReleased};
use crate::metrics;
use crate::model::{InstanceId, Location, PoolMember};
use futures_util::future::join_all;

/// What the releases of one instance did, and the bookkeeping left to do.
#[derive(Debug, Default)]
pub(crate) struct Released {
    members: Vec<String>,
    failures: Vec<String>,
    /// The instance's Availability Zone, when Auto Scaling said.
    zone: Option<String>,
    /// Members whose holder tag still names the instance, to clear.
    holder_tags: Vec<String>,
    /// The instance's own lease tags to clear (it returns to the warm pool, keeping its tags).
    lease_tags: Vec<&'static str>,
    /// A failure was transient.
    transient: bool,
}

impl Released {
    fn record(&mut self, id: &str, result: Result<(), NotReleased>) {
        match result {
            Ok(()) => {
                info!(member = id, "released");
                self.members.push(id.to_owned());
            }
            Err(reason) => {
                error!(member = id, %reason, "release failed; the sweep will retry it");
                self.transient |= matches!(reason, NotReleased::Transient(_));
                self.failures.push(format!("{id}: {reason}"));
            }
        }
    }

    /// Whether a release failed for a reason a later try may get past (AWS's transient
    /// errors, the time).
    pub(crate) fn transient(&self) -> bool {
        self.transient
    }

    /// The members released.
    pub(crate) fn members(&self) -> &[String] {
        &self.members
    }

    /// How many releases failed.
    pub(crate) fn failed(&self) -> usize {
        self.failures.len()
    }

    /// What was released, or what failed.
    pub(crate) fn outcome(&self, pool: &PoolName) -> Result<String, String> {
        match self.failures.is_empty() {
            true => Ok(self.reason(pool)),
            false => Err(self.reason(pool)),
        }
    }

    /// Members already free whose holder tag still named the instance (EC2 let go of them with
    /// the instance): only their tag was cleared.
    fn freed(&self) -> Vec<&str> {
        self.holder_tags
            .iter()
            .filter(|m| !self.members.contains(m))
            .map(String::as_str)
            .collect()
    }

    /// Every member the instance gave back: released, or freed by EC2 and untagged.
    pub(crate) fn given_back(&self) -> Vec<&str> {
        let mut all: Vec<&str> = self.members.iter().map(String::as_str).collect();
        all.extend(self.freed());
        all
    }

    fn reason(&self, pool: &PoolName) -> String {
        let freed = self.freed();
        match (self.members.is_empty(), self.failures.is_empty()) {
            (true, true) if !freed.is_empty() => format!(
                "{} already free (EC2 let go of it with the instance): holder tag cleared",
                freed.join(", ")
            ),
            (true, true) => format!("the instance held no member of pool {pool:?}"),
            (_, true) => format!("released {}", self.members.join(", ")),
            (_, false) => format!("release failed for {}", self.failures.join("; ")),
        }
    }
}

/// A terminate action of one of pinhook's hooks (with usable metadata or not).
pub(super) async fn terminate<A: AutoScalingApi, E: Ec2Api>(
    ctx: Ctx<'_, A, E>,
    action: &LifecycleAction,
    hook: &HookMetadata,
    deadline: Deadline,
) -> Handled {
    // With metadata too broken to say what the hook pins, release both kinds: each release is
    // limited to members of the named pool held by this instance.
    let pin = match hook {
        HookMetadata::Pinhook(config) => Some(config.pin),
        HookMetadata::Unusable(unusable) => {
            error!(error = %unusable.error, "bad hook metadata; releasing by the pool it names, if any");
            None
        }
        HookMetadata::Foreign(_) => None,
    };
    let pool = hook.pool();
    let mut story = Story::of(action, pool);
    let until = deadline.keeping(ctx.settings.completion_reserve);
    let window = CallWindow {
        end: until,
        attempt: ctx.settings.attempt_timeout,
    };
    let releasing = window.bound(release(ctx, action, pool, pin, until));
    let (ending, released) = match tokio::time::timeout_at(until, releasing).await {
        // Termination is never blocked: what AWS's errors kept unfinished is completed all the
        // same, counted, and left to the instance's termination (which frees what it holds)
        // and the sweep (which clears the tags).
        Ok(Err(transient)) => {
            story.metrics.add(metrics::RELEASE_FAILED, 1.0);
            let reason = format!(
                "release unfinished ({transient}); the termination frees what the instance holds, and the sweep clears its tags"
            );
            (Ending::Done(reason), None)
        }
        Ok(Ok(Err(stale))) => (Ending::Stale(stale), None),
        Ok(Ok(Ok(released))) => {
            if let Some(zone) = &released.zone {
                story.in_zone(zone);
            }
            story
                .metrics
                .add(metrics::RELEASED, released.members.len() as f64);
            story
                .metrics
                .add(metrics::RELEASE_FAILED, released.failures.len() as f64);
            story.summary.member = released.members.first().cloned();
            let reason = match (pool, hook) {
                (Some(pool), _) => released.reason(pool),
                (None, HookMetadata::Unusable(unusable)) => {
                    story.metrics.add(metrics::RELEASE_FAILED, 1.0);
                    format!("nothing released: {}", unusable.error)
                }
                (None, _) => "nothing released".into(),
            };
            (Ending::Done(reason), Some(released))
        }
        Err(_) => {
            story.metrics.add(metrics::RELEASE_FAILED, 1.0);
            warn!("the release did not finish before the function's deadline");
            let reason = "release unfinished: the function's deadline came first; the termination frees what the instance holds, and the sweep clears its tags".into();
            (Ending::Done(reason), None)
        }
    };
    // The tags only record the lease: cleared beside the completion, in its round trip. The
    // holder tag is removed only while it still names this instance, so a new holder's stays.
    let clearing = async {
        match &released {
            Some(released) => {
                window
                    .bound(clear_tags(ctx, &action.instance, released))
                    .await
            }
            None => Vec::new(),
        }
    };
    let action_ref = action.action_ref();
    let (mut handled, tag_failures) =
        tokio::join!(story.end(ctx, &action_ref, deadline, ending), clearing);
    if let Some(metrics) = handled.metrics.first_mut() {
        metrics.add(metrics::RELEASE_FAILED, tag_failures.len() as f64);
    }
    handled
}

/// Clears the holder tags that still name the instance, and its lease tags where it keeps them,
/// concurrently; what could not be cleared, logged (the sweep clears it later).
async fn clear_tags<A, E: Ec2Api>(
    ctx: Ctx<'_, A, E>,
    instance: &InstanceId,
    released: &Released,
) -> Vec<String> {
    let holders = released.holder_tags.iter().map(|member| async move {
        let cleared = ctx
            .ec2
            .delete_tag(member, HOLDER_TAG, Some(instance.as_str()))
            .await;
        cleared.map_err(|err| format!("{member}: {err}"))
    });
    let leases = released.lease_tags.iter().map(|tag| async move {
        let cleared = ctx.ec2.delete_tag(instance.as_str(), tag, None).await;
        cleared.map_err(|err| format!("{instance} {tag}: {err}"))
    });
    let (holders, leases) = tokio::join!(join_all(holders), join_all(leases));
    let failures: Vec<String> = holders
        .into_iter()
        .chain(leases)
        .filter_map(Result::err)
        .collect();
    for failure in &failures {
        warn!(%failure, "could not clear a lease tag; the sweep clears it");
    }
    failures
}

/// The check and the releases, until `until`.
async fn release<A: AutoScalingApi, E: Ec2Api>(
    ctx: Ctx<'_, A, E>,
    action: &LifecycleAction,
    pool: Option<&PoolName>,
    pin: Option<Pin>,
    until: Instant,
) -> Result<Result<Released, Stale>, Transient> {
    let instance = &action.instance;
    // A release needs no device index: the ones given only matter for claims.
    let (enis, eips) = match pin {
        Some(Pin::Eni { device_index }) => (Some(device_index), None),
        Some(Pin::Eip { interface, .. }) => (None, Some(interface)),
        None => (Some(DeviceIndex::PRIMARY), Some(DeviceIndex::PRIMARY)),
    };
    let on = pool.map(|pool| Binding::new(ctx, pool, instance));
    let eni = on.zip(enis).map(|(on, index)| EniKind::new(on, index));
    let eip = on.zip(eips).map(|(on, index)| EipKind::new(on, index));
    // One read of each pool beside the check: a member's attachment or association, and its
    // holder tag, say whether this instance holds it.
    let (checked, listed_enis, listed_eips) = tokio::join!(
        check::converged(ctx, action),
        maybe(eni.as_ref().map(MemberKind::held)),
        maybe(eip.as_ref().map(MemberKind::held)),
    );
    let mut released = Released::default();
    match checked.split_transient()? {
        Ok(Checked::Release { availability_zone }) => released.zone = Some(availability_zone),
        Ok(Checked::Stale(stale)) => return Ok(Err(stale)),
        Ok(Checked::Pin { .. } | Checked::EnterWarmPool | Checked::Behind(_)) => {
            return Ok(Err(Stale("the instance is launching, not leaving".into())));
        }
        // Released unchecked: termination is never blocked, and a release touches only what
        // this instance holds of the pool.
        Err(err) => {
            error!(error = %err, "could not check the instance with Auto Scaling; releasing as the event says");
        }
    }
    // An instance that terminates takes its own tags with it; one that returns to the warm
    // pool keeps them, so its lease tag is cleared.
    let lease_tag = action.destination == Some(Location::WarmPool);
    if let (Some(kind), Some(listed)) = (eni, listed_enis) {
        release_kind(&kind, listed, lease_tag, until, &mut released).await;
    }
    if let (Some(kind), Some(listed)) = (eip, listed_eips) {
        release_kind(&kind, listed, lease_tag, until, &mut released).await;
    }
    Ok(Ok(released))
}

/// Releases everything of the pool the kind's instance holds and clears the holder tags (and,
/// with `lease_tag`, the instance's lease tag; a terminated instance takes its tags with it):
/// a holder's release, as the sweep repairs it and an instance without a group gives back.
pub(crate) async fn release_holder<A, E: Ec2Api, K: MemberKind>(
    ctx: Ctx<'_, A, E>,
    kind: K,
    until: Instant,
    lease_tag: bool,
) -> Released {
    let mut released = Released::default();
    let listed = kind.held().await;
    release_kind(&kind, listed, lease_tag, until, &mut released).await;
    let failures = clear_tags(ctx, kind.instance(), &released).await;
    released.failures.extend(failures);
    released
}

/// Releases what the instance holds of one kind, and notes the holder tags that still name it
/// (and, with `lease_tag`, its lease tag) for clearing.
async fn release_kind<K: MemberKind>(
    kind: &K,
    listed: Result<Vec<K::Member>, AwsError>,
    lease_tag: bool,
    until: Instant,
    released: &mut Released,
) {
    let (pool, instance) = (kind.pool(), kind.instance());
    let members = match listed {
        Ok(members) => members,
        Err(err) => {
            released.record(pool.as_str(), Err(NotReleased::from(err)));
            return;
        }
    };
    for release in decide::releases(&members, pool.as_str(), instance) {
        let (member, free) = match release {
            Release::Free(member) => (member, true),
            Release::ClearTag(member) => (member, false),
        };
        Span::current().record("member", member.member_id());
        let result = match free {
            true => kind.release(member, instance, until).await,
            false => Ok(()),
        };
        if result.is_ok() {
            released.holder_tags.push(member.member_id().to_owned());
        }
        if free {
            released.record(member.member_id(), result);
        }
    }
    if lease_tag {
        released.lease_tags.push(K::INSTANCE_TAG);
    }
}

/// Awaits the future if there is one.
async fn maybe<F: Future>(future: Option<F>) -> Option<F::Output> {
    match future {
        Some(future) => Some(future.await),
        None => None,
    }
}
