//! The adapters with a meter: every call counted against a budget, and in a dry run every call
//! that would change something refused before it is sent. The sweep runs over these, so its
//! bounds and its dry run hold for the claim engine's calls as much as for its own.

use std::sync::atomic::{AtomicU32, Ordering};

use super::{AddressFilter, AutoScalingApi, AwsError, Ec2Api, EniFilter};
use crate::model::{
    ActionRef, Address, AllocationId, AssociationId, AttachmentId, Ec2Instance, Eni, EniId, Group,
    GroupInstance, Hook, InstanceId, LifecycleResult,
};

/// How far past its budget a run may go to finish a repair it started: a repair is never cut
/// in the middle (an ENI attached but not yet tagged, say) because its waits took more reads
/// than foreseen.
const FINISHING_CALLS: u32 = 50;

/// The calls of one run, and its limits: the sweep starts new work only while the budget
/// lasts, and the calls themselves are refused only past the budget and a margin to finish.
#[derive(Debug)]
pub struct Meter {
    calls: AtomicU32,
    limit: u32,
    dry_run: bool,
}

impl Meter {
    pub fn new(limit: u32, dry_run: bool) -> Self {
        Self {
            calls: AtomicU32::new(0),
            limit,
            dry_run,
        }
    }

    /// Calls sent so far.
    pub fn calls(&self) -> u32 {
        self.calls.load(Ordering::Relaxed)
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// Calls left in the budget.
    pub fn left(&self) -> u32 {
        self.limit.saturating_sub(self.calls())
    }

    fn admit(&self, operation: &'static str, mutating: bool) -> Result<(), AwsError> {
        if mutating && self.dry_run {
            return Err(AwsError::not_sent(operation, "a dry run changes nothing"));
        }
        let sent = self.calls.fetch_add(1, Ordering::Relaxed);
        if sent >= self.limit.saturating_add(FINISHING_CALLS) {
            self.calls.fetch_sub(1, Ordering::Relaxed);
            return Err(AwsError::not_sent(
                operation,
                format!(
                    "the sweep's budget of {} calls for this run is spent, with {FINISHING_CALLS} more to finish the repair under way",
                    self.limit
                ),
            ));
        }
        Ok(())
    }
}

/// An adapter whose calls go through a [`Meter`].
#[derive(Debug)]
pub struct Metered<'a, T> {
    inner: &'a T,
    meter: &'a Meter,
}

impl<'a, T> Metered<'a, T> {
    pub fn new(inner: &'a T, meter: &'a Meter) -> Self {
        Self { inner, meter }
    }
}

impl<A: AutoScalingApi> AutoScalingApi for Metered<'_, A> {
    async fn describe_instances(
        &self,
        instances: &[InstanceId],
    ) -> Result<Vec<GroupInstance>, AwsError> {
        self.meter
            .admit("autoscaling:DescribeAutoScalingInstances", false)?;
        self.inner.describe_instances(instances).await
    }

    async fn warm_pool_instances(&self, group: &str) -> Result<Vec<GroupInstance>, AwsError> {
        self.meter.admit("autoscaling:DescribeWarmPool", false)?;
        self.inner.warm_pool_instances(group).await
    }

    async fn groups(&self, names: &[String]) -> Result<Vec<Group>, AwsError> {
        self.meter
            .admit("autoscaling:DescribeAutoScalingGroups", false)?;
        self.inner.groups(names).await
    }

    async fn hooks(&self, group: &str) -> Result<Vec<Hook>, AwsError> {
        self.meter
            .admit("autoscaling:DescribeLifecycleHooks", false)?;
        self.inner.hooks(group).await
    }

    async fn hook_metadata(&self, group: &str, hook: &str) -> Result<Option<String>, AwsError> {
        self.meter
            .admit("autoscaling:DescribeLifecycleHooks", false)?;
        self.inner.hook_metadata(group, hook).await
    }

    async fn complete_lifecycle_action(
        &self,
        action: &ActionRef,
        result: LifecycleResult,
    ) -> Result<(), AwsError> {
        self.meter
            .admit("autoscaling:CompleteLifecycleAction", true)?;
        self.inner.complete_lifecycle_action(action, result).await
    }

    async fn record_heartbeat(&self, action: &ActionRef) -> Result<(), AwsError> {
        self.meter
            .admit("autoscaling:RecordLifecycleActionHeartbeat", true)?;
        self.inner.record_heartbeat(action).await
    }
}

impl<E: Ec2Api> Ec2Api for Metered<'_, E> {
    async fn instances(&self, instances: &[InstanceId]) -> Result<Vec<Ec2Instance>, AwsError> {
        self.meter.admit("ec2:DescribeInstances", false)?;
        self.inner.instances(instances).await
    }

    async fn tagged_instances(&self) -> Result<Vec<Ec2Instance>, AwsError> {
        self.meter.admit("ec2:DescribeInstances", false)?;
        self.inner.tagged_instances().await
    }

    async fn network_interfaces(&self, filter: &EniFilter) -> Result<Vec<Eni>, AwsError> {
        self.meter.admit("ec2:DescribeNetworkInterfaces", false)?;
        self.inner.network_interfaces(filter).await
    }

    async fn network_interface(&self, eni: &EniId) -> Result<Option<Eni>, AwsError> {
        self.meter.admit("ec2:DescribeNetworkInterfaces", false)?;
        self.inner.network_interface(eni).await
    }

    async fn attach_network_interface(
        &self,
        eni: &EniId,
        instance: &InstanceId,
        device_index: i32,
    ) -> Result<AttachmentId, AwsError> {
        self.meter.admit("ec2:AttachNetworkInterface", true)?;
        self.inner
            .attach_network_interface(eni, instance, device_index)
            .await
    }

    async fn detach_network_interface(&self, attachment: &AttachmentId) -> Result<(), AwsError> {
        self.meter.admit("ec2:DetachNetworkInterface", true)?;
        self.inner.detach_network_interface(attachment).await
    }

    async fn addresses(&self, filter: &AddressFilter) -> Result<Vec<Address>, AwsError> {
        self.meter.admit("ec2:DescribeAddresses", false)?;
        self.inner.addresses(filter).await
    }

    async fn associate_address(
        &self,
        allocation: &AllocationId,
        eni: &EniId,
    ) -> Result<AssociationId, AwsError> {
        self.meter.admit("ec2:AssociateAddress", true)?;
        self.inner.associate_address(allocation, eni).await
    }

    async fn disassociate_address(&self, association: &AssociationId) -> Result<(), AwsError> {
        self.meter.admit("ec2:DisassociateAddress", true)?;
        self.inner.disassociate_address(association).await
    }

    async fn create_tag(&self, resource: &str, key: &str, value: &str) -> Result<(), AwsError> {
        self.meter.admit("ec2:CreateTags", true)?;
        self.inner.create_tag(resource, key, value).await
    }

    async fn delete_tag(
        &self,
        resource: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<(), AwsError> {
        self.meter.admit("ec2:DeleteTags", true)?;
        self.inner.delete_tag(resource, key, value).await
    }
}
