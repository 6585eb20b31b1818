//! Lambda execution environments with a meter on their SDK clients — operations, attempts, the
//! time a call was in flight — and a run of events through them, as Lambda runs a function
//! with a reserved concurrency; the figures of such a run, shared by the burst and the scale run.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_ec2::config::interceptors::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
    FinalizerInterceptorContextRef,
};
use aws_sdk_ec2::config::{ConfigBag, Intercept, RuntimeComponents, SharedInterceptor};
use aws_sdk_ec2::error::BoxError;
use pinhook::Deadline;
use pinhook::config::Settings;
use pinhook_testkit::{App, World};
use serde_json::{Value, json};

use crate::{call_counts, percentile};

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
pub struct Handled {
    /// Seconds from the start of the run to the completion.
    pub done_at: f64,
    wall: Duration,
    aws: Duration,
    attempts: u64,
    operations: u64,
    outcome: String,
}

/// What a run of events through `concurrency` environments did.
#[derive(Debug, Default)]
pub struct Run {
    pub handled: Vec<Handled>,
    /// The wall time of every invocation, redeliveries included.
    pub walls: Vec<Duration>,
    pub redeliveries: usize,
    /// Why invocations were delivered again (the first few).
    redelivered_for: Vec<String>,
    pub failed: Vec<String>,
    pub seconds: f64,
}

/// How a run delivers its events, as Lambda would.
#[derive(Debug, Clone, Copy)]
pub struct Delivery {
    /// Environments handling events at once (the function's reserved concurrency).
    pub concurrency: usize,
    /// The function's timeout: each invocation's deadline.
    pub timeout: Duration,
    /// How many times an invocation that returned an error is delivered again.
    pub retries: usize,
    /// The pause before a redelivery.
    pub redelivery: Duration,
}

/// Delivers every event to `concurrency` environments, each taking the next event when it is
/// free, as Lambda does with a reserved concurrency. An invocation that returns an error is
/// delivered again (after `redelivery`), up to `retries` times, as Lambda's and EventBridge's
/// retries do.
pub async fn deliver(
    world: &World,
    settings: &Settings,
    events: Vec<Value>,
    delivery: Delivery,
) -> Run {
    let Delivery {
        concurrency,
        timeout,
        retries,
        redelivery,
    } = delivery;
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
                let result = app.handle(&event, Deadline::after(timeout)).await;
                let wall = began.elapsed();
                let (ops1, attempts1, busy1) = meter.snapshot();
                match result {
                    Ok(summary) => {
                        run.walls.push(wall);
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
                    Err(err) if tries < retries => {
                        run.walls.push(wall);
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
                        run.walls.push(wall);
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
            total.walls.extend(run.walls);
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
pub fn bench_settings() -> Settings {
    Settings {
        attempt_timeout: Duration::from_secs(10),
        completion_reserve: Duration::from_secs(11),
        metrics_namespace: "pinhook-bench".into(),
        ..Settings::default()
    }
}

/// The figures of a run: times, calls, retries, conflicts, pinhook's own share.
pub fn run_figures(world: &World, run: &Run, calls_before: &BTreeMap<String, u64>) -> Value {
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

pub fn print_run(run: &Value) {
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
