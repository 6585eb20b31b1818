//! Throttling, in the two shapes real accounts meet: random `RequestLimitExceeded` bursts in a
//! short function (a share of calls throttled whatever the rate), measured here for each retry
//! candidate beside the same launches unthrottled; and sustained token-bucket exhaustion across
//! the account, which the scale run measures.

use std::time::Duration;

use pinhook::config::{RetryMode, Settings};
use pinhook_testkit::{Pin, Pinning, World, burst_settings};
use serde_json::{Value, json};

use crate::environments::{Delivery, bench_settings, deliver};
use crate::percentile;

/// The function's timeout in the random shape: a common choice, far below the template's.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// A retry candidate from `MODE:ATTEMPTS:MAX_BACKOFF_MS`, e.g. `standard:8:2000`.
pub fn candidate(text: &str) -> Result<Settings, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let [mode, attempts, backoff] = parts.as_slice() else {
        return Err(format!("{text:?}: expected MODE:ATTEMPTS:MAX_BACKOFF_MS"));
    };
    let retry_mode: RetryMode = mode
        .parse()
        .map_err(|_| format!("{mode:?}: standard or adaptive"))?;
    let max_attempts = attempts.parse().map_err(|e| format!("{attempts:?}: {e}"))?;
    let backoff: u64 = backoff.parse().map_err(|e| format!("{backoff:?}: {e}"))?;
    Ok(Settings {
        retry_mode,
        max_attempts,
        max_backoff: Duration::from_millis(backoff),
        ..bench_settings()
    })
}

/// A candidate's name, as given.
pub fn describe(settings: &Settings) -> String {
    format!(
        "{}:{}:{}",
        settings.retry_mode,
        settings.max_attempts,
        settings.max_backoff.as_millis()
    )
}

/// The random shape for each candidate: `eni` ENI and `eip` Elastic IP launches, each its own
/// invocation with a 30 s deadline and Lambda's two retries, `share` of every AWS call
/// throttled with the service's own code, beside the same launches unthrottled.
pub async fn run(
    candidates: &[Settings],
    share: f64,
    launches: (usize, usize),
    rounds: usize,
    failures: &mut Vec<String>,
) -> Value {
    let mut rows = Vec::new();
    for settings in candidates {
        let calm = shape(settings, 0.0, launches, rounds, failures).await;
        let throttled = shape(settings, share, launches, rounds, failures).await;
        rows.push(json!({
            "retry": describe(settings),
            "unthrottled": calm,
            "throttled": throttled,
        }));
    }
    json!({
        "share": share,
        "timeout_seconds": TIMEOUT.as_secs(),
        "lambda_retries": 2,
        "eni_launches": launches.0,
        "eip_launches": launches.1,
        "rounds": rounds,
        "candidates": rows,
    })
}

/// `rounds` runs of the shape (each with its own random seed), their figures together.
async fn shape(
    settings: &Settings,
    share: f64,
    launches: (usize, usize),
    rounds: usize,
    failures: &mut Vec<String>,
) -> Value {
    let mut walls = Vec::new();
    let (mut pinned, mut abandoned, mut redeliveries, mut failed, mut throttled) = (0, 0, 0, 0, 0);
    for round in 0..rounds.max(1) {
        let one = round_of(settings, share, launches, round as u64, failures).await;
        pinned += one.pinned;
        abandoned += one.abandoned;
        redeliveries += one.run.redeliveries;
        failed += one.run.failed.len();
        throttled += one.throttled;
        walls.extend(one.run.walls.iter().map(|w| w.as_secs_f64() * 1000.0));
    }
    json!({
        "launches": (launches.0 + launches.1) * rounds.max(1),
        "pinned": pinned,
        "abandoned": abandoned,
        "redeliveries": redeliveries,
        "failed_for_good": failed,
        "throttled": throttled,
        "invocation_ms": {"p50": percentile(&walls, 50.0), "p99": percentile(&walls, 99.0)},
    })
}

/// What one round did.
struct Round {
    run: crate::environments::Run,
    pinned: usize,
    abandoned: usize,
    throttled: u64,
}

/// One round of the shape, on an emulator of its own with 25 ms on every AWS call.
async fn round_of(
    settings: &Settings,
    share: f64,
    (eni, eip): (usize, usize),
    seed: u64,
    failures: &mut Vec<String>,
) -> Round {
    let world = World::dedicated_real_time(burst_settings()).await;
    world
        .emulator
        .settings(json!({"attach_delay": 0.0, "detach_delay": 0.0}));
    let net = world.network().await;
    let mut events = Vec::new();
    let mut groups = Vec::new();
    for (pin, launches) in [(Pin::Eni, eni), (Pin::Eip, eip)] {
        let pinning = world
            .pinning(&net, pin, launches + 2, launches as i32)
            .await;
        let Pinning { group, pool, .. } = pinning;
        world.scale(&group, launches as i32).await;
        events.extend(world.emulator.pending_events(&group.name));
        groups.push((group, pool, pin, launches));
    }
    world.emulator.settings(json!({"latency": 0.025}));
    world.emulator.control(
        "POST",
        "rate-limits",
        Some(&json!({"enabled": false, "random": share, "random_seed": seed})),
    );
    let delivery = Delivery {
        concurrency: 6,
        timeout: TIMEOUT,
        retries: 2,
        redelivery: Duration::from_millis(500),
    };
    let run = deliver(&world, settings, events, delivery).await;
    let limits = world.emulator.control("GET", "rate-limits", None);
    world
        .emulator
        .control("POST", "rate-limits", Some(&json!({"random": 0.0})));
    world.emulator.settings(json!({"latency": 0.0}));
    let (mut pinned, mut abandoned) = (0, 0);
    for (group, pool, pin, launches) in &groups {
        let census = world.census(group, pool, *pin).await;
        pinned += census.pinned;
        abandoned += census.abandoned;
        if census.pinned != *launches || census.integrity_errors() > 0 {
            failures.push(format!(
                "throttling ({}, {share}): {pin}: {census:?}",
                describe(settings)
            ));
        }
    }
    world.emulator.stop();
    Round {
        run,
        pinned,
        abandoned,
        throttled: limits["random_throttled_total"].as_u64().unwrap_or(0),
    }
}

pub fn print(throttling: &Value) {
    println!(
        "throttling, random shape: {} ENI and {} EIP launches ({} rounds), {:.0} % of AWS calls throttled at random, a {} s deadline, Lambda's {} retries",
        throttling["eni_launches"],
        throttling["eip_launches"],
        throttling["rounds"],
        throttling["share"].as_f64().unwrap_or(0.0) * 100.0,
        throttling["timeout_seconds"],
        throttling["lambda_retries"],
    );
    let mut table = comfy_table::Table::new();
    table
        .load_preset(comfy_table::presets::NOTHING)
        .set_header([
            "retries",
            "pinned",
            "abandoned",
            "redeliveries",
            "throttled",
            "p50 ms",
            "p99 ms",
            "calm p50 ms",
            "calm p99 ms",
            "p50 ratio",
        ]);
    let ms = |v: &Value| format!("{:.0}", v.as_f64().unwrap_or(0.0));
    for row in throttling["candidates"].as_array().into_iter().flatten() {
        let (hot, calm) = (&row["throttled"], &row["unthrottled"]);
        let ratio = hot["invocation_ms"]["p50"].as_f64().unwrap_or(0.0)
            / calm["invocation_ms"]["p50"]
                .as_f64()
                .unwrap_or(1.0)
                .max(1.0);
        table.add_row(vec![
            row["retry"].as_str().unwrap_or("-").to_owned(),
            format!("{}/{}", hot["pinned"], hot["launches"]),
            hot["abandoned"].to_string(),
            hot["redeliveries"].to_string(),
            hot["throttled"].to_string(),
            ms(&hot["invocation_ms"]["p50"]),
            ms(&hot["invocation_ms"]["p99"]),
            ms(&calm["invocation_ms"]["p50"]),
            ms(&calm["invocation_ms"]["p99"]),
            format!("{ratio:.2}×"),
        ]);
    }
    println!("{table}\n");
}
