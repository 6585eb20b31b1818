//! AWS's throttling in the shape a small function meets it: a share of every call answered with
//! the service's throttling code at random, and every call throttled until the deadline. Either
//! way no instance is lost: a launch is pinned, or left pending for the redelivery that pins it.

use std::time::Duration;

use pinhook::Outcome;
use pinhook::config::Settings;
use serde_json::json;

use crate::support::Pin;
use crate::support::{
    AZ_A, Census, GroupSpec, Pinning, World, hook_metadata, instance_of, join_all, unique,
};

/// A common function timeout, far below the template's.
const TIMEOUT: Duration = Duration::from_secs(30);

/// pinhook's production settings.
fn production() -> Settings {
    Settings {
        metrics_namespace: "pinhook-test".into(),
        ..Settings::default()
    }
}

#[tokio::test(start_paused = true)]
async fn a_burst_under_20_percent_random_throttling_pins_every_launch_within_a_30_second_timeout() {
    // Given 10 ENI and 8 Elastic IP launches at once, each its own invocation with pinhook's
    // production settings and a 30 s timeout, retried twice on error as Lambda does
    let world = World::dedicated_with(production()).await;
    let net = world.network().await;
    let mut events = Vec::new();
    let mut groups = Vec::new();
    for (pin, launches) in [(Pin::Eni, 10), (Pin::Eip, 8)] {
        let Pinning { group, pool, .. } = world
            .pinning(&net, pin, launches + 2, launches as i32)
            .await;
        world.scale(&group, launches as i32).await;
        events.extend(world.emulator.pending_events(&group.name));
        groups.push((group, pool, pin, launches));
    }

    // When a fifth of every AWS call is throttled at random with each service's own code
    let random = json!({"enabled": false, "random": 0.2, "random_seed": 16});
    world.emulator.control("POST", "rate-limits", Some(&random));
    let deliveries = world.burst_within(&events, 1, 2, TIMEOUT).await;
    let limits = world.emulator.control("GET", "rate-limits", None);
    let off = json!({"enabled": false, "random": 0.0});
    world.emulator.control("POST", "rate-limits", Some(&off));

    // Then AWS throttled them, and still every launch was pinned, once
    assert!(
        limits["random_throttled"]["ec2"].as_u64() > Some(0),
        "{limits}"
    );
    assert!(
        limits["random_throttled"]["autoscaling"].as_u64() > Some(0),
        "{limits}"
    );
    assert_eq!(deliveries.failed, 0, "{deliveries:?}");
    for (group, pool, pin, launches) in &groups {
        let census = world.census(group, pool, *pin).await;
        let expected = Census {
            instances: *launches,
            pinned: *launches,
            ..Census::default()
        };
        assert_eq!(census, expected, "{pin}");
    }
}

async fn a_launch_throttled_until_its_deadline_is_left_pending_and_pinned_by_the_redelivery(
    pin: Pin,
) {
    // Given one launch, with pinhook's production settings and a 30 s timeout
    let world = World::dedicated_with(production()).await;
    let net = world.network().await;
    let Pinning {
        group,
        pool,
        members,
    } = world.pinning(&net, pin, 1, 1).await;
    world.scale(&group, 1).await;
    let event = world.emulator.pending_events(&group.name).remove(0);
    let instance = instance_of(&event);

    // When every AWS call is throttled until the completion's reserve begins
    let settings = production();
    let window = TIMEOUT - settings.completion_reserve;
    let throttled = json!({"enabled": false, "random": 1.0, "random_for": window.as_secs_f64()});
    world
        .emulator
        .control("POST", "rate-limits", Some(&throttled));
    let err = world
        .app()
        .handle(&event, pinhook::Deadline::after(TIMEOUT))
        .await
        .unwrap_err();

    // Then nothing was completed: the action was kept alive with a heartbeat, counted, and the
    // invocation failed so that Lambda delivers it again
    let action = world.emulator.action_of(&group.name, &instance, "launch");
    assert_eq!(action["pending"], true, "{pin}: {action}");
    assert_eq!(action["complete_calls"]["accepted"], 0, "{pin}: {action}");
    assert_eq!(action["heartbeats"], 1, "{pin}: {action}");
    let err = err.to_string();
    assert!(
        err.contains("Throttling") || err.contains("RequestLimitExceeded"),
        "{pin}: the first try's throttling is named: {err}"
    );
    assert_eq!(world.metric("LeftPending"), 1.0, "{pin}");
    assert!(world.metric("TriedAgain") >= 1.0, "{pin}");
    let limits = world.emulator.control("GET", "rate-limits", None);
    assert!(
        limits["random_throttled_total"].as_u64() > Some(10),
        "{limits}"
    );

    // When Lambda delivers it again a minute later
    tokio::time::sleep(Duration::from_secs(60)).await;
    let summary = world.deliver_within(&event, TIMEOUT).await;

    // Then the redelivery pins it, and completes the action once
    assert_eq!(summary.outcome, Outcome::Continue, "{pin}: {summary:?}");
    assert_eq!(summary.member.as_deref(), Some(members[0].as_str()));
    let action = world.emulator.action_of(&group.name, &instance, "launch");
    assert_eq!(action["complete_calls"]["accepted"], 1, "{pin}: {action}");
    let census = world.census(&group, &pool, pin).await;
    assert_eq!(census.integrity_errors(), 0, "{pin}: {census:?}");
}

#[tokio::test(start_paused = true)]
async fn an_eni_launch_throttled_until_its_deadline_is_left_pending_and_pinned_by_the_redelivery() {
    a_launch_throttled_until_its_deadline_is_left_pending_and_pinned_by_the_redelivery(Pin::Eni)
        .await;
}

#[tokio::test(start_paused = true)]
async fn an_elastic_ip_launch_throttled_until_its_deadline_is_left_pending_and_pinned_by_the_redelivery()
 {
    a_launch_throttled_until_its_deadline_is_left_pending_and_pinned_by_the_redelivery(Pin::Eip)
        .await;
}

#[tokio::test(start_paused = true)]
async fn reads_follow_every_page_and_a_launch_never_asks_for_an_unpaginated_list() {
    // Given an account whose EC2 answers two items a page and refuses an unpaginated
    // DescribeNetworkInterfaces once it holds more than 5 interfaces, as EC2 documents
    let world = World::dedicated_with(production()).await;
    world
        .emulator
        .settings(json!({"page_size": 2, "unpaginated_limit": 5}));
    let net = world.network().await;
    let pool = unique("paged");
    world.eni_pool(&net, &pool, AZ_A, 7).await;
    let addresses = unique("paged-eip");
    world.eip_pool(&addresses, 4).await;
    let mut groups = Vec::new();
    for (pin, pool) in [(Pin::Eni, &pool), (Pin::Eip, &addresses)] {
        let metadata = hook_metadata(pin, pool, json!({}));
        let group = world
            .group(GroupSpec::pinning(vec![net.subnet_a.clone()], metadata, 3))
            .await;
        world.scale(&group, 3).await;
        groups.push((group, pool.clone(), pin));
    }

    // When every launch is delivered, and a sweep looks over the groups
    for (group, _, _) in &groups {
        let events = world.emulator.pending_events(&group.name);
        let summaries = join_all(events.iter().map(|e| world.deliver(e))).await;
        assert!(
            summaries.iter().all(|s| s.outcome == Outcome::Continue),
            "{summaries:?}"
        );
    }
    let names: Vec<&str> = groups.iter().map(|(g, _, _)| g.name.as_str()).collect();
    let sweep = world.sweep(&names, false).await;

    // Then pinhook paged through its reads (a later page was asked for), never sent an
    // unpaginated one, pinned every launch, and the sweep saw every member
    let paged = world
        .emulator
        .requests(&[("action", "DescribeNetworkInterfaces"), ("page", "next")]);
    assert!(!paged.is_empty(), "no second page was read");
    let refused = world.emulator.requests(&[("code", "InvalidRequest")]);
    assert!(refused.is_empty(), "{refused:?}");
    for (group, pool, pin) in &groups {
        let census = world.census(group, pool, *pin).await;
        assert_eq!(
            (census.pinned, census.integrity_errors()),
            (3, 0),
            "{pin}: {census:?}"
        );
    }
    assert!(sweep.stopped.is_none(), "{sweep:?}");
    assert_eq!(sweep.all_findings().count(), 0, "{sweep:?}");
    let seen: usize = sweep.pools.iter().map(|p| p.members.len()).sum();
    assert_eq!(seen, 7 + 4, "the sweep saw every member, over every page");
}
