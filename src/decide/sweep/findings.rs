//! What the sweep reports without changing it: findings, each of a kind and a severity.

use serde::Serialize;
use strum::IntoStaticStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, IntoStaticStr)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, IntoStaticStr)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum FindingKind {
    /// A pool Elastic IP unassociated past the threshold: billed by the hour.
    IdleAddress,
    /// Fewer members in an AZ than the pool's groups can place there, plus a spare.
    ShortOfMembers,
    /// A hook of a served group whose metadata is not pinhook's.
    NotPinhooksHook,
    /// pinhook's hook with metadata it cannot use.
    BadHook,
    /// A served group without any pinhook hook.
    NoHook,
    /// A served group that does not exist.
    NoGroup,
    /// A member held by an instance of a group the pool's hooks do not cover.
    HeldElsewhere,
    /// A member whose holder's state could not be read.
    HolderUnknown,
    /// A pool whose members could not be read.
    UnreadablePool,
    /// An instance without a group whose `pinhook:` tags cannot be used.
    BadInstanceTags,
    /// A member held by a stopped instance without a group: kept (EC2 keeps it through stop and
    /// start), reported.
    HeldByStopped,
}

/// Something the owner should know, that the sweep does not change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub kind: FindingKind,
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
    pub fn new(severity: Severity, kind: FindingKind, message: String) -> Self {
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

    pub fn of_group(mut self, group: &str) -> Self {
        self.group = Some(group.to_owned());
        self
    }

    pub fn of_pool(mut self, pool: &str) -> Self {
        self.pool = Some(pool.to_owned());
        self
    }
}
