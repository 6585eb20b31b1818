//! Releasing a pinned ENI on termination, end to end against the emulator.

use pinhook::Outcome;
use pinhook::handler::Completion;
use serde_json::json;

use crate::support::{AZ_A, Group, GroupSpec, Network, World, eni_metadata, unique};

/// A group in AZ a pinning from a fresh pool of `size`, with one instance launched and pinned.
async fn pinned_instance(
    world: &World,
    extra_terminate_hook: bool,
) -> (Network, String, Group, String, String) {
    let net = world.network().await;
    let pool = unique("licence");
    world.eni_pool(&net, &pool, AZ_A, 2).await;
    let metadata = eni_metadata(&pool, json!({}));
    let group = world
        .group(GroupSpec {
            extra_terminate_hook,
            ..GroupSpec::pinning(vec![net.subnet_a.clone()], metadata, 4)
        })
        .await;
    world.scale(&group, 1).await;
    let summary = world
        .deliver(&world.emulator.pending_events(&group.name)[0])
        .await;
    assert_eq!(summary.outcome, Outcome::Continue, "{summary:?}");
    let instance = summary.instance.unwrap().to_string();
    let eni = summary.member.unwrap();
    (net, pool, group, instance, eni)
}

fn terminate_event(world: &World, group: &Group, instance: &str) -> serde_json::Value {
    world.emulator.action_of(&group.name, instance, "terminate")["event"].clone()
}

#[tokio::test(start_paused = true)]
async fn termination_releases_the_eni_and_completes() {
    // Given a pinned instance
    let world = World::new().await;
    let (_, _, group, instance, eni) = pinned_instance(&world, false).await;

    // When the group scales in and the terminate action is delivered
    world.scale(&group, 0).await;
    assert_eq!(
        world.lifecycle_state(&instance).await.as_deref(),
        Some("Terminating:Wait")
    );
    let summary = world
        .deliver(&terminate_event(&world, &group, &instance))
        .await;

    // Then the ENI is available again with no holder, and the instance went on terminating
    assert_eq!(summary.outcome, Outcome::Continue, "{summary:?}");
    assert_eq!(summary.completion, Some(Completion::Completed));
    assert_eq!(summary.member.as_deref(), Some(eni.as_str()));
    let state = world.eni_state(&eni).await;
    assert_eq!(state.status, "available");
    assert_eq!(state.instance, None);
    assert_eq!(state.holder, None);
    assert_eq!(world.ec2_state(&instance).await, "terminated");
    let action = world
        .emulator
        .action_of(&group.name, &instance, "terminate");
    assert_eq!(
        action["complete_calls"],
        json!({"accepted": 1, "rejected": 0})
    );
}

#[tokio::test(start_paused = true)]
async fn the_primary_and_foreign_interfaces_are_never_detached() {
    // Given a pinned instance that also has an untagged ENI and a member of another pool
    // attached, and a second terminate hook that keeps it in Terminating:Wait afterwards
    let world = World::new().await;
    let (net, _, group, instance, eni) = pinned_instance(&world, true).await;
    let untagged = world.eni(&net.subnet_a, &[]).await;
    let other_pool = world
        .eni(&net.subnet_a, &[("pinhook:pool", "someone-else")])
        .await;
    for (foreign, index) in [(&untagged, 2), (&other_pool, 3)] {
        world.attach(foreign, &instance, index).await;
    }
    world.scale(&group, 0).await;

    // When pinhook's terminate action is delivered
    let summary = world
        .deliver(&terminate_event(&world, &group, &instance))
        .await;
    assert_eq!(summary.outcome, Outcome::Continue, "{summary:?}");

    // Then only the pool ENI was released; the rest is still attached where it was
    assert_eq!(
        world.lifecycle_state(&instance).await.as_deref(),
        Some("Terminating:Wait")
    );
    // (a detach in progress would still list the ENI as attached, with status "detaching")
    let attached: Vec<(Option<i32>, String)> = world
        .attached_to(&instance)
        .await
        .into_iter()
        .inspect(|e| assert_eq!(e.attachment_status.as_deref(), Some("attached"), "{e:?}"))
        .map(|e| (e.device_index, e.id))
        .collect();
    assert_eq!(attached.len(), 3, "{attached:?}");
    assert_eq!(attached[0].0, Some(0));
    assert_eq!(attached[1], (Some(2), untagged));
    assert_eq!(attached[2], (Some(3), other_pool));
    assert_eq!(world.eni_state(&eni).await.status, "available");
}

#[tokio::test(start_paused = true)]
async fn a_terminate_event_redelivered_completes_once() {
    let world = World::new().await;
    let (_, _, group, instance, eni) = pinned_instance(&world, false).await;
    world.scale(&group, 0).await;
    let event = terminate_event(&world, &group, &instance);

    let first = world.deliver(&event).await;
    let second = world.deliver(&event).await;

    assert_eq!(first.outcome, Outcome::Continue);
    assert_eq!(second.outcome, Outcome::Stale, "{second:?}");
    assert_eq!(world.eni_state(&eni).await.status, "available");
    let action = world
        .emulator
        .action_of(&group.name, &instance, "terminate");
    assert_eq!(action["complete_calls"]["accepted"], 1);
}

#[tokio::test(start_paused = true)]
async fn termination_with_bad_metadata_still_completes_and_releases_the_named_pool() {
    // Given a pinned instance whose terminate hook metadata has gone bad but still names the pool
    let world = World::new().await;
    let (_, pool, group, instance, eni) = pinned_instance(&world, false).await;
    world
        .hook(
            &group.name,
            &group.terminate_hook,
            "autoscaling:EC2_INSTANCE_TERMINATING",
            &json!({"pin": "nic", "pool": pool}).to_string(),
        )
        .await;
    world.scale(&group, 0).await;

    let summary = world
        .deliver(&terminate_event(&world, &group, &instance))
        .await;

    assert_eq!(summary.outcome, Outcome::Continue, "{summary:?}");
    assert_eq!(world.eni_state(&eni).await.status, "available");
}

#[tokio::test(start_paused = true)]
async fn a_terminate_event_before_the_launch_is_handled_changes_nothing() {
    // An out-of-order terminate event for an instance that is still launching.
    let world = World::new().await;
    let net = world.network().await;
    let pool = unique("licence");
    world.eni_pool(&net, &pool, AZ_A, 1).await;
    let metadata = eni_metadata(&pool, json!({}));
    let group = world
        .group(GroupSpec::pinning(vec![net.subnet_a.clone()], metadata, 2))
        .await;
    world.scale(&group, 1).await;
    let launch = world.emulator.pending_events(&group.name).remove(0);
    let mut early_terminate = crate::support::sample_event("terminate.json");
    for key in [
        "AutoScalingGroupName",
        "EC2InstanceId",
        "NotificationMetadata",
    ] {
        early_terminate["detail"][key] = launch["detail"][key].clone();
    }
    early_terminate["detail"]["LifecycleHookName"] = json!(group.terminate_hook);

    let summary = world.deliver(&early_terminate).await;

    assert_eq!(summary.outcome, Outcome::Stale, "{summary:?}");
    assert_eq!(world.deliver(&launch).await.outcome, Outcome::Continue);
}
