//! `make bench`: what pinhook costs, measured against the local emulator and printed as a table,
//! with the same figures in `target/bench/bench.json`.
//!
//! - Cold single events: the pinhook binary started as Lambda starts it, against a Lambda
//!   runtime API served here, from exec to the response that follows the completed lifecycle
//!   action: wall time, peak RSS, the AWS calls by operation against their floor, and the serial
//!   round trips (the wall time again with a fixed latency added to every AWS call).
//! - A burst: N launches delivered at once to C execution environments (the real handler, each
//!   environment with its own SDK clients): time to the last completion, time-to-pin
//!   percentiles, calls, throttles, conflicts, and pinhook's own share of the wall time (what is
//!   left once every moment an AWS call was in flight is taken out).
//! - A scale run (`--scale N`): N launches into several groups over three AZs (each group with a
//!   pool of its own) under AWS's rate limits, with the time
//!   the limits alone allow for the calls made, and a picture (`target/bench/scale.svg`).
//! - The sizes of the release binary and of the arm64 zip, when built.
//!
//! Options: `--binary PATH --repeat 9 --burst 100 --concurrency 10 --latency-ms 25
//! --depth-latency-ms 100 --scale 0 --scale-concurrency 5 --scale-latency-ms 50 --scale-groups 10 --out PATH
//! --svg PATH`. Nothing here is a pass/fail timing: the figures are printed, and the run fails
//! only when pinhook did not do its job (an action not completed, a member held twice).

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_ec2::config::interceptors::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
    FinalizerInterceptorContextRef,
};
use aws_sdk_ec2::config::{ConfigBag, Intercept, RuntimeComponents, SharedInterceptor};
use aws_sdk_ec2::error::BoxError;
use pinhook::Deadline;
use pinhook::config::Settings;
use serde_json::{Value, json};
use support::{AZ_A, App, GroupSpec, REGION, World, hook_metadata, repo_root, unique};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

struct Options {
    binary: Option<PathBuf>,
    repeat: usize,
    burst: usize,
    concurrency: usize,
    latency_ms: u64,
    depth_latency_ms: u64,
    scale: usize,
    scale_concurrency: usize,
    scale_latency_ms: u64,
    scale_groups: usize,
    out: PathBuf,
    svg: PathBuf,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        binary: None,
        repeat: 9,
        burst: 100,
        concurrency: 10,
        latency_ms: 25,
        depth_latency_ms: 100,
        scale: 0,
        scale_concurrency: 5,
        scale_latency_ms: 50,
        scale_groups: 10,
        out: repo_root().join("target/bench/bench.json"),
        svg: repo_root().join("target/bench/scale.svg"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--binary" => options.binary = Some(PathBuf::from(&value)),
            "--repeat" => options.repeat = value.parse().map_err(|e| bad(&e))?,
            "--burst" => options.burst = value.parse().map_err(|e| bad(&e))?,
            "--concurrency" => options.concurrency = value.parse().map_err(|e| bad(&e))?,
            "--latency-ms" => options.latency_ms = value.parse().map_err(|e| bad(&e))?,
            "--depth-latency-ms" => {
                options.depth_latency_ms = value.parse().map_err(|e| bad(&e))?
            }
            "--scale" => options.scale = value.parse().map_err(|e| bad(&e))?,
            "--scale-concurrency" => {
                options.scale_concurrency = value.parse().map_err(|e| bad(&e))?
            }
            "--scale-latency-ms" => {
                options.scale_latency_ms = value.parse().map_err(|e| bad(&e))?
            }
            "--scale-groups" => options.scale_groups = value.parse().map_err(|e| bad(&e))?,
            "--out" => options.out = PathBuf::from(&value),
            "--svg" => options.svg = PathBuf::from(&value),
            other => {
                return Err(format!(
                    "unknown option {other}; see the top of examples/bench.rs"
                ));
            }
        }
    }
    if options.repeat == 0 || options.concurrency == 0 || options.scale_concurrency == 0 {
        return Err("--repeat, --concurrency and --scale-concurrency must be at least 1".into());
    }
    if options.burst % 2 != 0 {
        return Err("--burst must be even: it is spread over two AZs".into());
    }
    Ok(options)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let options = match options() {
        Ok(options) => options,
        Err(problem) => {
            eprintln!("bench: {problem}");
            return ExitCode::from(2);
        }
    };
    let binary = options.binary.clone().unwrap_or_else(default_binary);
    let mut report = json!({
        "generated_at": now_epoch(),
        "machine": machine(),
        "binary": file_size(&binary),
        "arm64_zip": file_size(&repo_root().join("target/lambda/pinhook/bootstrap.zip")),
    });
    let mut failures = Vec::new();

    println!("pinhook bench, against the local emulator\n");
    println!("binary: {}", describe_size(&report["binary"]));
    println!("arm64 zip: {}\n", describe_size(&report["arm64_zip"]));

    let single = single_events(&binary, &options, &mut failures).await;
    print_single(&single, options.depth_latency_ms);
    report["single"] = Value::Array(single);

    if options.burst > 0 {
        let burst = burst(&options, &mut failures).await;
        print_burst(&burst);
        report["burst"] = burst;
    }
    if options.scale > 0 {
        let scale = scale(&options, &mut failures).await;
        print_scale(&scale);
        report["scale"] = scale;
    }
    report["failures"] = json!(failures);

    if let Some(dir) = options.out.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let written = serde_json::to_string_pretty(&report)
        .map_err(|e| e.to_string())
        .and_then(|text| std::fs::write(&options.out, text).map_err(|e| e.to_string()));
    match written {
        Ok(()) => println!("\nwrote {}", options.out.display()),
        Err(err) => {
            eprintln!("bench: writing {}: {err}", options.out.display());
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

// --------------------------------------------------------------------------------------------
// Cold single events, through a Lambda runtime API served here.

/// The fewest AWS calls each event can take, by operation (see the README's "Benchmarks").
fn floor(pin: &str, transition: &str) -> BTreeMap<&'static str, u64> {
    let mut floor = BTreeMap::new();
    floor.insert("DescribeAutoScalingInstances", 1);
    floor.insert("CompleteLifecycleAction", 1);
    match (pin, transition) {
        ("eni", "launch") => {
            // the pool read (which also answers idempotency), and the read that sees `attached`
            floor.insert("DescribeNetworkInterfaces", 2);
            floor.insert("AttachNetworkInterface", 1);
            floor.insert("CreateTags", 2);
        }
        ("eip", "launch") => {
            floor.insert("DescribeAddresses", 1);
            floor.insert("AssociateAddress", 1);
            floor.insert("CreateTags", 2);
        }
        ("eni", _) => {
            // the pool read, and the read that sees `available`
            floor.insert("DescribeNetworkInterfaces", 2);
            floor.insert("DetachNetworkInterface", 1);
            floor.insert("DeleteTags", 1);
        }
        _ => {
            floor.insert("DescribeAddresses", 1);
            floor.insert("DisassociateAddress", 1);
            floor.insert("DeleteTags", 1);
        }
    }
    floor
}

async fn single_events(binary: &Path, options: &Options, failures: &mut Vec<String>) -> Vec<Value> {
    let world = World::dedicated().await;
    // EC2's own attach and detach times are not pinhook's: they are taken out here.
    world
        .emulator
        .settings(json!({"attach_delay": 0.0, "detach_delay": 0.0}));
    let net = world.network().await;
    let mut rows = Vec::new();
    for pin in ["eni", "eip"] {
        let pool = unique(&format!("bench-{pin}"));
        if pin == "eni" {
            world.eni_pool(&net, &pool, AZ_A, 2).await;
        } else {
            world.eip_pool(&pool, 2).await;
        }
        let metadata = hook_metadata(pin, &pool, json!({}));
        let group = world
            .group(GroupSpec {
                subnets: vec![net.subnet_a.clone()],
                launch_metadata: Some(metadata.clone()),
                terminate_metadata: Some(metadata),
                extra_terminate_hook: false,
                max_size: 2,
            })
            .await;
        let mut samples: BTreeMap<(&str, bool), Vec<Cold>> = BTreeMap::new();
        let mut calls: BTreeMap<&str, BTreeMap<String, u64>> = BTreeMap::new();
        // Each round launches one instance and terminates it: first with no added latency (the
        // timing and memory), then once with a fixed latency on every AWS call (the serial
        // round trips).
        for round in 0..=options.repeat {
            let delayed = round == options.repeat;
            let latency = if delayed {
                options.depth_latency_ms as f64 / 1000.0
            } else {
                0.0
            };
            for (transition, capacity) in [("launch", 1), ("terminate", 0)] {
                world.emulator.settings(json!({"latency": 0.0}));
                world.scale(&group, capacity).await;
                let Some(event) = world
                    .emulator
                    .pending_events(&group.name)
                    .into_iter()
                    .next()
                else {
                    failures.push(format!("{pin} {transition}: no pending lifecycle action"));
                    continue;
                };
                world.emulator.settings(json!({"latency": latency}));
                let before = call_counts(&world);
                let busy_before = busy_seconds(&world);
                let cold = match cold_event(binary, &world.emulator.url, &event).await {
                    Ok(cold) => cold,
                    Err(err) => {
                        failures.push(format!("{pin} {transition}: {err}"));
                        continue;
                    }
                };
                let after = call_counts(&world);
                let mut cold = cold;
                cold.emulator_ms = (busy_seconds(&world) - busy_before) * 1000.0;
                let outcome = cold.summary["outcome"].as_str().unwrap_or("-");
                if outcome != "CONTINUE" {
                    failures.push(format!(
                        "{pin} {transition}: outcome {outcome}, expected CONTINUE: {}",
                        cold.summary
                    ));
                }
                if !delayed {
                    let by_operation = calls.entry(transition).or_default();
                    for (operation, count) in &after {
                        let made = count - before.get(operation).copied().unwrap_or(0);
                        if made > 0 {
                            *by_operation.entry(operation.clone()).or_default() += made;
                        }
                    }
                }
                samples.entry((transition, delayed)).or_default().push(cold);
            }
        }
        world.emulator.settings(json!({"latency": 0.0}));
        for transition in ["launch", "terminate"] {
            let plain = samples.remove(&(transition, false)).unwrap_or_default();
            let delayed = samples.remove(&(transition, true)).unwrap_or_default();
            let walls: Vec<f64> = plain.iter().map(|c| c.wall_ms).collect();
            let median = percentile(&walls, 50.0);
            let served: Vec<f64> = plain.iter().map(|c| c.emulator_ms).collect();
            let own: Vec<f64> = plain.iter().map(|c| c.wall_ms - c.emulator_ms).collect();
            let delayed_ms = delayed.first().map(|c| c.wall_ms);
            let round_trips = delayed_ms.map(|d| {
                ((d - median) / options.depth_latency_ms as f64)
                    .round()
                    .max(0.0) as u64
            });
            let by_operation: BTreeMap<String, f64> = calls
                .get(transition)
                .map(|ops| {
                    ops.iter()
                        .map(|(op, n)| (op.clone(), *n as f64 / plain.len().max(1) as f64))
                        .collect()
                })
                .unwrap_or_default();
            let floor = floor(pin, transition);
            rows.push(json!({
                "pin": pin,
                "transition": transition,
                "runs": plain.len(),
                "wall_ms": {
                    "median": median,
                    "min": walls.iter().copied().fold(f64::INFINITY, f64::min),
                    "max": walls.iter().copied().fold(0.0, f64::max),
                },
                "emulator_ms": {"median": percentile(&served, 50.0)},
                "wall_less_emulator_ms": {"median": percentile(&own, 50.0)},
                "peak_rss_kib": plain.iter().filter_map(|c| c.peak_rss_kib).max(),
                "calls": by_operation.values().sum::<f64>(),
                "calls_by_operation": by_operation,
                "floor": floor.values().sum::<u64>(),
                "floor_by_operation": floor,
                "added_latency_ms": options.depth_latency_ms,
                "wall_ms_with_latency": delayed_ms,
                "serial_round_trips": round_trips,
            }));
        }
    }
    world.emulator.stop();
    rows
}

fn busy_seconds(world: &World) -> f64 {
    world.emulator.control("GET", "calls", None)["busy_seconds"]
        .as_f64()
        .unwrap_or(0.0)
}

fn call_counts(world: &World) -> BTreeMap<String, u64> {
    let calls = world.emulator.control("GET", "calls", None);
    calls["calls"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default()
}

/// One cold invocation: how long from exec to the function's response, and its peak memory.
struct Cold {
    wall_ms: f64,
    /// The time the emulator spent serving the event's calls: its share of `wall_ms`.
    emulator_ms: f64,
    peak_rss_kib: Option<u64>,
    summary: Value,
}

/// Starts the binary as Lambda does, against a runtime API that hands it `event` once, and
/// stops it once it has answered.
async fn cold_event(binary: &Path, endpoint: &str, event: &Value) -> Result<Cold, String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("binding the runtime API: {e}"))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let (answered, mut answer) = tokio::sync::mpsc::unbounded_channel::<(bool, Value)>();
    let body = serde_json::to_vec(event).map_err(|e| e.to_string())?;
    let handed = Arc::new(AtomicBool::new(false));
    let server = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (answered, body, handed) = (answered.clone(), body.clone(), handed.clone());
            tokio::spawn(async move {
                let _ = runtime_api(stream, body, handed, answered).await;
            });
        }
    });
    let started = Instant::now();
    let child = tokio::process::Command::new(binary)
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "pinhook")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/pinhook")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_ENDPOINT_URL", endpoint)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn();
    let mut child = child.map_err(|e| format!("starting {}: {e}", binary.display()))?;
    let pid = child.id();
    let answered = tokio::time::timeout(Duration::from_secs(120), answer.recv()).await;
    let wall_ms = started.elapsed().as_secs_f64() * 1000.0;
    let peak_rss_kib = pid.and_then(peak_rss);
    let _ = child.kill().await;
    server.abort();
    match answered {
        Ok(Some((true, summary))) => Ok(Cold {
            wall_ms,
            emulator_ms: 0.0,
            peak_rss_kib,
            summary,
        }),
        Ok(Some((false, error))) => Err(format!("the function answered an error: {error}")),
        _ => Err("the function did not answer within 120 s".into()),
    }
}

/// The Lambda runtime API, as far as one invocation needs it: the event on the first
/// `next`, nothing on later ones; the response or error reported back.
async fn runtime_api(
    mut stream: TcpStream,
    event: Vec<u8>,
    handed: Arc<AtomicBool>,
    answered: tokio::sync::mpsc::UnboundedSender<(bool, Value)>,
) -> std::io::Result<()> {
    let mut buffer = Vec::new();
    loop {
        let Some((method, path, body)) = read_request(&mut stream, &mut buffer).await? else {
            return Ok(());
        };
        if method == "GET" && path.ends_with("/runtime/invocation/next") {
            if handed.swap(true, Ordering::SeqCst) {
                // One invocation only: the function waits here until it is stopped.
                std::future::pending::<()>().await;
            }
            let deadline = now_epoch_ms() + 300_000;
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Lambda-Runtime-Aws-Request-Id: bench-request\r\nLambda-Runtime-Deadline-Ms: {deadline}\r\n\
                 Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:{REGION}:123456789012:function:pinhook\r\n\
                 Lambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000;Sampled=0\r\n\r\n",
                event.len()
            );
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(&event).await?;
        } else if method == "POST" {
            let reply = b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{\"status\":\"OK\"}\n";
            stream.write_all(reply).await?;
            let value = serde_json::from_slice(&body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
            let _ = answered.send((path.ends_with("/response"), value));
        } else {
            stream
                .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                .await?;
        }
    }
}

/// One HTTP/1.1 request: method, path and body (by Content-Length, or chunked).
async fn read_request(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
) -> std::io::Result<Option<(String, String, Vec<u8>)>> {
    let head_end = loop {
        if let Some(at) = find(buffer, b"\r\n\r\n") {
            break at;
        }
        if !fill(stream, buffer).await? {
            return Ok(None);
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    buffer.drain(..head_end + 4);
    let mut lines = head.lines();
    let mut first = lines.next().unwrap_or_default().split_whitespace();
    let method = first.next().unwrap_or_default().to_owned();
    let path = first.next().unwrap_or_default().to_owned();
    let header = |name: &str| {
        head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_ascii_lowercase())
        })
    };
    let mut body = Vec::new();
    if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        loop {
            let line_end = loop {
                if let Some(at) = find(buffer, b"\r\n") {
                    break at;
                }
                if !fill(stream, buffer).await? {
                    return Ok(None);
                }
            };
            let size_text = String::from_utf8_lossy(&buffer[..line_end]).into_owned();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
                .unwrap_or(0);
            buffer.drain(..line_end + 2);
            while buffer.len() < size + 2 {
                if !fill(stream, buffer).await? {
                    return Ok(None);
                }
            }
            body.extend_from_slice(&buffer[..size]);
            buffer.drain(..size + 2);
            if size == 0 {
                break;
            }
        }
    } else {
        let length: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buffer.len() < length {
            if !fill(stream, buffer).await? {
                return Ok(None);
            }
        }
        body = buffer.drain(..length).collect();
    }
    Ok(Some((method, path, body)))
}

async fn fill(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> std::io::Result<bool> {
    let mut chunk = [0u8; 8192];
    let read = stream.read(&mut chunk).await?;
    buffer.extend_from_slice(&chunk[..read]);
    Ok(read > 0)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The process's peak resident set (`VmHWM`), in KiB.
fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn print_single(rows: &[Value], latency_ms: u64) {
    println!(
        "cold single events (the binary under a Lambda runtime API, exec to the completed action)"
    );
    println!(
        "{:<5} {:<10} {:>10} {:>10} {:>12} {:>9} {:>7} {:>7} {:>12}",
        "pin",
        "event",
        "wall ms",
        "(min-max)",
        "emulator ms",
        "peak RSS",
        "calls",
        "floor",
        "round trips"
    );
    for row in rows {
        println!(
            "{:<5} {:<10} {:>10.1} {:>10} {:>12.1} {:>6} MB {:>7.1} {:>7} {:>12}",
            row["pin"].as_str().unwrap_or("-"),
            row["transition"].as_str().unwrap_or("-"),
            row["wall_ms"]["median"].as_f64().unwrap_or(0.0),
            format!(
                "{:.0}-{:.0}",
                row["wall_ms"]["min"].as_f64().unwrap_or(0.0),
                row["wall_ms"]["max"].as_f64().unwrap_or(0.0)
            ),
            row["emulator_ms"]["median"].as_f64().unwrap_or(0.0),
            format!(
                "{:.1}",
                row["peak_rss_kib"].as_f64().unwrap_or(0.0) / 1024.0
            ),
            row["calls"].as_f64().unwrap_or(0.0),
            row["floor"],
            row["serial_round_trips"],
        );
    }
    println!(
        "(emulator ms: the time the emulator spent serving the event's calls, part of the wall \
         time; round trips: the extra wall time with {latency_ms} ms added to every AWS call, \
         over {latency_ms} ms)"
    );
    println!("\nAWS calls per event, by operation (floor in brackets)");
    for row in rows {
        let made = row["calls_by_operation"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let floor = row["floor_by_operation"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let mut operations: Vec<&String> = made.keys().chain(floor.keys()).collect();
        operations.sort();
        operations.dedup();
        let cells: Vec<String> = operations
            .iter()
            .map(|op| {
                format!(
                    "{op} {} [{}]",
                    made.get(*op).and_then(Value::as_f64).unwrap_or(0.0),
                    floor.get(*op).and_then(Value::as_u64).unwrap_or(0)
                )
            })
            .collect();
        println!(
            "  {} {}: {}",
            row["pin"].as_str().unwrap_or("-"),
            row["transition"].as_str().unwrap_or("-"),
            cells.join(", ")
        );
    }
    println!();
}

// --------------------------------------------------------------------------------------------
// Execution environments with a meter on their SDK clients.

/// What one environment's SDK clients did: operations, attempts, and the time any call was in
/// flight (concurrent calls counted once).
#[derive(Debug, Default)]
struct Usage {
    operations: u64,
    attempts: u64,
    in_flight: u32,
    busy_since: Option<Instant>,
    busy: Duration,
}

#[derive(Debug, Clone, Default)]
struct Meter(Arc<Mutex<Usage>>);

impl Meter {
    fn snapshot(&self) -> (u64, u64, Duration) {
        let usage = self.0.lock().expect("the meter");
        let open = usage.busy_since.map_or(Duration::ZERO, |s| s.elapsed());
        (usage.operations, usage.attempts, usage.busy + open)
    }
}

impl Intercept for Meter {
    fn name(&self) -> &'static str {
        "bench-meter"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.lock().expect("the meter").operations += 1;
        Ok(())
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let mut usage = self.0.lock().expect("the meter");
        usage.attempts += 1;
        usage.in_flight += 1;
        if usage.in_flight == 1 {
            usage.busy_since = Some(Instant::now());
        }
        Ok(())
    }

    fn read_after_attempt(
        &self,
        _context: &FinalizerInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let mut usage = self.0.lock().expect("the meter");
        usage.in_flight = usage.in_flight.saturating_sub(1);
        if usage.in_flight == 0 {
            if let Some(since) = usage.busy_since.take() {
                usage.busy += since.elapsed();
            }
        }
        Ok(())
    }
}

/// One Lambda execution environment: the real handler with SDK clients of its own (and so its
/// own retry quota and connections), metered.
fn environment(world: &World, settings: &Settings) -> (App, Meter) {
    let meter = Meter::default();
    let interceptor = SharedInterceptor::new(meter.clone());
    (
        world.environment_with(settings.clone(), Some(interceptor)),
        meter,
    )
}

/// One event as an environment handled it.
#[derive(Debug, Clone)]
struct Handled {
    /// Seconds from the start of the run to the completion.
    done_at: f64,
    wall: Duration,
    aws: Duration,
    attempts: u64,
    operations: u64,
    outcome: String,
}

/// What a run of events through `concurrency` environments did.
#[derive(Debug, Default)]
struct Run {
    handled: Vec<Handled>,
    redeliveries: usize,
    /// Why invocations were delivered again (the first few).
    redelivered_for: Vec<String>,
    failed: Vec<String>,
    seconds: f64,
}

/// Delivers every event to `concurrency` environments, each taking the next event when it is
/// free, as Lambda does with a reserved concurrency. An invocation that returns an error is
/// delivered again (after `redelivery`), up to four times, as Lambda's and EventBridge's retries
/// do.
async fn deliver(
    world: &World,
    settings: &Settings,
    events: Vec<Value>,
    concurrency: usize,
    redelivery: Duration,
) -> Run {
    let queue: Arc<Mutex<VecDeque<(Value, usize)>>> =
        Arc::new(Mutex::new(events.into_iter().map(|e| (e, 0)).collect()));
    let outstanding = Arc::new(std::sync::atomic::AtomicUsize::new(
        queue.lock().expect("the queue").len(),
    ));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (app, meter) = environment(world, settings);
        let (queue, outstanding) = (queue.clone(), outstanding.clone());
        workers.spawn(async move {
            let mut run = Run::default();
            while outstanding.load(Ordering::SeqCst) > 0 {
                let next = queue.lock().expect("the queue").pop_front();
                let Some((event, tries)) = next else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                let (ops0, attempts0, busy0) = meter.snapshot();
                let began = Instant::now();
                let result = app
                    .handle(&event, Deadline::after(Duration::from_secs(300)))
                    .await;
                let wall = began.elapsed();
                let (ops1, attempts1, busy1) = meter.snapshot();
                match result {
                    Ok(summary) => {
                        run.handled.push(Handled {
                            done_at: started.elapsed().as_secs_f64(),
                            wall,
                            aws: busy1.saturating_sub(busy0),
                            attempts: attempts1 - attempts0,
                            operations: ops1 - ops0,
                            outcome: serde_json::to_value(summary.outcome)
                                .ok()
                                .and_then(|v| v.as_str().map(str::to_owned))
                                .unwrap_or_default(),
                        });
                        outstanding.fetch_sub(1, Ordering::SeqCst);
                    }
                    Err(err) if tries < 4 => {
                        run.redeliveries += 1;
                        if run.redelivered_for.len() < 5 {
                            run.redelivered_for.push(err.to_string());
                        }
                        let queue = queue.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(redelivery).await;
                            queue
                                .lock()
                                .expect("the queue")
                                .push_back((event, tries + 1));
                        });
                    }
                    Err(err) => {
                        run.failed.push(err.to_string());
                        outstanding.fetch_sub(1, Ordering::SeqCst);
                    }
                }
            }
            run
        });
    }
    let mut total = Run::default();
    while let Some(joined) = workers.join_next().await {
        if let Ok(run) = joined {
            total.handled.extend(run.handled);
            total.redeliveries += run.redeliveries;
            total.redelivered_for.extend(run.redelivered_for);
            total.failed.extend(run.failed);
        }
    }
    total.seconds = started.elapsed().as_secs_f64();
    total
        .handled
        .sort_by(|a, b| a.done_at.total_cmp(&b.done_at));
    total
}

/// Production settings, but for the time one attempt may take: a local emulator serves one
/// request at a time, so under a burst a request may queue for seconds where AWS answers in
/// 50–150 ms, and a timed-out attempt is served all the same.
fn bench_settings() -> Settings {
    Settings {
        attempt_timeout: Duration::from_secs(10),
        completion_reserve: Duration::from_secs(11),
        metrics_namespace: "pinhook-bench".into(),
        ..Settings::default()
    }
}

/// The figures of a run: times, calls, retries, conflicts, pinhook's own share.
fn run_figures(world: &World, run: &Run, calls_before: &BTreeMap<String, u64>) -> Value {
    let after = call_counts(world);
    let calls: BTreeMap<String, u64> = after
        .iter()
        .map(|(op, n)| (op.clone(), n - calls_before.get(op).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect();
    let total_calls: u64 = calls.values().sum();
    let pins: Vec<f64> = run.handled.iter().map(|h| h.done_at * 1000.0).collect();
    let walls: Vec<f64> = run
        .handled
        .iter()
        .map(|h| h.wall.as_secs_f64() * 1000.0)
        .collect();
    let wall_sum: f64 = run.handled.iter().map(|h| h.wall.as_secs_f64()).sum();
    let aws_sum: f64 = run.handled.iter().map(|h| h.aws.as_secs_f64()).sum();
    let attempts: u64 = run.handled.iter().map(|h| h.attempts).sum();
    let operations: u64 = run.handled.iter().map(|h| h.operations).sum();
    let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
    for h in &run.handled {
        *outcomes.entry(h.outcome.clone()).or_default() += 1;
    }
    let conflicts = ["AttachNetworkInterface", "AssociateAddress"]
        .iter()
        .map(|action| {
            world
                .emulator
                .requests(&[("action", action)])
                .iter()
                .filter(|r| {
                    matches!(
                        r["code"].as_str(),
                        Some("InvalidNetworkInterface.InUse" | "Resource.AlreadyAssociated")
                    )
                })
                .count()
        })
        .sum::<usize>();
    let limits = world.emulator.control("GET", "rate-limits", None);
    let served = world.emulator.control("GET", "calls", None);
    let busy = served["busy_seconds"].as_f64().unwrap_or(0.0);
    json!({
        "events": run.handled.len() + run.failed.len(),
        "completed": run.handled.len(),
        "outcomes": outcomes,
        "failed_for_good": run.failed.len(),
        "redeliveries": run.redeliveries,
        "redelivered_for": run.redelivered_for.iter().take(5).collect::<Vec<_>>(),
        "seconds_to_last_completion": run.seconds,
        "time_to_pin_ms": {"p50": percentile(&pins, 50.0), "p99": percentile(&pins, 99.0)},
        "handler_wall_ms": {"p50": percentile(&walls, 50.0), "p99": percentile(&walls, 99.0)},
        "calls": total_calls,
        "calls_per_event": total_calls as f64 / run.handled.len().max(1) as f64,
        "calls_by_operation": calls,
        "sdk_operations": operations,
        "sdk_retries": attempts.saturating_sub(operations),
        "throttles": limits["throttled_total"].as_u64().unwrap_or(0),
        "claim_conflicts": conflicts,
        "pinhook_share": {
            "handler_seconds": wall_sum,
            "aws_in_flight_seconds": aws_sum,
            "own_seconds": (wall_sum - aws_sum).max(0.0),
            "own_fraction": if wall_sum > 0.0 { (wall_sum - aws_sum).max(0.0) / wall_sum } else { 0.0 },
        },
        "emulator_busy_seconds": busy,
        "emulator_busy_seconds_by_action": served["busy_seconds_by_action"].clone(),
    })
}

// --------------------------------------------------------------------------------------------
// The burst.

async fn burst(options: &Options, failures: &mut Vec<String>) -> Value {
    let world = World::dedicated().await;
    world
        .emulator
        .settings(json!({"attach_delay": 0.0, "detach_delay": 0.0}));
    let net = world.network().await;
    let pool = unique("bench-burst");
    world.eni_pool(&net, &pool, AZ_A, options.burst / 2).await;
    world
        .eni_pool(&net, &pool, support::AZ_B, options.burst / 2)
        .await;
    let metadata = hook_metadata("eni", &pool, json!({}));
    let group = world
        .group(GroupSpec {
            subnets: vec![net.subnet_a.clone(), net.subnet_b.clone()],
            launch_metadata: Some(metadata),
            terminate_metadata: None,
            extra_terminate_hook: false,
            max_size: options.burst as i32,
        })
        .await;
    world.scale(&group, options.burst as i32).await;
    let events = world.emulator.pending_events(&group.name);
    world
        .emulator
        .settings(json!({"latency": options.latency_ms as f64 / 1000.0}));
    let busy_before = world.emulator.control("GET", "calls", None)["busy_seconds"]
        .as_f64()
        .unwrap_or(0.0);
    let before = call_counts(&world);
    let run = deliver(
        &world,
        &bench_settings(),
        events,
        options.concurrency,
        Duration::from_secs(1),
    )
    .await;
    let mut figures = run_figures(&world, &run, &before);
    world.emulator.settings(json!({"latency": 0.0}));
    figures["emulator_busy_seconds"] =
        json!(figures["emulator_busy_seconds"].as_f64().unwrap_or(0.0) - busy_before);
    let census = world.census(&group, &pool, "eni").await;
    check_census(&census, options.burst, "burst", failures);
    figures["census"] = census_json(&census);
    figures["pin"] = json!("eni");
    figures["launches"] = json!(options.burst);
    figures["concurrency"] = json!(options.concurrency);
    figures["added_latency_ms"] = json!(options.latency_ms);
    world.emulator.stop();
    figures
}

fn check_census(census: &support::Census, launches: usize, what: &str, failures: &mut Vec<String>) {
    if census.pinned != launches
        || census.abandoned > 0
        || census.uncompleted_actions > 0
        || census.double_held_members > 0
        || census.multi_member_instances > 0
        || census.completed_twice > 0
        || census.lease_mismatches > 0
    {
        failures.push(format!("{what}: {census:?}"));
    }
}

fn census_json(census: &support::Census) -> Value {
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

fn print_burst(burst: &Value) {
    println!(
        "burst: {} ENI launches at once, concurrency {}, {} ms added to every AWS call",
        burst["launches"], burst["concurrency"], burst["added_latency_ms"]
    );
    print_run(burst);
}

fn print_run(run: &Value) {
    let share = &run["pinhook_share"];
    println!(
        "  last completion after {:.1} s; time-to-pin p50 {:.0} ms, p99 {:.0} ms; one invocation p50 {:.0} ms, p99 {:.0} ms",
        run["seconds_to_last_completion"].as_f64().unwrap_or(0.0),
        run["time_to_pin_ms"]["p50"].as_f64().unwrap_or(0.0),
        run["time_to_pin_ms"]["p99"].as_f64().unwrap_or(0.0),
        run["handler_wall_ms"]["p50"].as_f64().unwrap_or(0.0),
        run["handler_wall_ms"]["p99"].as_f64().unwrap_or(0.0),
    );
    println!(
        "  calls {} ({:.2} per launch), SDK retries {}, throttles {}, claim conflicts {}, redeliveries {}",
        run["calls"],
        run["calls_per_event"].as_f64().unwrap_or(0.0),
        run["sdk_retries"],
        run["throttles"],
        run["claim_conflicts"],
        run["redeliveries"],
    );
    println!(
        "  pinhook's own share of the invocations' time: {:.1} % ({:.1} s of {:.1} s; the rest is AWS calls in flight); emulator busy {:.1} s",
        share["own_fraction"].as_f64().unwrap_or(0.0) * 100.0,
        share["own_seconds"].as_f64().unwrap_or(0.0),
        share["handler_seconds"].as_f64().unwrap_or(0.0),
        run["emulator_busy_seconds"].as_f64().unwrap_or(0.0),
    );
    println!("  outcomes {}; census {}\n", run["outcomes"], run["census"]);
}

// --------------------------------------------------------------------------------------------
// The scale run, under AWS's rate limits.

const AZ_C: &str = "us-east-1c";

async fn scale(options: &Options, failures: &mut Vec<String>) -> Value {
    let launches = options.scale;
    let world = World::dedicated().await;
    world
        .emulator
        .settings(json!({"attach_delay": 0.0, "detach_delay": 0.0}));
    let subnets = three_subnets(&world).await;
    // Several groups, each with its own pool over the three AZs, sized to fit: an even share of
    // its launches in each AZ, and one spare.
    let groups = options.scale_groups.clamp(1, launches);
    let mut fleet = Vec::new();
    let mut per_group = Vec::new();
    let mut events = Vec::new();
    let mut members = 0;
    for index in 0..groups {
        let size = launches / groups + usize::from(index < launches % groups);
        let pool = unique("bench-scale");
        let per_zone = size.div_ceil(3) + 1;
        members += per_zone * 3;
        let tags = [(support::POOL_TAG, pool.as_str()), ("Name", pool.as_str())];
        for subnet in &subnets {
            support::join_all((0..per_zone).map(|_| world.eni(subnet, &tags))).await;
        }
        let metadata = hook_metadata("eni", &pool, json!({}));
        let group = world
            .group(GroupSpec {
                subnets: subnets.clone(),
                launch_metadata: Some(metadata.clone()),
                terminate_metadata: None,
                extra_terminate_hook: false,
                max_size: size as i32,
            })
            .await;
        // The last launch waits for the rate limits to let its calls through: the hook must
        // hold it that long (see the README's advice on HookHeartbeatTimeout).
        world
            .asg
            .put_lifecycle_hook()
            .auto_scaling_group_name(&group.name)
            .lifecycle_hook_name(&group.launch_hook)
            .lifecycle_transition("autoscaling:EC2_INSTANCE_LAUNCHING")
            .notification_metadata(metadata)
            .heartbeat_timeout(3600)
            .default_result("ABANDON")
            .send()
            .await
            .expect("the launch hook");
        world.scale(&group, size as i32).await;
        per_group.push(world.emulator.pending_events(&group.name));
        fleet.push((group, pool, size));
    }
    // The groups scale out together: their launches arrive interleaved.
    for round in 0..launches.div_ceil(groups) {
        events.extend(per_group.iter().filter_map(|g| g.get(round).cloned()));
    }
    world.emulator.settings(json!({
        "latency": options.scale_latency_ms as f64 / 1000.0,
    }));
    world
        .emulator
        .control("POST", "rate-limits", Some(&json!({"enabled": true})));
    let before = call_counts(&world);
    let epoch = now_epoch();
    let run = deliver(
        &world,
        &bench_settings(),
        events,
        options.scale_concurrency,
        Duration::from_secs(1),
    )
    .await;
    let mut figures = run_figures(&world, &run, &before);
    let limits = world.emulator.control("GET", "rate-limits", None);
    world
        .emulator
        .control("POST", "rate-limits", Some(&json!({"enabled": false})));
    world.emulator.settings(json!({"latency": 0.0}));
    let mut census = support::Census::default();
    for (group, pool, size) in &fleet {
        let one = world.census(group, pool, "eni").await;
        check_census(&one, *size, &format!("scale run, {}", group.name), failures);
        census += one;
    }

    // What the rate limits alone allow: each bucket's calls, less the bucket's size, at its
    // refill rate; the slowest bucket bounds the run.
    let mut bound = 0.0f64;
    let mut tightest = String::new();
    let mut buckets = Vec::new();
    if let Some(all) = limits["buckets"].as_object() {
        for (name, bucket) in all {
            let allowed = bucket["allowed"].as_f64().unwrap_or(0.0);
            let size = bucket["size"].as_f64().unwrap_or(1.0);
            let refill = bucket["refill_per_second"].as_f64().unwrap_or(1.0);
            let seconds = ((allowed - size) / refill).max(0.0);
            if seconds > bound {
                bound = seconds;
                tightest = name.clone();
            }
            buckets.push((
                name.clone(),
                allowed,
                size,
                refill,
                seconds,
                bucket["throttled"].as_u64().unwrap_or(0),
            ));
        }
    }
    let throttle_times: Vec<f64> = limits["throttle_times"]
        .as_array()
        .map(|all| {
            all.iter()
                .filter_map(|t| t[0].as_f64())
                .map(|t| t - epoch)
                .collect()
        })
        .unwrap_or_default();
    let completions: Vec<f64> = run.handled.iter().map(|h| h.done_at).collect();
    let picture = plot(
        &options.svg,
        &completions,
        &throttle_times,
        &buckets,
        launches,
        options.scale_concurrency,
    );
    if let Err(err) = &picture {
        failures.push(format!("scale run picture: {err}"));
    }
    figures["census"] = census_json(&census);
    figures["pin"] = json!("eni");
    figures["launches"] = json!(launches);
    figures["availability_zones"] = json!(3);
    figures["groups"] = json!(groups);
    figures["pool_members"] = json!(members);
    figures["concurrency"] = json!(options.scale_concurrency);
    figures["added_latency_ms"] = json!(options.scale_latency_ms);
    figures["rate_limit_bound_seconds"] = json!(bound);
    figures["tightest_bucket"] = json!(tightest);
    figures["ratio_to_bound"] = json!(if bound > 0.0 {
        run.seconds / bound
    } else {
        0.0
    });
    figures["buckets"] = buckets
        .iter()
        .map(|(name, allowed, size, refill, seconds, throttled)| {
            (
                name.clone(),
                json!({"calls": allowed, "size": size, "refill_per_second": refill,
                       "seconds_needed": seconds, "throttled": throttled}),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into();
    figures["svg"] = json!(options.svg.display().to_string());
    world.emulator.stop();
    figures
}

/// A VPC with a /20 subnet in each of three AZs: room for a thousand instances and their ENIs.
async fn three_subnets(world: &World) -> Vec<String> {
    let vpc = world
        .ec2
        .create_vpc()
        .cidr_block("10.0.0.0/16")
        .send()
        .await
        .expect("a VPC");
    let vpc = vpc
        .vpc()
        .and_then(|v| v.vpc_id())
        .unwrap_or_default()
        .to_owned();
    let mut subnets = Vec::new();
    for (zone, cidr) in [
        (AZ_A, "10.0.16.0/20"),
        (support::AZ_B, "10.0.32.0/20"),
        (AZ_C, "10.0.48.0/20"),
    ] {
        let subnet = world
            .ec2
            .create_subnet()
            .vpc_id(&vpc)
            .cidr_block(cidr)
            .availability_zone(zone)
            .send()
            .await
            .expect("a subnet");
        subnets.push(
            subnet
                .subnet()
                .and_then(|s| s.subnet_id())
                .unwrap_or_default()
                .to_owned(),
        );
    }
    subnets
}

fn print_scale(scale: &Value) {
    println!(
        "scale run: {} ENI launches into {} groups over {} AZs ({} pool members), concurrency {}, {} ms added to every AWS call, AWS's rate limits on",
        scale["launches"],
        scale["groups"],
        scale["availability_zones"],
        scale["pool_members"],
        scale["concurrency"],
        scale["added_latency_ms"]
    );
    println!(
        "  the rate limits alone allow the calls made in {:.1} s (tightest bucket: {}); the run took {:.1} s: {:.2}× that bound",
        scale["rate_limit_bound_seconds"].as_f64().unwrap_or(0.0),
        scale["tightest_bucket"].as_str().unwrap_or("-"),
        scale["seconds_to_last_completion"].as_f64().unwrap_or(0.0),
        scale["ratio_to_bound"].as_f64().unwrap_or(0.0),
    );
    print_run(scale);
    println!("  picture: {}", scale["svg"].as_str().unwrap_or("-"));
}

/// Completed actions over time, against the line the rate limits allow, throttles marked.
fn plot(
    path: &Path,
    completions: &[f64],
    throttles: &[f64],
    buckets: &[(String, f64, f64, f64, f64, u64)],
    launches: usize,
    concurrency: usize,
) -> Result<(), String> {
    use plotters::prelude::*;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    let end = completions.last().copied().unwrap_or(1.0).max(1.0) * 1.05;
    // The most completions the limits allow by time t: for each bucket, what it lets through by
    // then, over the calls one launch makes of it.
    let allowed = |t: f64| -> f64 {
        buckets
            .iter()
            .filter(|(_, calls, ..)| *calls > 0.0)
            .map(|(_, calls, size, refill, ..)| {
                let per_launch = calls / launches as f64;
                (size + refill * t) / per_launch
            })
            .fold(f64::INFINITY, f64::min)
            .min(launches as f64)
    };
    let root = SVGBackend::new(path, (900, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{launches} launches under AWS's rate limits, concurrency {concurrency}"),
            ("sans-serif", 20),
        )
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..end, 0.0..(launches as f64 * 1.05))
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("seconds since the launches were delivered")
        .y_desc("lifecycle actions completed")
        .draw()
        .map_err(|e| e.to_string())?;
    let steps = 400;
    chart
        .draw_series(LineSeries::new(
            (0..=steps).map(|i| {
                let t = end * i as f64 / steps as f64;
                (t, allowed(t))
            }),
            ShapeStyle::from(&RGBColor(120, 120, 120)).stroke_width(2),
        ))
        .map_err(|e| e.to_string())?
        .label("what the rate limits allow")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RGBColor(120, 120, 120)));
    chart
        .draw_series(LineSeries::new(
            completions
                .iter()
                .enumerate()
                .map(|(i, t)| (*t, (i + 1) as f64)),
            ShapeStyle::from(&BLUE).stroke_width(2),
        ))
        .map_err(|e| e.to_string())?
        .label("completed by pinhook")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    // Each throttle as a tick on the completion curve, where it happened.
    let done_by = |t: f64| completions.partition_point(|c| *c <= t) as f64;
    chart
        .draw_series(
            throttles
                .iter()
                .filter(|t| **t >= 0.0 && **t <= end)
                .map(|t| Circle::new((*t, done_by(*t)), 2, RED.filled())),
        )
        .map_err(|e| e.to_string())?
        .label("a throttled request")
        .legend(|(x, y)| Circle::new((x + 10, y), 3, RED.filled()));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}

// --------------------------------------------------------------------------------------------
// Small things.

fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn now_epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

fn now_epoch_ms() -> u64 {
    (now_epoch() * 1000.0) as u64
}

/// The release binary when it is built, else the one cargo built beside this example.
fn default_binary() -> PathBuf {
    let release = repo_root().join("target/release/pinhook");
    if release.exists() {
        release
    } else {
        support::pinhook_binary()
    }
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
