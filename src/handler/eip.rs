//! Elastic IP mode: associate a pool address with a launching instance's interface, take it
//! over from a failed holder when the hook allows it, and disassociate it when the instance
//! leaves. The address always stays allocated, in the pool.

use tokio::time::Instant;
use tracing::info;

use super::{Deadline, Member, Pinhook, Pinning};
use crate::aws::{AddressFilter, AutoScalingApi, AwsError, Ec2Api, EniFilter, ErrorKind};
use crate::config::{HOLDER_TAG, INSTANCE_EIP_TAG, PoolName};
use crate::decide::{self, AddressRelease};
use crate::event::LifecycleAction;
use crate::metrics::{self, Metrics};
use crate::model::{Address, Eni, InstanceId};

impl<A: AutoScalingApi, E: Ec2Api> Pinhook<A, E> {
    /// Steps 1 to 5 for an Elastic IP.
    pub(super) async fn pin_eip(
        &self,
        action: &LifecycleAction,
        pool: &PoolName,
        interface: i32,
        takeover: bool,
        deadline: Deadline,
        metrics: &mut Metrics,
    ) -> Result<Pinning, AwsError> {
        let instance = &action.instance;
        let by_instance = EniFilter::AttachedTo(instance.clone());
        let by_pool = AddressFilter::Pool(pool.clone());
        let (described, attached, addresses) = tokio::join!(
            self.describe_raw(action),
            self.ec2.network_interfaces(&by_instance),
            self.ec2.addresses(&by_pool),
        );
        let zone = match super::zone_to_pin(action, described?.as_ref()) {
            Ok(zone) => zone,
            Err(end) => return Ok(end),
        };
        metrics.availability_zone = Some(zone);
        let attached = attached?;
        let mut addresses = addresses?;
        if let Some(held) = decide::held_address(&addresses, pool.as_str(), instance, &attached) {
            info!(member = %held.allocation, "the instance already holds an address of the pool");
            return self
                .settle_eip(action, held, None, Some("already pinned"))
                .await;
        }
        // The interface that receives the address; another hook may still be attaching it.
        let target = match self
            .wait_for_interface(instance, interface, attached, deadline)
            .await?
        {
            Ok(target) => target,
            Err(reason) => return Ok(Pinning::NotPinned(reason)),
        };
        if let Some(existing) = &target.elastic_ip {
            // AWS would silently move that address off the interface: never do it to an address
            // outside the pool.
            if let Some(held) = addresses
                .iter()
                .find(|a| &a.allocation == existing && a.in_pool(pool.as_str()))
            {
                return self
                    .settle_eip(action, held, Some(&target), Some("already pinned"))
                    .await;
            }
            return Ok(Pinning::NotPinned(format!(
                "interface {} (device index {interface}) already has Elastic IP {existing}, which is not in pool {pool:?}; pinhook never replaces an address outside its pool",
                target.id
            )));
        }
        let mut waiting = super::Waiting::default();
        loop {
            let candidates = decide::address_candidates(&addresses, pool.as_str(), instance);
            metrics.set(metrics::FREE_MEMBERS, candidates.len() as f64, "Count");
            for candidate in candidates.into_iter().take(super::CLAIMS_PER_PASS) {
                if deadline.remaining() <= self.settings.completion_reserve {
                    return Ok(Pinning::NotPinned(
                        "the function ran out of time before an address could be claimed".into(),
                    ));
                }
                match self
                    .ec2
                    .associate_address(&candidate.allocation, &target.id)
                    .await
                {
                    Ok(_) => {
                        return self
                            .settle_eip(action, candidate, Some(&target), None)
                            .await;
                    }
                    Err(err)
                        if matches!(
                            err.kind,
                            ErrorKind::AlreadyAssociated | ErrorKind::NotFound
                        ) =>
                    {
                        metrics.add(metrics::CLAIM_CONFLICTS, 1.0);
                        info!(member = %candidate.allocation, error = %err, "address taken meanwhile; trying the next one");
                    }
                    Err(err) => return Err(err),
                }
            }
            addresses = self.ec2.addresses(&by_pool).await?;
            if let Some(held) = decide::held_address(
                &addresses,
                pool.as_str(),
                instance,
                std::slice::from_ref(&target),
            ) {
                return self
                    .settle_eip(action, held, Some(&target), Some(super::CONCURRENT_WIN))
                    .await;
            }
            let holdings = decide::address_holdings(&addresses, pool.as_str());
            let states = self.holder_states(&holdings).await?;
            if takeover {
                let victims = decide::takeover_candidates(
                    &addresses,
                    pool.as_str(),
                    &action.group,
                    instance,
                    &states,
                );
                for victim in victims {
                    if let Some(pinned) = self.take_over(action, victim, &target, metrics).await? {
                        return Ok(pinned);
                    }
                }
            }
            let where_ = format!("pool {pool:?}");
            let exhaustion = decide::exhaustion(&holdings, &states);
            let end = waiting
                .after_pass(self, action, deadline, exhaustion, &where_, metrics, |held| match held {
                    None => format!("pool {pool:?} has no Elastic IP"),
                    Some(held) if takeover => format!(
                        "pool {pool:?} is exhausted: all {held} addresses are associated, and no holder may be taken over (each is a healthy member in service, outside the group, or not an instance)"
                    ),
                    Some(held) => format!(
                        "pool {pool:?} is exhausted: all {held} addresses are associated (set \"takeover\": true for single-instance HA)"
                    ),
                })
                .await?;
            if let Some(end) = end {
                return Ok(end);
            }
        }
    }

    /// Takes the address over from its failed holder: an explicit disassociation of exactly
    /// that association, then an association that AWS refuses if someone else was quicker.
    /// `None` when another claimer won.
    async fn take_over(
        &self,
        action: &LifecycleAction,
        victim: &Address,
        target: &Eni,
        metrics: &mut Metrics,
    ) -> Result<Option<Pinning>, AwsError> {
        let Some(association) = victim.association.as_ref().and_then(|a| a.id.as_ref()) else {
            return Ok(None);
        };
        let from = victim
            .associated_instance()
            .map_or("-", |i| i.as_str())
            .to_owned();
        info!(member = %victim.allocation, from = %from, "taking the address over from its failed holder");
        match self.ec2.disassociate_address(association).await {
            Ok(()) => {}
            // Moved meanwhile: the association below tells whether it is free.
            Err(err) if err.is(ErrorKind::NotFound) => {}
            Err(err) => return Err(err),
        }
        match self
            .ec2
            .associate_address(&victim.allocation, &target.id)
            .await
        {
            Ok(_) => {
                metrics.add(metrics::TAKEN_OVER, 1.0);
                let note = format!("took {} over from {from}", victim.allocation);
                self.settle_eip(action, victim, Some(target), Some(&note))
                    .await
                    .map(Some)
            }
            Err(err) if matches!(err.kind, ErrorKind::AlreadyAssociated | ErrorKind::NotFound) => {
                metrics.add(metrics::CLAIM_CONFLICTS, 1.0);
                Ok(None)
            }
            Err(err) => Err(err),
        }
    }

    /// Polls until the instance has an attached interface at the device index.
    async fn wait_for_interface(
        &self,
        instance: &InstanceId,
        device_index: i32,
        mut attached: Vec<Eni>,
        deadline: Deadline,
    ) -> Result<Result<Eni, String>, AwsError> {
        let give_up = self.wait_limit(deadline);
        loop {
            if let Some(found) = decide::interface_at(&attached, instance, device_index) {
                return Ok(Ok(found.clone()));
            }
            if Instant::now() + self.settings.poll_interval > give_up {
                return Ok(Err(format!(
                    "{instance} has no attached interface at device index {device_index} (\"interface\" in the hook metadata); with an ENI hook attaching it, give that hook time to finish"
                )));
            }
            tokio::time::sleep(self.settings.poll_interval).await;
            attached = self
                .ec2
                .network_interfaces(&EniFilter::AttachedTo(instance.clone()))
                .await?;
        }
    }

    /// Records the lease as tags.
    async fn settle_eip(
        &self,
        action: &LifecycleAction,
        address: &Address,
        target: Option<&Eni>,
        note: Option<&str>,
    ) -> Result<Pinning, AwsError> {
        let note = self
            .record_lease(
                address.allocation.as_str(),
                &action.instance,
                INSTANCE_EIP_TAG,
                note,
            )
            .await?;
        let member = Member {
            id: address.allocation.to_string(),
            mac_address: target.and_then(|t| t.mac_address.clone()),
            private_ip: target.and_then(|t| t.private_ip.clone()).or_else(|| {
                address
                    .association
                    .as_ref()
                    .and_then(|a| a.private_ip.clone())
            }),
            public_ip: address.public_ip.clone(),
        };
        Ok(Pinning::Pinned(Box::new(member), note))
    }

    /// Disassociates a pool address from a leaving instance and clears its holder tag.
    pub(super) async fn release_address(
        &self,
        release: AddressRelease<'_>,
        instance: &InstanceId,
    ) -> Result<(), String> {
        let address = match release {
            AddressRelease::Disassociate(address) => {
                if let Some(association) = address.association.as_ref().and_then(|a| a.id.as_ref())
                {
                    match self.ec2.disassociate_address(association).await {
                        Ok(()) => {}
                        Err(err) if err.is(ErrorKind::NotFound) => {}
                        Err(err) => return Err(err.to_string()),
                    }
                } else {
                    return Err("AWS described the association without an association id".into());
                }
                address
            }
            AddressRelease::ClearTag(address) => address,
        };
        self.ec2
            .delete_tag(
                address.allocation.as_str(),
                HOLDER_TAG,
                Some(instance.as_str()),
            )
            .await
            .map_err(|err| err.to_string())
    }
}
