//! The sweep's decisions, with no I/O: which pools pinhook's hooks on the served groups and the
//! tags of instances without a group configure (here), and, from a pool's members and their
//! holders as AWS reports them, the repairs to make and the findings to report (`plan`).

mod findings;
mod holders;
mod plan;

use std::collections::BTreeMap;

use serde::Serialize;

pub use self::findings::{Finding, FindingKind, Severity};
pub use self::holders::Holders;
pub use self::plan::{MemberState, MemberView, PoolPlan, ZoneView, plan};
use crate::config::{HookConfig, HookMetadata, Pin, PinKind, PoolName, Takeover};
use crate::model::{Ec2Instance, Group, Hook, InstanceId, RunState, Transition};

/// A pool as pinhook's hooks on the served groups, and the tags of instances without a group,
/// configure it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSpec {
    pub pool: PoolName,
    pub pin: PinKind,
    /// Each group whose pinhook hooks use the pool, with the settings of its launch hook (or of
    /// its terminate hook when it has no launch hook).
    pub groups: BTreeMap<String, HookConfig>,
    /// The instances without a group whose tags name the pool, with their settings.
    pub tagged: Vec<Tagged>,
}

/// An instance without a group whose tags make it pinhook's (DESIGN.md, "Instances without a
/// group"), as EC2 reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tagged {
    pub instance: InstanceId,
    pub state: RunState,
    pub availability_zone: Option<String>,
    pub config: HookConfig,
}

/// What pinhook's hooks on the served groups and the tags of instances without a group say: the
/// pools, and what is wrong with the hooks and the tags.
pub fn pools(
    served: &[String],
    groups: &[Group],
    hooks: &[Hook],
    tagged: &[Ec2Instance],
) -> (Vec<PoolSpec>, Vec<Finding>) {
    let mut specs: BTreeMap<(PoolName, PinKind), PoolSpec> = BTreeMap::new();
    let mut findings = Vec::new();
    for name in served
        .iter()
        .filter(|n| !groups.iter().any(|g| &g.name == *n))
    {
        findings.push(
            Finding::new(
                Severity::Warning,
                FindingKind::NoGroup,
                format!("group {name:?} is served but does not exist"),
            )
            .of_group(name),
        );
    }
    for group in groups {
        let mut pinhooks = 0;
        for hook in hooks.iter().filter(|h| h.group == group.name) {
            let config = match HookMetadata::parse(hook.metadata.as_deref()) {
                HookMetadata::Foreign(why) => {
                    findings.push(
                        Finding::new(
                            Severity::Info,
                            FindingKind::NotPinhooksHook,
                            format!(
                                "hook {:?} of group {:?} carries no pinhook metadata ({why}); its actions are left to another tool",
                                hook.name, group.name
                            ),
                        )
                        .of_group(&group.name),
                    );
                    continue;
                }
                HookMetadata::Unusable(unusable) => {
                    pinhooks += 1;
                    findings.push(
                        Finding::new(
                            Severity::Error,
                            FindingKind::BadHook,
                            format!(
                                "hook {:?} of group {:?} has bad metadata: {}",
                                hook.name, group.name, unusable.error
                            ),
                        )
                        .of_group(&group.name),
                    );
                    continue;
                }
                HookMetadata::Pinhook(config) => config,
            };
            pinhooks += 1;
            let spec = specs
                .entry((config.pool.clone(), config.pin.kind()))
                .or_insert_with(|| PoolSpec::new(&config));
            let launch = hook.transition == Some(Transition::Launch);
            if launch || !spec.groups.contains_key(&group.name) {
                spec.groups.insert(group.name.clone(), config);
            }
        }
        if pinhooks == 0 {
            findings.push(
                Finding::new(
                    Severity::Warning,
                    FindingKind::NoHook,
                    format!(
                        "group {:?} is served but has no pinhook hook: nothing of it is pinned",
                        group.name
                    ),
                )
                .of_group(&group.name),
            );
        }
    }
    // Instances without a group, selected by their tags; a group's instance is its hooks'.
    for instance in tagged.iter().filter(|i| i.group().is_none()) {
        match HookConfig::from_tags(&instance.tags) {
            None => {}
            Some(Err(error)) => findings.push(Finding::new(
                Severity::Error,
                FindingKind::BadInstanceTags,
                format!(
                    "instance {} ({}) has unusable pinhook tags: {error}",
                    instance.instance, instance.state
                ),
            )),
            Some(Ok(config)) => specs
                .entry((config.pool.clone(), config.pin.kind()))
                .or_insert_with(|| PoolSpec::new(&config))
                .tagged
                .push(Tagged {
                    instance: instance.instance.clone(),
                    state: instance.state.clone(),
                    availability_zone: instance.availability_zone.clone(),
                    config,
                }),
        }
    }
    (specs.into_values().collect(), findings)
}

impl PoolSpec {
    /// Whether every launch hook of the pool may take an address over: a replacement then
    /// needs no spare.
    fn takes_over(&self) -> bool {
        let configs = self
            .groups
            .values()
            .chain(self.tagged.iter().map(|t| &t.config));
        configs.into_iter().all(|c| {
            matches!(
                c.pin,
                Pin::Eip {
                    takeover: Takeover::Allowed,
                    ..
                }
            )
        })
    }

    fn new(config: &HookConfig) -> Self {
        Self {
            pool: config.pool.clone(),
            pin: config.pin.kind(),
            groups: BTreeMap::new(),
            tagged: Vec::new(),
        }
    }

    /// The instance without a group, if the pool's tags select it.
    pub fn tagged(&self, instance: &InstanceId) -> Option<&Tagged> {
        self.tagged.iter().find(|t| &t.instance == instance)
    }
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
    /// Pin a member to an instance in service (or, without a group, running) that holds none.
    Pin {
        pool: String,
        /// `None` for an instance without a group.
        #[serde(skip_serializing_if = "Option::is_none")]
        group: Option<String>,
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
            } => match group {
                Some(group) => write!(
                    f,
                    "pin a member of pool {pool} to {instance} (group {group}, {availability_zone}), in service without one"
                ),
                None => write!(
                    f,
                    "pin a member of pool {pool} to {instance} (no group, tagged, {availability_zone}), running without one"
                ),
            },
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks_without_pinhook_metadata_are_reported_and_groups_without_any() {
        let group = Group {
            name: "app".into(),
            max_size: 2,
            availability_zones: vec!["us-east-1a".into()],
            instances: vec![],
        };
        let hooks = [Hook {
            group: "app".into(),
            name: "node-ready".into(),
            transition: Some(Transition::Launch),
            metadata: None,
        }];
        let (specs, findings) = pools(&["app".into(), "gone".into()], &[group], &hooks, &[]);
        assert!(specs.is_empty());
        let kinds: Vec<FindingKind> = findings.iter().map(|f| f.kind).collect();
        assert_eq!(
            kinds,
            [
                FindingKind::NoGroup,
                FindingKind::NotPinhooksHook,
                FindingKind::NoHook
            ]
        );
    }
}
