//! The holders of a pool's members, as AWS reported them just now, and how each stands: serving
//! one of the pool's groups or running as a tagged instance, in flight, leaving, stopped,
//! elsewhere, or unknown.

use crate::config::{PIN_TAG, POOL_TAG};
use crate::decide::HolderStates;
use crate::model::{Group, GroupInstance, InstanceId, LifecycleState, PoolMember, RunState};

use super::PoolSpec;

/// How a holder stands, as AWS reported it just now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Standing {
    /// An instance of one of the pool's groups that keeps its member.
    Serving,
    /// In a lifecycle transition: the launch or terminate path's, never the sweep's.
    InFlight(String),
    /// Gone, terminated, or out of the pool's groups: what it holds goes back.
    Leaving(String),
    /// Held by an instance of a group the pool's hooks do not cover: reported, not changed.
    Elsewhere(String),
    /// Held by a stopped (or stopping) instance without a group: kept, since EC2 keeps an
    /// attached ENI and an associated address through stop and start; reported.
    Stopped(String),
    /// Its state could not be read: nothing is changed on a guess.
    Unknown,
}

/// What AWS reported about the holders of a pool's members.
#[derive(Debug, Clone, Copy)]
pub struct Holders<'a> {
    /// The served groups, with their instances.
    pub groups: &'a [Group],
    /// What AWS reports of the holders that are no served group's instances: warm pool
    /// instances, other groups' instances, and (from EC2) instances in no group.
    pub outside: &'a HolderStates,
}

impl Holders<'_> {
    fn in_groups(&self, instance: &InstanceId) -> Option<&GroupInstance> {
        self.groups
            .iter()
            .flat_map(|g| &g.instances)
            .find(|i| &i.instance == instance)
    }

    /// The instances holding members that are neither a served group's instances nor tagged
    /// instances of the pool (both read already): to look up.
    pub fn outside_of<M: PoolMember>(
        groups: &[Group],
        spec: &PoolSpec,
        members: &[M],
    ) -> Vec<InstanceId> {
        let served = |i: &InstanceId| {
            spec.tagged(i).is_some()
                || groups
                    .iter()
                    .flat_map(|g| &g.instances)
                    .any(|s| &s.instance == i)
        };
        let mut outside: Vec<InstanceId> = members
            .iter()
            .filter_map(|m| m.holder_instance())
            .filter(|i| !served(i))
            .cloned()
            .collect();
        outside.sort();
        outside.dedup();
        outside
    }

    /// Auto Scaling's view of the instance: in a served group, or elsewhere.
    fn described(&self, instance: &InstanceId) -> Option<&GroupInstance> {
        self.in_groups(instance)
            .or_else(|| self.outside.in_asg(instance))
    }

    pub(super) fn state_of(&self, instance: &InstanceId, spec: &PoolSpec) -> Option<String> {
        if let Some(tagged) = spec.tagged(instance) {
            return Some(format!("{} (tagged, in no group)", tagged.state));
        }
        if let Some(i) = self.described(instance) {
            return Some(i.state.to_string());
        }
        let ec2 = self.outside.ec2.as_deref()?;
        Some(match ec2.iter().find(|i| &i.instance == instance) {
            Some(i) => format!("{} (in no group)", i.state),
            None => "gone".into(),
        })
    }

    pub(super) fn standing(&self, instance: &InstanceId, spec: &PoolSpec) -> Standing {
        if let Some(tagged) = spec.tagged(instance) {
            let state = &tagged.state;
            return match state {
                RunState::Running => Standing::Serving,
                RunState::Stopping | RunState::Stopped => Standing::Stopped(state.to_string()),
                state if state.is_gone() => Standing::Leaving(format!("its holder is {state}")),
                state => Standing::InFlight(format!("{state}, tagged, in no group")),
            };
        }
        if let Some(described) = self.described(instance) {
            use LifecycleState as S;
            let state = &described.state;
            if state.is_waiting()
                || matches!(
                    state,
                    S::Pending | S::PendingProceed | S::Terminating | S::WarmedPending
                )
            {
                return Standing::InFlight(state.to_string());
            }
            if matches!(
                state,
                S::TerminatingProceed | S::Terminated | S::Detaching | S::Detached
            ) {
                return Standing::Leaving(format!("its holder is {state}"));
            }
            if state.in_warm_pool() {
                return Standing::Leaving(format!("its holder is in the warm pool ({state})"));
            }
            if !spec.groups.contains_key(&described.group) {
                return Standing::Elsewhere(described.group.clone());
            }
            return Standing::Serving;
        }
        let Some(ec2) = self.outside.ec2.as_deref() else {
            return Standing::Unknown;
        };
        match ec2.iter().find(|i| &i.instance == instance) {
            None => Standing::Leaving("its holder no longer exists".into()),
            Some(i) if i.state.is_gone() => Standing::Leaving(format!("its holder is {}", i.state)),
            Some(i) if i.state == RunState::Pending => {
                Standing::InFlight("pending in EC2, in no group yet".into())
            }
            // Tagged for the pool, though not in the sweep's own read of the tagged instances
            // (pinned since, or with tags that cannot all be used): never taken from.
            Some(i) if i.tag(PIN_TAG).is_some() && i.tag(POOL_TAG) == Some(spec.pool.as_str()) => {
                match i.state {
                    RunState::Stopping | RunState::Stopped => {
                        Standing::Stopped(i.state.to_string())
                    }
                    RunState::Running => Standing::Serving,
                    _ => Standing::InFlight(format!("{}, tagged for the pool", i.state)),
                }
            }
            Some(i) if spec.groups.is_empty() => Standing::Leaving(format!(
                "its holder ({}) is neither in an Auto Scaling group nor tagged for the pool",
                i.state
            )),
            Some(i) => Standing::Leaving(format!(
                "its holder ({}) is in no Auto Scaling group: detached from {}",
                i.state,
                spec.groups.keys().cloned().collect::<Vec<_>>().join(", ")
            )),
        }
    }
}
