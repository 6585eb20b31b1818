//! EC2's side of the world as pinhook reads it: network interfaces, Elastic IPs and instances,
//! with every field AWS may omit optional, and the pool-member view shared by ENIs and
//! addresses so that each rule is written once for both kinds.

use std::collections::BTreeMap;

use strum::{Display, EnumString};

use super::{AllocationId, AssociationId, AttachmentId, EniId, InstanceId};

/// The state of an ENI's attachment.
#[derive(Debug, Clone, PartialEq, Eq, EnumString, Display)]
#[strum(serialize_all = "lowercase")]
pub enum AttachmentStatus {
    Attaching,
    Attached,
    Detaching,
    Detached,
    #[strum(default, to_string = "{0}")]
    Other(String),
}

impl AttachmentStatus {
    pub fn parse(value: &str) -> Self {
        value
            .parse()
            .unwrap_or_else(|_| Self::Other(value.to_owned()))
    }
}

/// Where an ENI is attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub id: Option<AttachmentId>,
    pub instance: Option<InstanceId>,
    pub device_index: Option<i32>,
    pub status: AttachmentStatus,
}

/// A network interface, with the tags pinhook reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eni {
    pub id: EniId,
    pub availability_zone: Option<String>,
    /// `available`, `in-use`, …; `None` when AWS left it out.
    pub status: Option<String>,
    pub attachment: Option<Attachment>,
    pub mac_address: Option<String>,
    pub private_ip: Option<String>,
    /// The public IP of the primary private IP, an Elastic IP or an auto-assigned one.
    pub public_ip: Option<String>,
    /// The allocation id when that public IP is an Elastic IP.
    pub elastic_ip: Option<AllocationId>,
    pub pool: Option<String>,
    pub holder: Option<String>,
}

impl Eni {
    pub fn attachment_instance(&self) -> Option<&InstanceId> {
        self.attachment.as_ref().and_then(|a| a.instance.as_ref())
    }

    /// The primary interface of an instance: pinhook never detaches it.
    pub fn is_primary(&self) -> bool {
        self.attachment
            .as_ref()
            .is_some_and(|a| a.device_index == Some(0))
    }
}

/// Where an Elastic IP is associated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressAssociation {
    pub id: Option<AssociationId>,
    /// The instance of the interface, when the interface is attached to one.
    pub instance: Option<InstanceId>,
    pub network_interface: Option<EniId>,
    pub private_ip: Option<String>,
}

/// An Elastic IP, with the tags pinhook reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub allocation: AllocationId,
    pub public_ip: Option<String>,
    /// `None` only when AWS reports no association of any kind: not an instance, not a NAT
    /// gateway, not any other interface.
    pub association: Option<AddressAssociation>,
    pub pool: Option<String>,
    pub holder: Option<String>,
    /// The sweep's record of when it first found the address unassociated.
    pub idle_since: Option<String>,
}

impl Address {
    pub fn associated_instance(&self) -> Option<&InstanceId> {
        self.association.as_ref().and_then(|a| a.instance.as_ref())
    }

    pub fn associated_interface(&self) -> Option<&EniId> {
        self.association
            .as_ref()
            .and_then(|a| a.network_interface.as_ref())
    }
}

/// A member of a pool, ENI or Elastic IP alike: what the decisions and the claim engine read of
/// it, so that each rule is written once for both kinds.
pub trait PoolMember {
    /// The ENI id or the allocation id.
    fn member_id(&self) -> &str;
    fn pool(&self) -> Option<&str>;
    /// The Availability Zone a member is bound to, `None` for a regional one (an Elastic IP).
    /// An ENI whose zone AWS left out is bound to none, so it is never a candidate.
    fn zone(&self) -> Option<&str>;
    /// Free for a claim: attached or associated nowhere.
    fn is_free(&self) -> bool;
    /// The instance holding it; `None` when free, or held by something that is not an instance
    /// (a NAT gateway, an unattached interface).
    fn holder_instance(&self) -> Option<&InstanceId>;
    /// The `pinhook:holder` tag: the lease as pinhook recorded it.
    fn holder_tag(&self) -> Option<&str>;
    /// Already on its way back to the pool (an ENI detaching).
    fn is_releasing(&self) -> bool;
    /// Held by the instance: attached to it as a secondary interface, or associated with one of
    /// its interfaces.
    fn held_by(&self, instance: &InstanceId, interfaces: &[Eni]) -> bool;
    /// Its public IP, if it has one.
    fn public_ip(&self) -> Option<&str>;
    /// When the sweep first found it idle (`pinhook:idle-since`); Elastic IPs only.
    fn idle_since(&self) -> Option<&str> {
        None
    }

    fn in_pool(&self, pool: &str) -> bool {
        self.pool() == Some(pool)
    }
}

impl PoolMember for Eni {
    fn member_id(&self) -> &str {
        self.id.as_str()
    }

    fn pool(&self) -> Option<&str> {
        self.pool.as_deref()
    }

    fn zone(&self) -> Option<&str> {
        Some(self.availability_zone.as_deref().unwrap_or_default())
    }

    fn is_free(&self) -> bool {
        self.status.as_deref() == Some("available") && self.attachment_instance().is_none()
    }

    fn holder_instance(&self) -> Option<&InstanceId> {
        self.attachment_instance()
    }

    fn holder_tag(&self) -> Option<&str> {
        self.holder.as_deref()
    }

    fn is_releasing(&self) -> bool {
        self.attachment.as_ref().is_some_and(|a| {
            matches!(
                a.status,
                AttachmentStatus::Detaching | AttachmentStatus::Detached
            )
        })
    }

    fn held_by(&self, instance: &InstanceId, _interfaces: &[Eni]) -> bool {
        self.attachment_instance() == Some(instance) && !self.is_primary()
    }

    fn public_ip(&self) -> Option<&str> {
        self.public_ip.as_deref()
    }
}

impl PoolMember for Address {
    fn member_id(&self) -> &str {
        self.allocation.as_str()
    }

    fn pool(&self) -> Option<&str> {
        self.pool.as_deref()
    }

    fn zone(&self) -> Option<&str> {
        None
    }

    fn is_free(&self) -> bool {
        self.association.is_none()
    }

    fn holder_instance(&self) -> Option<&InstanceId> {
        self.associated_instance()
    }

    fn holder_tag(&self) -> Option<&str> {
        self.holder.as_deref()
    }

    fn public_ip(&self) -> Option<&str> {
        self.public_ip.as_deref()
    }

    fn idle_since(&self) -> Option<&str> {
        self.idle_since.as_deref()
    }

    fn is_releasing(&self) -> bool {
        false
    }

    fn held_by(&self, instance: &InstanceId, interfaces: &[Eni]) -> bool {
        self.associated_instance() == Some(instance)
            || self
                .associated_interface()
                .is_some_and(|eni| interfaces.iter().any(|i| &i.id == eni))
    }
}

/// An instance's state as EC2 reports it.
#[derive(Debug, Clone, PartialEq, Eq, EnumString, Display)]
#[strum(serialize_all = "kebab-case")]
pub enum RunState {
    Pending,
    Running,
    ShuttingDown,
    Terminated,
    Stopping,
    Stopped,
    #[strum(default, to_string = "{0}")]
    Other(String),
}

impl RunState {
    pub fn parse(value: &str) -> Self {
        value
            .parse()
            .unwrap_or_else(|_| Self::Other(value.to_owned()))
    }

    /// On its way out of existence: what it holds goes with it.
    pub fn is_gone(&self) -> bool {
        matches!(self, Self::ShuttingDown | Self::Terminated)
    }
}

/// An instance as EC2 describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ec2Instance {
    pub instance: InstanceId,
    pub state: RunState,
    pub availability_zone: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// The tag Auto Scaling puts on the instances of a group.
pub const GROUP_TAG: &str = "aws:autoscaling:groupName";

impl Ec2Instance {
    /// An instance with its state alone, as a holder's state is read.
    pub fn new(instance: InstanceId, state: RunState) -> Self {
        Self {
            instance,
            state,
            availability_zone: None,
            tags: BTreeMap::new(),
        }
    }

    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }

    /// The Auto Scaling group the instance belongs to, by the tag Auto Scaling puts on it.
    pub fn group(&self) -> Option<&str> {
        self.tag(GROUP_TAG)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_read_and_print_as_ec2_writes_them() {
        for name in [
            "pending",
            "running",
            "shutting-down",
            "terminated",
            "stopping",
            "stopped",
        ] {
            let state = RunState::parse(name);
            assert!(!matches!(state, RunState::Other(_)), "{name}");
            assert_eq!(state.to_string(), name);
        }
        assert_eq!(RunState::parse("rebooting").to_string(), "rebooting");
        assert!(RunState::parse("shutting-down").is_gone());
        assert_eq!(
            AttachmentStatus::parse("attached"),
            AttachmentStatus::Attached
        );
        assert_eq!(AttachmentStatus::parse("odd").to_string(), "odd");
    }
}
