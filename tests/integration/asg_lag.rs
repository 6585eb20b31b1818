//! Auto Scaling's reads lag its lifecycle transitions: the check looks again while a read shows
//! the instance before the event's transition, and only then calls the event stale. Each test
//! has an emulator of its own, whose Auto Scaling reads show each instance's previous state for
//! two seconds after every transition (or, for a new instance, do not list it at all).

use std::time::Duration;

use pinhook::Outcome;
use pinhook::config::Settings;
use pinhook::handler::Completion;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::support::{Group, Pin, World, fast_settings, instance_of, sample_event};

const LAG: f64 = 2.0;

/// A world whose Auto Scaling reads lag (`lag` seconds; a new instance unlisted that long with
/// `unlisted`), with pinhook looking again for up to three seconds.
async fn lagging(lag: f64, unlisted: bool) -> World {
    let world = World::dedicated_with(Settings {
        consistency_window: Duration::from_secs(3),
        ..fast_settings()
    })
    .await;
    world.emulator.asg_lag(lag, unlisted);
    world
}

/// A group in AZ a pinning from a pool of two.
async fn pinning_group(world: &World, pin: Pin) -> (Group, String) {
    let net = world.network().await;
    let pinning = world.pinning(&net, pin, 2, 2).await;
    (pinning.group, pinning.pool)
}

/// How many requests of each action the emulator has served.
fn calls(world: &World, action: &str) -> u64 {
    world.emulator.calls()["calls"][action]
        .as_u64()
        .unwrap_or(0)
}

async fn launch_and_terminate_the_moment_each_transition_happens(pin: Pin, unlisted: bool) {
    let world = lagging(LAG, unlisted).await;
    let (group, _) = pinning_group(&world, pin).await;

    // Given an instance that has just entered Pending:Wait, which Auto Scaling's reads do not
    // show yet
    world.scale(&group, 1).await;
    let launch = world.emulator.pending_events(&group.name).remove(0);
    let instance = instance_of(&launch);
    let shown = world.lifecycle_state(&instance).await;
    let before = if unlisted { None } else { Some("Pending") };
    assert_eq!(shown.as_deref(), before, "{pin}: the read lags");

    // When its launch event is delivered at once
    let summary = world.deliver(&launch).await;

    // Then pinhook looked again until the read caught up, pinned, and completed once
    assert_eq!(summary.outcome, Outcome::Continue, "{pin}: {summary:?}");
    assert_eq!(summary.completion, Some(Completion::Completed));
    let member = summary.member.clone().expect("a member");
    let action = world.emulator.action_of(&group.name, &instance, "launch");
    assert_eq!(action["complete_calls"]["accepted"], 1, "{pin}: {action}");
    assert!(
        calls(&world, "DescribeAutoScalingInstances") > 1,
        "{pin}: looked again"
    );

    // Given the instance, in service for a while, has just entered Terminating:Wait, the
    // reads still showing InService
    tokio::time::sleep(Duration::from_secs(10)).await;
    world.scale(&group, 0).await;
    let terminate = world
        .emulator
        .action_of(&group.name, &instance, "terminate")["event"]
        .clone();
    assert_eq!(
        world.lifecycle_state(&instance).await.as_deref(),
        Some("InService"),
        "{pin}: the read lags"
    );

    // When its terminate event is delivered at once
    let summary = world.deliver(&terminate).await;

    // Then the member is released and the action completed once
    assert_eq!(summary.outcome, Outcome::Continue, "{pin}: {summary:?}");
    assert_eq!(summary.member.as_deref(), Some(member.as_str()), "{pin}");
    let action = world
        .emulator
        .action_of(&group.name, &instance, "terminate");
    assert_eq!(action["complete_calls"]["accepted"], 1, "{pin}: {action}");
    let holder = match pin {
        Pin::Eni => world.eni_state(&member).await.instance,
        Pin::Eip => world.address_state(&member).await.instance,
    };
    assert_eq!(holder, None, "{pin}: released");
}

#[tokio::test(start_paused = true)]
async fn an_eni_launch_and_terminate_met_by_lagging_reads_pin_and_release() {
    launch_and_terminate_the_moment_each_transition_happens(Pin::Eni, false).await;
}

#[tokio::test(start_paused = true)]
async fn an_elastic_ip_launch_and_terminate_met_by_lagging_reads_pin_and_release() {
    launch_and_terminate_the_moment_each_transition_happens(Pin::Eip, false).await;
}

#[tokio::test(start_paused = true)]
async fn a_launch_whose_instance_is_not_listed_yet_is_pinned_once_it_is() {
    launch_and_terminate_the_moment_each_transition_happens(Pin::Eni, true).await;
    launch_and_terminate_the_moment_each_transition_happens(Pin::Eip, true).await;
}

/// A launch event for `instance` in `group`, with a token Auto Scaling never issued.
fn forged_launch(group: &Group, instance: &str) -> Value {
    let mut event = sample_event("launch.json");
    event["detail"]["AutoScalingGroupName"] = json!(group.name);
    event["detail"]["LifecycleHookName"] = json!(group.launch_hook);
    event["detail"]["EC2InstanceId"] = json!(instance);
    event["detail"]["LifecycleActionToken"] = json!("00000000-0000-0000-0000-000000000000");
    event
}

#[tokio::test(start_paused = true)]
async fn a_forged_launch_changes_nothing_and_costs_the_window_at_most() {
    // Given lagging reads, a group, and an instance that is in no group at all
    let world = lagging(LAG, true).await;
    let (group, pool) = pinning_group(&world, Pin::Eni).await;
    let net = world.network().await;
    let stranger = world.lone_instance(&net.subnet_a).await;
    let changes_before = world.emulator.requests(&[]).len();

    // When a launch event names it
    let started = Instant::now();
    let summary = world.deliver(&forged_launch(&group, &stranger)).await;
    let took = started.elapsed();

    // Then nothing is pinned or completed, after looking for the consistency window only, and
    // the answer says why
    assert_eq!(summary.outcome, Outcome::Stale, "{summary:?}");
    assert_eq!(summary.completion, None);
    let reason = summary.reason.unwrap_or_default();
    assert!(reason.contains("in no Auto Scaling group"), "{reason}");
    assert!(reason.contains("still so"), "{reason}");
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(4),
        "{took:?}"
    );
    assert_eq!(
        world.emulator.requests(&[]).len(),
        changes_before,
        "no request that changes anything"
    );
    let census = world.census(&group, &pool, Pin::Eni).await;
    assert_eq!(census.pinned, 0);

    // and an instance of another group is stale at once, on the first read
    let (other, _) = pinning_group(&world, Pin::Eni).await;
    world.scale(&other, 1).await;
    let theirs = instance_of(&world.emulator.pending_events(&other.name)[0]);
    let started = Instant::now();
    let summary = world.deliver(&forged_launch(&group, &theirs)).await;
    assert_eq!(summary.outcome, Outcome::Stale, "{summary:?}");
    assert!(
        summary
            .reason
            .unwrap_or_default()
            .contains("belongs to group")
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn without_lag_a_launch_reads_auto_scaling_once() {
    // Given reads that do not lag, and EC2 attachments that settle at once (so that the
    // calls are the launch's floor)
    let world = lagging(0.0, false).await;
    world.emulator.settings(json!({"attach_delay": 0.0}));
    let (group, _) = pinning_group(&world, Pin::Eni).await;
    world.scale(&group, 1).await;
    let launch = world.emulator.pending_events(&group.name).remove(0);
    let before = world.emulator.calls()["calls"].clone();

    // When the launch is delivered
    let summary = world.deliver(&launch).await;

    // Then it is pinned with the calls of its floor: one read of Auto Scaling, and of EC2 the
    // first page of free members beside the instance's own, then the read that sees the
    // attachment settled
    assert_eq!(summary.outcome, Outcome::Continue, "{summary:?}");
    let after = world.emulator.calls()["calls"].clone();
    let made =
        |action: &str| after[action].as_u64().unwrap_or(0) - before[action].as_u64().unwrap_or(0);
    assert_eq!(made("DescribeAutoScalingInstances"), 1);
    assert_eq!(made("DescribeNetworkInterfaces"), 3);
    assert_eq!(made("AttachNetworkInterface"), 1);
    assert_eq!(made("CreateTags"), 2);
    assert_eq!(made("CompleteLifecycleAction"), 1);
}

#[tokio::test(start_paused = true)]
async fn a_malformed_launch_whose_instance_is_not_listed_yet_is_still_completed() {
    // Given a new instance in Pending:Wait that Auto Scaling's reads do not list yet, and its
    // launch event with a field broken in transit
    let world = lagging(LAG, true).await;
    let (group, _) = pinning_group(&world, Pin::Eni).await;
    world.scale(&group, 1).await;
    let mut event = world.emulator.pending_events(&group.name).remove(0);
    event["detail"]["Origin"] = json!("Elsewhere");
    let instance = instance_of(&event);

    // When it arrives at once
    let summary = world.deliver(&event).await;

    // Then pinhook looked again until the read listed the instance, and completed the action
    // with the hook's failure outcome rather than leave it to time out
    assert_eq!(summary.outcome, Outcome::Abandon, "{summary:?}");
    assert_eq!(
        summary.completion,
        Some(Completion::Completed),
        "{summary:?}"
    );
    let reason = summary.reason.unwrap_or_default();
    assert!(reason.contains("Origin"), "{reason}");
    let action = world.emulator.action_of(&group.name, &instance, "launch");
    assert_eq!(action["result"], "ABANDON", "{action}");
}
