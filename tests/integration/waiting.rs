//! Waiting for a release, with lifecycle heartbeats, over minutes of paused time: the emulator
//! cannot pause its clock, so these run the real handler over an in-memory fake of the two
//! adapter traits.

use std::time::Duration;

use pinhook::config::Settings;
use pinhook::{Deadline, Outcome, Pinhook};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::fake::FakeCloud;

const OLD: &str = "i-0000000000000001";
const NEW: &str = "i-0000000000000002";
const TOKEN: &str = "11111111-2222-3333-4444-555555555555";
/// Lambda's longest timeout.
const FIFTEEN_MINUTES: Duration = Duration::from_secs(15 * 60);

fn launch(metadata: Value) -> Value {
    json!({
        "version": "0", "id": "1", "detail-type": "EC2 Instance-launch Lifecycle Action",
        "source": "aws.autoscaling", "account": "123456789012", "time": "2026-11-21T09:00:00Z",
        "region": "us-east-1", "resources": [],
        "detail": {
            "LifecycleActionToken": TOKEN, "AutoScalingGroupName": "g", "LifecycleHookName": "h",
            "EC2InstanceId": NEW, "LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING",
            "NotificationMetadata": metadata.to_string()
        }
    })
}

/// The only ENI held by a terminating member, a replacement waiting on a hook that times out
/// after 60 s without a heartbeat, and pinhook with its default settings.
fn cloud() -> (FakeCloud, Pinhook<FakeCloud, FakeCloud>) {
    let cloud = FakeCloud::new(Duration::from_secs(60));
    cloud.instance(OLD, "g", "Terminating:Wait");
    cloud.instance(NEW, "g", "Pending:Wait");
    cloud.action(TOKEN);
    cloud.eni("eni-0aaaaaaaaaaaaaaa1", "licence", Some(OLD));
    cloud.address("eipalloc-0aaaaaaaaaaaaaaa1", "egress", Some(OLD));
    cloud.primary(NEW);
    let app = Pinhook::new(cloud.clone(), cloud.clone(), Settings::default());
    (cloud, app)
}

#[tokio::test(start_paused = true)]
async fn a_launch_waits_ten_minutes_for_a_release_with_heartbeats_then_pins() {
    let (cloud, app) = cloud();
    let started = Instant::now();
    let releaser = cloud.clone();
    let release = async move {
        tokio::time::sleep(Duration::from_secs(600)).await;
        releaser.release(OLD);
    };

    let event = launch(json!({"pin": "eni", "pool": "licence"}));
    let (summary, ()) = tokio::join!(
        app.handle(&event, Deadline::after(FIFTEEN_MINUTES)),
        release
    );

    let summary = summary.unwrap();
    assert_eq!(summary.outcome, Outcome::Continue, "{summary:?}");
    assert_eq!(summary.member.as_deref(), Some("eni-0aaaaaaaaaaaaaaa1"));
    assert_eq!(
        cloud.eni_holder("eni-0aaaaaaaaaaaaaaa1").as_deref(),
        Some(NEW)
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(600) && waited < Duration::from_secs(603),
        "{waited:?}"
    );
    // A heartbeat at the start and every 20 s: the 60 s hook timeout never ran out.
    let heartbeats = cloud.heartbeats();
    assert!(
        (30..=31).contains(&heartbeats.len()),
        "{} heartbeats",
        heartbeats.len()
    );
    assert!(
        heartbeats
            .windows(2)
            .all(|w| w[1] - w[0] <= Duration::from_secs(21))
    );
    assert!(!cloud.timed_out(TOKEN));
    assert_eq!(cloud.completions().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_wait_is_bounded_by_the_deadline_then_the_action_is_left_pending() {
    let (cloud, app) = cloud();
    let started = Instant::now();

    let err = app
        .handle(
            &launch(json!({"pin": "eip", "pool": "egress", "on_failure": "continue"})),
            Deadline::after(FIFTEEN_MINUTES),
        )
        .await
        .unwrap_err();

    // The deadline is no failure: nothing is completed, not even with on_failure = continue;
    // the action is kept alive and the error returned for a redelivery, before Lambda's
    // deadline
    assert!(err.to_string().contains("deadline"), "{err}");
    assert!(cloud.completions().is_empty());
    let waited = started.elapsed();
    assert!(
        waited >= FIFTEEN_MINUTES - Duration::from_secs(7) && waited < FIFTEEN_MINUTES,
        "{waited:?}"
    );
    assert_eq!(
        cloud
            .address_holder("eipalloc-0aaaaaaaaaaaaaaa1")
            .as_deref(),
        Some(OLD)
    );
    assert!(!cloud.timed_out(TOKEN));
}

#[tokio::test(start_paused = true)]
async fn a_lifecycle_action_that_ends_meanwhile_stops_the_wait_without_completing() {
    let (cloud, app) = cloud();
    let other = cloud.clone();
    let end = async move {
        tokio::time::sleep(Duration::from_secs(90)).await;
        other.end_action(TOKEN);
    };

    let event = launch(json!({"pin": "eni", "pool": "licence"}));
    let (summary, ()) = tokio::join!(app.handle(&event, Deadline::after(FIFTEEN_MINUTES)), end);

    let summary = summary.unwrap();
    assert_eq!(summary.outcome, Outcome::Stale, "{summary:?}");
    assert!(cloud.completions().is_empty());
    assert_eq!(
        cloud.eni_holder("eni-0aaaaaaaaaaaaaaa1").as_deref(),
        Some(OLD)
    );
}
