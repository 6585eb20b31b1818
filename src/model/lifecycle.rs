//! Auto Scaling's side of the world: transitions, lifecycle states, lifecycle actions and hooks,
//! as pinhook reads them, with every state AWS documents named.

use serde::Serialize;
use strum::{Display, EnumString, IntoStaticStr};

use super::InstanceId;

/// The two lifecycle transitions pinhook acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, IntoStaticStr)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Transition {
    Launch,
    Terminate,
}

impl Transition {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// From Auto Scaling's `LifecycleTransition`.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "autoscaling:EC2_INSTANCE_LAUNCHING" => Some(Self::Launch),
            "autoscaling:EC2_INSTANCE_TERMINATING" => Some(Self::Terminate),
            _ => None,
        }
    }
}

/// Where an instance comes from or goes to, in events of groups with a warm pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, EnumString)]
pub enum Location {
    #[serde(rename = "EC2")]
    #[strum(serialize = "EC2")]
    Ec2,
    AutoScalingGroup,
    WarmPool,
}

impl Location {
    pub fn parse(value: &str) -> Option<Self> {
        value.parse().ok()
    }
}

/// The result pinhook completes a lifecycle action with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Display, IntoStaticStr, EnumString)]
#[serde(rename_all = "UPPERCASE")]
#[strum(serialize_all = "UPPERCASE", ascii_case_insensitive)]
pub enum LifecycleResult {
    Continue,
    Abandon,
}

impl LifecycleResult {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// What identifies one lifecycle action to Auto Scaling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionRef {
    pub group: String,
    pub hook: String,
    pub instance: InstanceId,
    pub token: Option<String>,
}

/// An instance's lifecycle state in its Auto Scaling group: every value of the API reference's
/// `LifecycleState`, and any other AWS may add.
#[derive(Debug, Clone, PartialEq, Eq, Display, EnumString)]
pub enum LifecycleState {
    Pending,
    #[strum(serialize = "Pending:Wait")]
    PendingWait,
    #[strum(serialize = "Pending:Proceed")]
    PendingProceed,
    Quarantined,
    InService,
    Terminating,
    #[strum(serialize = "Terminating:Wait")]
    TerminatingWait,
    #[strum(serialize = "Terminating:Proceed")]
    TerminatingProceed,
    Terminated,
    Detaching,
    Detached,
    EnteringStandby,
    Standby,
    #[strum(serialize = "Warmed:Pending")]
    WarmedPending,
    #[strum(serialize = "Warmed:Pending:Wait")]
    WarmedPendingWait,
    #[strum(serialize = "Warmed:Pending:Proceed")]
    WarmedPendingProceed,
    #[strum(serialize = "Warmed:Terminating")]
    WarmedTerminating,
    #[strum(serialize = "Warmed:Terminating:Wait")]
    WarmedTerminatingWait,
    #[strum(serialize = "Warmed:Terminating:Proceed")]
    WarmedTerminatingProceed,
    #[strum(serialize = "Warmed:Terminated")]
    WarmedTerminated,
    #[strum(serialize = "Warmed:Stopped")]
    WarmedStopped,
    #[strum(serialize = "Warmed:Running")]
    WarmedRunning,
    #[strum(serialize = "Warmed:Hibernated")]
    WarmedHibernated,
    /// A state this build of pinhook does not know.
    #[strum(default, to_string = "{0}")]
    Other(String),
}

impl LifecycleState {
    pub fn parse(value: &str) -> Self {
        value
            .parse()
            .unwrap_or_else(|_| Self::Other(value.to_owned()))
    }

    /// Whether the instance is on its way out of the group, so what it holds will be released.
    pub fn is_leaving(&self) -> bool {
        matches!(
            self,
            Self::Terminating
                | Self::TerminatingWait
                | Self::TerminatingProceed
                | Self::Terminated
                | Self::WarmedTerminating
                | Self::WarmedTerminatingWait
                | Self::WarmedTerminatingProceed
                | Self::WarmedTerminated
        )
    }

    /// Waiting on lifecycle hooks: a lifecycle action is open for it.
    pub fn is_waiting(&self) -> bool {
        matches!(
            self,
            Self::PendingWait
                | Self::TerminatingWait
                | Self::WarmedPendingWait
                | Self::WarmedTerminatingWait
        )
    }

    /// Resting in a warm pool, ready to be drawn on for the group.
    pub fn is_warmed(&self) -> bool {
        matches!(
            self,
            Self::WarmedStopped | Self::WarmedRunning | Self::WarmedHibernated
        )
    }

    /// Whether a group instance's state is one of the warm pool's.
    pub fn in_warm_pool(&self) -> bool {
        matches!(
            self,
            Self::WarmedPending
                | Self::WarmedPendingWait
                | Self::WarmedPendingProceed
                | Self::WarmedTerminating
                | Self::WarmedTerminatingWait
                | Self::WarmedTerminatingProceed
                | Self::WarmedTerminated
                | Self::WarmedStopped
                | Self::WarmedRunning
                | Self::WarmedHibernated
        )
    }
}

/// An instance as Auto Scaling describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInstance {
    pub instance: InstanceId,
    pub group: String,
    pub availability_zone: String,
    pub state: LifecycleState,
    pub healthy: bool,
}

/// An Auto Scaling group as the sweep reads it: how many instances it may place, where, and
/// the instances it has now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub max_size: u32,
    pub availability_zones: Vec<String>,
    pub instances: Vec<GroupInstance>,
}

/// A lifecycle hook of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    pub group: String,
    pub name: String,
    /// `None` for a transition pinhook does not know.
    pub transition: Option<Transition>,
    pub metadata: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCUMENTED: [&str; 23] = [
        "Pending",
        "Pending:Wait",
        "Pending:Proceed",
        "Quarantined",
        "InService",
        "Terminating",
        "Terminating:Wait",
        "Terminating:Proceed",
        "Terminated",
        "Detaching",
        "Detached",
        "EnteringStandby",
        "Standby",
        "Warmed:Pending",
        "Warmed:Pending:Wait",
        "Warmed:Pending:Proceed",
        "Warmed:Terminating",
        "Warmed:Terminating:Wait",
        "Warmed:Terminating:Proceed",
        "Warmed:Terminated",
        "Warmed:Stopped",
        "Warmed:Running",
        "Warmed:Hibernated",
    ];

    #[test]
    fn every_documented_state_is_known_and_prints_as_aws_spells_it() {
        for name in DOCUMENTED {
            let state = LifecycleState::parse(name);
            assert!(!matches!(state, LifecycleState::Other(_)), "{name}");
            assert_eq!(state.to_string(), name);
        }
        let unknown = LifecycleState::parse("Warmed:Dreaming");
        assert_eq!(unknown, LifecycleState::Other("Warmed:Dreaming".into()));
        assert_eq!(unknown.to_string(), "Warmed:Dreaming");
    }

    #[test]
    fn leaving_states_are_the_terminating_ones() {
        let leaving: Vec<&str> = DOCUMENTED
            .into_iter()
            .filter(|s| LifecycleState::parse(s).is_leaving())
            .collect();
        assert_eq!(
            leaving,
            [
                "Terminating",
                "Terminating:Wait",
                "Terminating:Proceed",
                "Terminated",
                "Warmed:Terminating",
                "Warmed:Terminating:Wait",
                "Warmed:Terminating:Proceed",
                "Warmed:Terminated",
            ]
        );
    }

    #[test]
    fn results_and_locations_read_as_aws_writes_them() {
        assert_eq!(LifecycleResult::Continue.as_str(), "CONTINUE");
        assert_eq!("abandon".parse(), Ok(LifecycleResult::Abandon));
        assert_eq!(Location::parse("EC2"), Some(Location::Ec2));
        assert_eq!(Location::parse("WarmPool"), Some(Location::WarmPool));
        assert_eq!(Location::parse("ec2"), None);
        assert_eq!(Transition::Terminate.as_str(), "terminate");
    }
}
