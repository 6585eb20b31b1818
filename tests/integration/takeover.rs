//! Takeover acts on confirmed facts only: a healthy holder in service never loses its address,
//! however many launches contend for the pool, and losing a race for a free member never leads
//! to a takeover.

use pinhook::Outcome;
use serde_json::json;

use crate::support::Pin;
use crate::support::{Census, Group, GroupSpec, Network, World, eip_metadata, instance_of, unique};

/// A pool of `addresses` Elastic IPs, a group with takeover allowed, and `holders` instances of
/// it in service, each pinned to one address: (group, pool, [(holder, its address)]).
async fn healthy_holders(
    world: &World,
    net: &Network,
    addresses: usize,
    holders: i32,
    max_size: i32,
) -> (Group, String, Vec<(String, String)>) {
    let pool = unique("ha");
    world.eip_pool(&pool, addresses).await;
    let metadata = eip_metadata(&pool, json!({"takeover": true}));
    let group = world
        .group(GroupSpec::pinning(
            vec![net.subnet_a.clone(), net.subnet_b.clone()],
            metadata,
            max_size,
        ))
        .await;
    world.scale(&group, holders).await;
    let mut held = Vec::new();
    for event in world.emulator.pending_events(&group.name) {
        let summary = world.deliver(&event).await;
        assert_eq!(summary.outcome, Outcome::Continue, "{summary:?}");
        held.push((instance_of(&event), summary.member.unwrap()));
    }
    (group, pool, held)
}

/// Each holder is in service and still holds its address, which nobody even tried to take: its
/// one association is the holder's own.
async fn assert_kept(world: &World, held: &[(String, String)]) {
    assert_eq!(world.metric("TakenOver"), 0.0);
    for (holder, address) in held {
        let associations = world
            .emulator
            .requests(&[("action", "AssociateAddress"), ("AllocationId", address)]);
        assert_eq!(associations.len(), 1, "{address}: {associations:?}");
        let state = world.address_state(address).await;
        assert_eq!(
            state.instance.as_deref(),
            Some(holder.as_str()),
            "{holder} lost {address}"
        );
        assert_eq!(
            world.lifecycle_state(holder).await.as_deref(),
            Some("InService")
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_healthy_holder_never_loses_its_address_to_launches_contending_for_the_pool() {
    for round in 0..3 {
        // Given eight addresses with takeover allowed: two held by healthy members in service
        let world = World::dedicated().await;
        let net = world.network().await;
        let (group, pool, held) = healthy_holders(&world, &net, 8, 2, 10).await;

        // When eight more instances launch at once, each its own concurrent invocation, with
        // AWS answering some calls slowly so that the launches race in every order
        world.scale(&group, 10).await;
        let launches = world.emulator.pending_events(&group.name);
        assert_eq!(launches.len(), 8);
        world.emulator.faults(0.0, 0.3);
        let deliveries = world.burst(&launches, 1, 2).await;
        world.emulator.faults(0.0, 0.0);

        // Then six are pinned to the six free addresses, two are abandoned, and the healthy
        // holders keep theirs
        assert_eq!(deliveries.failed, 0, "round {round}: {deliveries:?}");
        assert_kept(&world, &held).await;
        let census = world.census(&group, &pool, Pin::Eip).await;
        assert_eq!(
            census,
            Census {
                instances: 10,
                pinned: 8,
                abandoned: 2,
                ..Census::default()
            },
            "round {round}: {deliveries:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_launch_that_loses_every_claim_of_a_pass_claims_again_and_takes_nothing_over() {
    // Given eight addresses with takeover allowed, two held by healthy members in service, and
    // three claimers that will each take the address a new launch tries, just before its
    // association lands
    let world = World::new().await;
    let net = world.network().await;
    let (group, pool, held) = healthy_holders(&world, &net, 8, 2, 4).await;
    world.scale(&group, 3).await;
    let event = world.emulator.pending_events(&group.name).remove(0);
    let instance = instance_of(&event);
    let mut thieves = Vec::new();
    for _ in 0..3 {
        thieves.push(world.lone_instance(&net.subnet_a).await);
    }
    let thieves: Vec<&str> = thieves.iter().map(String::as_str).collect();
    world.emulator.arm_claimers(&instance, &thieves);

    // When the launch is delivered: it loses all three claims of its first pass, while three
    // addresses are still free
    let summary = world.deliver(&event).await;

    // Then it claims again and pins a free address, and no holder lost anything
    assert_eq!(summary.outcome, Outcome::Continue, "{summary:?}");
    let fired = world.emulator.control("GET", "claimers", None)["fired"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["victim"] == instance.as_str())
        .count();
    assert_eq!(fired, 3, "every claim of the first pass was lost");
    assert_kept(&world, &held).await;
    let member = summary.member.unwrap();
    assert!(held.iter().all(|(_, address)| *address != member));
    assert_eq!(
        world.address_state(&member).await.instance.as_deref(),
        Some(instance.as_str())
    );
    let census = world.census(&group, &pool, Pin::Eip).await;
    assert_eq!(census.double_held_members, 0, "{census:?}");
}
