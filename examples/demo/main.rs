//! The demo: pinhook's main job end to end against the local AWS emulator, each lifecycle action
//! delivered as an EventBridge event through the real Lambda runtime loop. The scenarios: a
//! pool of ENIs (fixed MACs), a pool of Elastic IPs (fixed public IPs), single-instance high
//! availability across AZs, a group with a warm pool, lifecycle actions through an SQS queue, a
//! Karpenter node without a group (pinned from EC2's state-change events), and drift behind
//! pinhook's back that the scheduled sweep repairs, ending with `pinhook status`. As on AWS, every new instance is still
//! booting (`pending`) when its launch event arrives, and the licence group carries another
//! tool's hook beside pinhook's.
//! Run it with `make demo`; it exits non-zero if anything is not pinned or released as expected.

mod later;
mod nodes;
mod pools;

use std::process::ExitCode;
use std::time::Instant;

/// Seconds a new instance boots (EC2 state `pending`) before it runs.
const BOOT_SECONDS: &str = "1.5";

use pinhook_testkit as support;
use serde_json::Value;
use support::{AZ_A, AZ_B, Emulator, GroupSpec, LambdaRuntime, Network, World, fast_settings};

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
    pools::eni_scenario(&world, &runtime, &net, &mut problems).await?;
    pools::eip_scenario(&world, &runtime, &net, &mut problems).await?;
    pools::ha_scenario(&world, &runtime, &net, &mut problems).await?;
    later::warm_pool_scenario(&world, &runtime, &net, &mut problems).await?;
    later::queue_scenario(&world, &runtime, &net, &mut problems).await?;
    nodes::karpenter_scenario(&world, &runtime, &net, &mut problems).await?;
    later::sweep_scenario(&world, &runtime, &mut problems).await?;

    let log = runtime.log.clone();
    drop(runtime);
    emulator.stop();
    println!("\n==> stopped pinhook, cargo-lambda and the emulator");
    if problems.is_empty() {
        println!(
            "\ndemo passed: 4 booting instances pinned to 4 distinct ENIs in their own AZ (another tool's hook left alone) \
             and 2 to 2 distinct Elastic IPs, everything released on scale-in, the HA replacement took its address over across AZs, \
             a warm-pool instance pinned only while in the group, two instances pinned and released through an SQS queue, \
             a Karpenter node without a group pinned from its state-change events and released on termination, \
             and the sweep repaired a lost launch, a hand-detached ENI and a Spot reclaim"
        );
        Ok(())
    } else {
        println!("function logs: {}", log.display());
        Err(problems.join("; "))
    }
}

/// `pinhook status` against the emulator, as an operator runs it from a terminal.
pub(crate) fn print_status(world: &World) -> Result<(), String> {
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

pub(crate) fn sample(name: &str) -> Result<Value, String> {
    let path = support::repo_root().join("events").join(name);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

pub(crate) fn spec(net: &Network, metadata: String, max_size: i32) -> GroupSpec {
    GroupSpec {
        subnets: vec![net.subnet_a.clone(), net.subnet_b.clone()],
        launch_metadata: Some(metadata.clone()),
        terminate_metadata: Some(metadata),
        extra_terminate_hook: false,
        max_size,
    }
}

pub(crate) fn banner(text: &str) {
    println!("\n\n#### {text}");
}

pub(crate) fn step(text: &str) {
    println!("\n==> {text}");
}

/// Invokes the function once per event, through the Lambda runtime loop; the summaries.
pub(crate) fn deliver_all(
    runtime: &LambdaRuntime,
    events: Vec<Value>,
) -> Result<Vec<Value>, String> {
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
pub(crate) fn check_pins_waited_for_boot(summaries: &[Value], problems: &mut Vec<String>) {
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

pub(crate) async fn print_enis(world: &World, pool: &[String]) {
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

pub(crate) async fn print_addresses(world: &World, pool: &[String]) {
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
