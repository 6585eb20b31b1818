//! A launch, top to bottom: check the event against Auto Scaling, claim a member of the pool,
//! record the lease, and complete the action once.

use tokio::time::Instant;
use tracing::{Span, error, info, warn};

use super::claim::{Budget, Claim, Pinning, Subject};
use super::outcome::{Ending, HandlerError, Outcome, Summary};
use super::{Deadline, Pinhook};
use crate::aws::{AutoScalingApi, AwsError, Ec2Api, EniFilter, ErrorKind};
use crate::config::{HOLDER_TAG, HookConfig, MetadataError, Pin};
use crate::decide::{self, Verdict};
use crate::event::LifecycleAction;
use crate::member::{EipKind, EniKind, MemberKind};
use crate::metrics::{self, Metrics};
use crate::model::{InstanceId, LifecycleResult};

impl<A: AutoScalingApi, E: Ec2Api> Pinhook<A, E> {
    /// A launch action of one of pinhook's hooks.
    pub(super) async fn launch(
        &self,
        action: &LifecycleAction,
        config: Result<HookConfig, MetadataError>,
        metadata: Option<&str>,
        deadline: Deadline,
        metrics: &mut Metrics,
    ) -> Result<Summary, HandlerError> {
        let mut summary = Summary::about(action, Outcome::Stale);
        let ending = match config {
            Ok(config) => {
                summary.pool = Some(config.pool.clone());
                self.pin(action, &config, deadline, metrics, &mut summary)
                    .await?
            }
            Err(err) => self.refuse(action, err, metadata, metrics).await?,
        };
        summary.availability_zone = metrics.availability_zone.clone();
        self.finish(&action.action_ref(), deadline, summary, ending)
            .await
    }

    /// pinhook's hook with metadata it cannot use: the failure outcome, so the instance never
    /// waits for the hook's timeout.
    async fn refuse(
        &self,
        action: &LifecycleAction,
        err: MetadataError,
        metadata: Option<&str>,
        metrics: &mut Metrics,
    ) -> Result<Ending, HandlerError> {
        error!(error = %err, "bad hook metadata");
        Ok(
            match decide::check(action, self.describe(action).await?.as_ref()) {
                Verdict::Stale { reason } => Ending::Stale(reason),
                // Nothing is pinned in the warm pool, so the metadata does not matter yet.
                Verdict::EnterWarmPool => Ending::Complete {
                    result: LifecycleResult::Continue,
                    reason: format!(
                        "launching into the warm pool; the hook metadata must be fixed before it leaves: {err}"
                    ),
                },
                Verdict::Pin { .. } | Verdict::Release => {
                    metrics.add(metrics::FAILED_ACTIONS, 1.0);
                    Ending::Complete {
                        result: HookConfig::on_failure_lenient(metadata),
                        reason: err.to_string(),
                    }
                }
            },
        )
    }

    /// Steps 1 to 5, within the time left once the completion's reserve is kept back.
    async fn pin(
        &self,
        action: &LifecycleAction,
        config: &HookConfig,
        deadline: Deadline,
        metrics: &mut Metrics,
        summary: &mut Summary,
    ) -> Result<Ending, HandlerError> {
        let started = Instant::now();
        let budget = Budget::until(deadline.keeping(self.settings.completion_reserve));
        let on = self.binding(&config.pool, &action.instance);
        let pinning = async {
            match config.pin {
                Pin::Eni { device_index } => {
                    let kind = EniKind::new(on, device_index);
                    self.pin_with(action, kind, None, &budget, metrics).await
                }
                Pin::Eip {
                    interface,
                    takeover,
                } => {
                    let kind = EipKind::new(on, interface);
                    self.pin_with(action, kind, Some(takeover), &budget, metrics)
                        .await
                }
            }
        };
        let pinning = match tokio::time::timeout_at(budget.end, pinning).await {
            Ok(pinning) => pinning,
            // Whatever was under way is dropped. A claim sent but not settled may still land:
            // the member is then attached or associated to the instance without lease tags,
            // where the instance's release (or the sweep) finds it.
            Err(_) => Ok(Pinning::NotPinned(match budget.in_flight() {
                Some(member) => format!(
                    "the function's deadline came while claiming {member}; if that claim lands after all, {member} stays with the instance without lease tags, where its release finds it"
                ),
                None => "the function's deadline came before a member could be pinned".into(),
            })),
        };
        let on_failure = config.on_failure;
        Ok(match pinning {
            Ok(Pinning::Stale(reason)) => Ending::Stale(reason),
            Ok(Pinning::EnterWarmPool) => {
                info!(
                    "instance is launching into the warm pool; it is pinned when it leaves it for the group"
                );
                Ending::Complete {
                    result: LifecycleResult::Continue,
                    reason: "launching into the warm pool".into(),
                }
            }
            Ok(Pinning::Pinned {
                member,
                note,
                booted,
            }) => {
                Span::current().record("member", member.id.as_str());
                metrics.add(metrics::PINNED, 1.0);
                metrics.set(
                    metrics::TIME_TO_PIN,
                    started.elapsed().as_millis() as f64,
                    "Milliseconds",
                );
                let mut reason = note.unwrap_or_else(|| format!("pinned {}", member.id));
                if !booted.is_zero() {
                    metrics.set(
                        metrics::BOOT_WAIT,
                        booted.as_millis() as f64,
                        "Milliseconds",
                    );
                    reason.push_str(&format!(
                        ", after waiting {:.1} s for the instance to boot",
                        booted.as_secs_f64()
                    ));
                }
                info!(
                    mac_address = member.mac_address.as_deref(),
                    public_ip = member.public_ip.as_deref(),
                    "pinned"
                );
                summary.member = Some(member.id);
                summary.mac_address = member.mac_address;
                summary.private_ip = member.private_ip;
                summary.public_ip = member.public_ip;
                Ending::Complete {
                    result: LifecycleResult::Continue,
                    reason,
                }
            }
            Ok(Pinning::NotPinned(reason)) => {
                warn!(%reason, %on_failure, "nothing pinned");
                metrics.add(metrics::FAILED_ACTIONS, 1.0);
                Ending::Complete {
                    result: on_failure,
                    reason,
                }
            }
            Err(err) if err.is(ErrorKind::Transient) => return Err(HandlerError::Transient(err)),
            Err(err) => {
                error!(error = %err, %on_failure, "nothing pinned");
                metrics.add(metrics::FAILED_ACTIONS, 1.0);
                Ending::Complete {
                    result: on_failure,
                    reason: err.to_string(),
                }
            }
        })
    }

    /// Step 1's check, read concurrently with the pool (and the instance's interfaces, where the
    /// kind needs them); then the claim and the lease.
    async fn pin_with<K: MemberKind>(
        &self,
        action: &LifecycleAction,
        kind: K,
        takeover: Option<bool>,
        budget: &Budget,
        metrics: &mut Metrics,
    ) -> Result<Pinning, AwsError> {
        let instance = &action.instance;
        let attached_to = EniFilter::AttachedTo(instance.clone());
        let interfaces = async {
            match K::READS_INTERFACES {
                true => self.ec2.network_interfaces(&attached_to).await,
                false => Ok(Vec::new()),
            }
        };
        let (described, interfaces, members) =
            tokio::join!(self.describe_raw(action), interfaces, kind.list());
        let zone = match decide::check(action, described?.as_ref()) {
            Verdict::Pin { availability_zone } => availability_zone,
            Verdict::EnterWarmPool => return Ok(Pinning::EnterWarmPool),
            Verdict::Stale { reason } => return Ok(Pinning::Stale(reason)),
            Verdict::Release => {
                return Ok(Pinning::Stale("the instance is leaving the group".into()));
            }
        };
        metrics.availability_zone = Some(zone.clone());
        let claim = Claim::new(
            self,
            Subject::of(action),
            kind,
            zone,
            takeover,
            budget,
            metrics,
        );
        claim.run_and_lease(members?, interfaces?).await
    }

    /// Step 5: the holder tag on the member and the lease tag on the instance. The attachment
    /// or association is what pins; the tags only record it, so a refusal is reported in the
    /// summary rather than failing the launch. A transient failure is returned for redelivery.
    pub(super) async fn record_lease(
        &self,
        member: &str,
        instance: &InstanceId,
        instance_tag: &str,
        note: Option<String>,
    ) -> Result<Option<String>, AwsError> {
        let (holder, lease) = tokio::join!(
            self.ec2.create_tag(member, HOLDER_TAG, instance.as_str()),
            self.ec2.create_tag(instance.as_str(), instance_tag, member),
        );
        let mut note = note;
        for result in [holder, lease] {
            match result {
                Ok(()) => {}
                Err(err) if err.is(ErrorKind::Transient) => return Err(err),
                Err(err) => {
                    error!(error = %err, "could not record the lease tags; the member is pinned regardless");
                    note = Some(format!(
                        "pinned {member}, but the lease tags were not written: {err}"
                    ));
                }
            }
        }
        Ok(note)
    }
}
