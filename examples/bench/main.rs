//! `make bench`: what pinhook costs, measured against the local emulator and printed as tables,
//! with the same figures in `target/bench/bench.json`. One module per benchmark:
//!
//! - `single`: cold single events — the pinhook binary started as Lambda starts it, against a
//!   Lambda runtime API served here, from exec to the response that follows the completed
//!   lifecycle action: wall time, peak RSS, the AWS calls by operation against their floor, and
//!   the serial round trips (the wall time again with a fixed latency added to every AWS call).
//! - `burst`: N launches delivered at once to C execution environments (the real handler, each
//!   environment with its own SDK clients): time to the last completion, time-to-pin
//!   percentiles, calls, throttles, conflicts, and pinhook's own share of the wall time.
//! - `scale` (`--scale N`): N launches into several groups over three AZs under AWS's rate
//!   limits, with the time the limits alone allow for the calls made, and a picture (`plot`).
//! - The sizes of the release binary and of the arm64 zip, when built.
//!
//! Nothing here is a pass/fail timing: the figures are printed, and the run fails only when
//! pinhook did not do its job (an action not completed, a member held twice).

mod burst;
mod environments;
mod launch_cost;
mod plot;
mod scale;
mod single;
mod throttling;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Parser;
use pinhook_testkit::{Census, World, pinhook_binary};
use serde_json::{Value, json};

/// What pinhook costs, against the local emulator.
#[derive(Debug, Parser)]
#[command(name = "bench")]
struct Options {
    /// The pinhook binary the cold single events run (default: the release build, else the
    /// one built beside this example).
    #[arg(long)]
    binary: Option<PathBuf>,
    /// Rounds of each single event.
    #[arg(long, default_value_t = 9, value_parser = clap::value_parser!(usize))]
    repeat: usize,
    /// Launches in the burst (even: spread over two AZs); 0 skips it.
    #[arg(long, default_value_t = 100)]
    burst: usize,
    /// Execution environments of the burst.
    #[arg(long, default_value_t = 10)]
    concurrency: usize,
    /// Milliseconds added to every AWS call in the burst.
    #[arg(long, default_value_t = 25)]
    latency_ms: u64,
    /// Milliseconds added to every AWS call to count a single event's serial round trips.
    #[arg(long, default_value_t = 100)]
    depth_latency_ms: u64,
    /// Launches of the scale run; 0 skips it.
    #[arg(long, default_value_t = 0)]
    scale: usize,
    /// Execution environments of the scale run.
    #[arg(long, default_value_t = 5)]
    scale_concurrency: usize,
    /// Milliseconds added to every AWS call in the scale run.
    #[arg(long, default_value_t = 50)]
    scale_latency_ms: u64,
    /// Groups the scale run's launches are spread over, each with a pool of its own (one: the
    /// hardest case, every launch contending for one pool).
    #[arg(long, default_value_t = 1)]
    scale_groups: usize,
    /// Pool sizes whose one-launch cost is measured (0: skipped).
    #[arg(long, value_delimiter = ',', default_values_t = [10, 100, 1000])]
    pool_sizes: Vec<usize>,
    /// Retry candidates MODE:ATTEMPTS:MAX_BACKOFF_MS measured in the random throttling shape
    /// (the first also runs the scale run); default: pinhook's own settings.
    #[arg(long = "retry", value_parser = throttling::candidate)]
    retries: Vec<pinhook::config::Settings>,
    /// Share of AWS calls throttled at random in the throttling shape (0 skips it).
    #[arg(long, default_value_t = 0.2)]
    throttle_share: f64,
    /// ENI and Elastic IP launches of the throttling shape.
    #[arg(long, value_delimiter = ',', default_values_t = [10, 8])]
    throttle_launches: Vec<usize>,
    /// Rounds of the throttling shape, each with its own random seed, their figures together.
    #[arg(long, default_value_t = 3)]
    throttle_rounds: usize,
    /// Where the JSON report goes (default: bench/bench.json in cargo's target directory).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Where the scale run's picture goes (default: bench/scale.svg in cargo's target
    /// directory).
    #[arg(long)]
    svg: Option<PathBuf>,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let options = Options::parse();
    if std::env::var_os("RUST_LOG").is_some() {
        lambda_runtime::tracing::init_default_subscriber();
    }
    if options.repeat == 0 || options.concurrency == 0 || options.scale_concurrency == 0 {
        eprintln!("bench: --repeat, --concurrency and --scale-concurrency must be at least 1");
        return ExitCode::from(2);
    }
    if options.burst % 2 != 0 {
        eprintln!("bench: --burst must be even: it is spread over two AZs");
        return ExitCode::from(2);
    }
    let target = target_dir();
    let out = options
        .out
        .clone()
        .unwrap_or_else(|| target.join("bench/bench.json"));
    let svg = options
        .svg
        .clone()
        .unwrap_or_else(|| target.join("bench/scale.svg"));
    let binary = options.binary.clone().unwrap_or_else(|| {
        let release = target.join("release/pinhook");
        match release.exists() {
            true => release,
            false => pinhook_binary(),
        }
    });
    let mut report = json!({
        "generated_at": now_epoch(),
        "machine": machine(),
        "binary": file_size(&binary),
        "arm64_zip": file_size(&target.join("lambda/pinhook/bootstrap.zip")),
    });
    let mut failures = Vec::new();

    println!("pinhook bench, against the local emulator\n");
    println!("binary: {}", describe_size(&report["binary"]));
    println!("arm64 zip: {}\n", describe_size(&report["arm64_zip"]));

    let single = single::run(
        &binary,
        options.repeat,
        options.depth_latency_ms,
        &mut failures,
    )
    .await;
    single::print(&single, options.depth_latency_ms);
    report["single"] = Value::Array(single);

    let candidates = match options.retries.is_empty() {
        true => vec![environments::bench_settings()],
        false => options.retries.clone(),
    };
    let pool_sizes: Vec<usize> = options
        .pool_sizes
        .iter()
        .copied()
        .filter(|&n| n > 0)
        .collect();
    if !pool_sizes.is_empty() {
        let cost = launch_cost::run(&pool_sizes, &mut failures).await;
        launch_cost::print(&cost);
        report["launch_cost"] = cost;
    }
    if options.throttle_share > 0.0 {
        let launches = match options.throttle_launches.as_slice() {
            [eni, eip] => (*eni, *eip),
            _ => (10, 8),
        };
        let figures = throttling::run(
            &candidates,
            options.throttle_share,
            launches,
            options.throttle_rounds,
            &mut failures,
        )
        .await;
        throttling::print(&figures);
        report["throttling"] = figures;
    }
    if options.burst > 0 {
        let figures = burst::run(
            options.burst,
            options.concurrency,
            options.latency_ms,
            &mut failures,
        )
        .await;
        burst::print(&figures);
        report["burst"] = figures;
    }
    if options.scale > 0 {
        let shape = scale::Shape {
            launches: options.scale,
            concurrency: options.scale_concurrency,
            latency_ms: options.scale_latency_ms,
            groups: options.scale_groups,
            settings: candidates[0].clone(),
        };
        let figures = scale::run(&shape, &svg, &mut failures).await;
        scale::print(&figures);
        report["scale"] = figures;
    }
    report["failures"] = json!(failures);

    if let Some(dir) = out.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let written = serde_json::to_string_pretty(&report)
        .map_err(|e| e.to_string())
        .and_then(|text| std::fs::write(&out, text).map_err(|e| e.to_string()));
    match written {
        Ok(()) => println!("\nwrote {}", out.display()),
        Err(err) => {
            eprintln!("bench: writing {}: {err}", out.display());
            return ExitCode::FAILURE;
        }
    }
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        for failure in &failures {
            eprintln!("bench: {failure}");
        }
        ExitCode::FAILURE
    }
}

/// Cargo's target directory, wherever it is (`CARGO_TARGET_DIR`, a shared one): this example
/// runs from `<target>/<profile>/examples/`.
fn target_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_path_buf()))
        .unwrap_or_else(|| PathBuf::from("target"))
}

// --------------------------------------------------------------------------------------------
// What the emulator counted, and the census of a run.

pub(crate) fn busy_seconds(world: &World) -> f64 {
    world.emulator.control("GET", "calls", None)["busy_seconds"]
        .as_f64()
        .unwrap_or(0.0)
}

pub(crate) fn call_counts(world: &World) -> BTreeMap<String, u64> {
    world.emulator.call_counts()
}

pub(crate) fn check_census(
    census: &Census,
    launches: usize,
    what: &str,
    failures: &mut Vec<String>,
) {
    if census.pinned != launches || census.abandoned > 0 || census.integrity_errors() > 0 {
        failures.push(format!("{what}: {census:?}"));
    }
}

pub(crate) fn census_json(census: &Census) -> Value {
    json!({
        "pinned": census.pinned,
        "abandoned": census.abandoned,
        "uncompleted": census.uncompleted_actions,
        "double_held": census.double_held_members,
        "multi_held": census.multi_member_instances,
        "completed_twice": census.completed_twice,
        "lease_mismatches": census.lease_mismatches,
    })
}

// --------------------------------------------------------------------------------------------
// Small things.

pub(crate) fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

pub(crate) fn now_epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

pub(crate) fn now_epoch_ms() -> u64 {
    (now_epoch() * 1000.0) as u64
}

fn file_size(path: &Path) -> Value {
    match std::fs::metadata(path) {
        Ok(meta) => json!({"path": path.display().to_string(), "bytes": meta.len()}),
        Err(_) => Value::Null,
    }
}

fn describe_size(value: &Value) -> String {
    match value["bytes"].as_u64() {
        Some(bytes) => format!(
            "{} ({:.1} MB)",
            value["path"].as_str().unwrap_or("-"),
            bytes as f64 / 1_000_000.0
        ),
        None => "not built".into(),
    }
}

fn machine() -> Value {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        });
    json!({"cpus": cpus, "cpu": model, "os": std::env::consts::OS, "arch": std::env::consts::ARCH})
}
