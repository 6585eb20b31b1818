//! Warm pools end to end: an instance launched into the warm pool is not pinned, one leaving it
//! for the group is, and one returning to it on scale-in is released, with the `Origin` and
//! `Destination` fields on each event as AWS sends them.

use pinhook::Outcome;
use serde_json::{Value, json};

use crate::support::{AZ_A, GroupSpec, World, eni_metadata, unique};

/// The group's one pending action, and its event.
fn only_action(world: &World, group: &str) -> Value {
    let mut actions = world.emulator.actions(group, false);
    assert_eq!(actions.len(), 1, "{actions:?}");
    actions.remove(0)
}

/// The instance's pending action.
fn action_of(world: &World, group: &str, instance: &str) -> Value {
    world
        .emulator
        .actions(group, false)
        .into_iter()
        .find(|a| a["instance_id"] == instance)
        .unwrap_or_else(|| panic!("{instance} waits on no action"))
}

#[tokio::test(start_paused = true)]
async fn a_warm_pool_instance_is_pinned_only_while_it_serves_the_group() {
    // Given a group with pinhook's hooks and a warm pool of one instance, reused on scale-in
    let world = World::new().await;
    let net = world.network().await;
    let pool = unique("licence");
    let enis = world.eni_pool(&net, &pool, AZ_A, 2).await;
    let group = world
        .group(GroupSpec::pinning(
            vec![net.subnet_a.clone()],
            eni_metadata(&pool, json!({})),
            2,
        ))
        .await;
    world.warm_pool(&group, 1).await;

    // When the instance launched into the warm pool is delivered
    let entering = only_action(&world, &group.name);
    let instance = entering["instance_id"].as_str().unwrap().to_owned();
    assert_eq!(entering["event"]["detail"]["Origin"], "EC2");
    assert_eq!(entering["event"]["detail"]["Destination"], "WarmPool");
    assert_eq!(
        world.lifecycle_state(&instance).await.as_deref(),
        Some("Warmed:Pending:Wait")
    );
    let summary = world.deliver(&entering["event"]).await;

    // Then it is completed without a member, and waits stopped in the warm pool
    assert_eq!(summary.outcome, Outcome::Continue, "{summary:?}");
    assert_eq!(summary.member, None);
    assert!(
        world
            .attached_to(&instance)
            .await
            .iter()
            .all(|e| e.pool.is_none())
    );
    let warm = world.warm_instances(&group).await;
    let warm: Vec<(&str, &str)> = warm
        .iter()
        .map(|i| (i.id.as_str(), i.state.as_str()))
        .collect();
    assert_eq!(warm, [(instance.as_str(), "Warmed:Stopped")]);

    // When the group scales out, drawing the instance from the warm pool (which launches a new
    // instance into the warm pool to keep its size)
    world.scale(&group, 1).await;
    let leaving = action_of(&world, &group.name, &instance);
    assert_eq!(leaving["event"]["detail"]["Origin"], "WarmPool");
    assert_eq!(
        leaving["event"]["detail"]["Destination"],
        "AutoScalingGroup"
    );
    let summary = world.deliver(&leaving["event"]).await;

    // Then it is pinned, and in service
    assert_eq!(summary.outcome, Outcome::Continue, "{summary:?}");
    let member = summary.member.expect("a member");
    assert!(enis.contains(&member));
    assert_eq!(
        world.eni_state(&member).await.instance.as_deref(),
        Some(instance.as_str())
    );
    assert_eq!(
        world.lifecycle_state(&instance).await.as_deref(),
        Some("InService")
    );

    // and the new warm instance is not pinned
    let refill = world.warm_instances(&group).await;
    assert_eq!(refill.len(), 1, "{refill:?}");
    let refilled = action_of(&world, &group.name, &refill[0].id);
    let summary = world.deliver(&refilled["event"]).await;
    assert_eq!(summary.outcome, Outcome::Continue, "{summary:?}");
    assert_eq!(summary.member, None);

    // When the group scales in and the instance returns to the warm pool
    world.scale(&group, 0).await;
    let returning = action_of(&world, &group.name, &instance);
    assert_eq!(
        returning["transition"],
        "autoscaling:EC2_INSTANCE_TERMINATING"
    );
    assert_eq!(returning["event"]["detail"]["Origin"], "AutoScalingGroup");
    assert_eq!(returning["event"]["detail"]["Destination"], "WarmPool");
    assert_eq!(
        world.lifecycle_state(&instance).await.as_deref(),
        Some("Warmed:Pending:Wait")
    );
    let summary = world.deliver(&returning["event"]).await;

    // Then its member is back in the pool, and it waits in the warm pool again
    assert_eq!(summary.outcome, Outcome::Continue, "{summary:?}");
    assert_eq!(summary.member.as_deref(), Some(member.as_str()));
    let released = world.eni_state(&member).await;
    assert_eq!(released.status, "available", "{released:?}");
    assert_eq!(released.holder, None);
    let warm = world.warm_instances(&group).await;
    assert!(
        warm.iter()
            .any(|i| i.id == instance && i.state == "Warmed:Stopped"),
        "{warm:?} (before the scale-in: {refill:?})"
    );
}
