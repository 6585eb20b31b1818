//! The AWS adapters: two narrow traits over what pinhook asks of Auto Scaling and EC2, and their
//! implementations on the AWS SDK (feature `aws-sdk`, on by default). Everything above this
//! module works with domain types only.

#[cfg(feature = "aws-sdk")]
mod autoscaling;
#[cfg(feature = "aws-sdk")]
mod ec2;
pub mod error;
mod metered;
#[cfg(feature = "aws-sdk")]
mod sdk;

use std::future::Future;

#[cfg(feature = "aws-sdk")]
pub use self::autoscaling::AutoScalingClient;
#[cfg(feature = "aws-sdk")]
pub use self::ec2::Ec2Client;
pub use self::error::{AwsError, ErrorKind, Resource, SplitTransient, Transient};
pub use self::metered::{Meter, Metered};
#[cfg(feature = "aws-sdk")]
pub use self::sdk::{load_sdk_config, retry_config, timeout_config};
use crate::config::PoolName;
use crate::model::{
    ActionRef, Address, AllocationId, AssociationId, AttachmentId, Ec2Instance, Eni, EniId, Group,
    GroupInstance, Hook, InstanceId, LifecycleResult,
};

/// What pinhook asks of Auto Scaling.
pub trait AutoScalingApi: Send + Sync {
    /// The instances, as Auto Scaling knows them; instances in no group are left out.
    fn describe_instances(
        &self,
        instances: &[InstanceId],
    ) -> impl Future<Output = Result<Vec<GroupInstance>, AwsError>> + Send;

    /// The instances of a group's warm pool.
    fn warm_pool_instances(
        &self,
        group: &str,
    ) -> impl Future<Output = Result<Vec<GroupInstance>, AwsError>> + Send;

    /// The groups of those names that exist, with their instances.
    fn groups(&self, names: &[String])
    -> impl Future<Output = Result<Vec<Group>, AwsError>> + Send;

    /// Every lifecycle hook of a group.
    fn hooks(&self, group: &str) -> impl Future<Output = Result<Vec<Hook>, AwsError>> + Send;

    /// The `NotificationMetadata` of a lifecycle hook, `None` if the hook has none or is gone.
    fn hook_metadata(
        &self,
        group: &str,
        hook: &str,
    ) -> impl Future<Output = Result<Option<String>, AwsError>> + Send;

    fn complete_lifecycle_action(
        &self,
        action: &ActionRef,
        result: LifecycleResult,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;

    fn record_heartbeat(
        &self,
        action: &ActionRef,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
}

/// Which network interfaces to list: every filter given must hold. EC2 applies them, so a read
/// returns what it asks for, not the whole pool.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EniFilter {
    /// Tagged `pinhook:pool` = this.
    pub pool: Option<PoolName>,
    /// Attached to this instance.
    pub attached_to: Option<InstanceId>,
    /// Tagged `pinhook:holder` = this instance.
    pub held_by: Option<InstanceId>,
    /// `available` (attached nowhere) only.
    pub available: bool,
    /// In this Availability Zone only.
    pub zone: Option<String>,
    /// At most about this many, the first pages: a read whose cost does not grow with the pool.
    pub limit: Option<usize>,
}

impl EniFilter {
    /// Every member of the pool.
    pub fn pool(pool: &PoolName) -> Self {
        Self {
            pool: Some(pool.clone()),
            ..Self::default()
        }
    }

    /// Every interface attached to the instance.
    pub fn attached_to(instance: &InstanceId) -> Self {
        Self {
            attached_to: Some(instance.clone()),
            ..Self::default()
        }
    }

    /// Whether an interface passes the filters (for a fake, or a second look).
    pub fn matches(&self, eni: &Eni) -> bool {
        use crate::model::PoolMember;
        self.pool.as_ref().is_none_or(|p| eni.in_pool(p.as_str()))
            && self
                .attached_to
                .as_ref()
                .is_none_or(|i| eni.attachment_instance() == Some(i))
            && self
                .held_by
                .as_ref()
                .is_none_or(|i| eni.holder.as_deref() == Some(i.as_str()))
            && (!self.available || eni.status.as_deref() == Some("available"))
            && self
                .zone
                .as_ref()
                .is_none_or(|z| eni.availability_zone.as_ref() == Some(z))
    }
}

/// Which Elastic IPs to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressFilter {
    /// Tagged `pinhook:pool` = the pool.
    Pool(PoolName),
    /// Tagged `pinhook:holder` = the instance.
    HeldBy(InstanceId),
}

impl AddressFilter {
    /// Whether an address passes the filter (for a fake).
    pub fn matches(&self, address: &Address) -> bool {
        use crate::model::PoolMember;
        match self {
            Self::Pool(pool) => address.in_pool(pool.as_str()),
            Self::HeldBy(instance) => address.holder.as_deref() == Some(instance.as_str()),
        }
    }
}

/// What pinhook asks of EC2.
pub trait Ec2Api: Send + Sync {
    /// The instances EC2 knows, with their state; an instance it does not know is left out
    /// (gone, or so new that EC2's reads do not show it yet).
    fn instances(
        &self,
        instances: &[InstanceId],
    ) -> impl Future<Output = Result<Vec<Ec2Instance>, AwsError>> + Send;

    /// The instances not terminated that carry the tag `pinhook:pin` (the sweep's view of
    /// instances without a group), with their state, AZ and tags.
    fn tagged_instances(&self) -> impl Future<Output = Result<Vec<Ec2Instance>, AwsError>> + Send;

    fn network_interfaces(
        &self,
        filter: &EniFilter,
    ) -> impl Future<Output = Result<Vec<Eni>, AwsError>> + Send;

    /// One network interface, `None` if it does not exist.
    fn network_interface(
        &self,
        eni: &EniId,
    ) -> impl Future<Output = Result<Option<Eni>, AwsError>> + Send;

    fn attach_network_interface(
        &self,
        eni: &EniId,
        instance: &InstanceId,
        device_index: i32,
    ) -> impl Future<Output = Result<AttachmentId, AwsError>> + Send;

    fn detach_network_interface(
        &self,
        attachment: &AttachmentId,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;

    fn addresses(
        &self,
        filter: &AddressFilter,
    ) -> impl Future<Output = Result<Vec<Address>, AwsError>> + Send;

    /// Associates the address with the interface's primary private IP, refusing (with
    /// `Resource.AlreadyAssociated`) an address that is associated with anything else.
    fn associate_address(
        &self,
        allocation: &AllocationId,
        eni: &EniId,
    ) -> impl Future<Output = Result<AssociationId, AwsError>> + Send;

    fn disassociate_address(
        &self,
        association: &AssociationId,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;

    fn create_tag(
        &self,
        resource: &str,
        key: &str,
        value: &str,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;

    /// Deletes the tag, only while it still has `value` when one is given.
    fn delete_tag(
        &self,
        resource: &str,
        key: &str,
        value: Option<&str>,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
}
