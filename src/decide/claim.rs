//! The claim's decisions: which members to try and in what order, what a pool read says after a
//! pass in which no claim was won (claim again, wait for a release, give up), and from which
//! holders a member may be taken over.

use std::collections::HashMap;

use crate::config::{DeviceIndex, PoolName, Takeover};
use crate::model::{AttachmentStatus, Eni, GroupInstance, InstanceId, LifecycleState, PoolMember};

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
    device_index: DeviceIndex,
) -> Option<&'a Eni> {
    let primary = device_index == DeviceIndex::PRIMARY;
    attached.iter().find(|e| {
        e.attachment.as_ref().is_some_and(|a| {
            a.instance.as_ref() == Some(instance)
                && a.device_index == Some(device_index.get())
                && (a.status == AttachmentStatus::Attached
                    || (primary && a.status == AttachmentStatus::Attaching))
        })
    })
}

/// What the claim does after a pass in which no candidate was won, decided on a fresh read of
/// the pool (and, takeover aside, which was tried before this).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterPass {
    /// Members are free again (concurrent claims took the candidates): claim again.
    ClaimAgain,
    /// Every holder is on its way out: wait for a release, then claim again.
    WaitForRelease,
    /// Nothing can be pinned now: why. The claim looks once more at the instance before it
    /// settles on this (a concurrent delivery may have pinned it meanwhile).
    GiveUp(String),
    /// Not a failure, but not done either: every holder is leaving and the function's time is
    /// up before a release, or the claim kept losing races while members were listed free. The
    /// claim is left for a redelivery (or the next sweep).
    Unfinished(String),
}

/// Whether a claim may wait for a leaving holder's release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// A launch, with time left: it waits, keeping its lifecycle action alive.
    ForRelease,
    /// A launch whose deadline leaves no time for another look.
    NoTimeLeft,
    /// The sweep: no lifecycle action to keep alive; it comes back at its next run.
    NoAction,
}

/// The takeover a claim may make: none for a kind whose members cannot be taken over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MayTakeOver {
    NotThisKind,
    Setting(Takeover),
}

/// Decides what follows a lost pass. `passes_contended` counts the passes lost to concurrent
/// claims so far (this one included).
pub fn after_pass(
    exhaustion: &Exhaustion,
    pool: &PoolName,
    zone: Option<&str>,
    passes_contended: u32,
    takeover: MayTakeOver,
    wait: Wait,
) -> AfterPass {
    let scope = zone.map(|z| format!(" in {z}")).unwrap_or_default();
    let reason = match exhaustion {
        Exhaustion::NoMember => format!("pool {pool:?} has no member{scope}"),
        Exhaustion::AllHeld { held } => {
            let why = match takeover {
                MayTakeOver::Setting(Takeover::Allowed) => {
                    ", and no holder may be taken over (each is a healthy member in service or launching, in another group, or not confirmed gone)"
                }
                MayTakeOver::Setting(Takeover::Off) => {
                    " (set \"takeover\": true for single-instance HA)"
                }
                MayTakeOver::NotThisKind => "",
            };
            format!("pool {pool:?} is exhausted{scope}: all {held} members are held{why}")
        }
        Exhaustion::Contended { free, members } => {
            // Every lost race means another claimer won a member, so the members read can beat
            // one claimer only so many times before they are all held. Losing races is no fact
            // that the pool is exhausted (the read may be a first page of a larger pool), so past
            // the bound the claim is left unfinished, never failed.
            let limit = *members as u32 + 5;
            if passes_contended <= limit {
                return AfterPass::ClaimAgain;
            }
            return AfterPass::Unfinished(format!(
                "lost every claim on pool {pool:?}{scope} {limit} times in a row, with {free} members still listed as free"
            ));
        }
        Exhaustion::Releasing { held } => {
            let why =
                format!("all {held} members of pool {pool:?}{scope} are held by leaving instances");
            return match wait {
                Wait::ForRelease => AfterPass::WaitForRelease,
                Wait::NoTimeLeft => AfterPass::Unfinished(format!(
                    "{why}, and none was released before the function's deadline"
                )),
                Wait::NoAction => AfterPass::GiveUp(format!(
                    "{why}; the next sweep comes back once one is released"
                )),
            };
        }
    };
    AfterPass::GiveUp(reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::fixtures::{address, eni, id, member};
    use crate::model::{Address, AddressAssociation, AssociationId, EniId};
    use std::collections::HashSet;

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

    #[test]
    fn a_secondary_interface_is_there_once_attached_and_the_primary_at_once() {
        let mut attaching = eni(1, "az-a", Some(("i-1", 1)));
        attaching.attachment.as_mut().unwrap().status = AttachmentStatus::Attaching;
        let mut primary = eni(2, "az-a", Some(("i-1", 0)));
        primary.attachment.as_mut().unwrap().status = AttachmentStatus::Attaching;
        let interfaces = [attaching, primary];
        assert!(interface_at(&interfaces, &id("i-1"), DeviceIndex::new(1).unwrap()).is_none());
        assert_eq!(
            interface_at(&interfaces, &id("i-1"), DeviceIndex::PRIMARY).map(|e| e.id.as_str()),
            Some("eni-0002")
        );
        assert!(interface_at(&interfaces, &id("i-2"), DeviceIndex::PRIMARY).is_none());
    }

    fn pool() -> PoolName {
        PoolName::parse("lic").unwrap()
    }

    #[test]
    fn a_lost_pass_claims_again_while_members_are_free_within_a_bound() {
        let contended = Exhaustion::Contended {
            free: 1,
            members: 3,
        };
        for pass in 1..=8 {
            assert_eq!(
                after_pass(
                    &contended,
                    &pool(),
                    Some("az-a"),
                    pass,
                    ENI,
                    Wait::ForRelease
                ),
                AfterPass::ClaimAgain,
                "pass {pass}"
            );
        }
        let AfterPass::Unfinished(reason) =
            after_pass(&contended, &pool(), Some("az-a"), 9, ENI, Wait::ForRelease)
        else {
            panic!("three members read beat one claimer 9 times: left for a redelivery");
        };
        assert!(
            reason.contains("lost every claim on pool \"lic\" in az-a 8 times"),
            "{reason}"
        );
    }

    #[test]
    fn a_pool_held_by_leaving_instances_is_waited_for_by_a_launch_with_time_left_only() {
        let releasing = Exhaustion::Releasing { held: 2 };
        let after = |wait| after_pass(&releasing, &pool(), None, 0, ENI, wait);
        assert_eq!(after(Wait::ForRelease), AfterPass::WaitForRelease);
        // out of time is not a failure: the launch is left for a redelivery
        let AfterPass::Unfinished(reason) = after(Wait::NoTimeLeft) else {
            panic!("a launch out of time gave up");
        };
        assert!(
            reason.contains("before the function's deadline"),
            "{reason}"
        );
        // the sweep gives up, and comes back
        let AfterPass::GiveUp(reason) = after(Wait::NoAction) else {
            panic!("the sweep waited without an action to keep alive");
        };
        assert!(reason.contains("held by leaving instances"), "{reason}");
    }

    #[test]
    fn an_exhausted_pool_says_why_and_how_takeover_would_change_it() {
        let all_held = Exhaustion::AllHeld { held: 2 };
        let reason = |takeover| match after_pass(
            &all_held,
            &pool(),
            Some("az-b"),
            0,
            takeover,
            Wait::ForRelease,
        ) {
            AfterPass::GiveUp(reason) => reason,
            other => panic!("{other:?}"),
        };
        let plain = reason(ENI);
        assert!(plain.ends_with("all 2 members are held"), "{plain}");
        let off = reason(MayTakeOver::Setting(Takeover::Off));
        assert!(off.contains("set \"takeover\": true"), "{off}");
        let allowed = reason(MayTakeOver::Setting(Takeover::Allowed));
        assert!(allowed.contains("no holder may be taken over"), "{allowed}");
        assert_eq!(
            after_pass(
                &Exhaustion::NoMember,
                &pool(),
                Some("az-b"),
                0,
                ENI,
                Wait::ForRelease
            ),
            AfterPass::GiveUp("pool \"lic\" has no member in az-b".into())
        );
    }

    const ENI: MayTakeOver = MayTakeOver::NotThisKind;
}
