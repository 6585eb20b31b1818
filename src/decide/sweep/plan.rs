//! One pool's plan: from its members and their holders as AWS reported them just now, the
//! repairs the sweep makes, the findings it reports, and the picture `pinhook status` shows.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::holders::{Holders, Standing};
use super::{Finding, FindingKind, IdleMark, PoolSpec, Repair, Severity};
use crate::config::PinKind;
use crate::model::{InstanceId, LifecycleState, PoolMember, RunState};

/// A pool in one Availability Zone (or, for Elastic IPs, in the region).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ZoneView {
    /// `None` for Elastic IPs, which belong to the region.
    pub availability_zone: Option<String>,
    pub members: u32,
    pub free: u32,
    pub held: u32,
    /// The most instances the pool's groups can place here.
    pub placeable: u32,
    /// Members beyond what the groups can place: at least one, for an instance refresh that
    /// launches before it terminates (none needed where every hook may take over).
    pub spare: i64,
    pub drift: u32,
    pub idle_addresses: u32,
}

/// Where a member stands, as the status shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::Display)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum MemberState {
    Free,
    Held,
    /// On its way back to the pool (an ENI detaching).
    Releasing,
    /// Held by something that is not an instance: a NAT gateway, an unattached interface.
    HeldByOther,
}

/// A member as the status shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberView {
    pub member: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_ip: Option<String>,
    pub state: MemberState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder: Option<InstanceId>,
    /// The holder's lifecycle state in its group, or its EC2 state outside any group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder_state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder_tag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_seconds: Option<u64>,
}

/// One pool: what it looks like, what to repair, what to report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PoolPlan {
    pub pool: String,
    pub pin: PinKind,
    pub groups: Vec<String>,
    /// The instances without a group whose tags name the pool.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<InstanceId>,
    pub zones: Vec<ZoneView>,
    pub members: Vec<MemberView>,
    pub repairs: Vec<Repair>,
    pub findings: Vec<Finding>,
    #[serde(skip)]
    pub idle_marks: Vec<IdleMark>,
}

/// What the sweep does to one pool.
pub fn plan<M: PoolMember>(
    spec: &PoolSpec,
    members: &[M],
    holders: &Holders<'_>,
    now: SystemTime,
    idle_after: Duration,
) -> PoolPlan {
    let pool = spec.pool.as_str();
    let eip = spec.pin == PinKind::Eip;
    let members: Vec<&M> = members.iter().filter(|m| m.in_pool(pool)).collect();
    let mut plan = PoolPlan {
        pool: pool.to_owned(),
        pin: spec.pin,
        groups: spec.groups.keys().cloned().collect(),
        instances: spec.tagged.iter().map(|t| t.instance.clone()).collect(),
        zones: Vec::new(),
        members: Vec::new(),
        repairs: Vec::new(),
        findings: Vec::new(),
        idle_marks: Vec::new(),
    };
    let mut zones: BTreeMap<Option<String>, ZoneView> = BTreeMap::new();
    let zone_of = |zone: Option<&str>| match eip {
        true => None,
        false => zone.map(str::to_owned),
    };
    // Where the groups can place instances, and how many.
    for name in spec.groups.keys() {
        let Some(group) = holders.groups.iter().find(|g| &g.name == name) else {
            continue;
        };
        let azs = group.availability_zones.len().max(1) as u32;
        match eip {
            true => zones.entry(None).or_default().placeable += group.max_size,
            false => {
                for az in &group.availability_zones {
                    zones.entry(Some(az.clone())).or_default().placeable +=
                        group.max_size.div_ceil(azs);
                }
            }
        }
    }
    // Each tagged instance that is not gone takes one member where it runs.
    for tagged in spec.tagged.iter().filter(|t| !t.state.is_gone()) {
        let zone = zone_of(tagged.availability_zone.as_deref());
        zones.entry(zone).or_default().placeable += 1;
    }
    let mut holding: Vec<&InstanceId> = Vec::new();
    for member in &members {
        let id = member.member_id().to_owned();
        let zone = zone_of(member.zone());
        let view = zones.entry(zone.clone()).or_default();
        view.members += 1;
        let holder = member.holder_instance();
        let mut shown = MemberView {
            member: id.clone(),
            availability_zone: member.zone().map(str::to_owned),
            public_ip: member.public_ip().map(str::to_owned),
            state: MemberState::Free,
            holder: holder.cloned(),
            holder_state: None,
            holder_tag: member.holder_tag().map(str::to_owned),
            idle_seconds: None,
        };
        let finding = |severity, kind, message| Finding {
            pool: Some(pool.to_owned()),
            availability_zone: zone.clone(),
            member: Some(id.clone()),
            ..Finding::new(severity, kind, message)
        };
        if member.is_free() {
            view.free += 1;
            if let Some(tag) = member.holder_tag() {
                view.drift += 1;
                plan.repairs.push(Repair::ClearTag {
                    pool: pool.to_owned(),
                    member: id.clone(),
                    instance: tag.to_owned(),
                    why: "the member is attached or associated nowhere".into(),
                });
            }
            if eip {
                match member
                    .idle_since()
                    .and_then(|t| humantime::parse_rfc3339(t).ok())
                {
                    None => plan.idle_marks.push(IdleMark::Since(id.clone())),
                    Some(since) => {
                        let idle = now.duration_since(since).unwrap_or_default();
                        shown.idle_seconds = Some(idle.as_secs());
                        if idle >= idle_after {
                            view.idle_addresses += 1;
                            plan.findings.push(finding(
                                Severity::Warning,
                                FindingKind::IdleAddress,
                                format!(
                                    "Elastic IP {id} ({}) of pool {pool:?} has been unassociated for {}; an idle public IPv4 address is billed by the hour",
                                    member.public_ip().unwrap_or("-"),
                                    humantime::format_duration(idle)
                                ),
                            ));
                        }
                    }
                }
            }
            plan.members.push(shown);
            continue;
        }
        if member.idle_since().is_some() {
            plan.idle_marks.push(IdleMark::Clear(id.clone()));
        }
        if member.is_releasing() {
            shown.state = MemberState::Releasing;
            plan.members.push(shown);
            continue;
        }
        let Some(holder) = holder else {
            shown.state = MemberState::HeldByOther;
            plan.members.push(shown);
            continue;
        };
        view.held += 1;
        shown.state = MemberState::Held;
        shown.holder_state = holders.state_of(holder, spec);
        match holders.standing(holder, spec) {
            Standing::Serving => {
                holding.push(holder);
                if member.holder_tag() != Some(holder.as_str()) {
                    view.drift += 1;
                    plan.repairs.push(Repair::RecordLease {
                        pool: pool.to_owned(),
                        member: id.clone(),
                        instance: holder.clone(),
                    });
                }
            }
            Standing::InFlight(_) => holding.push(holder),
            Standing::Leaving(why) => {
                view.drift += 1;
                plan.repairs.push(Repair::Release {
                    pool: pool.to_owned(),
                    member: id.clone(),
                    instance: holder.clone(),
                    why,
                });
            }
            Standing::Stopped(state) => {
                holding.push(holder);
                plan.findings.push(finding(
                    Severity::Info,
                    FindingKind::HeldByStopped,
                    format!(
                        "{id} of pool {pool:?} is held by {holder}, which is {state}: kept, since EC2 keeps it through stop and start"
                    ),
                ));
            }
            Standing::Elsewhere(group) => plan.findings.push(finding(
                Severity::Warning,
                FindingKind::HeldElsewhere,
                format!(
                    "{id} of pool {pool:?} is held by {holder}, an instance of group {group:?}, which none of the pool's hooks covers; left alone"
                ),
            )),
            Standing::Unknown => plan.findings.push(finding(
                Severity::Warning,
                FindingKind::HolderUnknown,
                format!(
                    "the state of {holder}, which holds {id} of pool {pool:?}, could not be read; left alone until the next sweep"
                ),
            )),
        }
        plan.members.push(shown);
    }
    // Instances in service of the pool's groups that hold no member: a missed or expired launch.
    for name in spec.groups.keys() {
        let Some(group) = holders.groups.iter().find(|g| &g.name == name) else {
            continue;
        };
        for instance in &group.instances {
            if instance.state != LifecycleState::InService || holding.contains(&&instance.instance)
            {
                continue;
            }
            zones
                .entry(zone_of(Some(&instance.availability_zone)))
                .or_default()
                .drift += 1;
            plan.repairs.push(Repair::Pin {
                pool: pool.to_owned(),
                group: Some(name.clone()),
                instance: instance.instance.clone(),
                availability_zone: instance.availability_zone.clone(),
            });
        }
    }
    // Running instances without a group, tagged for the pool, that hold no member: a lost
    // state-change event, or one that could not be acted on.
    for tagged in &spec.tagged {
        let Some(zone) = &tagged.availability_zone else {
            continue;
        };
        if tagged.state != RunState::Running || holding.contains(&&tagged.instance) {
            continue;
        }
        zones.entry(zone_of(Some(zone))).or_default().drift += 1;
        plan.repairs.push(Repair::Pin {
            pool: pool.to_owned(),
            group: None,
            instance: tagged.instance.clone(),
            availability_zone: zone.clone(),
        });
    }
    let wanted_spare = i64::from(!spec.takes_over());
    for (zone, view) in &mut zones {
        view.availability_zone = zone.clone();
        view.spare = i64::from(view.members) - i64::from(view.placeable);
        if view.placeable > 0 && view.spare < wanted_spare {
            let where_ = zone
                .as_deref()
                .map_or(String::new(), |z| format!(" in {z}"));
            plan.findings.push(Finding {
                pool: Some(pool.to_owned()),
                availability_zone: zone.clone(),
                ..Finding::new(
                    Severity::Warning,
                        FindingKind::ShortOfMembers,
                    format!(
                        "pool {pool:?} has {} members{where_}, and its groups can place {} instances there: add {} (one spare, for an instance refresh that launches before it terminates)",
                        view.members,
                        view.placeable,
                        wanted_spare - view.spare
                    ),
                )
            });
        }
    }
    plan.zones = zones.into_values().collect();
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    use crate::decide::HolderStates;
    use crate::decide::fixtures;
    use crate::decide::sweep::pools;
    use crate::model::{
        Address, AllocationId, Ec2Instance, Eni, Group, GroupInstance, Hook, Transition,
    };

    fn id(s: &str) -> InstanceId {
        InstanceId::parse(s).unwrap()
    }

    fn instance(i: &str, group: &str, state: &str) -> GroupInstance {
        GroupInstance {
            instance: id(i),
            group: group.into(),
            availability_zone: "us-east-1a".into(),
            state: LifecycleState::parse(state),
            healthy: true,
        }
    }

    fn group(instances: Vec<GroupInstance>) -> Group {
        Group {
            name: "app".into(),
            max_size: 2,
            availability_zones: vec!["us-east-1a".into()],
            instances,
        }
    }

    /// A pool ENI attached to `holder` at device index 1, whose holder tag says `tag`.
    fn eni(n: u32, holder: Option<&str>, tag: Option<&str>) -> Eni {
        let mut eni = fixtures::eni(n, "us-east-1a", holder.map(|h| (h, 1)));
        eni.holder = tag.map(str::to_owned);
        eni
    }

    fn spec(metadata: &str) -> PoolSpec {
        let hooks = [Hook {
            group: "app".into(),
            name: "pinhook-launch".into(),
            transition: Some(Transition::Launch),
            metadata: Some(metadata.into()),
        }];
        let (specs, findings) = pools(&["app".into()], &[group(vec![])], &hooks, &[]);
        assert!(findings.is_empty(), "{findings:?}");
        specs.into_iter().next().unwrap()
    }

    #[test]
    fn a_pool_is_planned_from_what_its_holders_are() {
        let spec = spec(r#"{"pin":"eni","pool":"lic"}"#);
        let groups = [group(vec![
            instance("i-1", "app", "InService"),
            instance("i-2", "app", "InService"),
            instance("i-3", "app", "Pending:Wait"),
            instance("i-4", "app", "InService"),
        ])];
        let members = [
            // held by i-1 with its tag: fine
            eni(1, Some("i-1"), Some("i-1")),
            // held by i-4 without a tag: record the lease
            eni(2, Some("i-4"), None),
            // free, tagged for i-2 (detached by hand): clear the tag; i-2 gets a pin
            eni(3, None, Some("i-2")),
            // held by a detached instance: release
            eni(4, Some("i-9"), Some("i-9")),
            // held by a launch in flight: left alone
            eni(5, Some("i-3"), None),
        ];
        let ec2 = [Ec2Instance::new(id("i-9"), RunState::Running)];
        let outside = HolderStates {
            asg: vec![],
            ec2: Some(ec2.to_vec()),
        };
        let holders = Holders {
            groups: &groups,
            outside: &outside,
        };
        let plan = plan(&spec, &members, &holders, UNIX_EPOCH, Duration::ZERO);
        let actions: Vec<String> = plan
            .repairs
            .iter()
            .map(|r| match r {
                Repair::Release { member, .. } => format!("release {member}"),
                Repair::ClearTag { member, .. } => format!("clear {member}"),
                Repair::RecordLease { member, .. } => format!("lease {member}"),
                Repair::Pin { instance, .. } => format!("pin {instance}"),
            })
            .collect();
        assert_eq!(
            actions,
            [
                "lease eni-0002",
                "clear eni-0003",
                "release eni-0004",
                "pin i-2"
            ]
        );
        assert_eq!(plan.zones[0].drift, 4);
        assert_eq!(plan.zones[0].members, 5);
        assert_eq!(plan.zones[0].placeable, 2);
        assert_eq!(plan.zones[0].spare, 3);
    }

    #[test]
    fn a_node_tagged_for_the_pool_keeps_its_member_though_the_sweep_read_it_before() {
        // Given a running instance without a group, tagged for the pool, that the sweep's read
        // of tagged instances did not list (pinned since), and a stopped one
        let spec = spec(r#"{"pin":"eni","pool":"lic"}"#);
        let groups = [group(vec![])];
        let members = [
            eni(1, Some("i-7"), Some("i-7")),
            eni(2, Some("i-8"), Some("i-8")),
        ];
        let tagged = |i: &str, state| Ec2Instance {
            tags: [("pinhook:pin", "eni"), ("pinhook:pool", "lic")]
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..Ec2Instance::new(id(i), state)
        };
        let outside = HolderStates {
            asg: vec![],
            ec2: Some(vec![
                tagged("i-7", RunState::Running),
                tagged("i-8", RunState::Stopped),
            ]),
        };
        let holders = Holders {
            groups: &groups,
            outside: &outside,
        };

        let plan = plan(&spec, &members, &holders, UNIX_EPOCH, Duration::ZERO);

        // Then neither member is released: the running one serves, the stopped one is reported
        assert!(plan.repairs.is_empty(), "{:?}", plan.repairs);
        let stopped: Vec<&Finding> = plan
            .findings
            .iter()
            .filter(|f| f.kind == FindingKind::HeldByStopped)
            .collect();
        assert_eq!(stopped.len(), 1, "{:?}", plan.findings);
        assert!(stopped[0].message.contains("i-8"), "{:?}", stopped[0]);
    }

    #[test]
    fn a_holder_that_cannot_be_read_is_left_alone() {
        let spec = spec(r#"{"pin":"eni","pool":"lic"}"#);
        let groups = [group(vec![])];
        let members = [eni(1, Some("i-9"), Some("i-9"))];
        let unread = HolderStates::default();
        let holders = Holders {
            groups: &groups,
            outside: &unread,
        };
        let plan = plan(&spec, &members, &holders, UNIX_EPOCH, Duration::ZERO);
        assert!(plan.repairs.is_empty());
        assert_eq!(plan.findings[0].kind, FindingKind::HolderUnknown);
    }

    #[test]
    fn idle_addresses_are_marked_then_reported_after_the_threshold() {
        let spec = spec(r#"{"pin":"eip","pool":"lic"}"#);
        let groups = [group(vec![])];
        let address = |idle_since: Option<&str>| Address {
            allocation: AllocationId::parse("eipalloc-1").unwrap(),
            public_ip: Some("203.0.113.1".into()),
            association: None,
            pool: Some("lic".into()),
            holder: None,
            idle_since: idle_since.map(str::to_owned),
        };
        let none_outside = HolderStates {
            asg: vec![],
            ec2: Some(vec![]),
        };
        let holders = Holders {
            groups: &groups,
            outside: &none_outside,
        };
        let hour = Duration::from_secs(3600);
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let first = plan(&spec, &[address(None)], &holders, now, hour);
        assert_eq!(first.idle_marks, [IdleMark::Since("eipalloc-1".into())]);
        assert_eq!(first.zones[0].idle_addresses, 0);
        let since = humantime::format_rfc3339_seconds(now - 2 * hour).to_string();
        let later = plan(&spec, &[address(Some(&since))], &holders, now, hour);
        assert_eq!(later.zones[0].idle_addresses, 1);
        assert!(
            later
                .findings
                .iter()
                .any(|f| f.kind == FindingKind::IdleAddress && f.message.contains("for 2h;"))
        );
        // max 2 instances, one address: short by two (one spare)
        assert!(
            later
                .findings
                .iter()
                .any(|f| f.kind == FindingKind::ShortOfMembers)
        );
        // a tag that is not a time is as good as none: the address is marked again
        let garbled = plan(&spec, &[address(Some("yesterday"))], &holders, now, hour);
        assert_eq!(garbled.idle_marks, [IdleMark::Since("eipalloc-1".into())]);
    }
}
