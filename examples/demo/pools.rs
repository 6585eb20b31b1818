//! The demo's pools: a pool of ENIs (fixed MACs), a pool of Elastic IPs (fixed public IPs), and
//! single-instance high availability across AZs.

use std::collections::BTreeSet;

use pinhook_testkit as support;
use serde_json::{Value, json};
use support::{
    AZ_A, AZ_B, EniState, InstanceState, LambdaRuntime, Network, World, eip_metadata, eni_metadata,
};

use crate::{
    banner, check_pins_waited_for_boot, deliver_all, print_addresses, print_enis, spec, step,
};

/// A fixed MAC for every instance: a pool of ENIs in both AZs.
pub(crate) async fn eni_scenario(
    world: &World,
    runtime: &LambdaRuntime,
    net: &Network,
    problems: &mut Vec<String>,
) -> Result<(), String> {
    const POOL: &str = "licence";
    banner("ENI pool: a fixed MAC address per instance, for MAC-bound licences");
    step(&format!(
        "creating the ENI pool {POOL:?}: two ENIs in each AZ, tagged pinhook:pool={POOL}"
    ));
    let mut pool = world.eni_pool(net, POOL, AZ_A, 2).await;
    pool.extend(world.eni_pool(net, POOL, AZ_B, 2).await);
    print_enis(world, &pool).await;

    let metadata = eni_metadata(POOL, json!({}));
    step(&format!(
        "creating the group \"licensed-app\" over both AZs, with launch and terminate hooks whose metadata is {metadata}"
    ));
    let group = world
        .group_named("licensed-app", spec(net, metadata, 4))
        .await;
    step(
        "the group also carries another tool's launch hook, \"node-ready\", with no metadata: pinhook must leave its actions alone",
    );
    world
        .any_hook(
            &group.name,
            "node-ready",
            "autoscaling:EC2_INSTANCE_LAUNCHING",
            None,
        )
        .await;

    for n in 1..=4 {
        step(&format!(
            "scaling out to {n}: the new instance boots, and waits in Pending:Wait for both launch hooks"
        ));
        world.scale(&group, n).await;
        let actions = world.emulator.actions(&group.name, false);
        let summaries = deliver_all(
            runtime,
            actions.iter().map(|a| a["event"].clone()).collect(),
        )?;
        check_pins_waited_for_boot(&summaries, problems);
        for action in actions.iter().filter(|a| a["hook"] == "node-ready") {
            let instance = action["instance_id"].as_str().unwrap_or_default();
            let waiting = world.lifecycle_state(instance).await.unwrap_or_default();
            world.complete(action, "CONTINUE").await;
            let now = world.lifecycle_state(instance).await.unwrap_or_default();
            println!(
                "    the node-readiness tool completes its own action: {instance} was {waiting}, is now {now}"
            );
            if waiting != "Pending:Wait" || now != "InService" {
                problems.push(format!(
                    "{instance} did not wait for the other tool's hook ({waiting} -> {now})"
                ));
            }
        }
    }

    step("the instances");
    let mut pinned = BTreeSet::new();
    println!(
        "    {:<21} {:<11} {:<23} {:<18} {:<11} lifecycle",
        "instance", "AZ", "ENI (device 1)", "MAC", "private IP"
    );
    for InstanceState {
        id: instance,
        az,
        state,
    } in world.instances(&group).await
    {
        let attached = world.attached_to(&instance).await;
        let member: Vec<&EniState> = attached
            .iter()
            .filter(|e| e.pool.as_deref() == Some(POOL))
            .collect();
        let (eni, mac, ip) = match member.as_slice() {
            [one] => (one.id.as_str(), one.mac.as_str(), one.private_ip.as_str()),
            _ => ("-", "-", "-"),
        };
        println!("    {instance:<21} {az:<11} {eni:<23} {mac:<18} {ip:<11} {state}");
        match member.as_slice() {
            [one]
                if one.az == az
                    && one.device_index == Some(1)
                    && state == "InService"
                    && one.holder.as_deref() == Some(instance.as_str()) =>
            {
                if !pinned.insert(one.id.clone()) {
                    problems.push(format!("{} is pinned to two instances", one.id));
                }
            }
            _ => problems.push(format!(
                "{instance} is not pinned as expected ({state}, {} pool ENIs)",
                member.len()
            )),
        }
    }
    if pinned.len() != 4 {
        problems.push(format!("{} of 4 instances got an ENI", pinned.len()));
    }

    step("scaling in to 0: each instance waits in Terminating:Wait for its terminate hook");
    world.scale(&group, 0).await;
    deliver_all(runtime, world.emulator.pending_events(&group.name))?;
    step("the ENI pool after scale-in");
    print_enis(world, &pool).await;
    for eni in &pool {
        let state = world.eni_state(eni).await;
        if state.status != "available" || state.holder.is_some() {
            problems.push(format!(
                "{eni} was not released ({}, holder {:?})",
                state.status, state.holder
            ));
        }
    }
    Ok(())
}

/// A fixed public IP for every instance: a pool of Elastic IPs, e.g. for a partner's
/// allow-list or EKS node egress.
pub(crate) async fn eip_scenario(
    world: &World,
    runtime: &LambdaRuntime,
    net: &Network,
    problems: &mut Vec<String>,
) -> Result<(), String> {
    const POOL: &str = "partner-egress";
    banner("Elastic IP pool: a fixed public IP per instance, for allow-lists and EKS node egress");
    step(&format!(
        "allocating two Elastic IPs tagged pinhook:pool={POOL}"
    ));
    let pool = world.eip_pool(POOL, 2).await;
    print_addresses(world, &pool).await;

    let metadata = eip_metadata(POOL, json!({"interface": 0}));
    step(&format!(
        "creating the group \"egress-nodes\" with hooks whose metadata is {metadata}"
    ));
    let group = world
        .group_named("egress-nodes", spec(net, metadata, 2))
        .await;
    for n in 1..=2 {
        step(&format!("scaling out to {n}: the new instance boots"));
        world.scale(&group, n).await;
        let summaries = deliver_all(runtime, world.emulator.pending_events(&group.name))?;
        check_pins_waited_for_boot(&summaries, problems);
    }

    step("the instances and their public IPs");
    let mut held = BTreeSet::new();
    println!(
        "    {:<21} {:<11} {:<27} {:<16} lifecycle",
        "instance", "AZ", "Elastic IP (allocation)", "public IP"
    );
    for InstanceState {
        id: instance,
        az,
        state,
    } in world.instances(&group).await
    {
        let primary = world.interface_at(&instance, 0).await;
        let on_primary = world.addresses_on(&primary.id).await;
        let (allocation, public_ip) = match on_primary.as_slice() {
            [one] => (one.clone(), world.address_state(one).await.public_ip),
            _ => ("-".into(), "-".into()),
        };
        println!("    {instance:<21} {az:<11} {allocation:<27} {public_ip:<16} {state}");
        if on_primary.len() != 1
            || !pool.contains(&allocation)
            || state != "InService"
            || !held.insert(allocation.clone())
        {
            problems.push(format!("{instance} does not hold exactly one pool address of its own ({on_primary:?}, {state})"));
        }
    }

    step("scaling in to 0: the addresses are disassociated and stay allocated, in the pool");
    world.scale(&group, 0).await;
    deliver_all(runtime, world.emulator.pending_events(&group.name))?;
    print_addresses(world, &pool).await;
    for allocation in &pool {
        let state = world.address_state(allocation).await;
        if state.association.is_some() || state.holder.is_some() || state.public_ip.is_empty() {
            problems.push(format!(
                "{allocation} was not released into the pool ({state:?})"
            ));
        }
    }
    Ok(())
}

/// Single-instance high availability: one instance across two AZs, one public IP that follows
/// the instance when its AZ fails.
pub(crate) async fn ha_scenario(
    world: &World,
    runtime: &LambdaRuntime,
    net: &Network,
    problems: &mut Vec<String>,
) -> Result<(), String> {
    const POOL: &str = "ha-ip";
    banner("Single-instance HA: min = max = 1 across two AZs, the public IP follows the instance");
    let address = world.eip_pool(POOL, 1).await.remove(0);
    let public_ip = world.address_state(&address).await.public_ip;
    let metadata = eip_metadata(POOL, json!({"takeover": true}));
    step(&format!(
        "one Elastic IP ({public_ip}) in pool {POOL:?}; the group \"single-ha\" has hooks with {metadata}"
    ));
    let group = world.group_named("single-ha", spec(net, metadata, 1)).await;
    world.scale(&group, 1).await;
    let summaries = deliver_all(runtime, world.emulator.pending_events(&group.name))?;
    check_pins_waited_for_boot(&summaries, problems);
    let Some(InstanceState {
        id: old,
        az: old_az,
        ..
    }) = world.instances(&group).await.into_iter().next()
    else {
        return Err("the HA group launched no instance".into());
    };
    println!("    {old} in {old_az} holds {public_ip}");

    let healthy_az = if old_az == AZ_A { AZ_B } else { AZ_A };
    step(&format!(
        "{old_az} fails: the group moves to {healthy_az} and replaces {old}, whose termination waits on its hook"
    ));
    world
        .asg
        .update_auto_scaling_group()
        .auto_scaling_group_name(&group.name)
        .vpc_zone_identifier(net.subnet(healthy_az))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    world.replace(&old).await;
    for InstanceState {
        id: instance,
        az,
        state,
    } in world.instances(&group).await
    {
        println!("    {instance}  {az}  {state}");
    }

    step(
        "delivering the replacement's launch: its old holder is terminating, so once the replacement runs it takes the address over",
    );
    let actions = world.emulator.actions(&group.name, false);
    let launches: Vec<Value> = actions
        .iter()
        .filter(|a| a["instance_id"] != old.as_str())
        .map(|a| a["event"].clone())
        .collect();
    let summaries = deliver_all(runtime, launches)?;
    check_pins_waited_for_boot(&summaries, problems);
    step(&format!(
        "delivering {old}'s terminate action: nothing of its own left to release"
    ));
    deliver_all(runtime, world.emulator.pending_events(&group.name))?;

    let state = world.address_state(&address).await;
    let instances = world.instances(&group).await;
    match instances.as_slice() {
        [
            InstanceState {
                id: new,
                az,
                state: lifecycle,
            },
        ] if state.instance.as_deref() == Some(new.as_str())
            && az == healthy_az
            && lifecycle == "InService" =>
        {
            println!(
                "    {public_ip} is now on {new} in {az} ({lifecycle}); {old} is {}",
                world.ec2_state(&old).await
            );
        }
        _ => problems.push(format!(
            "the HA address did not follow the replacement: {state:?}, {instances:?}"
        )),
    }
    Ok(())
}
