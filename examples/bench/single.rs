//! Cold single events: the pinhook binary started as Lambda starts it, against a Lambda runtime
//! API served here (tiny_http), from exec to the response that follows the completed lifecycle
//! action; the calls each event made by operation, against their floor; and the serial round
//! trips, from the wall time again with a fixed latency on every AWS call.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pinhook_testkit::{Pin, Pinning, REGION, World, burst_settings, node_tags};
use serde_json::{Value, json};

use crate::{busy_seconds, call_counts, now_epoch_ms, percentile};

/// The fewest AWS calls each event can take, by operation (see docs/benchmarks.md).
fn floor(pin: Pin, transition: &str) -> BTreeMap<&'static str, u64> {
    let mut floor = BTreeMap::new();
    if transition.starts_with("node") || transition == UNTAGGED {
        // The one read of the instance that says whose it is
        floor.insert("DescribeInstances", 1);
    } else {
        floor.insert("DescribeAutoScalingInstances", 1);
        floor.insert("CompleteLifecycleAction", 1);
    }
    match (pin, transition) {
        (_, UNTAGGED) => {}
        (Pin::Eni, "launch" | NODE_RUNNING) => {
            // the first page of the pool's free members and the members attached to the
            // instance (idempotency), side by side; and the read that sees `attached`
            floor.insert("DescribeNetworkInterfaces", 3);
            floor.insert("AttachNetworkInterface", 1);
            floor.insert("CreateTags", 2);
        }
        (Pin::Eip, "launch" | NODE_RUNNING) => {
            floor.insert("DescribeAddresses", 1);
            floor.insert("AssociateAddress", 1);
            floor.insert("CreateTags", 2);
        }
        (Pin::Eni, NODE_TERMINATED) => {
            // the members attached to the instance and those tagged as its, side by side; EC2
            // has detached them with the instance, so only the holder tag goes
            floor.insert("DescribeNetworkInterfaces", 2);
            floor.insert("DeleteTags", 1);
        }
        (Pin::Eip, NODE_TERMINATED) => {
            floor.insert("DescribeAddresses", 1);
            floor.insert("DeleteTags", 1);
        }
        (Pin::Eni, _) => {
            // the members attached to the instance and those tagged as its, side by side; and
            // the read that sees `available`
            floor.insert("DescribeNetworkInterfaces", 3);
            floor.insert("DetachNetworkInterface", 1);
            floor.insert("DeleteTags", 1);
        }
        (Pin::Eip, _) => {
            floor.insert("DescribeAddresses", 1);
            floor.insert("DisassociateAddress", 1);
            floor.insert("DeleteTags", 1);
        }
    }
    floor
}

/// Each event of each kind, cold, `repeat` times, and once more with `depth_latency_ms` added to
/// every AWS call: lifecycle actions of a group, then EC2's state changes of an instance without
/// a group (tagged for the pool) and of one without pinhook's tags.
pub async fn run(
    binary: &Path,
    repeat: usize,
    depth_latency_ms: u64,
    failures: &mut Vec<String>,
) -> Vec<Value> {
    let world = World::dedicated_real_time(burst_settings()).await;
    // EC2's own attach and detach times are not pinhook's: they are taken out here.
    world
        .emulator
        .settings(json!({"attach_delay": 0.0, "detach_delay": 0.0}));
    let net = world.network().await;
    let bench = Bench {
        world: &world,
        binary,
        depth_latency_ms,
    };
    let mut rows = Vec::new();
    for pin in [Pin::Eni, Pin::Eip] {
        let Pinning { group, pool, .. } = world.pinning(&net, pin, 2, 2).await;
        let mut samples = Samples::default();
        // Each round launches one instance and terminates it: first with no added latency (the
        // timing and memory), then once with a fixed latency on every AWS call (the serial
        // round trips).
        for round in 0..=repeat {
            let delayed = round == repeat;
            for (transition, capacity) in [("launch", 1), ("terminate", 0)] {
                world.scale(&group, capacity).await;
                let event = world
                    .emulator
                    .pending_events(&group.name)
                    .into_iter()
                    .next();
                let Some(event) = event else {
                    failures.push(format!("{pin} {transition}: no pending lifecycle action"));
                    continue;
                };
                let what = format!("{pin} {transition}");
                bench
                    .measure(
                        &event,
                        delayed,
                        "CONTINUE",
                        &what,
                        transition,
                        &mut samples,
                        failures,
                    )
                    .await;
            }
        }
        for transition in ["launch", "terminate"] {
            rows.push(samples.row(pin, transition, depth_latency_ms));
        }

        // Instances without a group: a tagged one starts and terminates, an untagged one starts.
        let tags = node_tags(pin, &pool);
        let tags: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut samples = Samples::default();
        for round in 0..=repeat {
            let delayed = round == repeat;
            let node = world.tagged_instance(&net.subnet_a, &tags).await;
            let plain = world.lone_instance(&net.subnet_a).await;
            let running = |instance: &str| state_event(&world, instance, "running");
            let steps = [
                (running(&node), "pinned", NODE_RUNNING),
                (running(&plain), "ignored", UNTAGGED),
            ];
            for (event, outcome, transition) in steps {
                let what = format!("{pin} {transition}");
                let Some(event) = event else {
                    failures.push(format!("{what}: no state-change event"));
                    continue;
                };
                bench
                    .measure(
                        &event,
                        delayed,
                        outcome,
                        &what,
                        transition,
                        &mut samples,
                        failures,
                    )
                    .await;
            }
            world.terminate_in_ec2(&node).await;
            let what = format!("{pin} {NODE_TERMINATED}");
            match state_event(&world, &node, "terminated") {
                Some(event) => {
                    bench
                        .measure(
                            &event,
                            delayed,
                            "released",
                            &what,
                            NODE_TERMINATED,
                            &mut samples,
                            failures,
                        )
                        .await
                }
                None => failures.push(format!("{what}: no state-change event")),
            }
        }
        for transition in [NODE_RUNNING, NODE_TERMINATED, UNTAGGED] {
            rows.push(samples.row(pin, transition, depth_latency_ms));
        }
    }
    world.emulator.stop();
    rows
}

/// The rows of instances without a group.
const NODE_RUNNING: &str = "node running";
const NODE_TERMINATED: &str = "node terminated";
const UNTAGGED: &str = "untagged running";

/// The last state-change event of the instance into this state.
fn state_event(world: &World, instance: &str, state: &str) -> Option<Value> {
    world
        .emulator
        .ec2_events(instance)
        .into_iter()
        .rfind(|e| e["detail"]["state"] == state)
}

/// What the single events run against.
struct Bench<'a> {
    world: &'a World,
    binary: &'a Path,
    depth_latency_ms: u64,
}

impl Bench<'_> {
    /// One cold event, with or without the added latency; its figures and calls kept.
    #[allow(clippy::too_many_arguments)]
    async fn measure(
        &self,
        event: &Value,
        delayed: bool,
        expected: &str,
        what: &str,
        transition: &'static str,
        samples: &mut Samples,
        failures: &mut Vec<String>,
    ) {
        let world = self.world;
        let latency = match delayed {
            true => self.depth_latency_ms as f64 / 1000.0,
            false => 0.0,
        };
        world.emulator.settings(json!({"latency": latency}));
        let before = call_counts(world);
        let busy_before = busy_seconds(world);
        let cold = cold_event(self.binary, &world.emulator.url, event).await;
        let after = call_counts(world);
        let busy = busy_seconds(world) - busy_before;
        world.emulator.settings(json!({"latency": 0.0}));
        let mut cold = match cold {
            Ok(cold) => cold,
            Err(err) => return failures.push(format!("{what}: {err}")),
        };
        cold.emulator_ms = busy * 1000.0;
        let outcome = cold.summary["outcome"].as_str().unwrap_or("-");
        if outcome != expected {
            failures.push(format!(
                "{what}: outcome {outcome}, expected {expected}: {}",
                cold.summary
            ));
        }
        if !delayed {
            let by_operation = samples.calls.entry(transition).or_default();
            for (operation, count) in &after {
                let made = count - before.get(operation).copied().unwrap_or(0);
                if made > 0 {
                    *by_operation.entry(operation.clone()).or_default() += made;
                }
            }
        }
        samples
            .cold
            .entry((transition, delayed))
            .or_default()
            .push(cold);
    }
}

/// The cold runs of each event, and their calls.
#[derive(Default)]
struct Samples {
    cold: BTreeMap<(&'static str, bool), Vec<Cold>>,
    calls: BTreeMap<&'static str, BTreeMap<String, u64>>,
}

impl Samples {
    /// One event's row: its times, memory, calls against their floor, and round trips.
    fn row(&mut self, pin: Pin, transition: &'static str, depth_latency_ms: u64) -> Value {
        let plain = self.cold.remove(&(transition, false)).unwrap_or_default();
        let delayed = self.cold.remove(&(transition, true)).unwrap_or_default();
        let walls: Vec<f64> = plain.iter().map(|c| c.wall_ms).collect();
        let median = percentile(&walls, 50.0);
        let served: Vec<f64> = plain.iter().map(|c| c.emulator_ms).collect();
        let own: Vec<f64> = plain.iter().map(|c| c.wall_ms - c.emulator_ms).collect();
        let delayed_ms = delayed.first().map(|c| c.wall_ms);
        let round_trips =
            delayed_ms.map(|d| ((d - median) / depth_latency_ms as f64).round().max(0.0) as u64);
        let by_operation: BTreeMap<String, f64> = self
            .calls
            .get(transition)
            .map(|ops| {
                ops.iter()
                    .map(|(op, n)| (op.clone(), *n as f64 / plain.len().max(1) as f64))
                    .collect()
            })
            .unwrap_or_default();
        let floor = floor(pin, transition);
        json!({
            "pin": pin.to_string(),
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
            "added_latency_ms": depth_latency_ms,
            "wall_ms_with_latency": delayed_ms,
            "serial_round_trips": round_trips,
        })
    }
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
    let api = RuntimeApi::serve(event)?;
    let started = Instant::now();
    let child = tokio::process::Command::new(binary)
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", api.address())
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
    let answered = tokio::time::timeout(Duration::from_secs(120), api.answer()).await;
    let wall_ms = started.elapsed().as_secs_f64() * 1000.0;
    let peak_rss_kib = pid.and_then(peak_rss);
    let _ = child.kill().await;
    match answered {
        Ok(Some(Ok(summary))) => Ok(Cold {
            wall_ms,
            emulator_ms: 0.0,
            peak_rss_kib,
            summary,
        }),
        Ok(Some(Err(error))) => Err(format!("the function answered an error: {error}")),
        _ => Err("the function did not answer within 120 s".into()),
    }
}

/// The Lambda runtime API, as far as one invocation needs it, on tiny_http: the event on the
/// first `next` (later ones are held, so the function waits there until it is stopped), and
/// the response or error reported back.
struct RuntimeApi {
    server: Arc<tiny_http::Server>,
    answer: tokio::sync::oneshot::Receiver<Result<Value, Value>>,
}

impl RuntimeApi {
    fn serve(event: &Value) -> Result<Self, String> {
        let server = tiny_http::Server::http("127.0.0.1:0")
            .map_err(|e| format!("binding the runtime API: {e}"))?;
        let server = Arc::new(server);
        let (answered, answer) = tokio::sync::oneshot::channel();
        let body = serde_json::to_vec(event).map_err(|e| e.to_string())?;
        let serving = server.clone();
        std::thread::spawn(move || {
            let mut answered = Some(answered);
            let mut handed = false;
            // Later `next` requests are held, unanswered, so the function waits there.
            let mut held = Vec::new();
            for mut request in serving.incoming_requests() {
                let url = request.url().to_owned();
                if url.ends_with("/runtime/invocation/next") {
                    if handed {
                        held.push(request);
                        continue;
                    }
                    handed = true;
                    let deadline = (now_epoch_ms() + 300_000).to_string();
                    let headers = [
                        ("Content-Type", "application/json".to_owned()),
                        ("Lambda-Runtime-Aws-Request-Id", "bench-request".to_owned()),
                        ("Lambda-Runtime-Deadline-Ms", deadline),
                        (
                            "Lambda-Runtime-Invoked-Function-Arn",
                            format!("arn:aws:lambda:{REGION}:123456789012:function:pinhook"),
                        ),
                    ];
                    let mut response = tiny_http::Response::from_data(body.clone());
                    for (name, value) in headers {
                        if let Ok(header) = tiny_http::Header::from_bytes(name, value) {
                            response.add_header(header);
                        }
                    }
                    let _ = request.respond(response);
                } else if request.method() == &tiny_http::Method::Post {
                    let mut text = String::new();
                    let _ = request.as_reader().read_to_string(&mut text);
                    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
                    let _ = request.respond(
                        tiny_http::Response::from_string("{\"status\":\"OK\"}")
                            .with_status_code(202),
                    );
                    if let Some(answered) = answered.take() {
                        let _ = answered.send(match url.ends_with("/response") {
                            true => Ok(value),
                            false => Err(value),
                        });
                    }
                } else {
                    let _ = request.respond(tiny_http::Response::empty(404));
                }
            }
        });
        Ok(Self { server, answer })
    }

    fn address(&self) -> String {
        self.server.server_addr().to_string()
    }

    /// The function's answer: `Ok` its response, `Err` the error it reported.
    async fn answer(self) -> Option<Result<Value, Value>> {
        let answer = self.answer.await.ok();
        self.server.unblock();
        answer
    }
}

/// The process's peak resident set (`VmHWM`), in KiB.
fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

pub fn print(rows: &[Value], latency_ms: u64) {
    println!(
        "cold single events (the binary under a Lambda runtime API, exec to the completed action)"
    );
    println!(
        "{:<5} {:<16} {:>10} {:>10} {:>12} {:>9} {:>7} {:>7} {:>12}",
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
            "{:<5} {:<16} {:>10.1} {:>10} {:>12.1} {:>6} MB {:>7.1} {:>7} {:>12}",
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
