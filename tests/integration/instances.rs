//! Instances without a group (Karpenter nodes, plain EC2 instances), pinned from EC2's
//! state-change events by the same claim engine: the tags select them, the later of the event
//! and the read decides, and the sweep covers a lost event.

use std::collections::BTreeMap;
use std::time::Duration;

use pinhook::Outcome;
use serde_json::{Value, json};

use crate::support::Pin;
use crate::support::{GroupSpec, World, hook_metadata, join_all, node_tags, unique};

/// EC2's state-change events of an instance so far, by state.
fn events(world: &World, instance: &str) -> BTreeMap<String, Value> {
    world
        .emulator
        .ec2_events(instance)
        .into_iter()
        .map(|e| (e["detail"]["state"].as_str().unwrap_or("").to_owned(), e))
        .collect()
}

/// A pool of `members`, and a tagged instance for it in AZ a.
async fn node(world: &World, pin: Pin, members: usize) -> (String, Vec<String>, String) {
    let net = world.network().await;
    let pool = unique(&format!("nodes-{pin}"));
    let members = world.pool_of(&net, pin, &pool, members).await;
    let tags = node_tags(pin, &pool);
    let tags: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let instance = world.tagged_instance(&net.subnet_a, &tags).await;
    (pool, members, instance)
}

/// The instance that holds the member, as AWS sees it.
async fn holder(world: &World, pin: Pin, member: &str) -> Option<String> {
    match pin {
        Pin::Eni => world.eni_state(member).await.instance,
        Pin::Eip => world.address_state(member).await.instance,
    }
}

async fn a_tagged_instance_gets_a_member_and_gives_it_back_on_termination(pin: Pin) {
    // Given a plain instance tagged for a pool, as Karpenter launches a node
    let world = World::dedicated().await;
    let (pool, members, instance) = node(&world, pin, 1).await;
    let seen = events(&world, &instance);

    // When its `running` event arrives
    let before = world.emulator.call_counts();
    let summary = world.deliver(&seen["running"]).await;
    let calls = world.emulator.calls_since(&before);

    // Then it holds the pool's member, with the lease tags, and the summary says how long
    // after `running` that was
    assert_eq!(summary.outcome, Outcome::Pinned, "{pin}: {summary:?}");
    assert_eq!(summary.member.as_deref(), Some(members[0].as_str()));
    assert_eq!(
        summary.pool.as_ref().map(|p| p.as_str()),
        Some(pool.as_str())
    );
    assert_eq!(summary.ec2_state.as_deref(), Some("running"));
    assert!(summary.pinned_after_running_ms.is_some(), "{summary:?}");
    assert_eq!(
        holder(&world, pin, &members[0]).await.as_deref(),
        Some(instance.as_str())
    );
    let lease = format!("pinhook:{pin}");
    assert_eq!(
        world.instance_tag(&instance, &lease).await.as_deref(),
        Some(members[0].as_str())
    );
    assert_eq!(calls.get("DescribeInstances"), Some(&1), "{calls:?}");
    assert_eq!(world.metric("Pinned"), 1.0);

    // When it terminates, and its events arrive
    world.terminate_in_ec2(&instance).await;
    let seen = events(&world, &instance);
    let shutting = world.deliver(&seen["shutting-down"]).await;
    let terminated = world.deliver(&seen["terminated"]).await;

    // Then the member is back in the pool and its holder tag cleared by the first of them; the
    // second finds nothing left to give back
    assert_eq!(shutting.outcome, Outcome::Released, "{pin}: {shutting:?}");
    assert_eq!(
        shutting.member.as_deref(),
        Some(members[0].as_str()),
        "{pin}"
    );
    assert_eq!(
        terminated.outcome,
        Outcome::Released,
        "{pin}: {terminated:?}"
    );
    assert_eq!(terminated.member, None, "{pin}: {terminated:?}");
    assert_eq!(holder(&world, pin, &members[0]).await, None);
    let tag = match pin {
        Pin::Eni => world.eni_state(&members[0]).await.holder,
        Pin::Eip => world.address_state(&members[0]).await.holder,
    };
    assert_eq!(tag, None, "{pin}");
}

#[tokio::test(start_paused = true)]
async fn a_tagged_instance_gets_an_eni_and_gives_it_back_on_termination() {
    a_tagged_instance_gets_a_member_and_gives_it_back_on_termination(Pin::Eni).await;
}

#[tokio::test(start_paused = true)]
async fn a_tagged_instance_gets_an_elastic_ip_and_gives_it_back_on_termination() {
    a_tagged_instance_gets_a_member_and_gives_it_back_on_termination(Pin::Eip).await;
}

#[tokio::test(start_paused = true)]
async fn an_untagged_instance_and_a_group_member_cost_one_read_and_change_nothing() {
    // Given a plain instance without pinhook's tags, and a group's instance whose launch
    // template carries them (its hooks serve it)
    let world = World::dedicated().await;
    let net = world.network().await;
    let plain = world.lone_instance(&net.subnet_a).await;
    let pool = unique("grouped");
    world.eip_pool(&pool, 1).await;
    let metadata = hook_metadata(Pin::Eip, &pool, json!({}));
    let group = world
        .group(GroupSpec::pinning(vec![net.subnet_a.clone()], metadata, 1))
        .await;
    world.scale(&group, 1).await;
    let action = world.emulator.pending_events(&group.name).remove(0);
    let member = crate::support::instance_of(&action);
    let tags = node_tags(Pin::Eip, &pool);
    world.tag(&member, tags[0].0, &tags[0].1).await;
    world.tag(&member, tags[1].0, &tags[1].1).await;

    for (instance, why) in [
        (&plain, "no pinhook:pin tag"),
        (&member, "Auto Scaling group"),
    ] {
        // When its state-change event arrives
        let event = events(&world, instance)["running"].clone();
        let before = world.emulator.call_counts();
        let summary = world.deliver(&event).await;

        // Then it is ignored after one read
        assert_eq!(summary.outcome, Outcome::Ignored, "{summary:?}");
        let reason = summary.reason.unwrap_or_default();
        assert!(reason.contains(why), "{reason}");
        let calls = world.emulator.calls_since(&before);
        assert_eq!(calls, BTreeMap::from([("DescribeInstances".to_owned(), 1)]));
    }
}

async fn duplicated_late_and_reordered_events_pin_once_and_never_after_termination(pin: Pin) {
    // Given a tagged instance and a pool of two
    let world = World::dedicated().await;
    let (pool, members, instance) = node(&world, pin, 2).await;
    let seen = events(&world, &instance);

    // When `running` arrives twice at once, then `pending` late
    let twice = join_all([&seen["running"], &seen["running"]].map(|e| world.deliver(e))).await;
    let late = world.deliver(&seen["pending"]).await;

    // Then one member is held, whatever the copies and the order
    for summary in twice.iter().chain([&late]) {
        assert_eq!(summary.outcome, Outcome::Pinned, "{pin}: {summary:?}");
    }
    let mut held = Vec::new();
    for member in &members {
        if holder(&world, pin, member).await.as_deref() == Some(instance.as_str()) {
            held.push(member.clone());
        }
    }
    assert_eq!(held.len(), 1, "{pin}: {held:?}");
    assert!(twice.iter().all(|s| s.member.as_ref() == Some(&held[0])));

    // When it terminates, and its `terminated` event comes before a `running` that was late
    world.terminate_in_ec2(&instance).await;
    let seen = events(&world, &instance);
    let released = world.deliver(&seen["terminated"]).await;
    let stale_running = seen["running"].clone();
    let after = world.deliver(&stale_running).await;

    // Then the member is released, and the late `running` pins nothing: EC2 says terminated
    assert_eq!(released.outcome, Outcome::Released, "{pin}: {released:?}");
    assert_eq!(after.outcome, Outcome::Released, "{pin}: {after:?}");
    for member in &members {
        assert_eq!(holder(&world, pin, member).await, None, "{pin}: {pool}");
    }
}

#[tokio::test(start_paused = true)]
async fn duplicated_late_and_reordered_events_of_an_eni_node_pin_once_and_never_after_it_ends() {
    duplicated_late_and_reordered_events_pin_once_and_never_after_termination(Pin::Eni).await;
}

#[tokio::test(start_paused = true)]
async fn duplicated_late_and_reordered_events_of_an_eip_node_pin_once_and_never_after_it_ends() {
    duplicated_late_and_reordered_events_pin_once_and_never_after_termination(Pin::Eip).await;
}

#[tokio::test(start_paused = true)]
async fn twenty_nodes_started_at_once_on_twelve_addresses_pin_twelve_and_report_the_rest() {
    // Given twenty tagged instances started at once, and a pool of twelve addresses
    let world = World::dedicated().await;
    let net = world.network().await;
    let pool = unique("crowded");
    let addresses = world.eip_pool(&pool, 12).await;
    let tags = node_tags(Pin::Eip, &pool);
    let tags: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let instances = join_all((0..20).map(|_| world.tagged_instance(&net.subnet_a, &tags))).await;

    // When every `running` event arrives at once, each its own invocation
    let running: Vec<Value> = instances
        .iter()
        .map(|i| events(&world, i)["running"].clone())
        .collect();
    let deliveries = world.burst(&running, 1, 2).await;

    // Then twelve are pinned, each to its own address, and the rest reported as not pinned
    // because the pool is exhausted
    assert_eq!(deliveries.failed, 0, "{deliveries:?}");
    let pinned: Vec<_> = deliveries
        .summaries
        .iter()
        .filter(|s| s.outcome == Outcome::Pinned)
        .collect();
    let refused: Vec<_> = deliveries
        .summaries
        .iter()
        .filter(|s| s.outcome == Outcome::NotPinned)
        .collect();
    assert_eq!((pinned.len(), refused.len()), (12, 8), "{deliveries:?}");
    assert!(
        refused
            .iter()
            .all(|s| s.reason.as_deref().unwrap_or("").contains("exhausted")),
        "{refused:?}"
    );
    let mut holders = Vec::new();
    for address in &addresses {
        holders.extend(holder(&world, Pin::Eip, address).await);
    }
    holders.sort();
    let before = holders.len();
    holders.dedup();
    assert_eq!(
        (before, holders.len()),
        (12, 12),
        "no instance holds two addresses"
    );
    assert_eq!(world.metric("NotPinned"), 8.0);
    assert_eq!(world.metric("PoolExhausted"), 8.0);
}

async fn a_booting_node_is_waited_for_then_pinned(pin: Pin) {
    // Given a tagged instance that boots for two seconds
    let world = World::dedicated().await;
    world.emulator.settings(json!({"plain_boot_delay": 2.0}));
    let (_, members, instance) = node(&world, pin, 1).await;
    assert_eq!(world.ec2_state(&instance).await, "pending");

    // When its `pending` event arrives at once
    let pending = events(&world, &instance)["pending"].clone();
    let summary = world.deliver(&pending).await;

    // Then pinhook waited for it to boot and pinned it as it came up
    assert_eq!(summary.outcome, Outcome::Pinned, "{pin}: {summary:?}");
    assert_eq!(summary.member.as_deref(), Some(members[0].as_str()));
    assert_eq!(world.ec2_state(&instance).await, "running");
    let after = summary.pinned_after_running_ms.unwrap_or(u64::MAX);
    assert!(after < 2000, "{pin}: pinned {after} ms after running");
    assert!(world.metric("BootWait") >= 1500.0, "{pin}");
}

#[tokio::test(start_paused = true)]
async fn a_booting_eni_node_is_waited_for_then_pinned() {
    a_booting_node_is_waited_for_then_pinned(Pin::Eni).await;
}

#[tokio::test(start_paused = true)]
async fn a_booting_eip_node_is_waited_for_then_pinned() {
    a_booting_node_is_waited_for_then_pinned(Pin::Eip).await;
}

async fn a_stopped_and_restarted_node_keeps_its_member(pin: Pin) {
    // Given a pinned node
    let world = World::dedicated().await;
    let (_, members, instance) = node(&world, pin, 2).await;
    let running = events(&world, &instance)["running"].clone();
    assert_eq!(world.deliver(&running).await.outcome, Outcome::Pinned);
    let member = holder_of(&world, pin, &members, &instance).await;

    // When it stops, its events arrive, and it starts again
    world.stop_instance(&instance).await;
    let seen = events(&world, &instance);
    let stopping = world.deliver(&seen["stopping"]).await;
    let stopped = world.deliver(&seen["stopped"]).await;
    let kept = holder_of(&world, pin, &members, &instance).await;
    world.start_instance(&instance).await;
    let restarted = world
        .emulator
        .ec2_events(&instance)
        .into_iter()
        .rfind(|e| e["detail"]["state"] == "running")
        .unwrap();
    let summary = world.deliver(&restarted).await;

    // Then it kept its member through the stop, and the restart finds it already pinned
    assert_eq!(stopping.outcome, Outcome::Kept, "{pin}: {stopping:?}");
    assert_eq!(stopped.outcome, Outcome::Kept, "{pin}: {stopped:?}");
    assert_eq!(kept, member, "{pin}");
    assert_eq!(summary.outcome, Outcome::Pinned, "{pin}: {summary:?}");
    assert_eq!(summary.member, member, "{pin}");
    let reason = summary.reason.unwrap_or_default();
    assert!(reason.contains("already"), "{pin}: {reason}");
}

/// The member of the pool the instance holds, if any.
async fn holder_of(world: &World, pin: Pin, members: &[String], instance: &str) -> Option<String> {
    for member in members {
        if holder(world, pin, member).await.as_deref() == Some(instance) {
            return Some(member.clone());
        }
    }
    None
}

#[tokio::test(start_paused = true)]
async fn a_stopped_and_restarted_eni_node_keeps_its_eni() {
    a_stopped_and_restarted_node_keeps_its_member(Pin::Eni).await;
}

#[tokio::test(start_paused = true)]
async fn a_stopped_and_restarted_eip_node_keeps_its_address() {
    a_stopped_and_restarted_node_keeps_its_member(Pin::Eip).await;
}

async fn a_terminated_event_read_as_running_releases(pin: Pin) {
    // Given a pinned node, and EC2's reads two seconds behind its state changes
    let world = World::dedicated().await;
    let (_, members, instance) = node(&world, pin, 1).await;
    world
        .emulator
        .settings(json!({"read_lag": 2.0, "lag_mode": "max"}));
    let pinned = world.deliver(&events(&world, &instance)["running"]).await;
    assert_eq!(pinned.outcome, Outcome::Pinned, "{pin}: {pinned:?}");

    // When it terminates and its `terminated` event arrives at once, while DescribeInstances
    // still answers as it did: running
    world.terminate_in_ec2(&instance).await;
    let stale_before = world.emulator.control("GET", "settings", None)["stale_answers"].clone();
    let summary = world
        .deliver(&events(&world, &instance)["terminated"])
        .await;
    let stale_after = world.emulator.control("GET", "settings", None)["stale_answers"].clone();

    // Then the event wins over the read that has not caught up: the member is given back
    assert!(
        stale_after.as_u64() > stale_before.as_u64(),
        "{pin}: the read did not lag ({stale_before} → {stale_after})"
    );
    assert_eq!(summary.outcome, Outcome::Released, "{pin}: {summary:?}");
    assert_eq!(summary.ec2_state.as_deref(), Some("terminated"), "{pin}");
    world.emulator.settings(json!({"read_lag": 0.0}));
    assert_eq!(holder(&world, pin, &members[0]).await, None, "{pin}");
}

#[tokio::test(start_paused = true)]
async fn a_terminated_event_read_as_running_gives_the_eni_back() {
    a_terminated_event_read_as_running_releases(Pin::Eni).await;
}

#[tokio::test(start_paused = true)]
async fn a_terminated_event_read_as_running_gives_the_address_back() {
    a_terminated_event_read_as_running_releases(Pin::Eip).await;
}

#[tokio::test(start_paused = true)]
async fn the_sweep_pins_a_node_whose_event_was_lost_and_releases_one_that_is_gone() {
    // Given two tagged nodes: one whose event was lost, and one pinned that then terminated
    // with its event lost too
    let world = World::dedicated().await;
    let net = world.network().await;
    let pool = unique("swept-nodes");
    let addresses = world.eip_pool(&pool, 3).await;
    let tags = node_tags(Pin::Eip, &pool);
    let tags: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let lost = world.tagged_instance(&net.subnet_a, &tags).await;
    let gone = world.tagged_instance(&net.subnet_a, &tags).await;
    let running = events(&world, &gone)["running"].clone();
    let pinned = world.deliver(&running).await.member.unwrap();
    world.terminate_in_ec2(&gone).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    // When the sweep runs, serving no group
    let before = world.emulator.call_counts();
    let report = world.sweep(&[], false).await;
    let calls = world.emulator.calls_since(&before);

    // Then it shows the node beside the pool, pins the lost one, and clears the holder tag of
    // the member the gone one held
    let plan = report
        .pools
        .iter()
        .find(|p| p.pool == pool)
        .expect("the pool");
    assert!(
        plan.instances.iter().any(|i| i.as_str() == lost),
        "{plan:?}"
    );
    assert!(report.done.iter().all(|d| d.ok), "{report:?}");
    // (and asked Auto Scaling for no group at all)
    assert_eq!(calls.get("DescribeAutoScalingGroups"), None, "{calls:?}");
    let held = holder_of(&world, Pin::Eip, &addresses, &lost).await;
    assert!(held.is_some(), "{report:?}");
    // (the lost node may well have been given that very address once it was free again)
    let cleared = report.done.iter().any(|d| {
        matches!(&d.repair, pinhook::decide::sweep::Repair::ClearTag { member, instance, .. }
            if *member == pinned && *instance == gone)
    });
    assert!(cleared, "{report:?}");
    assert_ne!(
        world.address_state(&pinned).await.holder.as_deref(),
        Some(gone.as_str())
    );
}
