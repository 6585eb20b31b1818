//! The demo's later scenarios: a group with a warm pool, lifecycle actions through an SQS queue,
//! and drift behind pinhook's back that the scheduled sweep repairs.

use pinhook_testkit as support;
use serde_json::{Value, json};
use support::{
    AZ_A, EniState, GroupSpec, InstanceState, LambdaRuntime, Network, World, eni_metadata,
};

use crate::{banner, deliver_all, print_enis, print_status, sample, spec, step};

/// A warm pool: an instance launched into it is not pinned; drawn into the group, it is; back in
/// the warm pool on scale-in, its member is released.
pub(crate) async fn warm_pool_scenario(
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
pub(crate) async fn queue_scenario(
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
pub(crate) async fn sweep_scenario(
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
