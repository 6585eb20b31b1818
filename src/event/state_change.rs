//! EC2's notice that an instance changed state ("EC2 Instance State-change Notification", from
//! `aws.ec2`): the input for instances without an Auto Scaling group.

use std::time::SystemTime;

use serde_json::Value;

use super::{EventError, Incoming, string_at};
use crate::model::{InstanceId, RunState};

/// EC2's notice that an instance reached a state (DESIGN.md, "Instances without a group").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChange {
    pub instance: InstanceId,
    /// The state the instance reached: it did, though EC2's reads may not show it yet.
    pub state: RunState,
    /// When it reached it, as the event says.
    pub time: Option<SystemTime>,
}

impl StateChange {
    /// The state change in an EventBridge event from `aws.ec2`; one that names no instance or
    /// no state is malformed, and says which.
    pub(super) fn parse(value: &Value) -> Incoming {
        let malformed = |error: EventError| Incoming::Malformed {
            error,
            action: None,
            transition: None,
            metadata: None,
        };
        let Some(id) = string_at(value, &["detail", "instance-id"]) else {
            let field = "instance-id";
            return malformed(EventError::Missing {
                at: "detail.",
                field,
            });
        };
        let instance = match InstanceId::parse(&id) {
            Ok(instance) => instance,
            Err(error) => {
                let field = "instance-id";
                return malformed(EventError::Instance {
                    at: "detail.",
                    field,
                    error,
                });
            }
        };
        let Some(state) = string_at(value, &["detail", "state"]) else {
            let field = "state";
            return malformed(EventError::Missing {
                at: "detail.",
                field,
            });
        };
        let state = match RunState::parse(&state) {
            RunState::Other(other) => {
                return malformed(EventError::Invalid {
                    at: "detail.",
                    field: "state",
                    value: other,
                    expected: "pending, running, stopping, stopped, shutting-down or terminated",
                });
            }
            state => state,
        };
        let time = string_at(value, &["time"]).and_then(|t| humantime::parse_rfc3339(&t).ok());
        Incoming::StateChange(StateChange {
            instance,
            state,
            time,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn ec2_state_changes_are_read_and_broken_ones_named() {
        let event = json!({
            "version": "0", "id": "e", "detail-type": "EC2 Instance State-change Notification",
            "source": "aws.ec2", "account": "123456789012", "time": "2026-12-01T09:00:00Z",
            "region": "us-east-1", "resources": [],
            "detail": {"instance-id": "i-0123456789abcdef0", "state": "running"}
        });
        let Incoming::StateChange(change) = Incoming::parse(&event) else {
            panic!("not a state change: {:?}", Incoming::parse(&event));
        };
        assert_eq!(change.instance.as_str(), "i-0123456789abcdef0");
        assert_eq!(change.state, RunState::Running);
        assert_eq!(
            change.time,
            Some(humantime::parse_rfc3339("2026-12-01T09:00:00Z").unwrap())
        );
        for (detail, named) in [
            (json!({}), "detail.instance-id"),
            (
                json!({"instance-id": "i-0123456789abcdef0"}),
                "detail.state",
            ),
            (
                json!({"instance-id": "i-0123456789abcdef0", "state": "melting"}),
                "\"melting\"",
            ),
            (
                json!({"instance-id": "node-1", "state": "running"}),
                "detail.instance-id",
            ),
        ] {
            let mut broken = event.clone();
            broken["detail"] = detail;
            let Incoming::Malformed { error, action, .. } = Incoming::parse(&broken) else {
                panic!("not malformed: {broken}");
            };
            assert!(error.to_string().contains(named), "{error}");
            assert_eq!(action, None);
        }
    }
}
