//! Domain types shared by every layer: identifiers checked once at the boundary, and the facts
//! pinhook reads from Auto Scaling (`lifecycle`) and EC2 (`ec2`).

mod ec2;
mod ids;
mod lifecycle;

pub use self::ec2::{
    Address, AddressAssociation, Attachment, AttachmentStatus, Ec2Instance, Eni, GROUP_TAG,
    PoolMember, RunState,
};
pub use self::ids::{AllocationId, AssociationId, AttachmentId, EniId, InstanceId, InvalidId};
pub use self::lifecycle::{
    ActionRef, Group, GroupInstance, Hook, LifecycleResult, LifecycleState, Location, Transition,
};
