//! What one ENI launch costs against pools of growing size: its AWS calls, the bytes it reads
//! and its serial round trips, which stay flat — a launch reads the first page of the pool's
//! free members and the instance's own, never the whole pool.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use pinhook_testkit::{
    GroupSpec, POOL_TAG, Pin, World, burst_settings, eni_metadata, join_all, unique,
};
use serde_json::{Value, json};

use crate::call_counts;

/// Milliseconds added to every AWS call to count the round trips.
const LATENCY_MS: u64 = 100;

pub async fn run(sizes: &[usize], failures: &mut Vec<String>) -> Value {
    let mut rows = Vec::new();
    for &size in sizes {
        match one(size).await {
            Ok(row) => rows.push(row),
            Err(err) => failures.push(format!("launch cost, pool of {size}: {err}")),
        }
    }
    Value::Array(rows)
}

async fn one(size: usize) -> Result<Value, String> {
    let world = World::dedicated_real_time(burst_settings()).await;
    world
        .emulator
        .settings(json!({"attach_delay": 0.0, "detach_delay": 0.0}));
    let net = world.network().await;
    let pool = unique("cost");
    let tags = [(POOL_TAG, pool.as_str()), ("Name", pool.as_str())];
    for chunk in (0..size).collect::<Vec<_>>().chunks(50) {
        join_all(chunk.iter().map(|_| world.eni(&net.subnet_a, &tags))).await;
    }
    let spec = GroupSpec::pinning(
        vec![net.subnet_a.clone()],
        eni_metadata(&pool, json!({})),
        2,
    );
    let group = world.group(spec).await;

    // The first launch: its calls, and the bytes of AWS's answers to them.
    world.scale(&group, 1).await;
    let first = world.emulator.pending_events(&group.name).remove(0);
    let (calls_before, bytes_before) = (call_counts(&world), bytes(&world));
    let started = Instant::now();
    let summary = world.deliver(&first).await;
    let plain = started.elapsed();
    if summary.member.is_none() {
        return Err(format!("not pinned: {summary:?}"));
    }
    let calls_after = call_counts(&world);
    let calls: BTreeMap<String, u64> = calls_after
        .iter()
        .map(|(op, n)| (op.clone(), n - calls_before.get(op).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect();
    let read = bytes(&world) - bytes_before;

    // The second: its wall time with a fixed latency on every call, over that latency.
    world.scale(&group, 2).await;
    let second = world
        .emulator
        .pending_events(&group.name)
        .into_iter()
        .find(|e| e["detail"]["EC2InstanceId"] != first["detail"]["EC2InstanceId"])
        .ok_or("no second launch")?;
    world
        .emulator
        .settings(json!({"latency": LATENCY_MS as f64 / 1000.0}));
    let started = Instant::now();
    let summary = world.deliver(&second).await;
    let wall = started.elapsed();
    world.emulator.settings(json!({"latency": 0.0}));
    world.emulator.stop();
    if summary.member.is_none() {
        return Err(format!("not pinned: {summary:?}"));
    }
    // The latency's share of the wall time, as the single events count it: what the local
    // work (pinhook's and the emulator's) takes is the same in both launches.
    let round_trips = (wall.saturating_sub(plain).as_secs_f64()
        / Duration::from_millis(LATENCY_MS).as_secs_f64())
    .round() as u64;
    Ok(json!({
        "pin": Pin::Eni.to_string(),
        "pool_members": size,
        "calls": calls.values().sum::<u64>(),
        "calls_by_operation": calls,
        "bytes_read": read,
        "serial_round_trips": round_trips,
    }))
}

/// Bytes of AWS's answers the emulator has served.
fn bytes(world: &World) -> u64 {
    world.emulator.calls()["bytes"].as_u64().unwrap_or(0)
}

pub fn print(rows: &Value) {
    println!(
        "one ENI launch against pools of growing size (the launch reads what it needs, not the pool)"
    );
    let mut table = comfy_table::Table::new();
    table
        .load_preset(comfy_table::presets::NOTHING)
        .set_header([
            "pool members",
            "calls",
            "bytes read",
            "round trips",
            "calls by operation",
        ]);
    for row in rows.as_array().into_iter().flatten() {
        let by_op: Vec<String> = row["calls_by_operation"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(op, n)| format!("{op} {n}"))
            .collect();
        table.add_row(vec![
            row["pool_members"].to_string(),
            row["calls"].to_string(),
            row["bytes_read"].to_string(),
            row["serial_round_trips"].to_string(),
            by_op.join(", "),
        ]);
    }
    println!("{table}\n");
}
