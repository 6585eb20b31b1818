//! The demo's Karpenter scenario: a node launched as a plain EC2 instance (no Auto Scaling
//! group, so no lifecycle hook) whose tags name a pool gets a fixed public IP from EC2's
//! state-change events, and gives it back when it terminates.

use pinhook_testkit as support;
use serde_json::{Value, json};
use support::{LambdaRuntime, Network, Pin, World, node_tags};

use crate::{banner, print_addresses, step};

/// Seconds a plain instance boots before it runs.
const BOOT_SECONDS: f64 = 1.5;

/// A Karpenter-like node: `RunInstances` with the tags an `EC2NodeClass`'s `spec.tags` gives.
pub(crate) async fn karpenter_scenario(
    world: &World,
    runtime: &LambdaRuntime,
    net: &Network,
    problems: &mut Vec<String>,
) -> Result<(), String> {
    const POOL: &str = "karpenter-egress";
    banner("A Karpenter node: no Auto Scaling group, pinned from EC2's state-change events");
    step(&format!(
        "allocating two Elastic IPs tagged pinhook:pool={POOL}"
    ));
    let pool = world.eip_pool(POOL, 2).await;
    let tags = node_tags(Pin::Eip, POOL);
    let tags: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (*k, v.as_str())).collect();
    step(&format!(
        "launching a node as Karpenter does (RunInstances, no group) with the tags {tags:?}; it boots"
    ));
    world
        .emulator
        .settings(json!({"plain_boot_delay": BOOT_SECONDS}));
    let node = world.tagged_instance(&net.subnet_a, &tags).await;
    let others = world.lone_instance(&net.subnet_a).await;
    step(
        "EC2's state-change events of both, as EventBridge delivers them: `pending` while the node boots (pinhook waits for it), then `running`; the untagged instance costs one read",
    );
    let mut summaries = Vec::new();
    let mut delivered = Vec::new();
    // Twice: the `running` events come once the instances have booted.
    for _ in 0..2 {
        for instance in [&node, &others] {
            for event in world.emulator.ec2_events(instance) {
                if !delivered.contains(&event["id"]) {
                    delivered.push(event["id"].clone());
                    summaries.push(invoke(runtime, &event)?);
                }
            }
        }
    }
    let pinned: Vec<&Value> = summaries
        .iter()
        .filter(|s| s["outcome"] == "pinned")
        .collect();
    let member = pinned.first().and_then(|s| s["member"].as_str());
    let public_ip = pinned.first().and_then(|s| s["public_ip"].as_str());
    let ignored = summaries
        .iter()
        .any(|s| s["instance"] == json!(others) && s["outcome"] == "ignored");
    match (member, public_ip) {
        (Some(member), Some(ip)) if pool.iter().any(|p| p == member) && ignored => {
            println!("    {node} reaches the internet from {ip} ({member}), a fixed address a partner can allow-list");
        }
        _ => problems.push(format!(
            "the node was not pinned to a pool address, or the untagged instance was not ignored: {summaries:?}"
        )),
    }

    step("the node terminates (Karpenter consolidates): its address goes back to the pool");
    world.terminate_in_ec2(&node).await;
    let seen = world.emulator.ec2_events(&node);
    let mut released = false;
    for event in seen.iter().filter(|e| {
        matches!(
            e["detail"]["state"].as_str(),
            Some("shutting-down" | "terminated")
        )
    }) {
        released |= invoke(runtime, event)?["outcome"] == "released";
    }
    print_addresses(world, &pool).await;
    for allocation in &pool {
        let state = world.address_state(allocation).await;
        if state.association.is_some() || state.holder.is_some() {
            problems.push(format!(
                "{allocation} was not released into the pool ({state:?})"
            ));
        }
    }
    if !released {
        problems.push("no state-change event released the node's address".into());
    }
    Ok(())
}

/// Invokes the function once with an EC2 state-change event, through the Lambda runtime loop;
/// prints and returns its summary.
fn invoke(runtime: &LambdaRuntime, event: &Value) -> Result<Value, String> {
    let started = std::time::Instant::now();
    let summary = runtime.invoke(event);
    println!(
        "    {:<13} {:<21} -> {:<10} {:<27} in {:>4} ms  ({})",
        event["detail"]["state"].as_str().unwrap_or("-"),
        summary["instance"].as_str().unwrap_or("-"),
        summary["outcome"].as_str().unwrap_or("-"),
        summary["member"].as_str().unwrap_or("-"),
        started.elapsed().as_millis(),
        summary["reason"].as_str().unwrap_or("-"),
    );
    if summary.get("errorType").is_some() {
        return Err(format!("the function failed: {summary}"));
    }
    Ok(summary)
}
