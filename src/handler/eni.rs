//! ENI mode: claim a pool ENI for a launching instance, and give it back when the instance
//! leaves.

use tokio::time::Instant;
use tracing::{error, info, warn};

use super::{Deadline, Member, Pinhook, Pinning};
use crate::aws::{AutoScalingApi, AwsError, Ec2Api, EniFilter, ErrorKind};
use crate::config::{HOLDER_TAG, INSTANCE_ENI_TAG, PoolName};
use crate::decide::{self, Release};
use crate::event::LifecycleAction;
use crate::metrics::{self, Metrics};
use crate::model::{AttachmentStatus, Eni, EniId, InstanceId};

impl<A: AutoScalingApi, E: Ec2Api> Pinhook<A, E> {
    /// Steps 1 to 5 for an ENI: check, idempotency, candidates, claim, wait, lease tags.
    pub(super) async fn pin_eni(
        &self,
        action: &LifecycleAction,
        pool: &PoolName,
        device_index: i32,
        deadline: Deadline,
        metrics: &mut Metrics,
    ) -> Result<Pinning, AwsError> {
        let instance = &action.instance;
        let by_instance = EniFilter::AttachedTo(instance.clone());
        let by_pool = EniFilter::Pool(pool.clone());
        // Independent reads, concurrently; nothing changes before the check has passed.
        let (described, attached, members) = tokio::join!(
            self.describe_raw(action),
            self.ec2.network_interfaces(&by_instance),
            self.ec2.network_interfaces(&by_pool),
        );
        let zone = match super::zone_to_pin(action, described?.as_ref()) {
            Ok(zone) => zone,
            Err(end) => return Ok(end),
        };
        metrics.availability_zone = Some(zone.clone());
        if let Some(held) = decide::held_eni(&attached?, pool.as_str(), instance) {
            info!(member = %held.id, "the instance already holds a member of the pool");
            return self
                .settle_eni(action, &held.id, deadline, Some("already pinned"))
                .await;
        }
        let mut members = members?;
        let mut waiting = super::Waiting::default();
        loop {
            let candidates = decide::eni_candidates(&members, pool.as_str(), &zone, instance);
            metrics.set(metrics::FREE_MEMBERS, candidates.len() as f64, "Count");
            for candidate in candidates.into_iter().take(super::CLAIMS_PER_PASS) {
                if deadline.remaining() <= self.settings.completion_reserve {
                    return Ok(Pinning::NotPinned(
                        "the function ran out of time before a member could be claimed".into(),
                    ));
                }
                match self
                    .ec2
                    .attach_network_interface(&candidate.id, instance, device_index)
                    .await
                {
                    Ok(_) => return self.settle_eni(action, &candidate.id, deadline, None).await,
                    Err(err)
                        if matches!(
                            err.kind,
                            ErrorKind::InUse | ErrorKind::NotFound | ErrorKind::ZoneMismatch
                        ) =>
                    {
                        metrics.add(metrics::CLAIM_CONFLICTS, 1.0);
                        info!(member = %candidate.id, error = %err, "member taken meanwhile; trying the next one");
                    }
                    Err(err) if err.is(ErrorKind::DeviceIndexTaken) => {
                        return self
                            .device_index_taken(action, pool, device_index, deadline)
                            .await;
                    }
                    Err(err) => return Err(err),
                }
            }
            // No candidate won: decide on a fresh read of the pool.
            members = self.ec2.network_interfaces(&by_pool).await?;
            if let Some(won) = self
                .settle_concurrent_win(action, &members, pool, deadline)
                .await
            {
                return won;
            }
            let holdings = decide::eni_holdings(&members, pool.as_str(), &zone);
            let states = self.holder_states(&holdings).await?;
            let where_ = format!("pool {pool:?} in {zone}");
            let exhaustion = decide::exhaustion(&holdings, &states);
            let end = waiting
                .after_pass(
                    self,
                    action,
                    deadline,
                    exhaustion,
                    &where_,
                    metrics,
                    |held| match held {
                        None => format!("pool {pool:?} has no member in {zone}"),
                        Some(held) => format!(
                            "pool {pool:?} is exhausted in {zone}: all {held} members are held"
                        ),
                    },
                )
                .await?;
            if let Some(end) = end {
                return Ok(end);
            }
        }
    }

    /// The instance already has an interface at the device index: either a concurrent delivery
    /// of this same event won, or something else sits there.
    async fn device_index_taken(
        &self,
        action: &LifecycleAction,
        pool: &PoolName,
        device_index: i32,
        deadline: Deadline,
    ) -> Result<Pinning, AwsError> {
        let instance = &action.instance;
        let attached = self
            .ec2
            .network_interfaces(&EniFilter::AttachedTo(instance.clone()))
            .await?;
        if let Some(won) = self
            .settle_concurrent_win(action, &attached, pool, deadline)
            .await
        {
            return won;
        }
        let occupant = attached
            .iter()
            .find(|e| e.attachment.as_ref().and_then(|a| a.device_index) == Some(device_index))
            .map_or_else(|| "another interface".to_owned(), |e| e.id.to_string());
        Ok(Pinning::NotPinned(format!(
            "device index {device_index} of {instance} is taken by {occupant}, which is not in pool {pool:?}; set \"device_index\" in the hook metadata to a free index"
        )))
    }

    /// When `enis` shows a concurrent delivery of this same event already pinned a pool member
    /// to the instance, settles on that member instead of claiming another.
    async fn settle_concurrent_win(
        &self,
        action: &LifecycleAction,
        enis: &[Eni],
        pool: &PoolName,
        deadline: Deadline,
    ) -> Option<Result<Pinning, AwsError>> {
        let held = decide::held_eni(enis, pool.as_str(), &action.instance)?;
        Some(
            self.settle_eni(action, &held.id, deadline, Some(super::CONCURRENT_WIN))
                .await,
        )
    }

    /// Waits until the ENI is attached to the instance, then records the lease as tags.
    async fn settle_eni(
        &self,
        action: &LifecycleAction,
        eni: &EniId,
        deadline: Deadline,
        note: Option<&str>,
    ) -> Result<Pinning, AwsError> {
        let instance = &action.instance;
        let attached = match self.wait_for_attachment(eni, instance, deadline).await? {
            Ok(attached) => attached,
            Err(reason) => {
                self.roll_back(eni, instance).await;
                return Ok(Pinning::NotPinned(reason));
            }
        };
        let note = self
            .record_lease(eni.as_str(), instance, INSTANCE_ENI_TAG, note)
            .await?;
        let member = Member {
            id: eni.to_string(),
            mac_address: attached.mac_address,
            private_ip: attached.private_ip,
            public_ip: attached.public_ip,
        };
        Ok(Pinning::Pinned(Box::new(member), note))
    }

    /// Detaches an ENI whose attachment never settled, so an instance completed with
    /// `on_failure` = continue does not keep a half-attached member without a lease. Best
    /// effort: an abandoned instance releases it anyway when it terminates.
    async fn roll_back(&self, eni: &EniId, instance: &InstanceId) {
        let attachment = match self.ec2.network_interface(eni).await {
            Ok(Some(current)) if current.attachment_instance() == Some(instance) => {
                current.attachment.and_then(|a| a.id)
            }
            _ => None,
        };
        if let Some(attachment) = attachment {
            match self.ec2.detach_network_interface(&attachment).await {
                Ok(()) => {
                    info!(member = %eni, "detached the member whose attachment never settled")
                }
                Err(err) => {
                    warn!(member = %eni, error = %err, "could not detach the member whose attachment never settled")
                }
            }
        }
    }

    /// Polls until the ENI's attachment to the instance is `attached`. The inner error says why
    /// it never got there.
    async fn wait_for_attachment(
        &self,
        eni: &EniId,
        instance: &InstanceId,
        deadline: Deadline,
    ) -> Result<Result<Eni, String>, AwsError> {
        let give_up = self.wait_limit(deadline);
        loop {
            let Some(current) = self.ec2.network_interface(eni).await? else {
                return Ok(Err(format!("{eni} disappeared while attaching")));
            };
            match &current.attachment {
                Some(a)
                    if a.instance.as_ref() == Some(instance)
                        && a.status == AttachmentStatus::Attached =>
                {
                    return Ok(Ok(current));
                }
                Some(a) if a.instance.as_ref().is_some_and(|i| i != instance) => {
                    return Ok(Err(format!(
                        "{eni} was attached to {} instead",
                        a.instance.as_ref().map_or("-", |i| i.as_str())
                    )));
                }
                _ => {}
            }
            if Instant::now() + self.settings.poll_interval > give_up {
                return Ok(Err(format!(
                    "{eni} did not reach the attached state in time"
                )));
            }
            tokio::time::sleep(self.settings.poll_interval).await;
        }
    }

    /// Detaches a pool ENI from a leaving instance and waits until it is available, then
    /// clears its holder tag (only while the tag still names this instance).
    pub(super) async fn release_eni(
        &self,
        release: Release<'_>,
        instance: &InstanceId,
        deadline: Deadline,
    ) -> Result<(), String> {
        let eni = match release {
            Release::Detach(eni) => {
                let Some(attachment) = eni.attachment.as_ref().and_then(|a| a.id.as_ref()) else {
                    return Err("AWS described the attachment without an attachment id".into());
                };
                match self.ec2.detach_network_interface(attachment).await {
                    Ok(()) => {}
                    Err(err) if err.is(ErrorKind::NotFound) => {}
                    Err(err) => return Err(err.to_string()),
                }
                self.wait_until_detached(&eni.id, instance, deadline)
                    .await?;
                eni
            }
            Release::ClearTag(eni) => eni,
        };
        self.ec2
            .delete_tag(eni.id.as_str(), HOLDER_TAG, Some(instance.as_str()))
            .await
            .map_err(|err| err.to_string())
    }

    async fn wait_until_detached(
        &self,
        eni: &EniId,
        instance: &InstanceId,
        deadline: Deadline,
    ) -> Result<(), String> {
        let give_up = self.wait_limit(deadline);
        loop {
            match self.ec2.network_interface(eni).await {
                Ok(None) => return Ok(()),
                Ok(Some(current)) if current.attachment_instance() != Some(instance) => {
                    return Ok(());
                }
                Ok(Some(_)) => {}
                Err(err) if err.is(ErrorKind::Transient) => {
                    warn!(error = %err, "could not read the interface; waiting on");
                }
                Err(err) => {
                    error!(error = %err, "could not read the interface");
                    return Err(err.to_string());
                }
            }
            if Instant::now() + self.settings.poll_interval > give_up {
                return Err(format!("{eni} was still attached when the wait ran out"));
            }
            tokio::time::sleep(self.settings.poll_interval).await;
        }
    }
}
