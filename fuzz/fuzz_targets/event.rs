//! Any bytes, as the event Lambda hands to pinhook: parsing never panics, and what it makes of
//! a lifecycle event or an EC2 state change is either a checked input or an error that says
//! what is wrong, however it was delivered (EventBridge, an SQS batch, SNS records).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pinhook::event::{Delivery, Incoming};
use serde_json::{Value, json};

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    check(&value);
    // The same input as the detail of an Auto Scaling lifecycle event, where most checks live,
    // and as the notification an SQS message or an SNS record carries.
    for detail_type in ["EC2 Instance-launch Lifecycle Action", "EC2 Instance-terminate Lifecycle Action"] {
        check(&json!({"source": "aws.autoscaling", "detail-type": detail_type, "detail": value}));
    }
    let state_change = "EC2 Instance State-change Notification";
    check(&json!({"source": "aws.ec2", "detail-type": state_change, "detail": value}));
    let body = value.to_string();
    check(&json!({"Records": [{"messageId": "m", "body": body, "eventSource": "aws:sqs"}]}));
    check(&json!({"Records": [{"EventSource": "aws:sns", "Sns": {"MessageId": "s", "Message": body}}]}));
});

fn check(event: &Value) {
    match Delivery::parse(event) {
        Delivery::Single(incoming) => check_one(&incoming),
        Delivery::Records(_, records) => records.iter().for_each(|r| check_one(&r.incoming)),
    }
}

fn check_one(incoming: &Incoming) {
    match incoming {
        Incoming::Malformed { error, .. } => assert!(!error.to_string().is_empty()),
        Incoming::Action(action) => assert!(!action.group.is_empty() && !action.token.is_empty()),
        Incoming::StateChange(change) => assert!(change.instance.as_str().starts_with("i-")),
        Incoming::NotLifecycle { reason } => assert!(!reason.is_empty()),
        Incoming::TestNotification { .. } | Incoming::Scheduled => {}
    }
}
