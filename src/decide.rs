//! The decisions, with no I/O: whether an event still matches Auto Scaling, which pool members
//! to try and in what order, whether to wait for a release, and what to release.

use std::collections::HashMap;

use crate::event::LifecycleAction;
use crate::model::{
    AttachmentStatus, Eni, GroupInstance, InstanceId, LifecycleResult, LifecycleState, Location,
    Transition,
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

/// Why no member could be claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exhaustion {
    /// The pool has no member in the AZ at all.
    NoMemberInZone,
    /// Every member in the AZ is held, and not every holder is on its way out.
    AllHeld { held: usize },
    /// Every member in the AZ is held by an instance that is leaving: wait for the release.
    Releasing { held: usize },
}

/// Whether to wait: only when every member in the AZ is held by an instance that is
/// terminating, or is already detaching.
pub fn exhaustion(
    members: &[Eni],
    pool: &str,
    availability_zone: &str,
    holders: &[GroupInstance],
) -> Exhaustion {
    let states: HashMap<&InstanceId, &LifecycleState> =
        holders.iter().map(|h| (&h.instance, &h.state)).collect();
    let in_zone: Vec<&Eni> = members
        .iter()
        .filter(|e| e.in_pool(pool) && e.availability_zone.as_deref() == Some(availability_zone))
        .collect();
    if in_zone.is_empty() {
        return Exhaustion::NoMemberInZone;
    }
    let held: Vec<&&Eni> = in_zone.iter().filter(|e| !e.is_free()).collect();
    let releasing = held.iter().all(|e| {
        let detaching = e.attachment.as_ref().is_some_and(|a| {
            matches!(
                a.status,
                AttachmentStatus::Detaching | AttachmentStatus::Detached
            )
        });
        let holder_leaving = e
            .attachment_instance()
            .and_then(|i| states.get(i))
            .is_some_and(|s| s.is_leaving());
        detaching || holder_leaving
    });
    if releasing && !held.is_empty() {
        Exhaustion::Releasing { held: held.len() }
    } else {
        Exhaustion::AllHeld { held: held.len() }
    }
}

/// The instances holding members of the pool in the AZ, to look up in Auto Scaling.
pub fn holders_in_zone(members: &[Eni], pool: &str, availability_zone: &str) -> Vec<InstanceId> {
    let mut holders: Vec<InstanceId> = members
        .iter()
        .filter(|e| e.in_pool(pool) && e.availability_zone.as_deref() == Some(availability_zone))
        .filter_map(|e| e.attachment_instance().cloned())
        .collect();
    holders.sort();
    holders.dedup();
    holders
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Attachment, AttachmentId, EniId};

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
            pool: Some("lic".into()),
            holder: holder.map(|(i, _)| i.to_owned()),
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
        let holder = |i: &str, state: &str| GroupInstance {
            instance: id(i),
            group: "g".into(),
            availability_zone: "az-a".into(),
            state: LifecycleState::parse(state),
            healthy: true,
        };
        let leaving = [
            holder("i-8", "Terminating:Wait"),
            holder("i-9", "Terminating"),
        ];
        assert_eq!(
            exhaustion(&members, "lic", "az-a", &leaving),
            Exhaustion::Releasing { held: 2 }
        );
        let one_stays = [
            holder("i-8", "Terminating:Wait"),
            holder("i-9", "InService"),
        ];
        assert_eq!(
            exhaustion(&members, "lic", "az-a", &one_stays),
            Exhaustion::AllHeld { held: 2 }
        );
        assert_eq!(
            exhaustion(&members, "lic", "az-a", &[]),
            Exhaustion::AllHeld { held: 2 }
        );
        assert_eq!(
            exhaustion(&members, "lic", "az-c", &leaving),
            Exhaustion::NoMemberInZone
        );
        assert_eq!(
            holders_in_zone(&members, "lic", "az-a"),
            vec![id("i-8"), id("i-9")]
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
