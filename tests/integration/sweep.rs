//! The sweep (DESIGN.md, "The sweep and the operator") against the emulator: what people, Spot
//! reclaims and lost events change behind pinhook's back is repaired; launches in flight are
//! left alone; a dry run changes nothing; a sweep cut short goes on at the next one; its metrics
//! are EMF; `pinhook status --json` shows what the emulator holds.

use std::process::Command;
use std::time::Duration;

use pinhook::config::Settings;
use pinhook::decide::sweep::Repair;
use pinhook::metrics::MetricsSink;
use pinhook::{Deadline, Outcome, SweepOptions, SweepReport};
use serde_json::{Value, json};

use crate::support::Pin;
use crate::support::{
    AZ_A, Group, GroupSpec, Network, World, eip_metadata, eni_metadata, fast_settings, instance_of,
    pinhook_binary, pinhook_cli, sample_event, unique,
};

/// A group over one AZ with pinhook's hooks on `metadata`, `count` instances in service, each
/// pinned by the real handler: (group, [(instance, member)]).
async fn pinned_group(
    world: &World,
    net: &Network,
    metadata: String,
    count: i32,
    max_size: i32,
) -> (Group, Vec<(String, String)>) {
    let group = world
        .group(GroupSpec::pinning(
            vec![net.subnet_a.clone()],
            metadata,
            max_size,
        ))
        .await;
    world.scale(&group, count).await;
    let mut pinned = Vec::new();
    for event in world.emulator.pending_events(&group.name) {
        let summary = world.deliver(&event).await;
        assert_eq!(summary.outcome, Outcome::Continue, "{summary:?}");
        pinned.push((instance_of(&event), summary.member.unwrap()));
    }
    (group, pinned)
}

/// Completes a new instance's launch by hand, as if pinhook never got the event: in service,
/// holding nothing.
async fn missed_launch(world: &World, group: &Group, capacity: i32) -> String {
    world.scale(group, capacity).await;
    let action = world.emulator.actions(&group.name, false).remove(0);
    world.complete(&action, "CONTINUE").await;
    action["instance_id"].as_str().unwrap().to_owned()
}

fn failures(report: &SweepReport) -> Vec<String> {
    report
        .done
        .iter()
        .filter(|d| !d.ok)
        .map(|d| format!("{}: {}", d.repair, d.result))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn the_sweep_repairs_an_eni_pool_changed_behind_pinhooks_back() {
    // Given a group of four instances pinned to a pool of seven ENIs
    let world = World::new().await;
    let net = world.network().await;
    let pool = unique("licence");
    let enis = world.eni_pool(&net, &pool, AZ_A, 7).await;
    let metadata = eni_metadata(&pool, json!({}));
    let (group, pinned) = pinned_group(&world, &net, metadata, 4, 6).await;
    // and then drift: a launch pinhook never saw,
    let missed = missed_launch(&world, &group, 5).await;
    // an ENI detached by hand,
    let (detached_from, detached_eni) = pinned[0].clone();
    world.detach_by_hand(&detached_eni).await;
    // a stale holder tag on a free member,
    let spare = enis
        .iter()
        .find(|e| !pinned.iter().any(|(_, m)| &m == e))
        .unwrap()
        .clone();
    world
        .tag(&spare, "pinhook:holder", "i-0123456789abcdef9")
        .await;
    // a member whose holder was terminated through EC2 (a Spot reclaim, no hook ran),
    let (reclaimed, reclaimed_eni) = pinned[1].clone();
    world.terminate_in_ec2(&reclaimed).await;
    // and a member held by an instance detached from the group, still running
    let (detached, detached_member) = pinned[2].clone();
    world.detach_from_group(&group, &detached).await;

    // When the sweep runs
    let report = world.sweep(&[&group.name], false).await;

    // Then every repair succeeded, and each drift was repaired
    assert!(failures(&report).is_empty(), "{:?}", failures(&report));
    assert_eq!(report.stopped, None);
    let census = world.census(&group, &pool, Pin::Eni).await;
    assert_eq!(census.double_held_members, 0, "{census:?}");
    for instance in [&missed, &detached_from] {
        let held: Vec<_> = world
            .attached_to(instance)
            .await
            .into_iter()
            .filter(|e| e.pool.as_deref() == Some(pool.as_str()))
            .collect();
        assert_eq!(held.len(), 1, "{instance} holds {held:?}");
        assert_eq!(held[0].holder.as_deref(), Some(instance.as_str()));
        assert_eq!(
            world.instance_tag(instance, "pinhook:eni").await.as_deref(),
            Some(held[0].id.as_str())
        );
    }
    for eni in [&spare, &reclaimed_eni] {
        let state = world.eni_state(eni).await;
        assert!(
            state.holder.is_none() || state.instance.is_some(),
            "{eni} keeps a stale holder tag: {state:?}"
        );
    }
    let released = world.eni_state(&detached_member).await;
    assert_ne!(released.instance.as_deref(), Some(detached.as_str()));
    assert_ne!(released.holder.as_deref(), Some(detached.as_str()));
    assert_eq!(world.ec2_state(&detached).await, "running");
    assert_eq!(world.instance_tag(&detached, "pinhook:eni").await, None);

    // And the next sweep finds nothing to do
    let again = world.sweep(&[&group.name], false).await;
    let left: Vec<String> = again.repairs().map(ToString::to_string).collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test(start_paused = true)]
async fn the_sweep_repairs_an_elastic_ip_pool_changed_behind_pinhooks_back() {
    // Given a group of three instances pinned to a pool of five addresses
    let world = World::new().await;
    let net = world.network().await;
    let pool = unique("egress");
    world.eip_pool(&pool, 5).await;
    let metadata = eip_metadata(&pool, json!({}));
    let (group, pinned) = pinned_group(&world, &net, metadata, 3, 4).await;
    // and an address disassociated by hand, a holder reclaimed, one detached from the group
    let (bare, bare_address) = pinned[0].clone();
    world.disassociate_by_hand(&bare_address).await;
    let (reclaimed, reclaimed_address) = pinned[1].clone();
    world.terminate_in_ec2(&reclaimed).await;
    let (detached, detached_address) = pinned[2].clone();
    world.detach_from_group(&group, &detached).await;

    // When the sweep runs
    let report = world.sweep(&[&group.name], false).await;

    // Then the instance in service has an address again, and the others are back in the pool
    assert!(failures(&report).is_empty(), "{:?}", failures(&report));
    let census = world.census(&group, &pool, Pin::Eip).await;
    assert_eq!(census.double_held_members, 0, "{census:?}");
    let repinned = world.instance_tag(&bare, "pinhook:eip").await.unwrap();
    let state = world.address_state(&repinned).await;
    assert_eq!(state.instance.as_deref(), Some(bare.as_str()));
    assert_eq!(state.holder.as_deref(), Some(bare.as_str()));
    for (holder, address) in [
        (&reclaimed, &reclaimed_address),
        (&detached, &detached_address),
    ] {
        let state = world.address_state(address).await;
        assert_ne!(
            state.instance.as_deref(),
            Some(holder.as_str()),
            "{state:?}"
        );
        assert_ne!(state.holder.as_deref(), Some(holder.as_str()), "{state:?}");
    }
    assert_eq!(world.instance_tag(&detached, "pinhook:eip").await, None);
}

#[tokio::test(start_paused = true)]
async fn the_sweep_leaves_a_launch_in_flight_alone() {
    // Given a launch waiting in Pending:Wait whose claim has landed but whose lease is not yet
    // recorded (pinhook is between its attach and its tags), and a second one not yet claimed
    // (an emulator of its own: its log of mutating calls is this test's alone)
    let world = World::dedicated_with(fast_settings()).await;
    let net = world.network().await;
    let pool = unique("licence");
    let enis = world.eni_pool(&net, &pool, AZ_A, 3).await;
    let metadata = eni_metadata(&pool, json!({}));
    let group = world
        .group(GroupSpec::pinning(vec![net.subnet_a.clone()], metadata, 3))
        .await;
    world.scale(&group, 2).await;
    let waiting: Vec<String> = world
        .emulator
        .pending_events(&group.name)
        .iter()
        .map(instance_of)
        .collect();
    world.attach(&enis[0], &waiting[0], 1).await;
    let before = world.emulator.requests(&[]).len();

    // When the sweep runs
    let report = world.sweep(&[&group.name], false).await;

    // Then it plans nothing for them and changes nothing
    let planned: Vec<String> = report.repairs().map(ToString::to_string).collect();
    assert!(planned.is_empty(), "{planned:?}");
    assert_eq!(world.emulator.requests(&[]).len(), before);
    for instance in &waiting {
        assert_eq!(
            world.lifecycle_state(instance).await.as_deref(),
            Some("Pending:Wait")
        );
    }
    assert_eq!(world.eni_state(&enis[0]).await.holder, None);
    // and the launches still pin as usual afterwards
    for event in world.emulator.pending_events(&group.name) {
        let summary = world.deliver(&event).await;
        assert_eq!(summary.outcome, Outcome::Continue, "{summary:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_changes_nothing_and_reports_what_the_sweep_would_do() {
    // Given a pool with a missed launch and a hand-detached ENI
    // (an emulator of its own: its log of mutating calls is this test's alone)
    let world = World::dedicated_with(fast_settings()).await;
    let net = world.network().await;
    let pool = unique("licence");
    world.eni_pool(&net, &pool, AZ_A, 4).await;
    let metadata = eni_metadata(&pool, json!({}));
    let (group, pinned) = pinned_group(&world, &net, metadata, 1, 3).await;
    let missed = missed_launch(&world, &group, 2).await;
    world.detach_by_hand(&pinned[0].1).await;
    let before = world.emulator.requests(&[]);

    // When the sweep runs dry
    let report = world.sweep(&[&group.name], true).await;

    // Then it reports each repair, carries out none, and sends no mutating call at all
    let planned: Vec<&Repair> = report.repairs().collect();
    assert!(
        planned
            .iter()
            .any(|r| matches!(r, Repair::Pin { instance, .. } if instance.as_str() == missed)),
        "{planned:?}"
    );
    assert!(
        planned
            .iter()
            .any(|r| matches!(r, Repair::ClearTag { member, .. } if member == &pinned[0].1)),
        "{planned:?}"
    );
    assert!(report.done.is_empty(), "{:?}", report.done);
    let after = world.emulator.requests(&[]);
    assert_eq!(after.len(), before.len(), "{:?}", &after[before.len()..]);
    assert!(world.attached_to(&missed).await.len() < 2);
}

#[tokio::test(start_paused = true)]
async fn a_sweep_cut_short_by_its_budget_or_deadline_goes_on_at_the_next() {
    // Given five instances in service that hold nothing (their launches were missed)
    let world = World::new().await;
    let net = world.network().await;
    let pool = unique("licence");
    world.eni_pool(&net, &pool, AZ_A, 6).await;
    let group = world
        .group(GroupSpec::pinning(
            vec![net.subnet_a.clone()],
            eni_metadata(&pool, json!({})),
            5,
        ))
        .await;
    for capacity in 1..=5 {
        missed_launch(&world, &group, capacity).await;
    }
    let sweeper = |settings: Settings| {
        world.app_with(Settings {
            groups: vec![group.name.clone()],
            ..settings
        })
    };

    // When a sweep's deadline has come before it starts
    let late = sweeper(world.settings.clone())
        .sweep(&SweepOptions::default(), Deadline::after(Duration::ZERO))
        .await
        .unwrap();
    // Then it stops cleanly, having changed nothing
    assert!(
        late.stopped
            .as_deref()
            .unwrap_or_default()
            .contains("deadline"),
        "{late:?}"
    );
    assert!(late.done.is_empty());

    // When a sweep has calls for only some of the repairs
    let short = Settings {
        sweep_max_calls: 30,
        ..world.settings.clone()
    };
    let first = sweeper(short)
        .sweep(
            &SweepOptions::default(),
            Deadline::after(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    // Then it stops when the budget no longer covers a repair, with some instances pinned and
    // no repair cut in the middle (a repair under way may finish a little past the budget)
    assert!(
        first
            .stopped
            .as_deref()
            .unwrap_or_default()
            .contains("PINHOOK_SWEEP_MAX_CALLS"),
        "{first:?}"
    );
    assert!(first.calls <= 30 + 50, "{}", first.calls);
    assert!(
        !first.done.is_empty() && first.done.len() < 5,
        "{:?}",
        first.done
    );
    assert!(failures(&first).is_empty(), "{:?}", failures(&first));

    // And the next sweep pins the rest
    let second = world.sweep(&[&group.name], false).await;
    assert_eq!(second.done.len() + first.done.len(), 5, "{:?}", second.done);
    assert!(failures(&second).is_empty(), "{:?}", failures(&second));
    let census = world.census(&group, &pool, Pin::Eni).await;
    assert_eq!(census.pinned, 5, "{census:?}");
}

#[tokio::test(start_paused = true)]
async fn every_sweep_emits_its_figures_as_embedded_metric_format() {
    // Given an Elastic IP pool of three for a group of at most two, with one instance pinned,
    // and idle addresses reported at once
    let world = World::new().await;
    let net = world.network().await;
    let pool = unique("egress");
    world.eip_pool(&pool, 3).await;
    let (group, _) = pinned_group(&world, &net, eip_metadata(&pool, json!({})), 1, 2).await;
    let (sink, kept) = MetricsSink::memory();
    let sweeper = world
        .app_with(Settings {
            groups: vec![group.name.clone()],
            idle_address_after: Duration::ZERO,
            ..world.settings.clone()
        })
        .with_metrics(sink);

    // When the sweep runs twice (the first marks the idle addresses, the second reports them)
    for _ in 0..2 {
        sweeper
            .sweep(
                &SweepOptions::default(),
                Deadline::after(Duration::from_secs(60)),
            )
            .await
            .unwrap();
    }

    // Then each run wrote one EMF document for the pool, which CloudWatch can read
    let documents = kept.lock().unwrap().clone();
    assert_eq!(documents.len(), 2, "{documents:?}");
    for document in &documents {
        let directive = &document["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "pinhook-test");
        assert!(document["_aws"]["Timestamp"].as_u64().unwrap() > 0);
        assert_eq!(directive["Dimensions"], json!([["Pool"]]));
        let names: Vec<&str> = directive["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        for name in ["Drift", "FreeMembers", "IdleAddresses", "SpareMembers"] {
            assert!(names.contains(&name), "{names:?}");
            assert!(document[name].is_number(), "{document}");
        }
        assert_eq!(document["Pool"], pool.as_str());
        assert_eq!(document["FreeMembers"], 2.0);
        assert_eq!(document["SpareMembers"], 1.0);
        assert_eq!(document["Drift"], 0.0);
    }
    assert_eq!(documents[0]["IdleAddresses"], 0.0);
    assert_eq!(documents[1]["IdleAddresses"], 2.0);
}

#[tokio::test(start_paused = true)]
async fn a_scheduled_event_runs_the_sweep_of_the_functions_groups() {
    // Given a missed launch in a group the function serves
    let world = World::new().await;
    let net = world.network().await;
    let pool = unique("licence");
    world.eni_pool(&net, &pool, AZ_A, 2).await;
    let group = world
        .group(GroupSpec::pinning(
            vec![net.subnet_a.clone()],
            eni_metadata(&pool, json!({})),
            1,
        ))
        .await;
    let missed = missed_launch(&world, &group, 1).await;

    // When EventBridge's schedule invokes the function with the sample scheduled event
    let summary = world
        .sweeper(&[&group.name])
        .handle(
            &sample_event("scheduled.json"),
            Deadline::after(Duration::from_secs(60)),
        )
        .await
        .unwrap();

    // Then the function swept, and the instance is pinned
    assert_eq!(summary.outcome, Outcome::Swept, "{summary:?}");
    let report = summary.sweep.expect("the sweep's report");
    assert_eq!(report.done.len(), 1, "{:?}", report.done);
    assert!(world.instance_tag(&missed, "pinhook:eni").await.is_some());
}

#[tokio::test(start_paused = true)]
async fn status_json_shows_what_the_emulator_holds() {
    // Given a pool with one member held, one free, and another tool's hook on the group
    let world = World::new().await;
    let net = world.network().await;
    let pool = unique("licence");
    let enis = world.eni_pool(&net, &pool, AZ_A, 3).await;
    let (group, pinned) = pinned_group(&world, &net, eni_metadata(&pool, json!({})), 1, 1).await;
    world
        .any_hook(
            &group.name,
            "node-ready",
            "autoscaling:EC2_INSTANCE_LAUNCHING",
            None,
        )
        .await;

    // When `pinhook status --json` runs against the emulator, as an operator runs it
    let args = ["status", "--json", "--group", &group.name].map(std::ffi::OsStr::new);
    let output = pinhook_cli(&world.emulator.url, &args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let status: Value = serde_json::from_slice(&output.stdout).unwrap();

    // Then it matches, member by member, what EC2 and Auto Scaling report
    assert_eq!(status["dry_run"], true);
    let pools = status["pools"].as_array().unwrap();
    assert_eq!(pools.len(), 1, "{status:#}");
    let shown = &pools[0];
    assert_eq!(shown["pool"], pool.as_str());
    assert_eq!(shown["pin"], "eni");
    assert_eq!(shown["zones"][0]["availability_zone"], AZ_A);
    assert_eq!(shown["zones"][0]["members"], 3);
    assert_eq!(shown["zones"][0]["held"], 1);
    assert_eq!(shown["zones"][0]["free"], 2);
    assert_eq!(shown["zones"][0]["placeable"], 1);
    assert_eq!(shown["zones"][0]["spare"], 2);
    for eni in &enis {
        let actual = world.eni_state(eni).await;
        let member = shown["members"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["member"] == eni.as_str())
            .unwrap_or_else(|| panic!("{eni} missing from {shown:#}"));
        assert_eq!(
            member["holder"].as_str(),
            actual.instance.as_deref(),
            "{member}"
        );
        assert_eq!(
            member["holder_tag"].as_str(),
            actual.holder.as_deref(),
            "{member}"
        );
        let expected = if actual.instance.is_some() {
            "held"
        } else {
            "free"
        };
        assert_eq!(member["state"], expected, "{member}");
        if let Some(holder) = &actual.instance {
            assert_eq!(
                member["holder_state"].as_str(),
                world.lifecycle_state(holder).await.as_deref()
            );
            assert_eq!(holder, &pinned[0].0);
        }
    }
    let findings = status["findings"].as_array().unwrap();
    assert!(
        findings.iter().any(|f| f["kind"] == "not-pinhooks-hook"
            && f["message"].as_str().unwrap().contains("node-ready")),
        "{findings:?}"
    );
    assert!(shown["repairs"].as_array().unwrap().is_empty(), "{shown:#}");
}

#[tokio::test(start_paused = true)]
async fn the_cli_explains_a_missing_region_and_missing_credentials_and_reads_tagged_instances_without_groups()
 {
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut command = Command::new(pinhook_binary());
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", "/nonexistent")
            .env("AWS_EC2_METADATA_DISABLED", "true");
        for (k, v) in env {
            command.env(k, v);
        }
        let output = command.output().unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, stderr) = run(&["status", "--group", "g"], &[]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("no AWS region: set AWS_REGION"), "{stderr}");
    let (code, stderr) = run(&["status", "--group", "g"], &[("AWS_REGION", "us-east-1")]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("no AWS credentials"), "{stderr}");
    // Without groups it says it reads only the instances tagged pinhook:pin (here from an
    // endpoint where nothing listens, which it names)
    let keys = [
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        ("PINHOOK_ATTEMPT_TIMEOUT_MS", "500"),
        ("PINHOOK_MAX_ATTEMPTS", "1"),
    ];
    let (code, stderr) = run(&["sweep"], &keys);
    assert_ne!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("--group NAME, or PINHOOK_GROUPS=group-a,group-b): only the instances tagged pinhook:pin without a group are read"),
        "{stderr}"
    );
    assert!(stderr.contains("ec2:DescribeInstances"), "{stderr}");
}
