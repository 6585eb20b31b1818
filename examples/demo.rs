//! The demo: pinhook's main job end to end against the local AWS emulator, each lifecycle action
//! delivered as an EventBridge event through the real Lambda runtime loop. Five scenarios: a
//! pool of ENIs (fixed MACs), a pool of Elastic IPs (fixed public IPs), single-instance high
//! availability across AZs, a group with a warm pool, and drift behind pinhook's back that the
//! scheduled sweep repairs, ending with `pinhook status`. As on AWS, every new instance is still
//! booting (`pending`) when its launch event arrives, and the licence group carries another
//! tool's hook beside pinhook's.
//! Run it with `make demo`; it exits non-zero if anything is not pinned or released as expected.

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::time::Instant;

/// Seconds a new instance boots (EC2 state `pending`) before it runs.
const BOOT_SECONDS: &str = "1.5";

use pinhook_testkit as support;
use serde_json::{Value, json};
use support::{
    AZ_A, AZ_B, Emulator, EniState, GroupSpec, InstanceState, LambdaRuntime, Network, World,
    eip_metadata, eni_metadata, fast_settings,
};

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
    step(&format!(
        "starting the local AWS emulator (moto, made as strict as AWS by emulator/pinhook_emulator/); new instances boot for {BOOT_SECONDS} s"
    ));
    let emulator: &'static Emulator = Box::leak(Box::new(Emulator::start_real_time(&[
        "--boot-delay",
        BOOT_SECONDS,
    ])));
    println!("    listening on {} (pid {})", emulator.url, emulator.pid());
    let world = World::real_time(emulator, fast_settings()).await;

    step("starting pinhook in the Lambda runtime loop, behind cargo-lambda's Lambda API emulator");
    let runtime = LambdaRuntime::start(&emulator.url, &[("PINHOOK_GROUPS", "licensed-app")]);
    println!(
        "    invoke API on 127.0.0.1:{}, function logs in {}",
        runtime.port,
        runtime.log.display()
    );

    step(&format!(
        "creating a VPC with a subnet in {AZ_A} and one in {AZ_B}"
    ));
    let net = world.network().await;

    let mut problems = Vec::new();
    eni_scenario(&world, &runtime, &net, &mut problems).await?;
    eip_scenario(&world, &runtime, &net, &mut problems).await?;
    ha_scenario(&world, &runtime, &net, &mut problems).await?;
    warm_pool_scenario(&world, &runtime, &net, &mut problems).await?;
    queue_scenario(&world, &runtime, &net, &mut problems).await?;
    sweep_scenario(&world, &runtime, &mut problems).await?;

    let log = runtime.log.clone();
    drop(runtime);
    emulator.stop();
    println!("\n==> stopped pinhook, cargo-lambda and the emulator");
    if problems.is_empty() {
        println!(
            "\ndemo passed: 4 booting instances pinned to 4 distinct ENIs in their own AZ (another tool's hook left alone) \
             and 2 to 2 distinct Elastic IPs, everything released on scale-in, the HA replacement took its address over across AZs, \
             a warm-pool instance pinned only while in the group, two instances pinned and released through an SQS queue, and the sweep repaired a lost launch, a hand-detached ENI and a Spot reclaim"
        );
        Ok(())
    } else {
        println!("function logs: {}", log.display());
        Err(problems.join("; "))
    }
}

/// A fixed MAC for every instance: a pool of ENIs in both AZs.
async fn eni_scenario(
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
async fn eip_scenario(
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
async fn ha_scenario(
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

/// A warm pool: an instance launched into it is not pinned; drawn into the group, it is; back in
/// the warm pool on scale-in, its member is released.
async fn warm_pool_scenario(
    world: &World,
    runtime: &LambdaRuntime,
    net: &Network,
    problems: &mut Vec<String>,
) -> Result<(), String> {
    const POOL: &str = "warm-licence";
    banner("A group with a warm pool: pinned only while the instance serves the group");
    let pool = world.eni_pool(net, POOL, AZ_A, 1).await;
    let mut spec = spec(net, eni_metadata(POOL, json!({})), 1);
    spec.subnets = vec![net.subnet_a.clone()];
    let group = world.group_named("warm-app", spec).await;
    step("a warm pool of one stopped instance, reused on scale-in; its launch into the warm pool");
    world.warm_pool(&group, 1).await;
    let summaries = deliver_all(runtime, world.emulator.pending_events(&group.name))?;
    let Some(instance) = summaries
        .first()
        .and_then(|s| s["instance"].as_str())
        .map(str::to_owned)
    else {
        return Err("no instance launched into the warm pool".into());
    };
    let warm = world.warm_instances(&group).await;
    println!("    the warm pool: {warm:?}");
    if summaries[0]["member"] != Value::Null {
        problems.push(format!("{instance} was pinned in the warm pool"));
    }
    step("scaling out to 1: the instance leaves the warm pool for the group (Origin WarmPool)");
    world.scale(&group, 1).await;
    let leaving: Vec<Value> = world
        .emulator
        .actions(&group.name, false)
        .into_iter()
        .map(|a| a["event"].clone())
        .collect();
    // the warm pool refills with a new instance, which is not pinned either
    let summaries = deliver_all(runtime, leaving)?;
    let pinned = summaries
        .iter()
        .find(|s| s["instance"] == instance.as_str())
        .and_then(|s| s["member"].as_str())
        .map(str::to_owned);
    if pinned.as_deref() != Some(pool[0].as_str()) {
        problems.push(format!(
            "{instance} was not pinned on leaving the warm pool: {summaries:?}"
        ));
    }
    step(
        "scaling in to 0: the instance returns to the warm pool (Destination WarmPool), and is released",
    );
    world.scale(&group, 0).await;
    deliver_all(runtime, world.emulator.pending_events(&group.name))?;
    print_enis(world, &pool).await;
    let warm = world.warm_instances(&group).await;
    println!("    the warm pool: {warm:?}");
    let state = world.eni_state(&pool[0]).await;
    if state.status != "available" || state.holder.is_some() {
        problems.push(format!(
            "{} was not released on the return to the warm pool",
            pool[0]
        ));
    }
    if !warm
        .iter()
        .any(|i| i.id == instance && i.state == "Warmed:Stopped")
    {
        problems.push(format!(
            "{instance} did not return to the warm pool: {warm:?}"
        ));
    }
    Ok(())
}

/// Hooks that send their lifecycle actions to an SQS queue instead of EventBridge, drained into
/// the function through the real runtime loop by the project's poller, as Lambda's SQS event
/// source mapping does (batches, `batchItemFailures`).
async fn queue_scenario(
    world: &World,
    runtime: &LambdaRuntime,
    net: &Network,
    problems: &mut Vec<String>,
) -> Result<(), String> {
    const POOL: &str = "queued-licence";
    banner("Hooks wired to an SQS queue: the same pins, drained in batches by an event source");
    let pool = world.eni_pool(net, POOL, AZ_A, 2).await;
    let queue = world.queue("pinhook-lifecycle").await;
    let metadata = eni_metadata(POOL, json!({}));
    let group = world
        .group_named("queued-app", GroupSpec::bare(vec![net.subnet_a.clone()], 2))
        .await;
    step(&format!(
        "the group \"queued-app\" gets pinhook's hooks with NotificationTargetARN = {}: Auto Scaling sends each a test notification",
        queue.arn
    ));
    for (hook, transition) in [
        ("pinhook-launch", "autoscaling:EC2_INSTANCE_LAUNCHING"),
        ("pinhook-terminate", "autoscaling:EC2_INSTANCE_TERMINATING"),
    ] {
        world
            .hook_to(&group.name, hook, transition, &metadata, &queue.arn)
            .await;
    }
    let drain = async |what: &str| -> Result<Vec<Value>, String> {
        step(what);
        let batches = support::poll_queue(world, &queue, |event| async move {
            let records = event["Records"].as_array().map_or(0, Vec::len);
            let response = runtime.invoke(&event);
            (response.clone(), (records, response))
        })
        .await;
        let mut responses = Vec::new();
        for (records, response) in batches {
            println!("    a batch of {records} messages -> {response}");
            if response.get("errorType").is_some() {
                return Err(format!("the function failed a batch: {response}"));
            }
            responses.push(response);
        }
        Ok(responses)
    };
    drain("the poller drains the queue into the function: the test notifications are ignored")
        .await?;
    world.scale(&group, 2).await;
    let responses = drain(
        "scaling out to 2: both launch notifications wait in the queue; one batch, nothing to deliver again",
    )
    .await?;
    if responses.iter().any(|r| {
        r["batchItemFailures"]
            .as_array()
            .is_none_or(|f| !f.is_empty())
    }) {
        problems.push(format!("a queued batch reported failures: {responses:?}"));
    }
    step("the instances, pinned");
    for InstanceState {
        id: instance,
        az,
        state,
    } in world.instances(&group).await
    {
        let held: Vec<EniState> = world
            .attached_to(&instance)
            .await
            .into_iter()
            .filter(|e| e.pool.as_deref() == Some(POOL))
            .collect();
        let eni = held.first().map_or("-", |e| e.id.as_str());
        println!("    {instance:<21} {az:<11} {eni:<23} {state}");
        if held.len() != 1 || state != "InService" {
            problems.push(format!(
                "{instance} was not pinned through the queue ({state})"
            ));
        }
    }
    world.scale(&group, 0).await;
    drain("scaling in to 0: the terminate notifications go the same way").await?;
    print_enis(world, &pool).await;
    for eni in &pool {
        let state = world.wait_available(eni).await;
        if state.holder.is_some() || state.status != "available" {
            problems.push(format!("{eni} was not released through the queue"));
        }
    }
    Ok(())
}

/// Drift behind pinhook's back — a lost launch event, an ENI detached by hand, a Spot reclaim —
/// seen with `pinhook status`, and repaired by the scheduled sweep through the runtime loop.
async fn sweep_scenario(
    world: &World,
    runtime: &LambdaRuntime,
    problems: &mut Vec<String>,
) -> Result<(), String> {
    banner("When something goes wrong: drift, the scheduled sweep, and `pinhook status`");
    let group = support::Group {
        name: "licensed-app".into(),
        launch_hook: "licensed-app-launch".into(),
        terminate_hook: "licensed-app-terminate".into(),
    };
    step(
        "scaling licensed-app out to 2 again, pinned as usual (the node-ready tool completes its own hook)",
    );
    world.scale(&group, 2).await;
    let actions = world.emulator.actions(&group.name, false);
    deliver_all(
        runtime,
        actions
            .iter()
            .filter(|a| a["hook"] != "node-ready")
            .map(|a| a["event"].clone())
            .collect(),
    )?;
    for action in actions.iter().filter(|a| a["hook"] == "node-ready") {
        world.complete(action, "CONTINUE").await;
    }
    let instances = world.instances(&group).await;
    let [first, second] = instances.as_slice() else {
        return Err(format!("expected two instances, found {instances:?}"));
    };
    let (first, second) = (&first.id, &second.id);
    step(&format!("drift: someone detaches {first}'s ENI by hand"));
    let eni = world
        .attached_to(first)
        .await
        .into_iter()
        .find(|e| e.pool.as_deref() == Some("licence"))
        .ok_or("the first instance holds no ENI")?;
    world.detach_by_hand(&eni.id).await;
    step(&format!(
        "drift: a Spot reclaim terminates {second} (no terminate hook runs)"
    ));
    world.terminate_in_ec2(second).await;
    step("drift: a launch whose event never reached pinhook (both hooks completed by other means)");
    world.scale(&group, 2).await;
    let lost: Vec<Value> = world.emulator.actions(&group.name, false);
    for action in &lost {
        world.complete(action, "CONTINUE").await;
    }
    let lost_instance = lost
        .first()
        .and_then(|a| a["instance_id"].as_str())
        .unwrap_or_default()
        .to_owned();

    step("pinhook status: what the operator sees");
    print_status(world)?;

    step("the EventBridge schedule invokes the function with a Scheduled Event: the sweep");
    let summary = runtime.invoke(&sample("scheduled.json")?);
    for done in summary["sweep"]["done"].as_array().into_iter().flatten() {
        println!(
            "    {:<8} {:<13} {}",
            if done["ok"] == true { "done" } else { "FAILED" },
            done["action"].as_str().unwrap_or("-"),
            done["result"].as_str().unwrap_or("-")
        );
    }
    println!("    {}", summary["reason"].as_str().unwrap_or("-"));
    if summary["outcome"] != "swept" {
        return Err(format!("the scheduled event did not sweep: {summary}"));
    }

    step("pinhook status after the sweep");
    print_status(world)?;
    for instance in [first.as_str(), lost_instance.as_str()] {
        let held = world
            .attached_to(instance)
            .await
            .into_iter()
            .filter(|e| {
                e.pool.as_deref() == Some("licence") && e.holder.as_deref() == Some(instance)
            })
            .count();
        if held != 1 {
            problems.push(format!("the sweep did not pin {instance} ({held} ENIs)"));
        }
    }
    let again = runtime.invoke(&sample("scheduled.json")?);
    let left = again["sweep"]["pools"][0]["repairs"]
        .as_array()
        .map_or(0, Vec::len);
    if left != 0 {
        problems.push(format!(
            "a second sweep still finds {left} repairs: {again}"
        ));
    }
    Ok(())
}

/// `pinhook status` against the emulator, as an operator runs it from a terminal.
fn print_status(world: &World) -> Result<(), String> {
    let args = ["status", "--group", "licensed-app"].map(std::ffi::OsStr::new);
    let output = support::pinhook_cli(&world.emulator.url, &args);
    if !output.status.success() {
        return Err(format!(
            "pinhook status failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    println!("    $ pinhook status --group licensed-app");
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        println!("    {line}");
    }
    Ok(())
}

fn sample(name: &str) -> Result<Value, String> {
    let path = support::repo_root().join("events").join(name);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn spec(net: &Network, metadata: String, max_size: i32) -> GroupSpec {
    GroupSpec {
        subnets: vec![net.subnet_a.clone(), net.subnet_b.clone()],
        launch_metadata: Some(metadata.clone()),
        terminate_metadata: Some(metadata),
        extra_terminate_hook: false,
        max_size,
    }
}

fn banner(text: &str) {
    println!("\n\n#### {text}");
}

fn step(text: &str) {
    println!("\n==> {text}");
}

/// Invokes the function once per event, through the Lambda runtime loop; the summaries.
fn deliver_all(runtime: &LambdaRuntime, events: Vec<Value>) -> Result<Vec<Value>, String> {
    if events.is_empty() {
        return Err("the emulator has no pending lifecycle action".into());
    }
    let mut summaries = Vec::new();
    for event in events {
        let started = Instant::now();
        let summary = runtime.invoke(&event);
        println!(
            "    {:<9} {:<21} -> {:<8} {:<27} in {:>4} ms  ({})",
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
        summaries.push(summary);
    }
    Ok(summaries)
}

/// Each launch was pinned, and only once its instance had booted; other tools' actions were
/// left alone.
fn check_pins_waited_for_boot(summaries: &[Value], problems: &mut Vec<String>) {
    for summary in summaries {
        let reason = summary["reason"].as_str().unwrap_or_default();
        match summary["outcome"].as_str() {
            Some("ignored") if reason.contains("belongs to another tool") => {}
            Some("CONTINUE") if reason.contains("to boot") => {}
            _ => problems.push(format!(
                "a launch did not wait for its instance to boot and pin it: {summary}"
            )),
        }
    }
}

async fn print_enis(world: &World, pool: &[String]) {
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

async fn print_addresses(world: &World, pool: &[String]) {
    println!(
        "    {:<27} {:<16} {:<21} holder",
        "Elastic IP (allocation)", "public IP", "associated with"
    );
    for allocation in pool {
        let state = world.address_state(allocation).await;
        println!(
            "    {:<27} {:<16} {:<21} {}",
            state.allocation,
            state.public_ip,
            state.instance.as_deref().unwrap_or("-"),
            state.holder.as_deref().unwrap_or("-")
        );
    }
}
