//! The decisions, with no I/O: whether an event still matches Auto Scaling, which pool members
//! to try and in what order, whether to wait for a release, and what to release.

use std::collections::HashMap;

use crate::event::LifecycleAction;
use crate::model::{
    Address, AttachmentStatus, Eni, GroupInstance, InstanceId, LifecycleResult, LifecycleState,
    Location, Transition,
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

/// Step 3: the free pool members in the AZ, in the order this instance tries them. The order is
/// a shuffle seeded by the instance id: concurrent launches spread over the candidates instead
/// of all racing for the first, and a redelivered event tries the same order again.
pub fn eni_candidates<'a>(
    members: &'a [Eni],
    pool: &str,
    availability_zone: &str,
    instance: &InstanceId,
) -> Vec<&'a Eni> {
    let mut candidates: Vec<&Eni> = members
        .iter()
        .filter(|e| {
            e.in_pool(pool)
                && e.availability_zone.as_deref() == Some(availability_zone)
                && e.is_free()
        })
        .collect();
    candidates.sort_by(|a, b| a.id.cmp(&b.id));
    spread(&mut candidates, instance);
    candidates
}

/// Shuffles `items` in an order fixed by the instance id.
pub fn spread<T>(items: &mut [T], instance: &InstanceId) {
    let mut rng = fastrand::Rng::with_seed(fnv1a(instance.as_str().as_bytes()));
    rng.shuffle(items);
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The pool member the instance already holds, if any (step 2, idempotency).
pub fn held_eni<'a>(attached: &'a [Eni], pool: &str, instance: &InstanceId) -> Option<&'a Eni> {
    attached
        .iter()
        .find(|e| e.in_pool(pool) && e.attachment_instance() == Some(instance) && !e.is_primary())
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

/// The pool ENIs of the AZ, as holdings.
pub fn eni_holdings<'a>(
    members: &'a [Eni],
    pool: &str,
    availability_zone: &str,
) -> Vec<Holding<'a>> {
    members
        .iter()
        .filter(|e| e.in_pool(pool) && e.availability_zone.as_deref() == Some(availability_zone))
        .map(|e| Holding {
            free: e.is_free(),
            holder: e.attachment_instance(),
            releasing: e.attachment.as_ref().is_some_and(|a| {
                matches!(
                    a.status,
                    AttachmentStatus::Detaching | AttachmentStatus::Detached
                )
            }),
        })
        .collect()
}

/// The pool's Elastic IPs (an address belongs to a region, not to an AZ), as holdings.
pub fn address_holdings<'a>(addresses: &'a [Address], pool: &str) -> Vec<Holding<'a>> {
    addresses
        .iter()
        .filter(|a| a.in_pool(pool))
        .map(|a| Holding {
            free: a.is_free(),
            holder: a.associated_instance(),
            releasing: false,
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

/// The free Elastic IPs of the pool, in the order this instance tries them.
pub fn address_candidates<'a>(
    addresses: &'a [Address],
    pool: &str,
    instance: &InstanceId,
) -> Vec<&'a Address> {
    let mut candidates: Vec<&Address> = addresses
        .iter()
        .filter(|a| a.in_pool(pool) && a.is_free())
        .collect();
    candidates.sort_by(|a, b| a.allocation.cmp(&b.allocation));
    spread(&mut candidates, instance);
    candidates
}

/// The pool address the instance already holds, on any of its interfaces (idempotency).
pub fn held_address<'a>(
    addresses: &'a [Address],
    pool: &str,
    instance: &InstanceId,
    interfaces: &[Eni],
) -> Option<&'a Address> {
    addresses.iter().find(|a| {
        a.in_pool(pool)
            && (a.associated_instance() == Some(instance)
                || a.associated_interface()
                    .is_some_and(|eni| interfaces.iter().any(|i| &i.id == eni)))
    })
}

/// The instance's interface at the device index, once its attachment is complete.
pub fn interface_at<'a>(
    attached: &'a [Eni],
    instance: &InstanceId,
    device_index: i32,
) -> Option<&'a Eni> {
    attached.iter().find(|e| {
        e.attachment.as_ref().is_some_and(|a| {
            a.instance.as_ref() == Some(instance)
                && a.device_index == Some(device_index)
                && a.status == AttachmentStatus::Attached
        })
    })
}

/// Single-instance HA: the pool addresses this launching instance may take over, best first.
/// A holder may be taken from when it is a member of the same group that is leaving or
/// unhealthy, or when it left every group while still holding the lease pinhook gave it.
/// Never from a healthy member that is in service or entering it (two launches would take the
/// address from each other), never from another group, never from a NAT gateway or any
/// interface that is not an instance's.
pub fn takeover_candidates<'a>(
    addresses: &'a [Address],
    pool: &str,
    group: &str,
    instance: &InstanceId,
    holder_states: &[GroupInstance],
) -> Vec<&'a Address> {
    let mut ranked: Vec<(u8, &Address)> = addresses
        .iter()
        .filter(|a| a.in_pool(pool) && a.association.as_ref().is_some_and(|s| s.id.is_some()))
        .filter_map(|a| {
            let holder = a.associated_instance().filter(|h| *h != instance)?;
            let rank = match holder_states.iter().find(|s| &s.instance == holder) {
                Some(s) if s.group != group => return None,
                Some(s) if s.state.is_leaving() => 0,
                Some(s) if !s.healthy => 1,
                Some(_) => return None,
                None if a.holder.as_deref() == Some(holder.as_str()) => 2,
                None => return None,
            };
            Some((rank, a))
        })
        .collect();
    ranked.sort_by(|(r1, a1), (r2, a2)| r1.cmp(r2).then(a1.allocation.cmp(&a2.allocation)));
    ranked.into_iter().map(|(_, a)| a).collect()
}

/// What to release for a leaving instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Release<'a> {
    /// Attached to the instance: detach, wait until available, clear the holder tag.
    Detach(&'a Eni),
    /// Only tagged as held by the instance (already detached): clear the holder tag.
    ClearTag(&'a Eni),
}

/// The pool ENIs a leaving instance holds: attached to it (never its primary interface), or
/// tagged as held by it. Members of other pools and untagged ENIs are never touched.
pub fn eni_releases<'a>(
    attached: &'a [Eni],
    tagged: &'a [Eni],
    pool: &str,
    instance: &InstanceId,
) -> Vec<Release<'a>> {
    let mut releases: Vec<Release<'a>> = attached
        .iter()
        .filter(|e| e.in_pool(pool) && e.attachment_instance() == Some(instance) && !e.is_primary())
        .map(Release::Detach)
        .collect();
    for eni in tagged {
        let listed = releases.iter().any(|r| match r {
            Release::Detach(e) | Release::ClearTag(e) => e.id == eni.id,
        });
        if !listed && eni.in_pool(pool) && eni.holder.as_deref() == Some(instance.as_str()) {
            releases.push(
                if eni.attachment_instance() == Some(instance) && !eni.is_primary() {
                    Release::Detach(eni)
                } else {
                    Release::ClearTag(eni)
                },
            );
        }
    }
    releases
}

/// What to release of a leaving instance's Elastic IPs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressRelease<'a> {
    /// Associated with the instance (or still with an interface it held): disassociate, then
    /// clear the holder tag. The address stays allocated, in the pool.
    Disassociate(&'a Address),
    /// Only tagged as held by the instance: clear the holder tag.
    ClearTag(&'a Address),
}

/// The pool addresses a leaving instance holds. An address another instance has taken over
/// since is not the leaving instance's any more, and addresses outside the pool are never
/// touched.
pub fn address_releases<'a>(
    addresses: &'a [Address],
    pool: &str,
    instance: &InstanceId,
    interfaces: &[Eni],
) -> Vec<AddressRelease<'a>> {
    addresses
        .iter()
        .filter(|a| a.in_pool(pool))
        .filter_map(|a| {
            let on_its_interface = a
                .associated_interface()
                .is_some_and(|eni| interfaces.iter().any(|i| &i.id == eni));
            let tagged = a.holder.as_deref() == Some(instance.as_str());
            let other_holder = a.associated_instance().is_some_and(|h| h != instance);
            if a.associated_instance() == Some(instance) || on_its_interface {
                Some(AddressRelease::Disassociate(a))
            } else if tagged && other_holder {
                None
            } else if tagged && a.association.is_some() {
                // Still on an interface the instance held, e.g. a pool ENI detached first.
                Some(AddressRelease::Disassociate(a))
            } else if tagged {
                Some(AddressRelease::ClearTag(a))
            } else {
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        AddressAssociation, AllocationId, AssociationId, Attachment, AttachmentId, EniId,
    };

    fn id(s: &str) -> InstanceId {
        InstanceId::parse(s).unwrap()
    }

    fn eni(n: u32, az: &str, holder: Option<(&str, i32)>) -> Eni {
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
        let candidates = eni_candidates(&members, "lic", "az-a", &id("i-1"));
        let mut ids: Vec<&str> = candidates.iter().map(|e| e.id.as_str()).collect();
        ids.sort();
        assert_eq!(ids, ["eni-0001", "eni-0004"]);
    }

    #[test]
    fn the_order_is_fixed_per_instance_and_spread_across_instances() {
        let members: Vec<Eni> = (0..20).map(|n| eni(n, "az-a", None)).collect();
        let first = |i: &str| {
            eni_candidates(&members, "lic", "az-a", &id(i))[0]
                .id
                .clone()
        };
        assert_eq!(first("i-0abc"), first("i-0abc"));
        let firsts: std::collections::HashSet<_> =
            (0..50).map(|n| first(&format!("i-{n:x}"))).collect();
        assert!(
            firsts.len() > 8,
            "50 instances started on only {} members",
            firsts.len()
        );
    }

    #[test]
    fn waits_only_when_every_holder_is_leaving() {
        let members = vec![
            eni(1, "az-a", Some(("i-8", 1))),
            eni(2, "az-a", Some(("i-9", 1))),
            eni(3, "az-b", None),
        ];
        let holdings = eni_holdings(&members, "lic", "az-a");
        assert_eq!(holders_to_check(&holdings), vec![id("i-8"), id("i-9")]);
        let leaving = [
            member("i-8", "g", "Terminating:Wait", true),
            member("i-9", "g", "Terminating", true),
        ];
        assert_eq!(
            exhaustion(&holdings, &leaving),
            Exhaustion::Releasing { held: 2 }
        );
        let one_stays = [
            member("i-8", "g", "Terminating:Wait", true),
            member("i-9", "g", "InService", true),
        ];
        assert_eq!(
            exhaustion(&holdings, &one_stays),
            Exhaustion::AllHeld { held: 2 }
        );
        assert_eq!(exhaustion(&holdings, &[]), Exhaustion::AllHeld { held: 2 });
        assert_eq!(
            exhaustion(&eni_holdings(&members, "lic", "az-c"), &leaving),
            Exhaustion::NoMember
        );
        let mut detaching = members.clone();
        detaching[1].attachment.as_mut().unwrap().status = AttachmentStatus::Detaching;
        let holdings = eni_holdings(&detaching, "lic", "az-a");
        assert_eq!(
            exhaustion(&holdings, &leaving[..1]),
            Exhaustion::Releasing { held: 2 }
        );
    }

    #[test]
    fn free_members_after_lost_claims_mean_claim_again() {
        let members = vec![eni(1, "az-a", Some(("i-8", 1))), eni(2, "az-a", None)];
        let holdings = eni_holdings(&members, "lic", "az-a");
        assert!(holders_to_check(&holdings).is_empty());
        assert_eq!(
            exhaustion(&holdings, &[]),
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
        let mut ids: Vec<&str> = address_candidates(&addresses, "egress", &id("i-1"))
            .iter()
            .map(|a| a.allocation.as_str())
            .collect();
        ids.sort();
        assert_eq!(ids, ["eipalloc-0001", "eipalloc-0005"]);
        let holdings = address_holdings(&addresses[1..3], "egress");
        assert_eq!(
            exhaustion(&holdings, &[member("i-7", "g", "Terminating:Wait", true)]),
            Exhaustion::AllHeld { held: 2 },
            "a NAT gateway never releases"
        );
    }

    #[test]
    fn an_address_on_any_interface_of_the_instance_is_held() {
        let addresses = [address(1, Some("i-1")), address(2, None)];
        assert_eq!(
            held_address(&addresses, "egress", &id("i-1"), &[])
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
            held_address(
                std::slice::from_ref(&on_detached_eni),
                "egress",
                &id("i-2"),
                &interfaces
            )
            .is_some()
        );
        assert!(held_address(&addresses, "egress", &id("i-9"), &[]).is_none());
    }

    #[test]
    fn takeover_only_from_leaving_or_unhealthy_members_of_the_same_group() {
        let addresses = [
            address(1, Some("i-a")),
            address(2, Some("i-b")),
            address(3, Some("i-c")),
            address(4, Some("i-d")),
            address(5, Some("i-e")),
            address(6, Some("i-f")),
        ];
        let states = [
            member("i-a", "g", "InService", true),
            member("i-b", "g", "InService", false),
            member("i-c", "g", "Terminating:Wait", true),
            member("i-d", "other", "Terminating:Wait", true),
            member("i-e", "g", "Pending:Wait", true),
        ];
        let taken: Vec<&str> =
            takeover_candidates(&addresses, "egress", "g", &id("i-new"), &states)
                .iter()
                .map(|a| a.allocation.as_str())
                .collect();
        // leaving first, then unhealthy, then a former member still holding pinhook's lease
        assert_eq!(taken, ["eipalloc-0003", "eipalloc-0002", "eipalloc-0006"]);
        let mut not_ours = address(7, Some("i-g"));
        not_ours.holder = None;
        assert!(takeover_candidates(&[not_ours], "egress", "g", &id("i-new"), &[]).is_empty());
    }

    #[test]
    fn address_releases_leave_taken_over_and_foreign_addresses_alone() {
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
        let releases = address_releases(&addresses, "egress", &id("i-1"), &[]);
        assert_eq!(releases.len(), 2);
        assert!(
            matches!(releases[0], AddressRelease::Disassociate(a) if a.allocation.as_str() == "eipalloc-0001")
        );
        assert!(
            matches!(releases[1], AddressRelease::ClearTag(a) if a.allocation.as_str() == "eipalloc-0003")
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
        let attached = [primary, pinned.clone(), foreign];
        let tagged = [pinned, stale_tag];
        let releases = eni_releases(&attached, &tagged, "lic", &id("i-1"));
        assert_eq!(releases.len(), 2);
        assert!(matches!(releases[0], Release::Detach(e) if e.id.as_str() == "eni-0002"));
        assert!(matches!(releases[1], Release::ClearTag(e) if e.id.as_str() == "eni-0004"));
    }
}
