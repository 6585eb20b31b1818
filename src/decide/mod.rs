//! The decisions, with no I/O: whether an event still matches Auto Scaling (`check`), what an
//! instance without a group's state change does (`instance`), which pool members to claim and
//! what follows a lost pass (`claim`), what a leaving instance gives back (`release`), and what
//! the sweep repairs and reports (`sweep`).

mod check;
mod claim;
mod instance;
mod release;
pub mod sweep;
mod takeover;

pub use self::check::{Checked, Stale, check, failure_result, waiting_for};
pub use self::claim::{
    AfterPass, Exhaustion, Holding, MayTakeOver, Wait, after_pass, candidates, exhaustion, held,
    holders_to_check, holdings, interface_at,
};
pub use self::instance::{Acting, caught_up, state_change};
pub use self::release::{Release, releases};
pub use self::takeover::{HolderStates, takeover_victims, unknown_to};

#[cfg(test)]
pub(crate) mod fixtures {
    //! Pool members and instances for the decisions' tests.

    use crate::model::{
        Address, AddressAssociation, AllocationId, AssociationId, Attachment, AttachmentId,
        AttachmentStatus, Ec2Instance, Eni, EniId, GroupInstance, InstanceId, LifecycleState,
        RunState,
    };

    pub(crate) fn id(s: &str) -> InstanceId {
        InstanceId::parse(s).unwrap()
    }

    /// A pool ENI of pool "lic", attached to `holder` at a device index (and tagged for it).
    pub(crate) fn eni(n: u32, az: &str, holder: Option<(&str, i32)>) -> Eni {
        Eni {
            id: EniId::parse(&format!("eni-{n:04}")).unwrap(),
            availability_zone: Some(az.into()),
            status: Some(
                if holder.is_some() {
                    "in-use"
                } else {
                    "available"
                }
                .into(),
            ),
            attachment: holder.map(|(i, index)| Attachment {
                id: Some(AttachmentId::parse(&format!("eni-attach-{n:04}")).unwrap()),
                instance: Some(id(i)),
                device_index: Some(index),
                status: AttachmentStatus::Attached,
            }),
            mac_address: None,
            private_ip: None,
            public_ip: None,
            elastic_ip: None,
            pool: Some("lic".into()),
            holder: holder.map(|(i, _)| i.to_owned()),
        }
    }

    pub(crate) fn address(n: u32, holder: Option<&str>) -> Address {
        Address {
            allocation: AllocationId::parse(&format!("eipalloc-{n:04}")).unwrap(),
            public_ip: Some(format!("203.0.113.{n}")),
            association: holder.map(|h| AddressAssociation {
                id: Some(AssociationId::parse(&format!("eipassoc-{n:04}")).unwrap()),
                instance: InstanceId::parse(h).ok(),
                network_interface: Some(EniId::parse(&format!("eni-{n:04}")).unwrap()),
                private_ip: Some("10.0.0.9".into()),
            }),
            pool: Some("egress".into()),
            holder: holder.map(str::to_owned),
            idle_since: None,
        }
    }

    pub(crate) fn member(i: &str, group: &str, state: &str, healthy: bool) -> GroupInstance {
        GroupInstance {
            instance: id(i),
            group: group.into(),
            availability_zone: "az-a".into(),
            state: LifecycleState::parse(state),
            healthy,
        }
    }

    pub(crate) fn ec2(instance: &str, state: &str) -> Ec2Instance {
        Ec2Instance::new(id(instance), RunState::parse(state))
    }
}
