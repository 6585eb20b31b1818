//! The burst: N ENI launches at once, delivered to C execution environments.

use std::time::Duration;

use pinhook_testkit::{AZ_A, AZ_B, GroupSpec, Pin, World, burst_settings, hook_metadata, unique};
use serde_json::{Value, json};

use crate::environments::{Delivery, bench_settings, deliver, print_run, run_figures};
use crate::{busy_seconds, call_counts, census_json, check_census};

/// `launches` ENI launches at once through `concurrency` environments, `latency_ms` added to
/// every AWS call.
pub async fn run(
    launches: usize,
    concurrency: usize,
    latency_ms: u64,
    failures: &mut Vec<String>,
) -> Value {
    let world = World::dedicated_real_time(burst_settings()).await;
    world
        .emulator
        .settings(json!({"attach_delay": 0.0, "detach_delay": 0.0}));
    let net = world.network().await;
    let pool = unique("bench-burst");
    world.eni_pool(&net, &pool, AZ_A, launches / 2).await;
    world.eni_pool(&net, &pool, AZ_B, launches / 2).await;
    let metadata = hook_metadata(Pin::Eni, &pool, json!({}));
    let spec = GroupSpec {
        terminate_metadata: None,
        ..GroupSpec::pinning(net.subnets(), metadata, launches as i32)
    };
    let group = world.group(spec).await;
    world.scale(&group, launches as i32).await;
    let events = world.emulator.pending_events(&group.name);
    world
        .emulator
        .settings(json!({"latency": latency_ms as f64 / 1000.0}));
    let busy_before = busy_seconds(&world);
    let before = call_counts(&world);
    let settings = bench_settings();
    let delivery = Delivery {
        concurrency,
        timeout: Duration::from_secs(300),
        retries: 4,
        redelivery: Duration::from_secs(1),
    };
    let run = deliver(&world, &settings, events, delivery).await;
    let mut figures = run_figures(&world, &run, &before);
    world.emulator.settings(json!({"latency": 0.0}));
    figures["emulator_busy_seconds"] =
        json!(figures["emulator_busy_seconds"].as_f64().unwrap_or(0.0) - busy_before);
    let census = world.census(&group, &pool, Pin::Eni).await;
    check_census(&census, launches, "burst", failures);
    figures["census"] = census_json(&census);
    figures["pin"] = json!("eni");
    figures["launches"] = json!(launches);
    figures["concurrency"] = json!(concurrency);
    figures["added_latency_ms"] = json!(latency_ms);
    world.emulator.stop();
    figures
}

pub fn print(burst: &Value) {
    println!(
        "burst: {} ENI launches at once, concurrency {}, {} ms added to every AWS call",
        burst["launches"], burst["concurrency"], burst["added_latency_ms"]
    );
    print_run(burst);
}
