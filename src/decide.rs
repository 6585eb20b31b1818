//! The decisions, with no I/O: whether an event still matches Auto Scaling, which pool members
//! to try and in what order, whether to wait for a release, and what to release.

use std::collections::{HashMap, HashSet};

use crate::event::LifecycleAction;
use crate::model::{
    AttachmentStatus, Ec2Instance, Eni, GroupInstance, InstanceId, LifecycleResult, LifecycleState,
    Location, PoolMember, Transition,
};

/// What the Auto Scaling check allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The instance waits in `Pending:Wait` in the named group: pin a member in its AZ.
    Pin { availability_zone: String },
    /// The instance is launching into the warm pool: nothing to pin until it leaves it.
    EnterWarmPool,
    /// The instance is leaving the group (or going back to the warm pool): release.
    Release,
    /// The event does not match what Auto Scaling says now: change nothing.
    Stale { reason: String },
}

/// Step 1: the event against Auto Scaling's view of the instance.
pub fn check(action: &LifecycleAction, described: Option<&GroupInstance>) -> Verdict {
    let Some(instance) = described else {
        return Verdict::Stale {
            reason: format!(
                "instance {} is in no Auto Scaling group (terminated, detached, or never one)",
                action.instance
            ),
        };
    };
    if instance.group != action.group {
        return Verdict::Stale {
            reason: format!(
                "instance {} belongs to group {:?}, not {:?}",
                action.instance, instance.group, action.group
            ),
        };
    }
    let warm_pool_return = action.destination == Some(Location::WarmPool);
    let verdict = match (action.transition, &instance.state) {
        (Transition::Launch, LifecycleState::WarmedPendingWait) if action.enters_warm_pool() => {
            Some(Verdict::EnterWarmPool)
        }
        (Transition::Launch, LifecycleState::PendingWait) if !action.enters_warm_pool() => {
            Some(Verdict::Pin {
                availability_zone: instance.availability_zone.clone(),
            })
        }
        (
            Transition::Terminate,
            LifecycleState::TerminatingWait | LifecycleState::WarmedTerminatingWait,
        ) => Some(Verdict::Release),
        (Transition::Terminate, LifecycleState::WarmedPendingWait) if warm_pool_return => {
            Some(Verdict::Release)
        }
        _ => None,
    };
    verdict.unwrap_or_else(|| Verdict::Stale {
        reason: format!(
            "instance {} is {} in group {:?}, not waiting for this {} action (already completed, timed out, or out of order)",
            action.instance,
            instance.state,
            instance.group,
            action.transition.as_str()
        ),
    })
}

/// The result a lifecycle action is completed with when nothing could be pinned or the event
/// could not be read: the hook's `on_failure` on launch; termination is never blocked.
pub fn failure_result(
    transition: Option<Transition>,
    on_failure: LifecycleResult,
) -> LifecycleResult {
    match transition {
        Some(Transition::Terminate) => LifecycleResult::Continue,
        _ => on_failure,
    }
}

/// Step 3: the free members of the pool in the instance's AZ (an Elastic IP belongs to the
/// region, so to every AZ), in the order this instance tries them.
///
/// The order is a rendezvous hash of the instance and the member: concurrent launches spread
/// over the candidates instead of all racing for the first, and two deliveries of one event
/// try the members in the same relative order even when their reads of the pool differ, so
/// they meet on one member rather than each claiming another.
pub fn candidates<'a, M: PoolMember>(
    members: &'a [M],
    pool: &str,
    availability_zone: &str,
    instance: &InstanceId,
) -> Vec<&'a M> {
    let mut candidates: Vec<(u64, &M)> = members
        .iter()
        .filter(|m| serves(*m, pool, availability_zone) && m.is_free())
        .map(|m| (rank(instance, m.member_id()), m))
        .collect();
    candidates.sort_by(|(r1, m1), (r2, m2)| r2.cmp(r1).then(m1.member_id().cmp(m2.member_id())));
    candidates.into_iter().map(|(_, m)| m).collect()
}

/// A member of the pool that can serve an instance in the AZ.
fn serves<M: PoolMember>(member: &M, pool: &str, availability_zone: &str) -> bool {
    member.in_pool(pool) && member.zone().is_none_or(|z| z == availability_zone)
}

/// The rendezvous weight of a member for an instance.
fn rank(instance: &InstanceId, member: &str) -> u64 {
    let hash = fnv1a(
        instance
            .as_str()
            .bytes()
            .chain([0xff])
            .chain(member.bytes()),
    );
    // splitmix64's finaliser: FNV alone mixes the last bytes poorly.
    let mut z = hash.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Step 2, idempotency: the member of the pool the instance already holds, if any.
pub fn held<'a, M: PoolMember>(
    members: &'a [M],
    pool: &str,
    instance: &InstanceId,
    interfaces: &[Eni],
) -> Option<&'a M> {
    members
        .iter()
        .find(|m| m.in_pool(pool) && m.held_by(instance, interfaces))
}

/// A pool member, as the decision to retry, wait or give up sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holding<'a> {
    pub free: bool,
    /// The instance holding it; `None` when free, or held by something that is not an
    /// instance (a NAT gateway, an unattached interface).
    pub holder: Option<&'a InstanceId>,
    /// Already on its way back to the pool (an ENI detaching).
    pub releasing: bool,
}

/// The members of the pool that could serve the instance's AZ, as holdings.
pub fn holdings<'a, M: PoolMember>(
    members: &'a [M],
    pool: &str,
    availability_zone: &str,
) -> Vec<Holding<'a>> {
    members
        .iter()
        .filter(|m| serves(*m, pool, availability_zone))
        .map(|m| Holding {
            free: m.is_free(),
            holder: m.holder_instance(),
            releasing: m.is_releasing(),
        })
        .collect()
}

/// The instances holding members, to look up in Auto Scaling; empty when that is not needed
/// because some member is free or there is none.
pub fn holders_to_check(holdings: &[Holding<'_>]) -> Vec<InstanceId> {
    if holdings.is_empty() || holdings.iter().any(|h| h.free) {
        return Vec::new();
    }
    let mut holders: Vec<InstanceId> = holdings.iter().filter_map(|h| h.holder.cloned()).collect();
    holders.sort();
    holders.dedup();
    holders
}

/// Why no member could be claimed in one pass over the candidates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exhaustion {
    /// The pool has no member here at all.
    NoMember,
    /// Members are free again (the candidates were taken by concurrent claims, or released
    /// meanwhile): claim again.
    Contended { free: usize, members: usize },
    /// Every member is held, and not every holder is on its way out.
    AllHeld { held: usize },
    /// Every member is held by an instance that is leaving, or is already being released:
    /// wait for the release.
    Releasing { held: usize },
}

/// What to do when no candidate could be claimed, from a fresh read of the pool.
pub fn exhaustion(holdings: &[Holding<'_>], holder_states: &[GroupInstance]) -> Exhaustion {
    if holdings.is_empty() {
        return Exhaustion::NoMember;
    }
    let free = holdings.iter().filter(|h| h.free).count();
    if free > 0 {
        return Exhaustion::Contended {
            free,
            members: holdings.len(),
        };
    }
    let states: HashMap<&InstanceId, &LifecycleState> = holder_states
        .iter()
        .map(|h| (&h.instance, &h.state))
        .collect();
    let releasing = holdings.iter().all(|h| {
        h.releasing
            || h.holder
                .and_then(|i| states.get(i))
                .is_some_and(|s| s.is_leaving())
    });
    if releasing {
        Exhaustion::Releasing {
            held: holdings.len(),
        }
    } else {
        Exhaustion::AllHeld {
            held: holdings.len(),
        }
    }
}

/// The instance's interface at the device index, once its attachment is complete. The primary
/// interface is the instance's from the start, even while EC2 still reports it `attaching` for
/// a booting instance; a claim on it then waits for the boot.
pub fn interface_at<'a>(
    attached: &'a [Eni],
    instance: &InstanceId,
    device_index: i32,
) -> Option<&'a Eni> {
    attached.iter().find(|e| {
        e.attachment.as_ref().is_some_and(|a| {
            a.instance.as_ref() == Some(instance)
                && a.device_index == Some(device_index)
                && (a.status == AttachmentStatus::Attached
                    || (device_index == 0 && a.status == AttachmentStatus::Attaching))
        })
    })
}

/// The holders Auto Scaling does not describe: only EC2 can say whether they are gone.
pub fn unknown_holders(holdings: &[Holding<'_>], asg: &[GroupInstance]) -> Vec<InstanceId> {
    let mut unknown: Vec<InstanceId> = holdings
        .iter()
        .filter_map(|h| h.holder)
        .filter(|holder| !asg.iter().any(|s| &s.instance == *holder))
        .cloned()
        .collect();
    unknown.sort();
    unknown.dedup();
    unknown
}

/// Takeover (single-instance HA): the members this launching instance may take from their
/// holders, best first. Only on what AWS has just confirmed: a holder that Auto Scaling reports
/// as a member of the same group that is leaving or unhealthy, or one that Auto Scaling does not
/// know and EC2 reports terminated or gone. `ec2` is EC2's answer for the holders Auto Scaling
/// does not know, `None` when EC2 could not be asked: a holder whose state could not be read is
/// never taken from. Never from a healthy member in service or launching (two launches would
/// take from each other), never from another group, never from a running instance outside the
/// group, never from a NAT gateway or any interface that is not an instance's.
pub fn takeover_victims<'a, M: PoolMember>(
    members: &'a [M],
    pool: &str,
    group: &str,
    instance: &InstanceId,
    asg: &[GroupInstance],
    ec2: Option<&[Ec2Instance]>,
) -> Vec<&'a M> {
    let mut ranked: Vec<(u8, &M)> = members
        .iter()
        .filter(|m| m.in_pool(pool))
        .filter_map(|m| {
            let holder = m.holder_instance().filter(|h| *h != instance)?;
            let rank = match asg.iter().find(|s| &s.instance == holder) {
                Some(s) if s.group != group => return None,
                Some(s) if s.state.is_leaving() => 0,
                Some(s) if !s.healthy => 1,
                Some(_) => return None,
                None => match ec2?.iter().find(|e| &e.instance == holder) {
                    Some(e) if e.state.is_gone() => 2,
                    Some(_) => return None,
                    // EC2 was asked and does not know it: gone
                    None => 2,
                },
            };
            Some((rank, m))
        })
        .collect();
    ranked.sort_by(|(r1, m1), (r2, m2)| r1.cmp(r2).then(m1.member_id().cmp(m2.member_id())));
    ranked.into_iter().map(|(_, m)| m).collect()
}

/// What to release for a leaving instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Release<'a, M> {
    /// Held by the instance: detach (and wait until available) or disassociate, then clear the
    /// holder tag. An Elastic IP stays allocated, in the pool.
    Free(&'a M),
    /// Only tagged as held by the instance: clear the holder tag, while it still names it.
    ClearTag(&'a M),
}

/// The members of the pool a leaving instance holds, from one read of the pool: attached to
/// it (never its primary interface) or associated with it, or still on an interface it held
/// (an address on a pool ENI detached first), or only tagged as held by it. Members of other
/// pools and untagged resources are never touched.
pub fn releases<'a, M: PoolMember>(
    members: &'a [M],
    pool: &str,
    instance: &InstanceId,
) -> Vec<Release<'a, M>> {
    // A member listed twice is released once.
    let mut seen = HashSet::new();
    members
        .iter()
        .filter(|m| m.in_pool(pool) && seen.insert(m.member_id()))
        .filter_map(|m| {
            let tagged = m.holder_tag() == Some(instance.as_str());
            if m.held_by(instance, &[]) || (tagged && m.holder_instance().is_none() && !m.is_free())
            {
                Some(Release::Free(m))
            } else if tagged {
                Some(Release::ClearTag(m))
            } else {
                None
            }
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::{
        Address, AddressAssociation, AllocationId, AssociationId, Attachment, AttachmentId, EniId,
    };

    fn id(s: &str) -> InstanceId {
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

    fn address(n: u32, holder: Option<&str>) -> Address {
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

    fn member(i: &str, group: &str, state: &str, healthy: bool) -> GroupInstance {
        GroupInstance {
            instance: id(i),
            group: group.into(),
            availability_zone: "az-a".into(),
            state: LifecycleState::parse(state),
            healthy,
        }
    }

    fn action(transition: Transition, destination: Option<Location>) -> LifecycleAction {
        LifecycleAction {
            transition,
            group: "g".into(),
            hook: "h".into(),
            instance: id("i-1"),
            token: "t".into(),
            metadata: None,
            origin: None,
            destination,
        }
    }

    fn described(state: &str) -> GroupInstance {
        GroupInstance {
            instance: id("i-1"),
            group: "g".into(),
            availability_zone: "az-a".into(),
            state: LifecycleState::parse(state),
            healthy: true,
        }
    }

    #[test]
    fn only_a_waiting_instance_of_the_named_group_is_pinned() {
        let launch = action(Transition::Launch, Some(Location::AutoScalingGroup));
        assert_eq!(
            check(&launch, Some(&described("Pending:Wait"))),
            Verdict::Pin {
                availability_zone: "az-a".into()
            }
        );
        for state in [
            "InService",
            "Pending",
            "Terminating:Wait",
            "Warmed:Pending:Wait",
        ] {
            assert!(
                matches!(
                    check(&launch, Some(&described(state))),
                    Verdict::Stale { .. }
                ),
                "{state}"
            );
        }
        assert!(matches!(check(&launch, None), Verdict::Stale { .. }));
        let mut other = described("Pending:Wait");
        other.group = "other".into();
        let Verdict::Stale { reason } = check(&launch, Some(&other)) else {
            panic!("pinned for another group");
        };
        assert!(reason.contains("\"other\""), "{reason}");
    }

    #[test]
    fn warm_pool_launches_are_not_pinned_and_warm_pool_returns_release() {
        let into_pool = action(Transition::Launch, Some(Location::WarmPool));
        assert_eq!(
            check(&into_pool, Some(&described("Warmed:Pending:Wait"))),
            Verdict::EnterWarmPool
        );
        assert!(matches!(
            check(&into_pool, Some(&described("Pending:Wait"))),
            Verdict::Stale { .. }
        ));
        let back_to_pool = action(Transition::Terminate, Some(Location::WarmPool));
        assert_eq!(
            check(&back_to_pool, Some(&described("Warmed:Pending:Wait"))),
            Verdict::Release
        );
        let terminate = action(Transition::Terminate, Some(Location::Ec2));
        assert_eq!(
            check(&terminate, Some(&described("Terminating:Wait"))),
            Verdict::Release
        );
        assert!(matches!(
            check(&terminate, Some(&described("InService"))),
            Verdict::Stale { .. }
        ));
    }

    #[test]
    fn candidates_are_free_members_of_the_pool_in_the_zone() {
        let mut members = vec![
            eni(1, "az-a", None),
            eni(2, "az-b", None),
            eni(3, "az-a", Some(("i-9", 1))),
            eni(4, "az-a", None),
        ];
        members.push(Eni {
            pool: Some("other".into()),
            ..eni(5, "az-a", None)
        });
        members.push(Eni {
            availability_zone: None,
            ..eni(6, "az-a", None)
        });
        let found = candidates(&members, "lic", "az-a", &id("i-1"));
        let mut ids: Vec<&str> = found.iter().map(|e| e.id.as_str()).collect();
        ids.sort();
        assert_eq!(ids, ["eni-0001", "eni-0004"]);
    }

    #[test]
    fn the_order_is_fixed_per_instance_and_spread_across_instances() {
        let members: Vec<Eni> = (0..20).map(|n| eni(n, "az-a", None)).collect();
        let first = |i: &str| candidates(&members, "lic", "az-a", &id(i))[0].id.clone();
        assert_eq!(first("i-0abc"), first("i-0abc"));
        let firsts: HashSet<_> = (0..50).map(|n| first(&format!("i-{n:x}"))).collect();
        assert!(
            firsts.len() > 8,
            "50 instances started on only {} members",
            firsts.len()
        );
    }

    #[test]
    fn two_reads_of_a_changing_pool_keep_the_relative_order_of_the_members_they_share() {
        // Two deliveries of one event read the pool at different moments: one sees a member
        // the other does not. The members both see come in the same order for both, so they
        // try the same member first unless the extra one outranks it.
        let all: Vec<Eni> = (0..12).map(|n| eni(n, "az-a", None)).collect();
        for instance in ["i-0a", "i-0b", "i-0c", "i-0d"] {
            let full: Vec<&str> = candidates(&all, "lic", "az-a", &id(instance))
                .iter()
                .map(|e| e.id.as_str())
                .collect();
            for missing in 0..12 {
                let fewer: Vec<Eni> = all
                    .iter()
                    .filter(|e| e.id != all[missing].id)
                    .cloned()
                    .collect();
                let partial: Vec<String> = candidates(&fewer, "lic", "az-a", &id(instance))
                    .iter()
                    .map(|e| e.id.to_string())
                    .collect();
                let expected: Vec<&str> = full
                    .iter()
                    .copied()
                    .filter(|e| *e != all[missing].id.as_str())
                    .collect();
                assert_eq!(partial, expected, "{instance} without {missing}");
            }
        }
    }

    #[test]
    fn waits_only_when_every_holder_is_leaving() {
        let members = vec![
            eni(1, "az-a", Some(("i-8", 1))),
            eni(2, "az-a", Some(("i-9", 1))),
            eni(3, "az-b", None),
        ];
        let held = holdings(&members, "lic", "az-a");
        assert_eq!(holders_to_check(&held), vec![id("i-8"), id("i-9")]);
        let leaving = [
            member("i-8", "g", "Terminating:Wait", true),
            member("i-9", "g", "Terminating", true),
        ];
        assert_eq!(
            exhaustion(&held, &leaving),
            Exhaustion::Releasing { held: 2 }
        );
        let one_stays = [
            member("i-8", "g", "Terminating:Wait", true),
            member("i-9", "g", "InService", true),
        ];
        assert_eq!(
            exhaustion(&held, &one_stays),
            Exhaustion::AllHeld { held: 2 }
        );
        assert_eq!(exhaustion(&held, &[]), Exhaustion::AllHeld { held: 2 });
        assert_eq!(
            exhaustion(&holdings(&members, "lic", "az-c"), &leaving),
            Exhaustion::NoMember
        );
        let mut detaching = members.clone();
        detaching[1].attachment.as_mut().unwrap().status = AttachmentStatus::Detaching;
        let held = holdings(&detaching, "lic", "az-a");
        assert_eq!(
            exhaustion(&held, &leaving[..1]),
            Exhaustion::Releasing { held: 2 }
        );
    }

    #[test]
    fn free_members_after_lost_claims_mean_claim_again() {
        let members = vec![eni(1, "az-a", Some(("i-8", 1))), eni(2, "az-a", None)];
        let held = holdings(&members, "lic", "az-a");
        assert!(holders_to_check(&held).is_empty());
        assert_eq!(
            exhaustion(&held, &[]),
            Exhaustion::Contended {
                free: 1,
                members: 2
            }
        );
    }

    #[test]
    fn only_unassociated_addresses_of_the_pool_are_candidates() {
        let mut nat = address(3, None);
        nat.association = Some(AddressAssociation {
            id: Some(AssociationId::parse("eipassoc-0003").unwrap()),
            instance: None,
            network_interface: Some(EniId::parse("eni-0nat").unwrap()),
            private_ip: Some("10.0.0.5".into()),
        });
        let outside = Address {
            pool: None,
            ..address(4, None)
        };
        let addresses = [
            address(1, None),
            address(2, Some("i-7")),
            nat,
            outside,
            address(5, None),
        ];
        // an address belongs to the region: a candidate in every AZ
        let mut ids: Vec<&str> = candidates(&addresses, "egress", "az-b", &id("i-1"))
            .iter()
            .map(|a| a.allocation.as_str())
            .collect();
        ids.sort();
        assert_eq!(ids, ["eipalloc-0001", "eipalloc-0005"]);
        let held = holdings(&addresses[1..3], "egress", "az-b");
        assert_eq!(
            exhaustion(&held, &[member("i-7", "g", "Terminating:Wait", true)]),
            Exhaustion::AllHeld { held: 2 },
            "a NAT gateway never releases"
        );
    }

    #[test]
    fn an_address_on_any_interface_of_the_instance_is_held() {
        let addresses = [address(1, Some("i-1")), address(2, None)];
        assert_eq!(
            held(&addresses, "egress", &id("i-1"), &[])
                .unwrap()
                .allocation
                .as_str(),
            "eipalloc-0001"
        );
        let mut on_detached_eni = address(3, None);
        on_detached_eni.association = Some(AddressAssociation {
            id: Some(AssociationId::parse("eipassoc-0003").unwrap()),
            instance: None,
            network_interface: Some(EniId::parse("eni-0001").unwrap()),
            private_ip: None,
        });
        let interfaces = [eni(1, "az-a", Some(("i-2", 1)))];
        assert!(
            held(
                std::slice::from_ref(&on_detached_eni),
                "egress",
                &id("i-2"),
                &interfaces
            )
            .is_some()
        );
        assert!(held(&addresses, "egress", &id("i-9"), &[]).is_none());
        // an ENI is held as a secondary interface, never as the primary
        let primary = [Eni {
            pool: Some("lic".into()),
            ..eni(4, "az-a", Some(("i-1", 0)))
        }];
        assert!(held(&primary, "lic", &id("i-1"), &[]).is_none());
    }

    fn ec2(instance: &str, state: &str) -> Ec2Instance {
        Ec2Instance {
            instance: id(instance),
            state: crate::model::RunState::parse(state),
        }
    }

    #[test]
    fn a_secondary_interface_is_there_once_attached_and_the_primary_at_once() {
        let mut attaching = eni(1, "az-a", Some(("i-1", 1)));
        attaching.attachment.as_mut().unwrap().status = AttachmentStatus::Attaching;
        let mut primary = eni(2, "az-a", Some(("i-1", 0)));
        primary.attachment.as_mut().unwrap().status = AttachmentStatus::Attaching;
        let interfaces = [attaching, primary];
        assert!(interface_at(&interfaces, &id("i-1"), 1).is_none());
        assert_eq!(
            interface_at(&interfaces, &id("i-1"), 0).map(|e| e.id.as_str()),
            Some("eni-0002")
        );
        assert!(interface_at(&interfaces, &id("i-2"), 0).is_none());
    }

    #[test]
    fn takeover_only_on_confirmed_facts() {
        let addresses = [
            address(1, Some("i-a")),
            address(2, Some("i-b")),
            address(3, Some("i-c")),
            address(4, Some("i-d")),
            address(5, Some("i-e")),
            address(6, Some("i-f")),
            address(7, Some("i-g")),
            address(8, Some("i-h")),
        ];
        let asg = [
            member("i-a", "g", "InService", true),
            member("i-b", "g", "InService", false),
            member("i-c", "g", "Terminating:Wait", true),
            member("i-d", "other", "Terminating:Wait", true),
            member("i-e", "g", "Pending:Wait", true),
        ];
        // i-f, i-g, i-h are in no group: EC2 says i-f is terminated, i-g runs, i-h is gone
        let found = [ec2("i-f", "terminated"), ec2("i-g", "running")];
        let taken: Vec<&str> =
            takeover_victims(&addresses, "egress", "g", &id("i-new"), &asg, Some(&found))
                .iter()
                .map(|a| a.allocation.as_str())
                .collect();
        // leaving first, then unhealthy, then gone
        assert_eq!(
            taken,
            [
                "eipalloc-0003",
                "eipalloc-0002",
                "eipalloc-0006",
                "eipalloc-0008"
            ]
        );
        // a holder whose state could not be read is never taken from
        let unread: Vec<&str> =
            takeover_victims(&addresses, "egress", "g", &id("i-new"), &asg, None)
                .iter()
                .map(|a| a.allocation.as_str())
                .collect();
        assert_eq!(unread, ["eipalloc-0003", "eipalloc-0002"]);
        // nor one Auto Scaling was not asked about: the holder tag alone proves nothing
        assert!(takeover_victims(&addresses, "egress", "g", &id("i-new"), &[], None).is_empty());
        let held = holdings(&addresses, "egress", "az-a");
        assert_eq!(
            unknown_holders(&held, &asg),
            vec![id("i-f"), id("i-g"), id("i-h")]
        );
    }

    #[test]
    fn releases_free_what_the_instance_holds_and_clear_tags_that_still_name_it() {
        let mut taken_over = address(2, Some("i-2"));
        taken_over.holder = Some("i-2".into());
        let mut stale_tag = address(3, None);
        stale_tag.holder = Some("i-1".into());
        let mut was_ours_now_theirs = address(4, Some("i-9"));
        was_ours_now_theirs.holder = Some("i-1".into());
        let foreign = Address {
            pool: Some("other".into()),
            ..address(5, Some("i-1"))
        };
        let addresses = [
            address(1, Some("i-1")),
            taken_over,
            stale_tag,
            was_ours_now_theirs,
            foreign,
        ];
        let found = releases(&addresses, "egress", &id("i-1"));
        let ids: Vec<(&str, bool)> = found
            .iter()
            .map(|r| match r {
                Release::Free(a) => (a.allocation.as_str(), true),
                Release::ClearTag(a) => (a.allocation.as_str(), false),
            })
            .collect();
        // the address taken over keeps its association; only a tag naming i-1 is cleared
        assert_eq!(
            ids,
            [
                ("eipalloc-0001", true),
                ("eipalloc-0003", false),
                ("eipalloc-0004", false)
            ]
        );
    }

    #[test]
    fn releases_never_include_the_primary_or_other_pools() {
        let primary = Eni {
            holder: None,
            ..eni(1, "az-a", Some(("i-1", 0)))
        };
        let pinned = eni(2, "az-a", Some(("i-1", 1)));
        let foreign = Eni {
            pool: None,
            ..eni(3, "az-a", Some(("i-1", 2)))
        };
        let stale_tag = Eni {
            holder: Some("i-1".into()),
            ..eni(4, "az-a", None)
        };
        // what the instance has attached, and what is tagged as its: pinned is in both
        let listed = [primary, pinned.clone(), foreign, pinned, stale_tag];
        let found = releases(&listed, "lic", &id("i-1"));
        assert_eq!(found.len(), 2);
        assert!(matches!(found[0], Release::Free(e) if e.id.as_str() == "eni-0002"));
        assert!(matches!(found[1], Release::ClearTag(e) if e.id.as_str() == "eni-0004"));
    }
}
