//! pinhook in AWS's time, against the emulator: an instance still booting when its launch event
//! arrives, two copies of one event at once with fresh and with lagging reads, and AWS calls
//! that hang past the function's deadline.

use std::time::Duration;

use tokio::time::Instant;

use pinhook::Outcome;
use pinhook::handler::Completion;
use serde_json::{Value, json};

use crate::support::Pin;
use crate::support::{Group, World, fast_settings, instance_of};

/// A group in AZ a pinning from a fresh pool of `members` (ENIs, or Elastic IPs), and the pool.
async fn pinning_group(world: &World, pin: Pin, members: usize) -> (Group, String, Vec<String>) {
    let net = world.network().await;
    let pinning = world.pinning(&net, pin, members, 2).await;
    (pinning.group, pinning.pool, pinning.members)
}

/// The members of the pool the instance holds, as AWS sees them.
async fn held_by(world: &World, pin: Pin, members: &[String], instance: &str) -> Vec<String> {
    let mut held = Vec::new();
    for member in members {
        let holder = match pin {
            Pin::Eni => world.eni_state(member).await.instance,
            Pin::Eip => world.address_state(member).await.instance,
        };
        if holder.as_deref() == Some(instance) {
            held.push(member.clone());
        }
    }
    held
}

/// The requests of the claim calls for the instance, as (status, error code).
fn claims(world: &World, pin: Pin, instance: &str, primary: &str) -> Vec<(Value, Value)> {
    let requests = match pin {
        Pin::Eni => world.emulator.requests(&[
            ("action", "AttachNetworkInterface"),
            ("InstanceId", instance),
        ]),
        Pin::Eip => world.emulator.requests(&[
            ("action", "AssociateAddress"),
            ("NetworkInterfaceId", primary),
        ]),
    };
    requests
        .iter()
        .map(|r| (r["status"].clone(), r["code"].clone()))
        .collect()
}

async fn a_booting_instance_is_waited_for_then_pinned(pin: Pin) {
    // Given a group whose new instances boot for two seconds (EC2 state `pending`), on an
    // emulator whose clock follows this test's alone
    let world = World::dedicated_with(fast_settings()).await;
    let (group, _, members) = pinning_group(&world, pin, 2).await;
    world.emulator.boot_delay(&group.name, 2.0);
    world.scale(&group, 1).await;
    let event = world.emulator.pending_events(&group.name).remove(0);
    let instance = instance_of(&event);
    assert_eq!(world.ec2_state(&instance).await, "pending");
    let primary = world.interface_at(&instance, 0).await.id;

    // When its launch event arrives at once
    let started = Instant::now();
    let summary = world.deliver(&event).await;

    // Then AWS refused the claim while the instance booted, and pinhook waited and pinned it
    assert_eq!(summary.outcome, Outcome::Continue, "{pin}: {summary:?}");
    assert!(started.elapsed() >= Duration::from_millis(1500), "{pin}");
    let reason = summary.reason.clone().unwrap_or_default();
    assert!(reason.contains("to boot"), "{pin}: {reason}");
    let claims = claims(&world, pin, &instance, &primary);
    assert_eq!(
        claims.first(),
        Some(&(json!(400), json!("IncorrectInstanceState"))),
        "{pin}: {claims:?}"
    );
    assert_eq!(
        claims.last(),
        Some(&(json!(200), Value::Null)),
        "{pin}: {claims:?}"
    );
    let member = summary.member.clone().unwrap();
    assert_eq!(held_by(&world, pin, &members, &instance).await, [member]);
    assert_eq!(world.ec2_state(&instance).await, "running");
    assert!(world.metric("BootWait") >= 1500.0, "{pin}");
}

#[tokio::test(start_paused = true)]
async fn an_eni_launch_waits_for_an_instance_that_boots_for_two_seconds() {
    a_booting_instance_is_waited_for_then_pinned(Pin::Eni).await;
}

#[tokio::test(start_paused = true)]
async fn an_elastic_ip_launch_waits_for_an_instance_that_boots_for_two_seconds() {
    a_booting_instance_is_waited_for_then_pinned(Pin::Eip).await;
}

/// Two copies of one launch event delivered at once, each its own invocation: one member, one
/// accepted CONTINUE, lease tags that match, whether EC2's reads are fresh or lag by up to
/// three seconds.
async fn two_copies_of_one_launch(pin: Pin, lag: bool) {
    let mut world = match lag {
        true => World::dedicated().await,
        false => World::new().await,
    };
    // pinhook looks again after a conflict once reads can have caught up
    world.settings.consistency_window = Duration::from_millis(3500);
    let (group, pool, members) = pinning_group(&world, pin, 3).await;
    world.scale(&group, 1).await;
    let event = world.emulator.pending_events(&group.name).remove(0);
    let instance = instance_of(&event);
    if lag {
        world.emulator.read_lag(3.0);
    }

    let deliveries = world.burst(&[event], 2, 0).await;

    if lag {
        world.emulator.read_lag(0.0);
    }
    let case = format!("{pin}, lag {lag}");
    assert_eq!(deliveries.failed, 0, "{case}: {deliveries:?}");
    for summary in &deliveries.summaries {
        assert_eq!(summary.outcome, Outcome::Continue, "{case}: {summary:?}");
    }
    let completions: Vec<_> = deliveries.summaries.iter().map(|s| s.completion).collect();
    assert!(
        completions.contains(&Some(Completion::Completed)),
        "{case}: {completions:?}"
    );
    let held = held_by(&world, pin, &members, &instance).await;
    assert_eq!(held.len(), 1, "{case}: {held:?}");
    let action = world.emulator.action_of(&group.name, &instance, "launch");
    assert_eq!(action["complete_calls"]["accepted"], 1, "{case}: {action}");
    assert_eq!(action["result"], "CONTINUE", "{case}: {action}");
    let lease_tag = &format!("pinhook:{pin}");
    assert_eq!(
        world.instance_tag(&instance, lease_tag).await.as_deref(),
        Some(held[0].as_str()),
        "{case}"
    );
    let census = world.census(&group, &pool, pin).await;
    assert_eq!(
        (
            census.pinned,
            census.lease_mismatches,
            census.double_held_members
        ),
        (1, 0, 0),
        "{case}: {census:?}"
    );
    if lag {}
}

#[tokio::test(start_paused = true)]
async fn two_copies_of_an_eni_launch_pin_one_member_with_fresh_reads() {
    two_copies_of_one_launch(Pin::Eni, false).await;
}

#[tokio::test(start_paused = true)]
async fn two_copies_of_an_eni_launch_pin_one_member_with_lagging_reads() {
    two_copies_of_one_launch(Pin::Eni, true).await;
}

#[tokio::test(start_paused = true)]
async fn two_copies_of_an_elastic_ip_launch_pin_one_address_with_fresh_reads() {
    two_copies_of_one_launch(Pin::Eip, false).await;
}

#[tokio::test(start_paused = true)]
async fn two_copies_of_an_elastic_ip_launch_pin_one_address_with_lagging_reads() {
    two_copies_of_one_launch(Pin::Eip, true).await;
}

/// Makes every request for these actions hang for a minute: each attempt of pinhook's gives up
/// after 2 s, and the request is applied all the same when the minute is up (an answer lost
/// after the call was applied).
fn hang(world: &World, actions: &[&str]) {
    world.emulator.control(
        "POST",
        "faults",
        Some(&json!({"rate": 0, "slow_rate": 1.0, "slow_seconds": [60, 60], "actions": actions})),
    );
}

#[tokio::test(start_paused = true)]
async fn a_terminate_whose_aws_calls_hang_is_completed_before_the_deadline() {
    // Given a pinned instance leaving its group
    let world = World::dedicated_with(fast_settings()).await;
    let (group, _, _) = pinning_group(&world, Pin::Eni, 1).await;
    world.scale(&group, 1).await;
    let launch = world.emulator.pending_events(&group.name).remove(0);
    assert_eq!(world.deliver(&launch).await.outcome, Outcome::Continue);
    world.scale(&group, 0).await;
    let event = world.emulator.pending_events(&group.name).remove(0);

    // When EC2 stops answering the calls of the release, with 8 s to live
    hang(
        &world,
        &["DescribeNetworkInterfaces", "DetachNetworkInterface"],
    );
    let deadline = Duration::from_secs(8);
    let started = Instant::now();
    let summary = world.deliver_within(&event, deadline).await;

    // Then the action is completed before the function's deadline (termination is never
    // blocked), not reported as released, the rest left to the sweep
    assert!(started.elapsed() < deadline, "{:?}", started.elapsed());
    assert_eq!(summary.outcome, Outcome::Continue, "{summary:?}");
    assert_eq!(summary.completion, Some(Completion::Completed));
    assert_eq!(summary.member, None, "{summary:?}");
    let reason = summary.reason.unwrap_or_default();
    assert!(
        reason.starts_with("release failed") || reason.starts_with("release unfinished"),
        "{reason}"
    );
    assert!(world.metric("ReleaseFailed") >= 1.0);
}

#[tokio::test(start_paused = true)]
async fn a_launch_whose_claim_hangs_is_left_pending_and_its_redelivery_pins_what_landed() {
    // Given a launch whose AttachNetworkInterface does not answer for a minute, with 8 s to live
    let world = World::dedicated_with(fast_settings()).await;
    let (group, _, members) = pinning_group(&world, Pin::Eni, 1).await;
    world.scale(&group, 1).await;
    let event = world.emulator.pending_events(&group.name).remove(0);
    let instance = instance_of(&event);
    hang(&world, &["AttachNetworkInterface"]);

    // When it is delivered
    let deadline = Duration::from_secs(8);
    let started = Instant::now();
    let err = world
        .app()
        .handle(&event, pinhook::Deadline::after(deadline))
        .await
        .unwrap_err();

    // Then the deadline is no failure: nothing is completed, the action is kept alive, and the
    // error (which names the member whose claim may still land) asks for a redelivery
    assert!(started.elapsed() < deadline, "{:?}", started.elapsed());
    assert!(err.to_string().contains(&members[0]), "{err}");
    let action = world.emulator.action_of(&group.name, &instance, "launch");
    assert_eq!(action["pending"], true, "{action}");
    assert_eq!(action["complete_calls"]["accepted"], 0, "{action}");
    assert!(action["heartbeats"].as_u64().unwrap_or(0) >= 1, "{action}");
    assert_eq!(world.metric("LeftPending"), 1.0);

    // When AWS answers again, the claim having landed meanwhile, and the event is redelivered
    world.emulator.faults(0.0, 0.0);
    tokio::time::sleep(Duration::from_secs(60)).await;
    let summary = world.deliver(&event).await;

    // Then the redelivery settles on the member the first delivery claimed, and completes once
    assert_eq!(summary.outcome, Outcome::Continue, "{summary:?}");
    assert_eq!(summary.member.as_deref(), Some(members[0].as_str()));
    let action = world.emulator.action_of(&group.name, &instance, "launch");
    assert_eq!(action["complete_calls"]["accepted"], 1, "{action}");
}
