//! Pinning Elastic IPs, end to end against the emulator: association, races, takeover for
//! single-instance HA, an EIP on a pinned ENI, and release.

use std::time::Duration;

use pinhook::Outcome;
use pinhook::handler::Completion;
use serde_json::json;

use crate::support::{
    AZ_A, AZ_B, Group, GroupSpec, Network, World, eip_metadata, eni_metadata, instance_of, unique,
};

/// A group whose launch and terminate hooks pin from the EIP pool with the given metadata.
async fn eip_group(world: &World, net: &Network, metadata: String, max_size: i32) -> Group {
    world
        .group(GroupSpec {
            subnets: vec![net.subnet_a.clone(), net.subnet_b.clone()],
            launch_metadata: Some(metadata.clone()),
            terminate_metadata: Some(metadata),
            extra_terminate_hook: false,
            max_size,
        })
        .await
}

/// A pool of one address, and a group over both AZs pinning from it.
async fn one_address(
    world: &World,
    extra: serde_json::Value,
    max_size: i32,
) -> (Network, String, Group) {
    let net = world.network().await;
    let pool = unique("ha");
    let address = world.eip_pool(&pool, 1).await.remove(0);
    let group = eip_group(world, &net, eip_metadata(&pool, extra), max_size).await;
    (net, address, group)
}

/// Scales out by one and delivers that instance's launch action; the instance and summary.
async fn launch_one(world: &World, group: &Group) -> (String, pinhook::Summary) {
    let before: Vec<String> = world
        .instances(group)
        .await
        .into_iter()
        .map(|i| i.id)
        .collect();
    world.scale(group, before.len() as i32 + 1).await;
    let action = world
        .emulator
        .actions(&group.name, false)
        .into_iter()
        .find(|a| !before.contains(&a["instance_id"].as_str().unwrap().to_owned()))
        .expect("a new launch action");
    let instance = action["instance_id"].as_str().unwrap().to_owned();
    (instance, world.deliver(&action["event"]).await)
}

#[tokio::test(start_paused = true)]
async fn pins_a_pool_address_on_the_primary_interface() {
    // Given a pool of two addresses and a group that pins from it
    let world = World::new().await;
    let net = world.network().await;
    let pool = unique("egress");
    let addresses = world.eip_pool(&pool, 2).await;
    let group = eip_group(&world, &net, eip_metadata(&pool, json!({})), 4).await;

    // When an instance launches
    let (instance, summary) = launch_one(&world, &group).await;

    // Then a pool address is associated with its primary interface, and the lease recorded
    assert_eq!(summary.outcome, Outcome::Continue, "{summary:?}");
    assert_eq!(summary.completion, Some(Completion::Completed));
    let allocation = summary.member.clone().unwrap();
    assert!(addresses.contains(&allocation));
    let state = world.address_state(&allocation).await;
    let primary = world.interface_at(&instance, 0).await;
    assert_eq!(state.instance.as_deref(), Some(instance.as_str()));
    assert_eq!(state.eni.as_deref(), Some(primary.id.as_str()));
    assert_eq!(state.holder.as_deref(), Some(instance.as_str()));
    assert_eq!(summary.public_ip.as_deref(), Some(state.public_ip.as_str()));
    assert_eq!(
        world
            .instance_tag(&instance, "pinhook:eip")
            .await
            .as_deref(),
        Some(allocation.as_str())
    );
    assert_eq!(
        world.lifecycle_state(&instance).await.as_deref(),
        Some("InService")
    );
}

#[tokio::test(start_paused = true)]
async fn an_address_associated_with_anything_else_is_never_taken() {
    // Given a pool where one address is on another instance, one on a NAT gateway, one free
    let world = World::new().await;
    let net = world.network().await;
    let pool = unique("egress");
    let on_instance = world.eip(&[("pinhook:pool", &pool)]).await;
    let on_nat = world.eip(&[("pinhook:pool", &pool)]).await;
    let free = world.eip(&[("pinhook:pool", &pool)]).await;
    let other = world.lone_instance(&net.subnet_a).await;
    world
        .associate(&on_instance, &world.interface_at(&other, 0).await.id)
        .await;
    world.nat_gateway(&net.subnet_b, &on_nat).await;
    let group = eip_group(&world, &net, eip_metadata(&pool, json!({})), 4).await;

    let (instance, summary) = launch_one(&world, &group).await;

    // Then it got the free one, never even trying the others
    assert_eq!(
        summary.member.as_deref(),
        Some(free.as_str()),
        "{summary:?}"
    );
    let primary = world.interface_at(&instance, 0).await.id;
    let tried: Vec<String> = world
        .emulator
        .requests(&[
            ("action", "AssociateAddress"),
            ("NetworkInterfaceId", &primary),
        ])
        .iter()
        .map(|r| r["AllocationId"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(tried, std::slice::from_ref(&free));
    assert_eq!(
        world.address_state(&on_instance).await.instance.as_deref(),
        Some(other.as_str())
    );
    assert!(world.address_state(&on_nat).await.eni.is_some());
}

#[tokio::test(start_paused = true)]
async fn a_claim_conflict_moves_to_the_next_address() {
    let world = World::new().await;
    let net = world.network().await;
    let pool = unique("egress");
    let addresses = world.eip_pool(&pool, 2).await;
    let group = eip_group(&world, &net, eip_metadata(&pool, json!({})), 4).await;
    world.scale(&group, 1).await;
    let event = world.emulator.pending_events(&group.name).remove(0);
    let instance = instance_of(&event);
    let thief = world.lone_instance(&net.subnet_a).await;
    world.emulator.arm_claimer(&instance, &thief);

    let summary = world.deliver(&event).await;

    assert_eq!(summary.outcome, Outcome::Continue, "{summary:?}");
    let stolen = world.emulator.claimer_fired(&instance)["allocation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = addresses.iter().find(|a| **a != stolen).unwrap();
    assert_eq!(summary.member.as_deref(), Some(other.as_str()));
    assert_eq!(
        world.address_state(&stolen).await.instance.as_deref(),
        Some(thief.as_str())
    );
    let refused: Vec<_> = world
        .emulator
        .requests(&[("action", "AssociateAddress"), ("AllocationId", &stolen)])
        .into_iter()
        .filter(|r| r["code"] == "Resource.AlreadyAssociated")
        .collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
}

#[tokio::test(start_paused = true)]
async fn a_redelivered_event_gives_one_association() {
    let world = World::new().await;
    let net = world.network().await;
    let pool = unique("egress");
    let addresses = world.eip_pool(&pool, 3).await;
    let group = eip_group(&world, &net, eip_metadata(&pool, json!({})), 4).await;
    world.scale(&group, 1).await;
    let event = world.emulator.pending_events(&group.name).remove(0);
    let instance = instance_of(&event);

    let (first, second) = tokio::join!(world.deliver(&event), world.deliver(&event));
    let third = world.deliver(&event).await;

    assert!(
        [first.outcome, second.outcome].contains(&Outcome::Continue),
        "{first:?} {second:?}"
    );
    assert_eq!(third.outcome, Outcome::Stale);
    let mut held = Vec::new();
    for allocation in &addresses {
        if world.address_state(allocation).await.instance.as_deref() == Some(instance.as_str()) {
            held.push(allocation.clone());
        }
    }
    assert_eq!(held.len(), 1, "{held:?}");
    let action = world.emulator.action_of(&group.name, &instance, "launch");
    assert_eq!(action["complete_calls"]["accepted"], 1);
}

#[tokio::test(start_paused = true)]
async fn an_exhausted_pool_ends_with_on_failure() {
    let world = World::new().await;
    let net = world.network().await;
    let pool = unique("egress");
    world.eip_pool(&pool, 1).await;
    let abandoning = eip_group(&world, &net, eip_metadata(&pool, json!({})), 4).await;
    let (first, pinned) = launch_one(&world, &abandoning).await;
    assert_eq!(pinned.outcome, Outcome::Continue);

    let (second, abandoned) = launch_one(&world, &abandoning).await;
    let continuing = eip_group(
        &world,
        &net,
        eip_metadata(&pool, json!({"on_failure": "continue"})),
        4,
    )
    .await;
    let (third, continued) = launch_one(&world, &continuing).await;

    assert_eq!(abandoned.outcome, Outcome::Abandon, "{abandoned:?}");
    assert!(
        abandoned
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("exhausted"),
        "{abandoned:?}"
    );
    assert_eq!(world.ec2_state(&second).await, "terminated");
    assert_eq!(continued.outcome, Outcome::Continue, "{continued:?}");
    assert_eq!(continued.member, None);
    assert_eq!(
        world.lifecycle_state(&third).await.as_deref(),
        Some("InService")
    );
    assert_eq!(
        world.lifecycle_state(&first).await.as_deref(),
        Some("InService")
    );
}

#[tokio::test(start_paused = true)]
async fn interface_1_receives_the_address_once_the_eni_hook_has_attached_it() {
    // Given a group with two launch hooks: one pins an ENI at device index 1, the other an
    // Elastic IP on the interface at device index 1 — a fixed MAC and a fixed public IP
    let world = World::new().await;
    let net = world.network().await;
    let enis = unique("licence");
    let eips = unique("egress");
    world.eni_pool(&net, &enis, AZ_A, 1).await;
    world.eip_pool(&eips, 1).await;
    let group = world
        .group(GroupSpec {
            subnets: vec![net.subnet_a.clone()],
            launch_metadata: Some(eni_metadata(&enis, json!({"device_index": 1}))),
            terminate_metadata: Some(eni_metadata(&enis, json!({}))),
            extra_terminate_hook: false,
            max_size: 2,
        })
        .await;
    world
        .hook(
            &group.name,
            "eip-launch",
            "autoscaling:EC2_INSTANCE_LAUNCHING",
            &eip_metadata(&eips, json!({"interface": 1})),
        )
        .await;
    world.scale(&group, 1).await;
    let actions = world.emulator.actions(&group.name, false);
    let of_hook = |hook: &str| actions.iter().find(|a| a["hook"] == hook).unwrap()["event"].clone();
    let (eni_event, eip_event) = (of_hook(&group.launch_hook), of_hook("eip-launch"));

    // When the EIP event arrives first and the ENI event a moment later
    let eip_first = world.deliver(&eip_event);
    let eni_later = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        world.deliver(&eni_event).await
    };
    let (eip_summary, eni_summary) = tokio::join!(eip_first, eni_later);

    // Then the address sits on the pinned ENI, and the primary interface has none
    assert_eq!(eni_summary.outcome, Outcome::Continue, "{eni_summary:?}");
    assert_eq!(eip_summary.outcome, Outcome::Continue, "{eip_summary:?}");
    let instance = eip_summary.instance.unwrap().to_string();
    let second = world.interface_at(&instance, 1).await;
    assert_eq!(Some(second.id.clone()), eni_summary.member);
    let address = world
        .address_state(eip_summary.member.as_deref().unwrap())
        .await;
    assert_eq!(address.eni.as_deref(), Some(second.id.as_str()));
    assert!(
        world
            .addresses_on(&world.interface_at(&instance, 0).await.id)
            .await
            .is_empty()
    );
    assert_eq!(
        world.lifecycle_state(&instance).await.as_deref(),
        Some("InService")
    );
}

#[tokio::test(start_paused = true)]
async fn an_eni_pool_with_permanent_addresses_carries_the_public_ip_along() {
    // Given pool ENIs that each keep an Elastic IP associated permanently (no EIP hook)
    let world = World::new().await;
    let net = world.network().await;
    let pool = unique("licence");
    let eni = world.eni_pool(&net, &pool, AZ_A, 1).await.remove(0);
    let address = world.eip(&[]).await;
    world.associate(&address, &eni).await;
    let group = world
        .group(GroupSpec {
            subnets: vec![net.subnet_a.clone()],
            launch_metadata: Some(eni_metadata(&pool, json!({}))),
            terminate_metadata: Some(eni_metadata(&pool, json!({}))),
            extra_terminate_hook: false,
            max_size: 2,
        })
        .await;

    world.scale(&group, 1).await;
    let summary = world
        .deliver(&world.emulator.pending_events(&group.name)[0])
        .await;

    // Then the instance has the ENI's MAC and the address's public IP on device index 1
    let instance = summary.instance.clone().unwrap().to_string();
    let public_ip = world.address_state(&address).await.public_ip;
    assert_eq!(
        summary.public_ip.as_deref(),
        Some(public_ip.as_str()),
        "{summary:?}"
    );
    assert_eq!(
        world.address_state(&address).await.instance.as_deref(),
        Some(instance.as_str())
    );
    // and after the release the address stays with the ENI, back in the pool
    world.scale(&group, 0).await;
    world
        .deliver(&world.emulator.pending_events(&group.name)[0])
        .await;
    let after = world.address_state(&address).await;
    assert_eq!(
        (after.eni.as_deref(), after.instance),
        (Some(eni.as_str()), None)
    );
}

#[tokio::test(start_paused = true)]
async fn takes_over_from_a_terminating_holder_when_allowed() {
    // Given single-instance HA: min = max = 1 over two AZs, one address, takeover allowed
    let world = World::new().await;
    let (net, address, group) = one_address(&world, json!({"takeover": true}), 1).await;
    let (old, first) = launch_one(&world, &group).await;
    assert_eq!(first.member.as_deref(), Some(address.as_str()));

    // When the old instance's AZ fails: the group leaves that AZ and replaces the instance,
    // whose termination waits on its hook while the replacement launches
    world
        .asg
        .update_auto_scaling_group()
        .auto_scaling_group_name(&group.name)
        .vpc_zone_identifier(&net.subnet_b)
        .send()
        .await
        .unwrap();
    world.replace(&old).await;
    let actions = world.emulator.actions(&group.name, false);
    let launch = actions
        .iter()
        .find(|a| a["instance_id"] != old.as_str())
        .unwrap()["event"]
        .clone();
    let new = instance_of(&launch);
    assert_eq!(
        world.lifecycle_state(&old).await.as_deref(),
        Some("Terminating:Wait")
    );

    let summary = world.deliver(&launch).await;

    // Then the replacement, in the other AZ, took the address over at once
    assert_eq!(summary.outcome, Outcome::Continue, "{summary:?}");
    assert_eq!(summary.availability_zone.as_deref(), Some(AZ_B));
    assert!(
        summary
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains(&format!("over from {old}")),
        "{summary:?}"
    );
    let state = world.address_state(&address).await;
    assert_eq!(
        (state.instance.as_deref(), state.holder.as_deref()),
        (Some(new.as_str()), Some(new.as_str()))
    );
    assert_eq!(world.metric("TakenOver"), 1.0);
    // and the old instance's release, later, leaves the new holder alone
    let release = world.emulator.action_of(&group.name, &old, "terminate")["event"].clone();
    assert_eq!(world.deliver(&release).await.outcome, Outcome::Continue);
    assert_eq!(
        world.address_state(&address).await.instance.as_deref(),
        Some(new.as_str())
    );
}

#[tokio::test(start_paused = true)]
async fn takes_over_from_an_unhealthy_member() {
    let world = World::new().await;
    let (_, address, group) = one_address(&world, json!({"takeover": true}), 2).await;
    let (old, _) = launch_one(&world, &group).await;
    world.set_unhealthy(&old).await;

    let (new, summary) = launch_one(&world, &group).await;

    assert_eq!(summary.outcome, Outcome::Continue, "{summary:?}");
    assert_eq!(
        world.address_state(&address).await.instance.as_deref(),
        Some(new.as_str())
    );
}

#[tokio::test(start_paused = true)]
async fn never_takes_over_from_a_healthy_member_in_service() {
    let world = World::new().await;
    let (_, address, group) = one_address(&world, json!({"takeover": true}), 2).await;
    let (old, _) = launch_one(&world, &group).await;

    let (new, summary) = launch_one(&world, &group).await;

    assert_eq!(summary.outcome, Outcome::Abandon, "{summary:?}");
    assert_eq!(
        world.address_state(&address).await.instance.as_deref(),
        Some(old.as_str())
    );
    assert_eq!(world.ec2_state(&new).await, "terminated");
}

#[tokio::test(start_paused = true)]
async fn without_takeover_a_launch_waits_for_the_release_instead() {
    // Given the only address held by a terminating member, and no takeover
    let world = World::new().await;
    let (_, address, group) = one_address(&world, json!({}), 1).await;
    let (old, _) = launch_one(&world, &group).await;
    world.replace(&old).await;
    let actions = world.emulator.actions(&group.name, false);
    let launch = actions
        .iter()
        .find(|a| a["instance_id"] != old.as_str())
        .unwrap()["event"]
        .clone();
    let new = instance_of(&launch);

    // When the replacement's launch is handled with 6 s to live, and no release comes
    let err = world
        .app()
        .handle(&launch, pinhook::Deadline::after(Duration::from_secs(6)))
        .await
        .unwrap_err();

    // Then it never took the address: it waited, heartbeating, and at the deadline left the
    // action pending for a redelivery (running out of time is no failure)
    assert!(err.to_string().contains("deadline"), "{err}");
    assert_eq!(
        world.address_state(&address).await.instance.as_deref(),
        Some(old.as_str())
    );
    let action = world.emulator.action_of(&group.name, &new, "launch");
    assert_eq!(action["pending"], true, "{action}");
    assert!(action["heartbeats"].as_u64().unwrap() >= 2, "{action}");
}

#[tokio::test(start_paused = true)]
async fn termination_disassociates_but_keeps_the_address_in_the_pool() {
    let world = World::new().await;
    let net = world.network().await;
    let pool = unique("egress");
    let group = eip_group(&world, &net, eip_metadata(&pool, json!({})), 2).await;
    world.eip_pool(&pool, 1).await;
    let (instance, summary) = launch_one(&world, &group).await;
    let address = summary.member.unwrap();

    world.scale(&group, 0).await;
    let release = world
        .deliver(
            &world
                .emulator
                .action_of(&group.name, &instance, "terminate")["event"],
        )
        .await;

    assert_eq!(release.outcome, Outcome::Continue, "{release:?}");
    assert_eq!(release.member.as_deref(), Some(address.as_str()));
    let state = world.address_state(&address).await;
    assert_eq!(
        (state.association, state.instance, state.holder),
        (None, None, None)
    );
    assert!(!state.public_ip.is_empty(), "still allocated");
}

#[tokio::test(start_paused = true)]
async fn an_address_outside_the_pool_is_never_disassociated_or_replaced() {
    // Given an instance whose primary interface already has an address outside the pool (and
    // a hook that keeps the instance when nothing is pinned, to look at it afterwards)
    let world = World::new().await;
    let net = world.network().await;
    let pool = unique("egress");
    world.eip_pool(&pool, 1).await;
    let group = world
        .group(GroupSpec {
            subnets: vec![net.subnet_a.clone()],
            launch_metadata: Some(eip_metadata(&pool, json!({"on_failure": "continue"}))),
            terminate_metadata: Some(eip_metadata(&pool, json!({}))),
            extra_terminate_hook: true,
            max_size: 2,
        })
        .await;
    world.scale(&group, 1).await;
    let event = world.emulator.pending_events(&group.name).remove(0);
    let instance = instance_of(&event);
    let foreign = world.eip(&[]).await;
    world
        .associate(&foreign, &world.interface_at(&instance, 0).await.id)
        .await;

    // When the launch is handled, pinhook refuses to move that address off the interface
    let summary = world.deliver(&event).await;
    assert_eq!(summary.outcome, Outcome::Continue, "{summary:?}");
    assert_eq!(summary.member, None);
    assert!(
        summary
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("not in pool"),
        "{summary:?}"
    );
    assert_eq!(
        world.address_state(&foreign).await.instance.as_deref(),
        Some(instance.as_str())
    );

    // and when an instance holding a pool address and a foreign one leaves, only the pool one goes
    let group = world
        .group(GroupSpec {
            subnets: vec![net.subnet_a.clone()],
            launch_metadata: Some(eip_metadata(&pool, json!({}))),
            terminate_metadata: Some(eip_metadata(&pool, json!({}))),
            extra_terminate_hook: true,
            max_size: 2,
        })
        .await;
    let (instance, summary) = launch_one(&world, &group).await;
    let pinned = summary.member.unwrap();
    let secondary = world.eni(&net.subnet_a, &[]).await;
    world.attach(&secondary, &instance, 1).await;
    let foreign = world.eip(&[]).await;
    world.associate(&foreign, &secondary).await;
    world.scale(&group, 0).await;
    let release = world
        .deliver(
            &world
                .emulator
                .action_of(&group.name, &instance, "terminate")["event"],
        )
        .await;
    assert_eq!(release.outcome, Outcome::Continue, "{release:?}");
    assert_eq!(world.address_state(&pinned).await.association, None);
    assert_eq!(
        world.address_state(&foreign).await.eni.as_deref(),
        Some(secondary.as_str())
    );
}
