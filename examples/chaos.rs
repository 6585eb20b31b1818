//! `make chaos`: a burst of launches against a pool with faults injected, counted from AWS's side.
//! Each lifecycle action is its own concurrent invocation of the real handler, in its own
//! execution environment (own SDK clients); an invocation that fails is delivered again, as
//! EventBridge's retry policy does. Exits non-zero if a member is held twice, an instance holds
//! two, an action is left waiting or completed twice, or the pool is not used to the full.
//!
//! Options: `--instances 100 --members 80 --fault-rate 0.2 --slow-rate 0.1 --modes eni,eip`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::ExitCode;
use std::time::Instant;

use serde_json::json;
use support::{AZ_A, AZ_B, Census, GroupSpec, World, hook_metadata, unique};

struct Options {
    instances: usize,
    members: usize,
    fault_rate: f64,
    slow_rate: f64,
    modes: Vec<String>,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        instances: 100,
        members: 80,
        fault_rate: 0.2,
        slow_rate: 0.1,
        modes: vec!["eni".into(), "eip".into()],
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--instances" => options.instances = value.parse().map_err(|e| bad(&e))?,
            "--members" => options.members = value.parse().map_err(|e| bad(&e))?,
            "--fault-rate" => options.fault_rate = value.parse().map_err(|e| bad(&e))?,
            "--slow-rate" => options.slow_rate = value.parse().map_err(|e| bad(&e))?,
            "--modes" => options.modes = value.split(',').map(str::to_owned).collect(),
            other => {
                return Err(format!(
                    "unknown option {other}; see the top of examples/chaos.rs"
                ));
            }
        }
    }
    if options.members % 2 != 0 || options.instances % 2 != 0 {
        return Err("--instances and --members must be even: both are spread over two AZs".into());
    }
    if options.modes.iter().any(|m| m != "eni" && m != "eip") {
        return Err("--modes takes eni, eip or eni,eip".into());
    }
    Ok(options)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let options = match options() {
        Ok(options) => options,
        Err(problem) => {
            eprintln!("chaos: {problem}");
            return ExitCode::from(2);
        }
    };
    println!(
        "pinhook chaos: {} instances launching at once against {} pool members, {:.0} % of AWS calls failing \
         (throttling, 500, 503) and {:.0} % answered slowly; every action its own invocation, failed invocations \
         delivered again up to 4 times\n",
        options.instances,
        options.members,
        options.fault_rate * 100.0,
        options.slow_rate * 100.0
    );
    let mut failed = false;
    let header = [
        "mode",
        "instances",
        "pinned",
        "abandoned",
        "continued",
        "double-held",
        "multi-held",
        "uncompleted",
        "completed-twice",
        "lease-mismatch",
        "invocations",
        "redeliveries",
        "calls",
        "faults",
        "slowed",
        "seconds",
    ];
    println!("{}", header.map(|h| format!("{h:>9}")).join(" "));
    for mode in &options.modes {
        let (census, row) = run(mode, &options).await;
        println!(
            "{}",
            row.iter()
                .map(|c| format!("{c:>9}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        let expected_pinned = options.members.min(options.instances);
        if census.double_held_members
            + census.multi_member_instances
            + census.uncompleted_actions
            + census.completed_twice
            + census.lease_mismatches
            > 0
            || census.pinned != expected_pinned
            || census.abandoned != options.instances - expected_pinned
        {
            failed = true;
        }
    }
    if failed {
        println!("\nchaos FAILED: see the counts above");
        ExitCode::FAILURE
    } else {
        println!("\nchaos passed: every member held once, every action completed exactly once");
        ExitCode::SUCCESS
    }
}

async fn run(mode: &str, options: &Options) -> (Census, Vec<String>) {
    let world = World::dedicated().await;
    let net = world.network().await;
    let pool = unique("chaos");
    if mode == "eni" {
        world.eni_pool(&net, &pool, AZ_A, options.members / 2).await;
        world.eni_pool(&net, &pool, AZ_B, options.members / 2).await;
    } else {
        world.eip_pool(&pool, options.members).await;
    }
    let metadata = hook_metadata(mode, &pool, json!({}));
    let group = world
        .group(GroupSpec {
            subnets: vec![net.subnet_a.clone(), net.subnet_b.clone()],
            launch_metadata: Some(metadata.clone()),
            terminate_metadata: Some(metadata),
            extra_terminate_hook: false,
            max_size: options.instances as i32,
        })
        .await;
    world.scale(&group, options.instances as i32).await;
    let events = world.emulator.pending_events(&group.name);
    let calls_before = world.emulator.control("GET", "calls", None)["total"]
        .as_u64()
        .unwrap_or(0);

    world.faults(options.fault_rate, options.slow_rate);
    let started = Instant::now();
    let deliveries = world.burst(&events, 1, 4).await;
    let seconds = started.elapsed().as_secs_f64();
    let faults = world.emulator.control("GET", "faults", None);
    let calls = world.emulator.control("GET", "calls", None)["total"]
        .as_u64()
        .unwrap_or(0)
        - calls_before;
    world.faults(0.0, 0.0);

    let census = world.census(&group, &pool, mode).await;
    world.emulator.stop();
    if let Some(error) = deliveries.errors.first() {
        eprintln!(
            "{mode}: {} deliveries failed for good; the first: {error}",
            deliveries.failed
        );
    }
    let row = vec![
        mode.to_owned(),
        census.instances.to_string(),
        census.pinned.to_string(),
        census.abandoned.to_string(),
        census.continued_unpinned.to_string(),
        census.double_held_members.to_string(),
        census.multi_member_instances.to_string(),
        census.uncompleted_actions.to_string(),
        census.completed_twice.to_string(),
        census.lease_mismatches.to_string(),
        deliveries.invocations.to_string(),
        deliveries.redeliveries.to_string(),
        calls.to_string(),
        faults["injected_total"].to_string(),
        faults["slowed"].to_string(),
        format!("{seconds:.1}"),
    ];
    (census, row)
}
