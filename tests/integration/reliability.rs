//! Bursts, faults, redelivery and disorder, counted from AWS's side: nothing is pinned twice,
//! nothing is left waiting. Each test has an emulator of its own. `make chaos` runs the full
//! size (100 instances, 80 members, 20 % faults); these run a smaller burst.

use serde_json::json;

use crate::support::Pin;
use crate::support::{AZ_A, AZ_B, Census, Deliveries, GroupSpec, World, hook_metadata, unique};

const INSTANCES: i32 = 40;
const MEMBERS_PER_AZ: usize = 16;

/// `INSTANCES` launches at once against `2 × MEMBERS_PER_AZ` pool members (ENIs spread over
/// both AZs, or Elastic IPs), every action its own concurrent invocation, with a share of
/// faults; the census afterwards.
async fn burst(pin: Pin, fault_rate: f64) -> (Census, Deliveries, serde_json::Value) {
    let world = World::dedicated().await;
    let net = world.network().await;
    let pool = unique("burst");
    if pin == Pin::Eni {
        world.eni_pool(&net, &pool, AZ_A, MEMBERS_PER_AZ).await;
        world.eni_pool(&net, &pool, AZ_B, MEMBERS_PER_AZ).await;
    } else {
        world.eip_pool(&pool, 2 * MEMBERS_PER_AZ).await;
    }
    let metadata = hook_metadata(pin, &pool, json!({}));
    let group = world
        .group(GroupSpec::pinning(
            vec![net.subnet_a.clone(), net.subnet_b.clone()],
            metadata,
            INSTANCES,
        ))
        .await;
    world.scale(&group, INSTANCES).await;
    let events = world.emulator.pending_events(&group.name);
    assert_eq!(events.len(), INSTANCES as usize);

    world.emulator.faults(fault_rate, fault_rate / 2.0);
    let deliveries = world.burst(&events, 1, 4).await;
    let faults = world.emulator.control("GET", "faults", None);
    world.emulator.faults(0.0, 0.0);

    let census = world.census(&group, &pool, pin).await;
    (census, deliveries, faults)
}

fn expected() -> Census {
    let members = 2 * MEMBERS_PER_AZ;
    Census {
        instances: INSTANCES as usize,
        pinned: members,
        abandoned: INSTANCES as usize - members,
        ..Census::default()
    }
}

#[tokio::test(start_paused = true)]
async fn a_burst_pins_every_eni_once_and_abandons_the_rest() {
    let (census, deliveries, _) = burst(Pin::Eni, 0.0).await;

    assert_eq!(census, expected(), "{deliveries:?}");
    assert_eq!(deliveries.failed, 0);
}

#[tokio::test(start_paused = true)]
async fn a_burst_pins_every_elastic_ip_once_and_abandons_the_rest() {
    let (census, deliveries, _) = burst(Pin::Eip, 0.0).await;

    assert_eq!(census, expected(), "{deliveries:?}");
    assert_eq!(deliveries.failed, 0);
}

#[tokio::test(start_paused = true)]
async fn a_burst_under_20_percent_faults_ends_in_the_same_state() {
    for pin in [Pin::Eni, Pin::Eip] {
        let (census, deliveries, faults) = burst(pin, 0.2).await;

        assert_eq!(census, expected(), "{pin}: {deliveries:?}");
        assert_eq!(deliveries.failed, 0, "{pin}");
        assert!(
            faults["injected_total"].as_u64().unwrap() > 20,
            "{pin}: {faults}"
        );
        assert!(faults["slowed"].as_u64().unwrap() > 0, "{pin}: {faults}");
    }
}

#[tokio::test(start_paused = true)]
async fn redelivered_late_and_out_of_order_events_leak_nothing_and_leave_nothing_waiting() {
    // Given 20 instances launching against 16 ENIs, with every event delivered twice
    let world = World::dedicated().await;
    let net = world.network().await;
    let pool = unique("disorder");
    let mut members = world.eni_pool(&net, &pool, AZ_A, 8).await;
    members.extend(world.eni_pool(&net, &pool, AZ_B, 8).await);
    let metadata = hook_metadata(Pin::Eni, &pool, json!({}));
    let group = world
        .group(GroupSpec::pinning(
            vec![net.subnet_a.clone(), net.subnet_b.clone()],
            metadata,
            20,
        ))
        .await;
    world.scale(&group, 20).await;
    let launches = world.emulator.pending_events(&group.name);

    // When only half the launches arrive (twice each, concurrently) before the group scales in
    let (early, late) = launches.split_at(10);
    world.burst(early, 2, 4).await;
    world.scale(&group, 0).await;
    // and the terminate events are handled (twice) before the late launches arrive (twice),
    // for instances that by then have left the group or no longer exist
    let terminates = world.emulator.pending_events(&group.name);
    assert_eq!(
        terminates.len(),
        20,
        "every instance waits on its terminate hook"
    );
    let ended = world.burst(&terminates, 2, 4).await;
    let stale = world.burst(late, 2, 4).await;
    let replayed = world.burst(early, 1, 4).await;

    // Then every member is back in the pool, no action waits, none was completed twice
    for member in &members {
        let state = world.eni_state(member).await;
        assert_eq!(
            (state.status.as_str(), state.holder.as_deref()),
            ("available", None),
            "{member}"
        );
    }
    let census = world.census(&group, &pool, Pin::Eni).await;
    assert_eq!(census.uncompleted_actions, 0, "{census:?}");
    assert_eq!(census.completed_twice, 0, "{census:?}");
    assert_eq!(census.double_held_members, 0, "{census:?}");
    assert!(
        stale
            .summaries
            .iter()
            .all(|s| s.outcome == pinhook::Outcome::Stale),
        "{stale:?}"
    );
    assert!(
        replayed
            .summaries
            .iter()
            .all(|s| s.outcome == pinhook::Outcome::Stale),
        "{replayed:?}"
    );
    assert_eq!(ended.failed + stale.failed + replayed.failed, 0);
}

#[tokio::test(start_paused = true)]
async fn rate_limits_throttle_as_aws_does_and_pinhook_still_pins_every_launch() {
    use aws_sdk_ec2::config::retry::RetryConfig;
    use aws_sdk_ec2::error::ProvideErrorMetadata;

    // Given 16 launches against 16 ENIs, under AWS's rate limits with CreateTags and Auto
    // Scaling tight enough that the burst empties their buckets
    let world = World::dedicated().await;
    let net = world.network().await;
    let pool = unique("limited");
    let members = world.eni_pool(&net, &pool, AZ_A, 8).await;
    world.eni_pool(&net, &pool, AZ_B, 8).await;
    let metadata = hook_metadata(Pin::Eni, &pool, json!({}));
    let group = world
        .group(GroupSpec::pinning(
            vec![net.subnet_a.clone(), net.subnet_b.clone()],
            metadata,
            16,
        ))
        .await;
    world.scale(&group, 16).await;
    let events = world.emulator.pending_events(&group.name);
    let limits = json!({"autoscaling": [4, 4], "actions": {"CreateTags": [4, 4]}});
    world.emulator.control("POST", "rate-limits", Some(&limits));

    // Then a request past an empty bucket fails with each service's own throttling error
    let no_retries = aws_sdk_ec2::config::Builder::from(&world.sdk)
        .retry_config(RetryConfig::disabled())
        .build();
    let ec2 = aws_sdk_ec2::Client::from_conf(no_retries);
    let mut ec2_codes = Vec::new();
    for _ in 0..8 {
        let tagged = ec2
            .create_tags()
            .resources(&members[0])
            .tags(
                aws_sdk_ec2::types::Tag::builder()
                    .key("k")
                    .value("v")
                    .build(),
            )
            .send()
            .await;
        ec2_codes.push(tagged.err().and_then(|e| e.code().map(str::to_owned)));
    }
    assert!(
        ec2_codes
            .iter()
            .any(|c| c.as_deref() == Some("RequestLimitExceeded")),
        "{ec2_codes:?}"
    );
    let no_retries = aws_sdk_autoscaling::config::Builder::from(&world.sdk)
        .retry_config(RetryConfig::disabled())
        .build();
    let asg = aws_sdk_autoscaling::Client::from_conf(no_retries);
    let mut asg_codes = Vec::new();
    for _ in 0..8 {
        let read = asg.describe_auto_scaling_groups().send().await;
        asg_codes.push(read.err().and_then(|e| e.code().map(str::to_owned)));
    }
    assert!(
        asg_codes.iter().any(|c| c.as_deref() == Some("Throttling")),
        "{asg_codes:?}"
    );

    // When the launches arrive at once, with the buckets full again, each its own invocation
    // with a 30 s timeout, retried twice on error as Lambda does
    world.emulator.control("POST", "rate-limits", Some(&limits));
    let timeout = std::time::Duration::from_secs(30);
    let deliveries = world.burst_within(&events, 1, 2, timeout).await;
    let throttled = world.emulator.control("GET", "rate-limits", None)["throttled_total"]
        .as_u64()
        .unwrap_or(0);
    world
        .emulator
        .control("POST", "rate-limits", Some(&json!({"enabled": false})));

    // Then AWS throttled them, and still every launch was pinned once, within its first
    // invocation (Lambda retries a failed one only twice, minutes later), none left waiting
    assert!(throttled > 0, "the burst was never throttled");
    assert_eq!(deliveries.failed, 0, "{deliveries:?}");
    assert_eq!(deliveries.redeliveries, 0, "{deliveries:?}");
    let census = world.census(&group, &pool, Pin::Eni).await;
    assert_eq!(
        census,
        Census {
            instances: 16,
            pinned: 16,
            ..Census::default()
        }
    );
}
