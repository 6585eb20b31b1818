//! Any bytes, as the event Lambda hands to pinhook: parsing never panics, and what it makes of
//! a lifecycle event is either a checked action or an error that says what is wrong.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pinhook::event::Incoming;
use serde_json::{Value, json};

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    check(&value);
    // The same input as the detail of an Auto Scaling lifecycle event, where most checks live.
    for detail_type in ["EC2 Instance-launch Lifecycle Action", "EC2 Instance-terminate Lifecycle Action"] {
        check(&json!({"source": "aws.autoscaling", "detail-type": detail_type, "detail": value}));
    }
});

fn check(event: &Value) {
    match Incoming::parse(event) {
        Incoming::Malformed { error, .. } => assert!(!error.to_string().is_empty()),
        Incoming::Action(action) => assert!(!action.group.is_empty() && !action.token.is_empty()),
        Incoming::NotLifecycle { reason } => assert!(!reason.is_empty()),
        Incoming::TestNotification { .. } | Incoming::Scheduled => {}
    }
}
