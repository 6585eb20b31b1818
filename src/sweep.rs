//! The sweep's decisions, with no I/O: from pinhook's hooks, a pool's members, its groups and
//! its holders as AWS reports them, the repairs to make and the findings to report.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::config::{HookConfig, Owner, Pin, PoolName};
use crate::model::{
    Ec2Instance, Group, GroupInstance, Hook, InstanceId, LifecycleState, PoolMember, RunState,
    Transition,
};

/// A pool as pinhook's hooks on the served groups configure it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSpec {
    pub pool: PoolName,
    pub eip: bool,
    /// Each group whose pinhook hooks use the pool, with the settings of its launch hook (or of
    /// its terminate hook when it has no launch hook).
    pub groups: BTreeMap<String, HookConfig>,
}

impl PoolSpec {
    pub fn pin(&self) -> &'static str {
        if self.eip { "eip" } else { "eni" }
    }

    /// Whether every launch hook of the pool may take an address over: a replacement then
    /// needs no spare.
    fn takes_over(&self) -> bool {
        self.groups
            .values()
            .all(|c| matches!(c.pin, Pin::Eip { takeover: true, .. }))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Error => "error",
        }
    }
}

/// Something the owner should know, that the sweep does not change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    /// `idle-address`, `short-of-members`, `not-pinhooks-hook`, `bad-hook`, `no-hook`,
    /// `no-group`, `held-elsewhere`, `holder-unknown`, `unreadable-pool`.
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    pub message: String,
}

impl Finding {
    pub fn new(severity: Severity, kind: &'static str, message: String) -> Self {
        Self {
            severity,
            kind,
            pool: None,
            group: None,
            availability_zone: None,
            member: None,
            message,
        }
    }
}

/// What pinhook's hooks on the served groups say: the pools, and what is wrong with the hooks.
pub fn pools(served: &[String], groups: &[Group], hooks: &[Hook]) -> (Vec<PoolSpec>, Vec<Finding>) {
    let mut specs: BTreeMap<(String, bool), PoolSpec> = BTreeMap::new();
    let mut findings = Vec::new();
    for name in served {
        if !groups.iter().any(|g| &g.name == name) {
            findings.push(Finding {
                group: Some(name.clone()),
                ..Finding::new(
                    Severity::Warning,
                    "no-group",
                    format!("group {name:?} is served but does not exist"),
                )
            });
        }
    }
    for group in groups {
        let mut pinhooks = 0;
        for hook in hooks.iter().filter(|h| h.group == group.name) {
            let config = match HookConfig::owner(hook.metadata.as_deref()) {
                Owner::Other(why) => {
                    findings.push(Finding {
                        group: Some(group.name.clone()),
                        ..Finding::new(
                            Severity::Info,
                            "not-pinhooks-hook",
                            format!(
                                "hook {:?} of group {:?} carries no pinhook metadata ({why}); its actions are left to another tool",
                                hook.name, group.name
                            ),
                        )
                    });
                    continue;
                }
                Owner::Pinhook(Err(err)) => {
                    pinhooks += 1;
                    findings.push(Finding {
                        group: Some(group.name.clone()),
                        ..Finding::new(
                            Severity::Error,
                            "bad-hook",
                            format!(
                                "hook {:?} of group {:?} has bad metadata: {err}",
                                hook.name, group.name
                            ),
                        )
                    });
                    continue;
                }
                Owner::Pinhook(Ok(config)) => config,
            };
            pinhooks += 1;
            let eip = matches!(config.pin, Pin::Eip { .. });
            let spec = specs
                .entry((config.pool.as_str().to_owned(), eip))
                .or_insert_with(|| PoolSpec {
                    pool: config.pool.clone(),
                    eip,
                    groups: BTreeMap::new(),
                });
            let launch = hook.transition == Some(Transition::Launch);
            if launch || !spec.groups.contains_key(&group.name) {
                spec.groups.insert(group.name.clone(), config);
            }
        }
        if pinhooks == 0 {
            findings.push(Finding {
                group: Some(group.name.clone()),
                ..Finding::new(
                    Severity::Warning,
                    "no-hook",
                    format!(
                        "group {:?} is served but has no pinhook hook: nothing of it is pinned",
                        group.name
                    ),
                )
            });
        }
    }
    (specs.into_values().collect(), findings)
}

/// One change the sweep makes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Repair {
    /// Detach or disassociate what `instance` holds of the pool, and clear its lease tags.
    Release {
        pool: String,
        member: String,
        instance: InstanceId,
        why: String,
    },
    /// Delete a holder tag naming an instance the member is not attached or associated to.
    ClearTag {
        pool: String,
        member: String,
        instance: String,
        why: String,
    },
    /// Write the lease tags of a member held without them.
    RecordLease {
        pool: String,
        member: String,
        instance: InstanceId,
    },
    /// Pin a member to an instance in service that holds none.
    Pin {
        pool: String,
        group: String,
        instance: InstanceId,
        availability_zone: String,
    },
}

impl Repair {
    /// The most AWS calls the repair can take when nothing contends: started only when the
    /// run's budget still covers it.
    pub fn cost(&self) -> u32 {
        match self {
            Self::Release { .. } => 8,
            Self::ClearTag { .. } => 1,
            Self::RecordLease { .. } => 2,
            Self::Pin { .. } => 10,
        }
    }
}

impl std::fmt::Display for Repair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Release {
                pool,
                member,
                instance,
                why,
            } => write!(f, "release {member} (pool {pool}) from {instance}: {why}"),
            Self::ClearTag {
                pool,
                member,
                instance,
                why,
            } => write!(
                f,
                "clear the holder tag {instance} of {member} (pool {pool}): {why}"
            ),
            Self::RecordLease {
                pool,
                member,
                instance,
            } => write!(
                f,
                "record the lease of {member} (pool {pool}) by {instance}, held without its tags"
            ),
            Self::Pin {
                pool,
                group,
                instance,
                availability_zone,
            } => write!(
                f,
                "pin a member of pool {pool} to {instance} (group {group}, {availability_zone}), in service without one"
            ),
        }
    }
}

/// The tag bookkeeping of idle Elastic IPs; not a repair, and not done in a dry run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdleMark {
    /// Tag the address with the time it was first found idle.
    Since(String),
    /// The address is associated again: remove the tag.
    Clear(String),
}

/// How a holder stands, as AWS reported it just now.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Standing {
    /// An instance of one of the pool's groups that keeps its member.
    Serving,
    /// In a lifecycle transition: the launch or terminate path's, never the sweep's.
    InFlight(String),
    /// Gone, terminated, or out of the pool's groups: what it holds goes back.
    Leaving(String),
    /// Held by an instance of a group the pool's hooks do not cover: reported, not changed.
    Elsewhere(String),
    /// Its state could not be read: nothing is changed on a guess.
    Unknown,
}

/// What AWS reported about the holders of a pool's members.
#[derive(Debug, Clone, Copy)]
pub struct Holders<'a> {
    /// The served groups, with their instances.
    pub groups: &'a [Group],
    /// Auto Scaling's view of the holders that are not instances of a served group: warm pool
    /// instances and other groups' instances.
    pub elsewhere: &'a [GroupInstance],
    /// EC2's view of the holders Auto Scaling does not know; `None` if it could not be read.
    pub ec2: Option<&'a [Ec2Instance]>,
}

impl Holders<'_> {
    fn in_groups(&self, instance: &InstanceId) -> Option<&GroupInstance> {
        self.groups
            .iter()
            .flat_map(|g| &g.instances)
            .find(|i| &i.instance == instance)
    }

    /// The instances holding or named by the members that are no served group's instances:
    /// to look up in Auto Scaling.
    pub fn outside<M: PoolMember>(&self, members: &[M]) -> Vec<InstanceId> {
        let mut outside: Vec<InstanceId> = members
            .iter()
            .filter_map(|m| m.holder_instance())
            .filter(|i| self.in_groups(i).is_none())
            .cloned()
            .collect();
        outside.sort();
        outside.dedup();
        outside
    }

    /// Auto Scaling's view of the instance: in a served group, or elsewhere.
    fn described(&self, instance: &InstanceId) -> Option<&GroupInstance> {
        self.in_groups(instance)
            .or_else(|| self.elsewhere.iter().find(|i| &i.instance == instance))
    }

    fn state_of(&self, instance: &InstanceId) -> Option<String> {
        if let Some(i) = self.described(instance) {
            return Some(i.state.to_string());
        }
        let ec2 = self.ec2?;
        Some(match ec2.iter().find(|i| &i.instance == instance) {
            Some(i) => format!("{} (in no group)", i.state),
            None => "gone".into(),
        })
    }

    fn standing(&self, instance: &InstanceId, spec: &PoolSpec) -> Standing {
        if let Some(described) = self.described(instance) {
            let state = &described.state;
            let name = state.to_string();
            if name.ends_with(":Wait")
                || matches!(
                    state,
                    LifecycleState::Pending
                        | LifecycleState::PendingProceed
                        | LifecycleState::Terminating
                )
                || name == "Warmed:Pending"
            {
                return Standing::InFlight(name);
            }
            if matches!(
                state,
                LifecycleState::TerminatingProceed | LifecycleState::Terminated
            ) || name.starts_with("Detach")
            {
                return Standing::Leaving(format!("its holder is {name}"));
            }
            if name.starts_with("Warmed:") {
                return Standing::Leaving(format!("its holder is in the warm pool ({name})"));
            }
            if !spec.groups.contains_key(&described.group) {
                return Standing::Elsewhere(described.group.clone());
            }
            return Standing::Serving;
        }
        let Some(ec2) = self.ec2 else {
            return Standing::Unknown;
        };
        match ec2.iter().find(|i| &i.instance == instance) {
            None => Standing::Leaving("its holder no longer exists".into()),
            Some(i) if i.state.is_gone() => Standing::Leaving(format!("its holder is {}", i.state)),
            Some(i) if i.state == RunState::Pending => {
                Standing::InFlight("pending in EC2, in no group yet".into())
            }
            Some(i) => Standing::Leaving(format!(
                "its holder ({}) is in no Auto Scaling group: detached from {}",
                i.state,
                spec.groups.keys().cloned().collect::<Vec<_>>().join(", ")
            )),
        }
    }
}

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

/// A member as the status shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberView {
    pub member: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_ip: Option<String>,
    /// `free`, `held`, `releasing`, or `held-by-other` (a NAT gateway, an unattached interface).
    pub state: &'static str,
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
    pub pin: &'static str,
    pub groups: Vec<String>,
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
    let members: Vec<&M> = members.iter().filter(|m| m.in_pool(pool)).collect();
    let mut plan = PoolPlan {
        pool: pool.to_owned(),
        pin: spec.pin(),
        groups: spec.groups.keys().cloned().collect(),
        zones: Vec::new(),
        members: Vec::new(),
        repairs: Vec::new(),
        findings: Vec::new(),
        idle_marks: Vec::new(),
    };
    let mut zones: BTreeMap<Option<String>, ZoneView> = BTreeMap::new();
    let zone_of = |zone: Option<&str>| match spec.eip {
        true => None,
        false => zone.map(str::to_owned),
    };
    // Where the groups can place instances, and how many.
    for name in spec.groups.keys() {
        let Some(group) = holders.groups.iter().find(|g| &g.name == name) else {
            continue;
        };
        let azs = group.availability_zones.len().max(1) as u32;
        match spec.eip {
            true => zones.entry(None).or_default().placeable += group.max_size,
            false => {
                for az in &group.availability_zones {
                    zones.entry(Some(az.clone())).or_default().placeable +=
                        group.max_size.div_ceil(azs);
                }
            }
        }
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
            state: "free",
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
            if spec.eip {
                match member.idle_since().and_then(parse_rfc3339) {
                    None => plan.idle_marks.push(IdleMark::Since(id.clone())),
                    Some(since) => {
                        let idle = now.duration_since(since).unwrap_or_default();
                        shown.idle_seconds = Some(idle.as_secs());
                        if idle >= idle_after {
                            view.idle_addresses += 1;
                            plan.findings.push(finding(
                                Severity::Warning,
                                "idle-address",
                                format!(
                                    "Elastic IP {id} ({}) of pool {pool:?} has been unassociated for {}; an idle public IPv4 address is billed by the hour",
                                    member.public_ip().unwrap_or("-"),
                                    human(idle)
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
            shown.state = "releasing";
            plan.members.push(shown);
            continue;
        }
        let Some(holder) = holder else {
            shown.state = "held-by-other";
            plan.members.push(shown);
            continue;
        };
        view.held += 1;
        shown.state = "held";
        shown.holder_state = holders.state_of(holder);
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
            Standing::Elsewhere(group) => plan.findings.push(finding(
                Severity::Warning,
                "held-elsewhere",
                format!(
                    "{id} of pool {pool:?} is held by {holder}, an instance of group {group:?}, which none of the pool's hooks covers; left alone"
                ),
            )),
            Standing::Unknown => plan.findings.push(finding(
                Severity::Warning,
                "holder-unknown",
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
                group: name.clone(),
                instance: instance.instance.clone(),
                availability_zone: instance.availability_zone.clone(),
            });
        }
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
                    "short-of-members",
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

/// A duration as people read it: `3 h 20 min`, `12 min`, `40 s`.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

/// A time as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Reads `YYYY-MM-DDTHH:MM:SS` followed by `Z` (or fractional seconds and `Z`); `None` for
/// anything else, so a hand-edited tag is treated as absent.
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    if b.len() < 20 || !text.ends_with('Z') || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    let num =
        |range: std::ops::Range<usize>| -> Option<i64> { text.get(range)?.parse::<i64>().ok() };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second;
    u64::try_from(secs)
        .ok()
        .map(|s| UNIX_EPOCH + Duration::from_secs(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Address, AllocationId, Eni};

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
        let mut eni = crate::decide::tests::eni(n, "us-east-1a", holder.map(|h| (h, 1)));
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
        let (specs, findings) = pools(&["app".into()], &[group(vec![])], &hooks);
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
        let ec2 = [Ec2Instance {
            instance: id("i-9"),
            state: RunState::Running,
        }];
        let holders = Holders {
            groups: &groups,
            elsewhere: &[],
            ec2: Some(&ec2),
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
    fn a_holder_that_cannot_be_read_is_left_alone() {
        let spec = spec(r#"{"pin":"eni","pool":"lic"}"#);
        let groups = [group(vec![])];
        let members = [eni(1, Some("i-9"), Some("i-9"))];
        let holders = Holders {
            groups: &groups,
            elsewhere: &[],
            ec2: None,
        };
        let plan = plan(&spec, &members, &holders, UNIX_EPOCH, Duration::ZERO);
        assert!(plan.repairs.is_empty());
        assert_eq!(plan.findings[0].kind, "holder-unknown");
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
        let holders = Holders {
            groups: &groups,
            elsewhere: &[],
            ec2: Some(&[]),
        };
        let hour = Duration::from_secs(3600);
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let first = plan(&spec, &[address(None)], &holders, now, hour);
        assert_eq!(first.idle_marks, [IdleMark::Since("eipalloc-1".into())]);
        assert_eq!(first.zones[0].idle_addresses, 0);
        let since = format_rfc3339(now - 2 * hour);
        let later = plan(&spec, &[address(Some(&since))], &holders, now, hour);
        assert_eq!(later.zones[0].idle_addresses, 1);
        assert!(
            later
                .findings
                .iter()
                .any(|f| f.kind == "idle-address" && f.message.contains("2 h 0 min"))
        );
        // max 2 instances, one address: short by two (one spare)
        assert!(later.findings.iter().any(|f| f.kind == "short-of-members"));
    }

    #[test]
    fn times_round_trip_through_the_tag_format() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        let text = format_rfc3339(t);
        assert_eq!(text, "2026-11-18T11:06:40Z");
        assert_eq!(parse_rfc3339(&text), Some(t));
        assert_eq!(parse_rfc3339("2026-11-18T11:06:40.123Z"), Some(t));
        for bad in [
            "",
            "yesterday",
            "2026-13-18T11:06:40Z",
            "2026-11-18 11:06:40Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn hooks_without_pinhook_metadata_are_reported_and_groups_without_any() {
        let hooks = [Hook {
            group: "app".into(),
            name: "node-ready".into(),
            transition: Some(Transition::Launch),
            metadata: None,
        }];
        let (specs, findings) = pools(&["app".into(), "gone".into()], &[group(vec![])], &hooks);
        assert!(specs.is_empty());
        let kinds: Vec<&str> = findings.iter().map(|f| f.kind).collect();
        assert_eq!(kinds, ["no-group", "not-pinhooks-hook", "no-hook"]);
    }
}
