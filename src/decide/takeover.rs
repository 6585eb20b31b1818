//! Takeover's decision (single-instance HA): from which holders a member may be taken, on facts
//! AWS has just confirmed.

use crate::model::{Ec2Instance, GroupInstance, InstanceId, PoolMember};

/// What AWS reported just now about the instances holding members: Auto Scaling's view of
/// them, and EC2's of those Auto Scaling does not know — `None` when EC2 could not be asked, so
/// that a holder whose state could not be read is never acted on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HolderStates {
    pub asg: Vec<GroupInstance>,
    pub ec2: Option<Vec<Ec2Instance>>,
}

impl HolderStates {
    /// Auto Scaling's view of an instance, if it knows it.
    pub fn in_asg(&self, instance: &InstanceId) -> Option<&GroupInstance> {
        self.asg.iter().find(|i| &i.instance == instance)
    }
}

/// The instances Auto Scaling does not describe: only EC2 can say whether they are gone.
pub fn unknown_to(asg: &[GroupInstance], instances: &[InstanceId]) -> Vec<InstanceId> {
    let mut unknown: Vec<InstanceId> = instances
        .iter()
        .filter(|i| !asg.iter().any(|s| &s.instance == *i))
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
    group: Option<&str>,
    instance: &InstanceId,
    states: &HolderStates,
) -> Vec<&'a M> {
    let (asg, ec2) = (&states.asg, states.ec2.as_deref());
    let mut ranked: Vec<(u8, &M)> = members
        .iter()
        .filter(|m| m.in_pool(pool))
        .filter_map(|m| {
            let holder = m.holder_instance().filter(|h| *h != instance)?;
            let rank = match asg.iter().find(|s| &s.instance == holder) {
                // never from a group the instance is not in (an instance without a group: never
                // from any group's instance)
                Some(s) if Some(s.group.as_str()) != group => return None,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::fixtures::{address, ec2, id, member};
    use crate::decide::holdings;

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
        let read = HolderStates {
            asg: asg.to_vec(),
            ec2: Some(found.to_vec()),
        };
        let taken: Vec<&str> =
            takeover_victims(&addresses, "egress", Some("g"), &id("i-new"), &read)
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
        let unreadable = HolderStates {
            asg: asg.to_vec(),
            ec2: None,
        };
        let unread: Vec<&str> =
            takeover_victims(&addresses, "egress", Some("g"), &id("i-new"), &unreadable)
                .iter()
                .map(|a| a.allocation.as_str())
                .collect();
        assert_eq!(unread, ["eipalloc-0003", "eipalloc-0002"]);
        // nor one Auto Scaling was not asked about: the holder tag alone proves nothing
        let nothing_read = HolderStates::default();
        assert!(
            takeover_victims(&addresses, "egress", Some("g"), &id("i-new"), &nothing_read)
                .is_empty()
        );
        let held = holdings(&addresses, "egress", "az-a");
        let holders: Vec<InstanceId> = held.iter().filter_map(|h| h.holder.cloned()).collect();
        assert_eq!(
            unknown_to(&asg, &holders),
            vec![id("i-f"), id("i-g"), id("i-h")]
        );
    }
}
