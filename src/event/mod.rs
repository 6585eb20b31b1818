//! Incoming events: a lifecycle action, however Auto Scaling delivered it (an EventBridge event
//! here, an SQS or SNS message in `delivery.rs`), becomes one typed `LifecycleAction`; EC2's
//! notice that an instance changed state becomes a `StateChange`; everything else is sorted into
//! what pinhook ignores and what is broken.

mod delivery;
mod state_change;

pub use self::delivery::{Delivery, Record, Source};
pub use self::state_change::StateChange;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::HookMetadata;
use crate::model::{ActionRef, InstanceId, InvalidId, Location, Transition};

pub const SOURCE: &str = "aws.autoscaling";
pub const LAUNCH_DETAIL_TYPE: &str = "EC2 Instance-launch Lifecycle Action";
pub const TERMINATE_DETAIL_TYPE: &str = "EC2 Instance-terminate Lifecycle Action";
pub const TEST_NOTIFICATION: &str = "autoscaling:TEST_NOTIFICATION";
/// EC2's events for instances without a group.
pub const EC2_SOURCE: &str = "aws.ec2";
pub const STATE_CHANGE_DETAIL_TYPE: &str = "EC2 Instance State-change Notification";
/// The EventBridge schedule that starts the sweep.
pub const SCHEDULE_SOURCE: &str = "aws.events";
pub const SCHEDULED_DETAIL_TYPE: &str = "Scheduled Event";

/// The `detail` of an Auto Scaling lifecycle event, as it arrives. Every field is optional here
/// so that a missing one is reported by name rather than as a generic parse failure.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LifecycleDetail {
    pub lifecycle_action_token: Option<String>,
    pub auto_scaling_group_name: Option<String>,
    pub lifecycle_hook_name: Option<String>,
    #[serde(rename = "EC2InstanceId")]
    pub ec2_instance_id: Option<String>,
    pub lifecycle_transition: Option<String>,
    pub notification_metadata: Option<String>,
    pub origin: Option<String>,
    pub destination: Option<String>,
    /// Set only on test notifications.
    pub event: Option<String>,
}

/// A lifecycle action for one instance, checked field by field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleAction {
    pub transition: Transition,
    pub group: String,
    pub hook: String,
    pub instance: InstanceId,
    pub token: String,
    /// The hook's `NotificationMetadata` as the event carries it, read once; `None` when the
    /// event carries none (a hand-made or replayed event), so it is read from the hook.
    pub metadata: Option<HookMetadata>,
    pub origin: Option<Location>,
    pub destination: Option<Location>,
}

impl LifecycleAction {
    pub fn action_ref(&self) -> ActionRef {
        ActionRef {
            group: self.group.clone(),
            hook: self.hook.clone(),
            instance: self.instance.clone(),
            token: Some(self.token.clone()),
        }
    }

    /// A launch whose instance goes into the warm pool rather than into service.
    pub fn enters_warm_pool(&self) -> bool {
        self.transition == Transition::Launch && self.destination == Some(Location::WarmPool)
    }
}

/// What is wrong with an event that claims to be a lifecycle action. `at` is where the fields
/// are: `detail.` in an EventBridge event, nothing in Auto Scaling's notification JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("the event is not a valid EventBridge event: {0}")]
    Envelope(String),
    /// An SQS or SNS record that does not carry Auto Scaling's notification JSON.
    #[error("{0}")]
    Record(String),
    #[error("the lifecycle event has no {at}{field}")]
    Missing {
        at: &'static str,
        field: &'static str,
    },
    #[error("{at}{field} is {value:?}: expected {expected}")]
    Invalid {
        at: &'static str,
        field: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("{at}{field}: {error}")]
    Instance {
        at: &'static str,
        field: &'static str,
        error: InvalidId,
    },
}

/// An event sorted by what pinhook does with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A lifecycle action to act on.
    Action(Box<LifecycleAction>),
    /// An instance changed state: one without a group may be pinhook's.
    StateChange(StateChange),
    /// `autoscaling:TEST_NOTIFICATION`: acknowledged and ignored.
    TestNotification { group: Option<String> },
    /// Anything that is not a lifecycle action for an instance: acknowledged and ignored.
    NotLifecycle { reason: String },
    /// EventBridge's schedule: time for the sweep.
    Scheduled,
    /// A lifecycle event that cannot be acted on as it stands. `action` is set when the event
    /// still identifies the lifecycle action, so it can be completed rather than left waiting;
    /// `transition` when the detail-type says which one it is.
    Malformed {
        error: EventError,
        action: Option<ActionRef>,
        transition: Option<Transition>,
        metadata: Option<Box<HookMetadata>>,
    },
}

impl Incoming {
    pub fn parse(value: &Value) -> Self {
        if is_test_notification(value) {
            let group = string_at(value, &["detail", "AutoScalingGroupName"])
                .or_else(|| string_at(value, &["AutoScalingGroupName"]));
            return Self::TestNotification { group };
        }
        let source = string_at(value, &["source"]);
        let detail_type = string_at(value, &["detail-type"]);
        if source.as_deref() == Some(SCHEDULE_SOURCE)
            && detail_type.as_deref() == Some(SCHEDULED_DETAIL_TYPE)
        {
            return Self::Scheduled;
        }
        if detail_type.as_deref() == Some(STATE_CHANGE_DETAIL_TYPE)
            && source.as_deref() == Some(EC2_SOURCE)
        {
            return StateChange::parse(value);
        }
        let transition = match detail_type.as_deref() {
            Some(LAUNCH_DETAIL_TYPE) => Transition::Launch,
            Some(TERMINATE_DETAIL_TYPE) => Transition::Terminate,
            _ => {
                return Self::NotLifecycle {
                    reason: format!(
                        "source {} with detail-type {} is neither an Auto Scaling lifecycle action nor an EC2 state change",
                        describe(source.as_deref()),
                        describe(detail_type.as_deref())
                    ),
                };
            }
        };
        if source.as_deref() != Some(SOURCE) {
            return Self::NotLifecycle {
                reason: format!(
                    "detail-type {} from source {} rather than {SOURCE}",
                    describe(detail_type.as_deref()),
                    describe(source.as_deref())
                ),
            };
        }
        let malformed = |error: EventError| Self::Malformed {
            action: value.get("detail").and_then(partial_ref),
            transition: Some(transition),
            metadata: metadata_at(value, &["detail", "NotificationMetadata"]).map(Box::new),
            error,
        };
        let event = match EventBridgeEvent::<LifecycleDetail>::deserialize(value) {
            Ok(event) => event,
            Err(err) => return malformed(EventError::Envelope(err.to_string())),
        };
        match LifecycleAction::from_detail(Some(transition), event.detail, "detail.") {
            Ok(action) => Self::Action(Box::new(action)),
            Err(error) => malformed(error),
        }
    }

    /// Auto Scaling's own notification, as an SQS message's body or an SNS message carries it:
    /// the fields of EventBridge's `detail` at the top level, or `Event` for a test
    /// notification and for the group's other notifications (launch, terminate, errors).
    pub fn from_notification(value: &Value) -> Self {
        if string_at(value, &["Event"]).as_deref() == Some(TEST_NOTIFICATION) {
            let group = string_at(value, &["AutoScalingGroupName"]);
            return Self::TestNotification { group };
        }
        let names_an_action = [
            "LifecycleActionToken",
            "LifecycleHookName",
            "LifecycleTransition",
        ]
        .iter()
        .any(|key| value.get(key).is_some());
        if !names_an_action {
            return Self::NotLifecycle {
                reason: match string_at(value, &["Event"]) {
                    Some(event) => format!(
                        "an Auto Scaling notification {} rather than a lifecycle action",
                        describe(Some(&event))
                    ),
                    None => "a message that is not an Auto Scaling lifecycle notification".into(),
                },
            };
        }
        let transition = string_at(value, &["LifecycleTransition"])
            .as_deref()
            .and_then(Transition::parse);
        let malformed = |error: EventError| Self::Malformed {
            action: partial_ref(value),
            transition,
            metadata: metadata_at(value, &["NotificationMetadata"]).map(Box::new),
            error,
        };
        let detail = match LifecycleDetail::deserialize(value) {
            Ok(detail) => detail,
            Err(err) => {
                return malformed(EventError::Record(format!(
                    "the Auto Scaling notification is not valid: {err}"
                )));
            }
        };
        match LifecycleAction::from_detail(None, detail, "") {
            Ok(action) => Self::Action(Box::new(action)),
            Err(error) => malformed(error),
        }
    }
}

impl LifecycleAction {
    /// The action from its fields; `expected` is the transition an EventBridge detail-type
    /// names, `at` where the fields are (for messages).
    fn from_detail(
        expected: Option<Transition>,
        detail: LifecycleDetail,
        at: &'static str,
    ) -> Result<Self, EventError> {
        let required = |value: Option<String>, field: &'static str| {
            value
                .filter(|v| !v.trim().is_empty())
                .ok_or(EventError::Missing { at, field })
        };
        let group = required(detail.auto_scaling_group_name, "AutoScalingGroupName")?;
        let hook = required(detail.lifecycle_hook_name, "LifecycleHookName")?;
        let instance = InstanceId::parse(&required(detail.ec2_instance_id, "EC2InstanceId")?)
            .map_err(|error| EventError::Instance {
                at,
                field: "EC2InstanceId",
                error,
            })?;
        let token = required(detail.lifecycle_action_token, "LifecycleActionToken")?;
        let raw_transition = required(detail.lifecycle_transition, "LifecycleTransition")?;
        let transition = Transition::parse(&raw_transition).ok_or(EventError::Invalid {
            at,
            field: "LifecycleTransition",
            value: raw_transition.clone(),
            expected: "autoscaling:EC2_INSTANCE_LAUNCHING or autoscaling:EC2_INSTANCE_TERMINATING",
        })?;
        if expected.is_some_and(|expected| transition != expected) {
            return Err(EventError::Invalid {
                at,
                field: "LifecycleTransition",
                value: raw_transition,
                expected: "the transition named by the event's detail-type",
            });
        }
        let location = |value: Option<String>, field: &'static str| {
            value
                .map(|v| {
                    Location::parse(&v).ok_or(EventError::Invalid {
                        at,
                        field,
                        value: v,
                        expected: "EC2, AutoScalingGroup or WarmPool",
                    })
                })
                .transpose()
        };
        Ok(Self {
            transition,
            group,
            hook,
            instance,
            token,
            metadata: detail
                .notification_metadata
                .filter(|m| !m.trim().is_empty())
                .map(|m| HookMetadata::parse(Some(&m))),
            origin: location(detail.origin, "Origin")?,
            destination: location(detail.destination, "Destination")?,
        })
    }
}

fn is_test_notification(value: &Value) -> bool {
    string_at(value, &["Event"]).as_deref() == Some(TEST_NOTIFICATION)
        || string_at(value, &["detail", "Event"]).as_deref() == Some(TEST_NOTIFICATION)
}

/// The lifecycle action named by the fields of an event's detail (or of a notification), read
/// leniently from whatever parts of it are intact.
fn partial_ref(fields: &Value) -> Option<ActionRef> {
    let group = string_at(fields, &["AutoScalingGroupName"])?;
    let hook = string_at(fields, &["LifecycleHookName"])?;
    let instance = InstanceId::parse(&string_at(fields, &["EC2InstanceId"])?).ok()?;
    let token = string_at(fields, &["LifecycleActionToken"]);
    Some(ActionRef {
        group,
        hook,
        instance,
        token,
    })
}

/// The hook metadata an event carries, read once; `None` when it carries none.
fn metadata_at(value: &Value, path: &[&str]) -> Option<HookMetadata> {
    string_at(value, path).map(|m| HookMetadata::parse(Some(&m)))
}

fn string_at(value: &Value, path: &[&str]) -> Option<String> {
    let mut current = value;
    for key in path {
        current = current.get(key)?;
    }
    current
        .as_str()
        .filter(|s| !s.trim().is_empty())
        .map(str::to_owned)
}

fn describe(value: Option<&str>) -> String {
    match value {
        Some(v) => format!("{:?}", v.chars().take(100).collect::<String>()),
        None => "(none)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn launch() -> Value {
        json!({
            "version": "0",
            "id": "12345678-1234-1234-1234-123456789012",
            "detail-type": "EC2 Instance-launch Lifecycle Action",
            "source": "aws.autoscaling",
            "account": "123456789012",
            "time": "2021-01-13T00:12:37.214Z",
            "region": "us-west-2",
            "resources": ["arn:aws:autoscaling:us-west-2:123456789012:autoScalingGroup:x:autoScalingGroupName/my-asg"],
            "detail": {
                "LifecycleActionToken": "87654321-4321-4321-4321-210987654321",
                "AutoScalingGroupName": "my-asg",
                "LifecycleHookName": "my-hook",
                "EC2InstanceId": "i-1234567890abcdef0",
                "LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING",
                "NotificationMetadata": "{\"pin\":\"eni\",\"pool\":\"licence\"}",
                "Origin": "EC2",
                "Destination": "AutoScalingGroup"
            }
        })
    }

    #[test]
    fn a_launch_event_becomes_a_typed_action() {
        let Incoming::Action(action) = Incoming::parse(&launch()) else {
            panic!("not an action");
        };
        assert_eq!(action.transition, Transition::Launch);
        assert_eq!(action.instance.as_str(), "i-1234567890abcdef0");
        assert_eq!(action.group, "my-asg");
        assert_eq!(action.origin, Some(Location::Ec2));
        assert_eq!(action.destination, Some(Location::AutoScalingGroup));
        assert!(!action.enters_warm_pool());
    }

    #[test]
    fn a_missing_field_is_named_and_the_action_still_identified() {
        let mut event = launch();
        event["detail"]
            .as_object_mut()
            .unwrap()
            .remove("LifecycleTransition");
        let Incoming::Malformed {
            error,
            action,
            transition,
            ..
        } = Incoming::parse(&event)
        else {
            panic!("not malformed");
        };
        assert_eq!(
            error,
            EventError::Missing {
                at: "detail.",
                field: "LifecycleTransition"
            }
        );
        assert_eq!(
            error.to_string(),
            "the lifecycle event has no detail.LifecycleTransition"
        );
        assert_eq!(action.unwrap().instance.as_str(), "i-1234567890abcdef0");
        assert_eq!(transition, Some(Transition::Launch));
    }

    #[test]
    fn a_transition_that_contradicts_the_detail_type_is_refused() {
        let mut event = launch();
        event["detail"]["LifecycleTransition"] = json!("autoscaling:EC2_INSTANCE_TERMINATING");
        assert!(matches!(
            Incoming::parse(&event),
            Incoming::Malformed {
                error: EventError::Invalid {
                    at: "detail.",
                    field: "LifecycleTransition",
                    ..
                },
                ..
            }
        ));
    }

    #[test]
    fn a_bad_instance_id_is_named() {
        let mut event = launch();
        event["detail"]["EC2InstanceId"] = json!("not-an-instance");
        let Incoming::Malformed { error, action, .. } = Incoming::parse(&event) else {
            panic!("not malformed");
        };
        assert!(error.to_string().contains("EC2InstanceId"), "{error}");
        assert!(action.is_none());
    }

    #[test]
    fn test_notifications_are_recognised_wrapped_or_raw() {
        let raw = json!({"AccountId": "1", "AutoScalingGroupName": "g", "Event": "autoscaling:TEST_NOTIFICATION"});
        assert_eq!(
            Incoming::parse(&raw),
            Incoming::TestNotification {
                group: Some("g".into())
            }
        );
        let mut wrapped = launch();
        wrapped["detail"] =
            json!({"Event": "autoscaling:TEST_NOTIFICATION", "AutoScalingGroupName": "g"});
        assert!(matches!(
            Incoming::parse(&wrapped),
            Incoming::TestNotification { .. }
        ));
    }

    #[test]
    fn other_events_are_not_lifecycle_actions() {
        for event in [
            json!({}),
            json!(null),
            json!("text"),
            json!({"source": "my.app", "detail-type": "EC2 Instance State-change Notification", "detail": {"instance-id": "i-0123456789abcdef0", "state": "running"}}),
        ] {
            assert!(
                matches!(Incoming::parse(&event), Incoming::NotLifecycle { .. }),
                "{event}"
            );
        }
        let mut forged = launch();
        forged["source"] = json!("my.app");
        let Incoming::NotLifecycle { reason } = Incoming::parse(&forged) else {
            panic!("accepted a lifecycle action from another source");
        };
        assert!(reason.contains("my.app"), "{reason}");
    }

    #[test]
    fn a_broken_envelope_is_malformed_but_identified() {
        let mut event = launch();
        event["time"] = json!("yesterday");
        let Incoming::Malformed { error, action, .. } = Incoming::parse(&event) else {
            panic!("not malformed");
        };
        assert!(matches!(error, EventError::Envelope(_)));
        assert!(action.is_some());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn json_value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                any::<f64>().prop_map(Value::from),
                "\\PC{0,16}".prop_map(Value::from),
            ];
            leaf.prop_recursive(3, 48, 6, |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
                    proptest::collection::hash_map("[A-Za-z-]{1,24}", inner, 0..6)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        const DETAIL_FIELDS: [&str; 8] = [
            "LifecycleActionToken",
            "AutoScalingGroupName",
            "LifecycleHookName",
            "EC2InstanceId",
            "LifecycleTransition",
            "NotificationMetadata",
            "Origin",
            "Destination",
        ];

        proptest! {
            #[test]
            fn any_json_is_sorted_without_panicking(value in json_value()) {
                let _ = Incoming::parse(&value);
                let mut wrapped = launch();
                wrapped["detail"] = value;
                let _ = Incoming::parse(&wrapped);
            }

            /// A detail field that is missing or of the wrong type is named in the error.
            #[test]
            fn a_broken_detail_field_is_named(field in proptest::sample::select(DETAIL_FIELDS.to_vec()), junk in json_value(), remove in any::<bool>()) {
                let mut event = launch();
                if remove {
                    event["detail"].as_object_mut().unwrap().remove(field);
                } else {
                    event["detail"][field] = junk;
                }
                match Incoming::parse(&event) {
                    Incoming::Action(action) => {
                        // only a value that is still valid for the field gets through
                        prop_assert!(!action.group.is_empty());
                    }
                    Incoming::Malformed { error, .. } => {
                        let message = error.to_string();
                        prop_assert!(
                            message.contains(field) || matches!(error, EventError::Envelope(_)),
                            "{message}"
                        );
                    }
                    other => prop_assert!(false, "{other:?}"),
                }
            }
        }
    }

    #[test]
    fn an_eventbridge_schedule_is_the_sweeps_cue() {
        let scheduled = json!({
            "version": "0", "id": "1", "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "123456789012", "time": "2026-11-21T09:05:00Z", "region": "us-east-1",
            "resources": ["arn:aws:events:us-east-1:123456789012:rule/pinhook-sweep"], "detail": {}
        });
        assert_eq!(Incoming::parse(&scheduled), Incoming::Scheduled);
        // a scheduled event from another source is not a schedule
        let mut other = scheduled.clone();
        other["source"] = json!("aws.autoscaling");
        assert!(matches!(
            Incoming::parse(&other),
            Incoming::NotLifecycle { .. }
        ));
    }
}
