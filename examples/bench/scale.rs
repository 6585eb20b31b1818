//! The scale run: N ENI launches into one group (or several, each with a pool of its own) over
//! three AZs under AWS's rate limits, against the time the limits alone allow for the calls
//! made.

use std::path::Path;
use std::time::Duration;

use pinhook_testkit::{
    AZ_A, AZ_B, Census, GroupSpec, POOL_TAG, Pin, World, burst_settings, hook_metadata, join_all,
    unique,
};
use serde_json::{Value, json};

use pinhook::config::Settings;

use crate::environments::{Delivery, deliver, print_run, run_figures};
use crate::{call_counts, census_json, check_census, now_epoch, plot};

const AZ_C: &str = "us-east-1c";

/// The shape of a scale run.
pub struct Shape {
    pub launches: usize,
    pub concurrency: usize,
    pub latency_ms: u64,
    /// Groups the launches are spread over, each with a pool of its own.
    pub groups: usize,
    /// The function's settings (its retries).
    pub settings: Settings,
}

/// The launches into several groups over three AZs, under AWS's rate limits.
pub async fn run(shape: &Shape, svg: &Path, failures: &mut Vec<String>) -> Value {
    let launches = shape.launches;
    let world = World::dedicated_real_time(burst_settings()).await;
    world
        .emulator
        .settings(json!({"attach_delay": 0.0, "detach_delay": 0.0}));
    let subnets = three_subnets(&world).await;
    // Several groups, each with its own pool over the three AZs, sized to fit: an even share of
    // its launches in each AZ, and one spare.
    let groups = shape.groups.clamp(1, launches);
    let mut fleet = Vec::new();
    let mut per_group = Vec::new();
    let mut events = Vec::new();
    let mut members = 0;
    for index in 0..groups {
        let size = launches / groups + usize::from(index < launches % groups);
        let pool = unique("bench-scale");
        let per_zone = size.div_ceil(3) + 1;
        members += per_zone * 3;
        let tags = [(POOL_TAG, pool.as_str()), ("Name", pool.as_str())];
        for subnet in &subnets {
            join_all((0..per_zone).map(|_| world.eni(subnet, &tags))).await;
        }
        let metadata = hook_metadata(Pin::Eni, &pool, json!({}));
        let spec = GroupSpec {
            terminate_metadata: None,
            ..GroupSpec::pinning(subnets.clone(), metadata.clone(), size as i32)
        };
        let group = world.group(spec).await;
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
        "latency": shape.latency_ms as f64 / 1000.0,
    }));
    world
        .emulator
        .control("POST", "rate-limits", Some(&json!({"enabled": true})));
    let before = call_counts(&world);
    let epoch = now_epoch();
    let delivery = Delivery {
        concurrency: shape.concurrency,
        timeout: Duration::from_secs(300),
        retries: 4,
        redelivery: Duration::from_secs(1),
    };
    let run = deliver(&world, &shape.settings, events, delivery).await;
    let mut figures = run_figures(&world, &run, &before);
    let limits = world.emulator.control("GET", "rate-limits", None);
    world
        .emulator
        .control("POST", "rate-limits", Some(&json!({"enabled": false})));
    world.emulator.settings(json!({"latency": 0.0}));
    let mut census = Census::default();
    for (group, pool, size) in &fleet {
        let one = world.census(group, pool, Pin::Eni).await;
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
    let picture = plot::plot(
        svg,
        &completions,
        &throttle_times,
        &buckets,
        launches,
        shape.concurrency,
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
    figures["concurrency"] = json!(shape.concurrency);
    figures["added_latency_ms"] = json!(shape.latency_ms);
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
    figures["svg"] = json!(svg.display().to_string());
    figures["retry"] = json!(crate::throttling::describe(&shape.settings));
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
        (AZ_B, "10.0.32.0/20"),
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

pub fn print(scale: &Value) {
    let groups = match scale["groups"].as_u64() {
        Some(1) => "one group".to_owned(),
        n => format!("{} groups", n.unwrap_or(0)),
    };
    println!(
        "scale run: {} ENI launches into {groups} over {} AZs ({} pool members), concurrency {}, {} ms added to every AWS call, AWS's rate limits on",
        scale["launches"],
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
