//! The demo: pinhook's main job end to end against the local AWS emulator, each lifecycle action
//! delivered as an EventBridge event through the real Lambda runtime loop. Run it with
//! `make demo`; it exits non-zero if any instance is not pinned as expected.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::time::Instant;

use serde_json::{Value, json};
use support::{AZ_A, AZ_B, Emulator, EniState, GroupSpec, LambdaRuntime, World, eni_metadata};

const POOL: &str = "licence-demo";
const GROUP: &str = "licensed-app";

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(problem) => {
            eprintln!("\ndemo FAILED: {problem}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    step(
        "starting the local AWS emulator (moto, made as strict as AWS by emulator/pinhook_emulator.py)",
    );
    let emulator: &'static Emulator = Box::leak(Box::new(Emulator::start()));
    println!("    listening on {} (pid {})", emulator.url, emulator.pid());
    let world = World::on(emulator).await;

    step("starting pinhook in the Lambda runtime loop, behind cargo-lambda's Lambda API emulator");
    let runtime = LambdaRuntime::start(emulator, &[]);
    println!(
        "    invoke API on 127.0.0.1:{}, function logs in {}",
        runtime.port,
        runtime.log.display()
    );

    step(&format!(
        "creating a VPC with a subnet in {AZ_A} and {AZ_B}, and the ENI pool {POOL:?}"
    ));
    let net = world.network().await;
    let mut pool = world.eni_pool(&net, POOL, AZ_A, 2).await;
    pool.extend(world.eni_pool(&net, POOL, AZ_B, 2).await);
    print_pool(&world, &pool).await;

    let metadata = eni_metadata(POOL, json!({}));
    step(&format!(
        "creating the group {GROUP:?} with launch and terminate hooks whose metadata is {metadata}"
    ));
    let group = world
        .group_named(
            GROUP,
            GroupSpec {
                subnets: vec![net.subnet_a.clone(), net.subnet_b.clone()],
                launch_metadata: Some(metadata.clone()),
                terminate_metadata: Some(metadata),
                extra_terminate_hook: false,
                max_size: 4,
            },
        )
        .await;

    step("scaling out to 4 instances: each waits in Pending:Wait for its launch hook");
    world.scale(&group, 4).await;
    for (instance, az, state) in world.instances(&group).await {
        println!("    {instance}  {az}  {state}");
    }

    step("delivering each pending launch action as the EventBridge event AWS would send");
    deliver_all(&runtime, emulator.pending_events(&group.name))?;

    step("result");
    let mut problems = Vec::new();
    let mut pinned = BTreeSet::new();
    println!(
        "    {:<21} {:<11} {:<23} {:<18} {:<11} lifecycle",
        "instance", "AZ", "ENI (device 1)", "MAC", "private IP"
    );
    for (instance, az, state) in world.instances(&group).await {
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
        problems.push(format!("{} of 4 instances pinned", pinned.len()));
    }

    step("scaling in to 0: each instance waits in Terminating:Wait for its terminate hook");
    world.scale(&group, 0).await;
    deliver_all(&runtime, emulator.pending_events(&group.name))?;

    step("the pool after scale-in");
    print_pool(&world, &pool).await;
    for eni in &pool {
        let state = world.eni_state(eni).await;
        if state.status != "available" || state.holder.is_some() {
            problems.push(format!(
                "{eni} was not released ({}, holder {:?})",
                state.status, state.holder
            ));
        }
    }
    let left = world.instances(&group).await;
    if !left.is_empty() {
        problems.push(format!("instances left in the group: {left:?}"));
    }

    let log = runtime.log.clone();
    drop(runtime);
    emulator.stop();
    println!("\n==> stopped pinhook, cargo-lambda and the emulator");
    if problems.is_empty() {
        println!(
            "\ndemo passed: 4 instances pinned to 4 distinct ENIs in their own AZ, and all 4 ENIs released on scale-in"
        );
        Ok(())
    } else {
        println!("function logs: {}", log.display());
        Err(problems.join("; "))
    }
}

fn step(text: &str) {
    println!("\n==> {text}");
}

/// Invokes the function once per event, through the Lambda runtime loop.
fn deliver_all(runtime: &LambdaRuntime, events: Vec<Value>) -> Result<(), String> {
    if events.is_empty() {
        return Err("the emulator has no pending lifecycle action".into());
    }
    for event in events {
        let started = Instant::now();
        let summary = runtime.invoke(&event);
        println!(
            "    {:<9} {:<21} -> {:<8} {:<23} in {:>4} ms  ({})",
            summary["transition"].as_str().unwrap_or("-"),
            summary["instance"].as_str().unwrap_or("-"),
            summary["outcome"].as_str().unwrap_or("-"),
            summary["member"].as_str().unwrap_or("-"),
            started.elapsed().as_millis(),
            summary["reason"].as_str().unwrap_or("-"),
        );
        if summary.get("errorType").is_some() {
            return Err(format!("the function failed: {summary}"));
        }
    }
    Ok(())
}

async fn print_pool(world: &World, pool: &[String]) {
    println!(
        "    {:<23} {:<11} {:<18} {:<10} holder",
        "ENI", "AZ", "MAC", "status"
    );
    for eni in pool {
        let state = world.eni_state(eni).await;
        println!(
            "    {:<23} {:<11} {:<18} {:<10} {}",
            state.id,
            state.az,
            state.mac,
            state.status,
            state.holder.as_deref().unwrap_or("-")
        );
    }
}
