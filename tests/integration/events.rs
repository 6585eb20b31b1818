//! The sample events in `events/`: replayed as they are, through the real Lambda runtime loop,
//! and used as templates for real lifecycle actions of the emulator.

use pinhook::Outcome;
use serde_json::json;

use std::process::Command;

use serde_json::Value;

use crate::support::{
    AZ_A, Emulator, GroupSpec, LambdaRuntime, World, eni_metadata, instance_of, pinhook_cli,
    python, repo_root, sample_event, sample_for, unique,
};

#[tokio::test(start_paused = true)]
async fn each_sample_event_replays_through_cargo_lambda_with_a_clear_answer() {
    // Given pinhook in the Lambda runtime loop, against the emulator (where the samples'
    // instance ids do not exist)
    let world = World::new().await;
    let runtime = LambdaRuntime::start(&world.emulator.url, &[]);
    let expected = [
        ("launch.json", "stale", "is in no Auto Scaling group"),
        ("terminate.json", "stale", "is in no Auto Scaling group"),
        (
            "warm-pool-launch.json",
            "stale",
            "is in no Auto Scaling group",
        ),
        ("test-notification.json", "ignored", "test notification"),
        (
            "other-tool-launch.json",
            "ignored",
            "hook \"node-ready\" belongs to another tool",
        ),
        ("malformed.json", "rejected", "no detail.EC2InstanceId"),
        ("sqs-launch.json", "stale", "is in no Auto Scaling group"),
        (
            "sqs-sns-launch.json",
            "stale",
            "is in no Auto Scaling group",
        ),
        ("sns-launch.json", "stale", "is in no Auto Scaling group"),
        ("sqs-test-notification.json", "ignored", "test notification"),
        ("sns-test-notification.json", "ignored", "test notification"),
        (
            "instance-running.json",
            "ignored",
            "EC2 does not describe the instance yet, and still not after the consistency window",
        ),
        (
            "instance-terminated.json",
            "ignored",
            "EC2 no longer describes the instance",
        ),
    ];

    for (file, outcome, reason) in expected {
        // When the sample is replayed with `cargo lambda invoke --data-file`
        let path = repo_root().join("events").join(file);
        let response = runtime
            .invoke_file(&path)
            .unwrap_or_else(|e| panic!("{file}: {e}\n{}", runtime.logs()));
        let summary = match &response {
            // An SQS batch answers with the records to deliver again: none here. Its summaries
            // are the handler's, in process, on the same sample.
            Value::Object(answer) if answer.contains_key("batchItemFailures") => {
                assert_eq!(response, json!({"batchItemFailures": []}), "{file}");
                let sample: Value =
                    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
                let answer = world
                    .app()
                    .invoke(
                        &sample,
                        pinhook::Deadline::after(std::time::Duration::from_secs(60)),
                    )
                    .await
                    .unwrap();
                serde_json::to_value(&answer.summaries[0]).unwrap()
            }
            // SNS records answer with their summaries.
            Value::Array(summaries) => summaries[0].clone(),
            _ => response.clone(),
        };

        // Then the summary says what happened, and why
        assert_eq!(summary["outcome"], outcome, "{file}: {summary}");
        assert!(
            summary["reason"]
                .as_str()
                .unwrap_or_default()
                .contains(reason),
            "{file}: {summary}"
        );
    }
    let logs = runtime.logs();
    assert!(
        logs.contains("\"requestId\""),
        "JSON logs carry Lambda's request id:\n{logs}"
    );
    assert!(
        logs.contains("\"instance\":\"i-1234567890abcdef0\""),
        "log lines carry the event's fields:\n{logs}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_launch_sample_pins_when_it_names_a_real_lifecycle_action() {
    let world = World::new().await;
    let net = world.network().await;
    let pool = unique("licence");
    world.eni_pool(&net, &pool, AZ_A, 1).await;
    let metadata = eni_metadata(&pool, json!({}));
    let group = world
        .group(GroupSpec::pinning(vec![net.subnet_a.clone()], metadata, 2))
        .await;
    world.scale(&group, 1).await;
    let action = &world.emulator.actions(&group.name, false)[0];

    let summary = world.deliver(&sample_for("launch.json", action)).await;

    assert_eq!(summary.outcome, Outcome::Continue, "{summary:?}");
    world.scale(&group, 0).await;
    let instance = action["instance_id"].as_str().unwrap();
    let terminate = world.emulator.action_of(&group.name, instance, "terminate");
    let summary = world
        .deliver(&sample_for("terminate.json", &terminate))
        .await;
    assert_eq!(summary.outcome, Outcome::Continue, "{summary:?}");
}

#[tokio::test(start_paused = true)]
async fn a_malformed_event_that_still_names_a_waiting_action_is_completed_with_the_failure_outcome()
{
    let world = World::new().await;
    let net = world.network().await;
    let group = world
        .group(GroupSpec {
            subnets: vec![net.subnet_a.clone()],
            launch_metadata: Some(eni_metadata(
                &unique("licence"),
                json!({"on_failure": "continue"}),
            )),
            terminate_metadata: None,
            extra_terminate_hook: false,
            max_size: 2,
        })
        .await;
    world.scale(&group, 1).await;
    let mut event = world.emulator.pending_events(&group.name).remove(0);
    event["detail"]["LifecycleTransition"] = json!("autoscaling:EC2_INSTANCE_REBOOTING");
    let instance = instance_of(&event);

    let summary = world.deliver(&event).await;

    assert_eq!(summary.outcome, Outcome::Continue, "{summary:?}");
    assert!(
        summary
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("LifecycleTransition"),
        "{summary:?}"
    );
    assert_eq!(
        world.lifecycle_state(&instance).await.as_deref(),
        Some("InService")
    );
}

#[tokio::test(start_paused = true)]
async fn the_test_notification_is_ignored() {
    let world = World::new().await;

    let summary = world.deliver(&sample_event("test-notification.json")).await;

    assert_eq!(summary.outcome, Outcome::Ignored);
    assert_eq!(summary.completion, None);
    assert_eq!(summary.group.as_deref(), Some("licensed-app"));
}

#[tokio::test(start_paused = true)]
async fn lifecycle_actions_through_the_lambda_runtime_loop_pin_and_release() {
    // Given pinhook as deployed: the binary in the Lambda runtime loop, its settings and AWS
    // endpoint from the environment, and Lambda's deadline from the runtime API
    let world = World::new().await;
    let runtime = LambdaRuntime::start(
        &world.emulator.url,
        &[
            ("PINHOOK_COMPLETION_RESERVE_MS", "2000"),
            ("PINHOOK_ATTEMPT_TIMEOUT_MS", "1500"),
        ],
    );
    let net = world.network().await;
    let pool = unique("licence");
    let eni = world.eni_pool(&net, &pool, AZ_A, 1).await.remove(0);
    let metadata = eni_metadata(&pool, json!({}));
    let group = world
        .group(GroupSpec::pinning(vec![net.subnet_a.clone()], metadata, 2))
        .await;
    world.scale(&group, 1).await;

    // When the launch and then the terminate action are invoked
    let launch = runtime.invoke(&world.emulator.pending_events(&group.name)[0]);
    assert_eq!(
        launch["outcome"],
        "CONTINUE",
        "{launch}\n{}",
        runtime.logs()
    );
    assert_eq!(launch["member"], eni.as_str());
    world.scale(&group, 0).await;
    let release = runtime.invoke(&world.emulator.pending_events(&group.name)[0]);

    // Then the ENI was pinned and released, and the logs carry the event's fields and metrics
    assert_eq!(release["outcome"], "CONTINUE", "{release}");
    assert_eq!(world.eni_state(&eni).await.status, "available");
    let logs = runtime.logs();
    assert!(logs.contains(&format!("\"member\":\"{eni}\"")), "{logs}");
    assert!(
        logs.contains("\"_aws\"") && logs.contains("\"Pinned\":1.0"),
        "an EMF line:\n{logs}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_eip_samples_pin_and_release_when_they_name_real_lifecycle_actions() {
    let world = World::new().await;
    let net = world.network().await;
    let pool = unique("partner-egress");
    let address = world.eip_pool(&pool, 1).await.remove(0);
    let metadata = crate::support::eip_metadata(&pool, json!({}));
    let group = world
        .group(GroupSpec::pinning(vec![net.subnet_a.clone()], metadata, 2))
        .await;
    world.scale(&group, 1).await;
    let action = &world.emulator.actions(&group.name, false)[0];

    let pinned = world.deliver(&sample_for("eip-launch.json", action)).await;
    world.scale(&group, 0).await;
    let instance = action["instance_id"].as_str().unwrap();
    let terminate = world.emulator.action_of(&group.name, instance, "terminate");
    let released = world
        .deliver(&sample_for("eip-terminate.json", &terminate))
        .await;

    assert_eq!(
        pinned.member.as_deref(),
        Some(address.as_str()),
        "{pinned:?}"
    );
    assert_eq!(released.outcome, Outcome::Continue, "{released:?}");
    assert_eq!(world.address_state(&address).await.association, None);
}

#[tokio::test(start_paused = true)]
async fn seeded_samples_replay_into_real_pins_and_releases_from_the_cli() {
    // Given an emulator of its own, seeded by emulator/seed.py with what each sample names, as
    // the README's local replay does
    let emulator: &'static Emulator = Emulator::dedicated();
    let seed = |file: &str| {
        let output = Command::new(python())
            .arg(repo_root().join("emulator/seed.py"))
            .args(["--endpoint", &emulator.url])
            .arg(repo_root().join("events").join(file))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "seeding {file}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let replay = |file: &str| -> Value {
        let path = repo_root().join("events").join(file);
        let output = pinhook_cli(&emulator.url, &["replay".as_ref(), path.as_os_str()]);
        assert!(
            output.status.success(),
            "replaying {file}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
        // a batch prints each record's summary beside the function's answer
        match printed.get("summaries") {
            Some(summaries) => summaries[0].clone(),
            None => printed,
        }
    };
    let expected = [
        ("launch.json", "pinned eni-"),
        ("terminate.json", "released eni-"),
        ("eip-launch.json", "pinned eipalloc-"),
        ("eip-terminate.json", "released eipalloc-"),
        ("warm-pool-launch.json", "launching into the warm pool"),
        ("sqs-launch.json", "pinned eni-"),
        ("sqs-sns-launch.json", "pinned eni-"),
        ("sns-launch.json", "pinned eipalloc-"),
    ];
    for (file, reason) in expected {
        // When the sample is seeded, then replayed with `pinhook replay`
        seed(file);
        let summary = replay(file);
        // Then it acts on a real instance, and completes its action
        assert_eq!(summary["outcome"], "CONTINUE", "{file}: {summary}");
        assert_eq!(summary["completion"], "completed", "{file}: {summary}");
        assert!(
            summary["reason"]
                .as_str()
                .unwrap_or_default()
                .starts_with(reason),
            "{file}: {summary}"
        );
        let sample = sample_event(file);
        if let Some(detail) = sample.get("detail") {
            assert_eq!(summary["instance"], detail["EC2InstanceId"], "{file}");
        }
    }
    emulator.release();
}
