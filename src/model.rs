//! Domain types shared by every layer: identifiers that were checked once at the boundary, and
//! the facts pinhook reads from Auto Scaling and EC2, with every field AWS may omit optional.

use std::fmt;

use serde::Serialize;

/// Why an identifier from outside was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {value:?} is not valid: expected {expected}")]
pub struct InvalidId {
    pub what: &'static str,
    pub value: String,
    pub expected: &'static str,
}

fn check_id(
    what: &'static str,
    prefix: &'static str,
    expected: &'static str,
    value: &str,
) -> Result<String, InvalidId> {
    let rest = value.strip_prefix(prefix).unwrap_or_default();
    if rest.is_empty() || rest.len() > 64 || !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(InvalidId {
            what,
            value: value.chars().take(80).collect(),
            expected,
        });
    }
    Ok(value.to_owned())
}

macro_rules! resource_id {
    ($(#[$doc:meta])* $name:ident, $what:literal, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn parse(value: &str) -> Result<Self, InvalidId> {
                check_id($what, $prefix, concat!("\"", $prefix, "\" followed by letters and digits"), value).map(Self)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

resource_id!(
    /// An EC2 instance id, `i-…`.
    InstanceId,
    "instance id",
    "i-"
);
resource_id!(
    /// A network interface id, `eni-…`.
    EniId,
    "network interface id",
    "eni-"
);
resource_id!(
    /// A network interface attachment id, `eni-attach-…`.
    AttachmentId,
    "attachment id",
    "eni-attach-"
);
resource_id!(
    /// An Elastic IP allocation id, `eipalloc-…`.
    AllocationId,
    "allocation id",
    "eipalloc-"
);
resource_id!(
    /// An Elastic IP association id, `eipassoc-…`.
    AssociationId,
    "association id",
    "eipassoc-"
);

/// The two lifecycle transitions pinhook acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transition {
    Launch,
    Terminate,
}

impl Transition {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Launch => "launch",
            Self::Terminate => "terminate",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "autoscaling:EC2_INSTANCE_LAUNCHING" => Some(Self::Launch),
            "autoscaling:EC2_INSTANCE_TERMINATING" => Some(Self::Terminate),
            _ => None,
        }
    }
}

/// Where an instance comes from or goes to, in events of groups with a warm pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Location {
    #[serde(rename = "EC2")]
    Ec2,
    AutoScalingGroup,
    WarmPool,
}

impl Location {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "EC2" => Some(Self::Ec2),
            "AutoScalingGroup" => Some(Self::AutoScalingGroup),
            "WarmPool" => Some(Self::WarmPool),
            _ => None,
        }
    }
}

/// The result pinhook completes a lifecycle action with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum LifecycleResult {
    Continue,
    Abandon,
}

impl LifecycleResult {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Continue => "CONTINUE",
            Self::Abandon => "ABANDON",
        }
    }
}

impl fmt::Display for LifecycleResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What identifies one lifecycle action to Auto Scaling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionRef {
    pub group: String,
    pub hook: String,
    pub instance: InstanceId,
    pub token: Option<String>,
}

/// An instance's lifecycle state in its Auto Scaling group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LifecycleState {
    Pending,
    PendingWait,
    PendingProceed,
    InService,
    Standby,
    Terminating,
    TerminatingWait,
    TerminatingProceed,
    Terminated,
    WarmedPendingWait,
    WarmedTerminatingWait,
    Other(String),
}

impl LifecycleState {
    pub fn parse(value: &str) -> Self {
        match value {
            "Pending" => Self::Pending,
            "Pending:Wait" => Self::PendingWait,
            "Pending:Proceed" => Self::PendingProceed,
            "InService" => Self::InService,
            "Standby" => Self::Standby,
            "Terminating" => Self::Terminating,
            "Terminating:Wait" => Self::TerminatingWait,
            "Terminating:Proceed" => Self::TerminatingProceed,
            "Terminated" => Self::Terminated,
            "Warmed:Pending:Wait" => Self::WarmedPendingWait,
            "Warmed:Terminating:Wait" => Self::WarmedTerminatingWait,
            other => Self::Other(other.to_owned()),
        }
    }

    /// Whether the instance is on its way out of the group, so what it holds will be released.
    pub fn is_leaving(&self) -> bool {
        matches!(
            self,
            Self::Terminating
                | Self::TerminatingWait
                | Self::TerminatingProceed
                | Self::Terminated
                | Self::WarmedTerminatingWait
        ) || matches!(self, Self::Other(s) if s.starts_with("Warmed:Terminat"))
    }
}

impl fmt::Display for LifecycleState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Self::Pending => "Pending",
            Self::PendingWait => "Pending:Wait",
            Self::PendingProceed => "Pending:Proceed",
            Self::InService => "InService",
            Self::Standby => "Standby",
            Self::Terminating => "Terminating",
            Self::TerminatingWait => "Terminating:Wait",
            Self::TerminatingProceed => "Terminating:Proceed",
            Self::Terminated => "Terminated",
            Self::WarmedPendingWait => "Warmed:Pending:Wait",
            Self::WarmedTerminatingWait => "Warmed:Terminating:Wait",
            Self::Other(s) => s,
        };
        f.write_str(s)
    }
}

/// An instance as Auto Scaling describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInstance {
    pub instance: InstanceId,
    pub group: String,
    pub availability_zone: String,
    pub state: LifecycleState,
    pub healthy: bool,
}

/// The state of an ENI's attachment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachmentStatus {
    Attaching,
    Attached,
    Detaching,
    Detached,
    Other(String),
}

impl AttachmentStatus {
    pub fn parse(value: &str) -> Self {
        match value {
            "attaching" => Self::Attaching,
            "attached" => Self::Attached,
            "detaching" => Self::Detaching,
            "detached" => Self::Detached,
            other => Self::Other(other.to_owned()),
        }
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunState {
    Pending,
    Running,
    ShuttingDown,
    Terminated,
    Stopping,
    Stopped,
    Other(String),
}

impl RunState {
    pub fn parse(value: &str) -> Self {
        match value {
            "pending" => Self::Pending,
            "running" => Self::Running,
            "shutting-down" => Self::ShuttingDown,
            "terminated" => Self::Terminated,
            "stopping" => Self::Stopping,
            "stopped" => Self::Stopped,
            other => Self::Other(other.to_owned()),
        }
    }

    /// On its way out of existence: what it holds goes with it.
    pub fn is_gone(&self) -> bool {
        matches!(self, Self::ShuttingDown | Self::Terminated)
    }
}

impl fmt::Display for RunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::ShuttingDown => "shutting-down",
            Self::Terminated => "terminated",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
            Self::Other(s) => s,
        })
    }
}

/// An Auto Scaling group as the sweep reads it: how many instances it may place, where, and
/// the instances it has now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub max_size: u32,
    pub availability_zones: Vec<String>,
    pub instances: Vec<GroupInstance>,
}

/// A lifecycle hook of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    pub group: String,
    pub name: String,
    /// `None` for a transition pinhook does not know.
    pub transition: Option<Transition>,
    pub metadata: Option<String>,
}

/// An instance as EC2 describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ec2Instance {
    pub instance: InstanceId,
    pub state: RunState,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_keep_their_prefix_and_refuse_anything_else() {
        assert_eq!(
            InstanceId::parse("i-0abc123").unwrap().as_str(),
            "i-0abc123"
        );
        for bad in ["", "i-", "eni-123", "i-12 3", "i-../x", "I-123"] {
            let err = InstanceId::parse(bad).unwrap_err();
            assert_eq!(err.what, "instance id");
        }
        assert!(EniId::parse("eni-0f00").is_ok());
        assert!(AttachmentId::parse("eni-attach-0f00").is_ok());
        assert!(AttachmentId::parse("eni-0f00").is_err());
    }

    #[test]
    fn leaving_states_are_the_terminating_ones() {
        for s in [
            "Terminating",
            "Terminating:Wait",
            "Terminating:Proceed",
            "Terminated",
            "Warmed:Terminating:Wait",
            "Warmed:Terminating:Proceed",
        ] {
            assert!(LifecycleState::parse(s).is_leaving(), "{s}");
        }
        for s in [
            "InService",
            "Pending:Wait",
            "Standby",
            "Warmed:Pending:Wait",
        ] {
            assert!(!LifecycleState::parse(s).is_leaving(), "{s}");
        }
        assert_eq!(
            LifecycleState::parse("Warmed:Hibernated").to_string(),
            "Warmed:Hibernated"
        );
    }
}
