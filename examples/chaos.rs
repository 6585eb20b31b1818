//! `make chaos`: a burst of launches against a pool with faults injected, counted from AWS's side.
//! Each lifecycle action is its own concurrent invocation of the real handler, in its own
//! execution environment (own SDK clients); an invocation that fails is delivered again, as
//! EventBridge's retry policy does. Exits non-zero if a member is held twice, an instance holds
//! two, an action is left waiting or completed twice, or the pool is not used to the full.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use comfy_table::Table;
use pinhook_testkit::{
    AZ_A, AZ_B, Census, GroupSpec, Pin, World, burst_settings, hook_metadata, unique,
};
use serde_json::json;

/// A burst of launches at once against a pool, with a share of AWS calls failing.
#[derive(Debug, Parser)]
#[command(name = "chaos")]
struct Options {
    /// Instances launching at once (even: spread over two AZs).
    #[arg(long, default_value_t = 100)]
    instances: usize,
    /// Pool members (even: spread over two AZs).
    #[arg(long, default_value_t = 80)]
    members: usize,
    /// Share of AWS calls that fail (throttling, 500, 503).
    #[arg(long, default_value_t = 0.2)]
    fault_rate: f64,
    /// Share of AWS calls answered slowly.
    #[arg(long, default_value_t = 0.1)]
    slow_rate: f64,
    /// Seconds Auto Scaling's reads lag each lifecycle transition (0: none); pinhook then looks
    /// again for up to one and a half times that.
    #[arg(long, default_value_t = 0.0)]
    asg_lag: f64,
    /// What to pin, one run each.
    #[arg(long, value_delimiter = ',', default_values = ["eni", "eip"])]
    modes: Vec<Pin>,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let options = Options::parse();
    if options.members % 2 != 0 || options.instances % 2 != 0 {
        eprintln!("chaos: --instances and --members must be even: both are spread over two AZs");
        return ExitCode::from(2);
    }
    println!(
        "pinhook chaos: {} instances launching at once against {} pool members, {:.0} % of AWS calls failing \
         (throttling, 500, 503) and {:.0} % answered slowly, Auto Scaling's reads {:.1} s behind; every action its \
         own invocation, failed invocations delivered again up to 4 times\n",
        options.instances,
        options.members,
        options.fault_rate * 100.0,
        options.slow_rate * 100.0,
        options.asg_lag
    );
    let mut table = Table::new();
    table
        .load_preset(comfy_table::presets::NOTHING)
        .set_header([
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
        ]);
    let mut failed = false;
    for mode in &options.modes {
        let (census, row) = run(*mode, &options).await;
        table.add_row(row);
        let expected_pinned = options.members.min(options.instances);
        failed |= census.integrity_errors() > 0
            || census.pinned != expected_pinned
            || census.abandoned != options.instances - expected_pinned;
    }
    println!("{table}");
    if failed {
        println!("\nchaos FAILED: see the counts above");
        ExitCode::FAILURE
    } else {
        println!("\nchaos passed: every member held once, every action completed exactly once");
        ExitCode::SUCCESS
    }
}

async fn run(mode: Pin, options: &Options) -> (Census, Vec<String>) {
    let mut settings = burst_settings();
    settings.consistency_window = settings
        .consistency_window
        .max(Duration::from_secs_f64(options.asg_lag * 1.5));
    let world = World::dedicated_real_time(settings).await;
    if options.asg_lag > 0.0 {
        world.emulator.asg_lag(options.asg_lag, false);
    }
    let net = world.network().await;
    let pool = unique("chaos");
    match mode {
        Pin::Eni => {
            world.eni_pool(&net, &pool, AZ_A, options.members / 2).await;
            world.eni_pool(&net, &pool, AZ_B, options.members / 2).await;
        }
        Pin::Eip => {
            world.eip_pool(&pool, options.members).await;
        }
    }
    let metadata = hook_metadata(mode, &pool, json!({}));
    let spec = GroupSpec::pinning(net.subnets(), metadata, options.instances as i32);
    let group = world.group(spec).await;
    world.scale(&group, options.instances as i32).await;
    let events = world.emulator.pending_events(&group.name);
    let calls_before = world.emulator.calls()["total"].as_u64().unwrap_or(0);

    world.emulator.faults(options.fault_rate, options.slow_rate);
    let started = Instant::now();
    let deliveries = world.burst(&events, 1, 4).await;
    let seconds = started.elapsed().as_secs_f64();
    let faults = world.emulator.control("GET", "faults", None);
    let calls = world.emulator.calls()["total"].as_u64().unwrap_or(0) - calls_before;
    world.emulator.faults(0.0, 0.0);

    let census = world.census(&group, &pool, mode).await;
    world.emulator.stop();
    if let Some(error) = deliveries.errors.first() {
        eprintln!(
            "{mode}: {} deliveries failed for good; the first: {error}",
            deliveries.failed
        );
    }
    let row = vec![
        mode.to_string(),
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
