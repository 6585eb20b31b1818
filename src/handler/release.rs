//! A termination (or a return to the warm pool), top to bottom: check the event against Auto
//! Scaling, give the instance's members back to the pool, and complete the action once, with
//! CONTINUE whatever happened: termination is never blocked, and what could not be released is
//! logged, counted and left to the sweep.

use tokio::time::Instant;
use tracing::{Span, error, info, warn};

use super::outcome::{Ending, HandlerError, Outcome, Summary};
use super::{Deadline, Pinhook};
use crate::aws::{AutoScalingApi, AwsError, Ec2Api};
use crate::config::{HOLDER_TAG, HookConfig, MetadataError, Pin, PoolName};
use crate::decide::{self, Release, Verdict};
use crate::event::LifecycleAction;
use crate::member::{EipKind, EniKind, MemberKind};
use crate::metrics::{self, Metrics};
use crate::model::{LifecycleResult, Location, PoolMember};

/// What the releases of one termination did.
#[derive(Debug, Default)]
pub(super) struct Released {
    members: Vec<String>,
    failures: Vec<String>,
}

impl Released {
    fn record(&mut self, id: &str, result: Result<(), String>) {
        match result {
            Ok(()) => {
                info!(member = id, "released");
                self.members.push(id.to_owned());
            }
            Err(reason) => {
                error!(member = id, %reason, "release failed; the sweep will retry it");
                self.failures.push(format!("{id}: {reason}"));
            }
        }
    }

    /// For the sweep: what was released, or what failed.
    pub(super) fn outcome(&self, pool: &PoolName) -> Result<String, String> {
        match self.failures.is_empty() {
            true => Ok(self.reason(pool)),
            false => Err(self.reason(pool)),
        }
    }

    fn reason(&self, pool: &PoolName) -> String {
        match (self.members.is_empty(), self.failures.is_empty()) {
            (true, true) => format!("the instance held no member of pool {pool:?}"),
            (_, true) => format!("released {}", self.members.join(", ")),
            (_, false) => format!("release failed for {}", self.failures.join("; ")),
        }
    }
}

/// How the check and the releases went.
enum Releasing {
    Done(Released),
    /// The event does not match Auto Scaling: nothing was released.
    Stale(String),
}

impl<A: AutoScalingApi, E: Ec2Api> Pinhook<A, E> {
    /// A terminate action of one of pinhook's hooks.
    pub(super) async fn terminate(
        &self,
        action: &LifecycleAction,
        config: Result<HookConfig, MetadataError>,
        metadata: Option<&str>,
        deadline: Deadline,
        metrics: &mut Metrics,
    ) -> Result<Summary, HandlerError> {
        // With metadata too broken to say what the hook pins, release both kinds: each release
        // is limited to members of the named pool held by this instance.
        let (pool, pin) = match &config {
            Ok(config) => (Some(config.pool.clone()), Some(config.pin)),
            Err(err) => {
                error!(error = %err, "bad hook metadata; releasing by the pool it names, if any");
                (HookConfig::pool_lenient(metadata), None)
            }
        };
        let mut summary = Summary::about(action, Outcome::Continue);
        summary.pool = pool.clone();
        let end = deadline.keeping(self.settings.completion_reserve);
        let releasing = self.release(action, pool.as_ref(), pin, end, metrics);
        let ending = match tokio::time::timeout_at(end, releasing).await {
            Ok(Ok(Releasing::Stale(reason))) => Ending::Stale(reason),
            Ok(Ok(Releasing::Done(released))) => {
                metrics.add(metrics::RELEASED, released.members.len() as f64);
                metrics.add(metrics::RELEASE_FAILED, released.failures.len() as f64);
                summary.member = released.members.first().cloned();
                let reason = match (&pool, config) {
                    (Some(pool), _) => released.reason(pool),
                    (None, Err(err)) => {
                        metrics.add(metrics::RELEASE_FAILED, 1.0);
                        format!("nothing released: {err}")
                    }
                    (None, Ok(_)) => "nothing released".into(),
                };
                Ending::Complete {
                    result: LifecycleResult::Continue,
                    reason,
                }
            }
            Ok(Err(err)) => return Err(err),
            Err(_) => {
                metrics.add(metrics::RELEASE_FAILED, 1.0);
                warn!("the release did not finish before the function's deadline");
                Ending::Complete {
                    result: LifecycleResult::Continue,
                    reason: "the release did not finish before the function's deadline; what is left is found again by the instance's release or the sweep".into(),
                }
            }
        };
        summary.availability_zone = metrics.availability_zone.clone();
        self.finish(&action.action_ref(), deadline, summary, ending)
            .await
    }

    /// The check and the releases, until `until`.
    async fn release(
        &self,
        action: &LifecycleAction,
        pool: Option<&PoolName>,
        pin: Option<Pin>,
        until: Instant,
        metrics: &mut Metrics,
    ) -> Result<Releasing, HandlerError> {
        let instance = &action.instance;
        // A release needs no device index: the ones given only matter for claims.
        let (enis, eips) = match pin {
            Some(Pin::Eni { device_index }) => (Some(device_index), None),
            Some(Pin::Eip { interface, .. }) => (None, Some(interface)),
            None => (Some(1), Some(0)),
        };
        let on = pool.map(|pool| self.binding(pool, instance));
        let eni = on.zip(enis).map(|(on, index)| EniKind::new(on, index));
        let eip = on.zip(eips).map(|(on, index)| EipKind::new(on, index));
        // One read of each pool beside the check: a member's attachment or association, and its
        // holder tag, say whether this instance holds it.
        let (described, listed_enis, listed_eips) = tokio::join!(
            self.describe(action),
            maybe(eni.as_ref().map(MemberKind::list)),
            maybe(eip.as_ref().map(MemberKind::list)),
        );
        let described = described?;
        if let Some(d) = &described {
            metrics.availability_zone =
                Some(d.availability_zone.clone()).filter(|az| !az.is_empty());
        }
        match decide::check(action, described.as_ref()) {
            Verdict::Release => {}
            Verdict::Stale { reason } => return Ok(Releasing::Stale(reason)),
            Verdict::Pin { .. } | Verdict::EnterWarmPool => {
                return Ok(Releasing::Stale(
                    "the instance is launching, not leaving".into(),
                ));
            }
        }
        // An instance that terminates takes its own tags with it; one that returns to the warm
        // pool keeps them, so its lease tag is cleared.
        let lease_tag = action.destination == Some(Location::WarmPool);
        let mut released = Released::default();
        if let (Some(kind), Some(listed)) = (eni, listed_enis) {
            self.release_kind(&kind, listed, lease_tag, until, &mut released)
                .await;
        }
        if let (Some(kind), Some(listed)) = (eip, listed_eips) {
            self.release_kind(&kind, listed, lease_tag, until, &mut released)
                .await;
        }
        Ok(Releasing::Done(released))
    }

    /// Releases what the instance holds of one kind and clears the holder tags that still name
    /// it; with `lease_tag`, the lease tag on the instance too.
    pub(super) async fn release_kind<K: MemberKind>(
        &self,
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
                let reason = format!("listing the pool failed: {err}");
                released.record(pool.as_str(), Err(reason));
                return;
            }
        };
        for release in decide::releases(&members, pool.as_str(), instance) {
            let (member, free) = match release {
                Release::Free(member) => (member, true),
                Release::ClearTag(member) => (member, false),
            };
            Span::current().record("member", member.member_id());
            let mut result = match free {
                true => kind.release(member, instance, until).await,
                false => Ok(()),
            };
            if result.is_ok() {
                result = self
                    .ec2
                    .delete_tag(member.member_id(), HOLDER_TAG, Some(instance.as_str()))
                    .await
                    .map_err(|err| err.to_string());
            }
            released.record(member.member_id(), result);
        }
        if !lease_tag {
            return;
        }
        if let Err(err) = self
            .ec2
            .delete_tag(instance.as_str(), K::INSTANCE_TAG, None)
            .await
        {
            warn!(error = %err, tag = K::INSTANCE_TAG, "could not clear the instance's lease tag");
        }
    }
}

/// Awaits the future if there is one.
async fn maybe<F: std::future::Future>(future: Option<F>) -> Option<F::Output> {
    match future {
        Some(future) => Some(future.await),
        None => None,
    }
}
