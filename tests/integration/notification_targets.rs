//! Every way Auto Scaling delivers a lifecycle action (DESIGN.md, "Events in"): hooks whose
//! `NotificationTargetARN` is an SQS queue or an SNS topic, drained into the real handler as
//! Lambda's event sources do. An SQS batch reports only the records a redelivery could fix.

use std::time::Duration;

use pinhook::handler::Answer;
use pinhook::{Deadline, Outcome};
use serde_json::{Value, json};

use crate::support::Pin;
use crate::support::{
    AZ_A, App, Group, GroupSpec, Network, Queue, World, drain, eip_metadata, eni_metadata,
    sqs_event, unique,
};

const LAUNCHING: &str = "autoscaling:EC2_INSTANCE_LAUNCHING";
const TERMINATING: &str = "autoscaling:EC2_INSTANCE_TERMINATING";

/// How the hooks' notifications reach pinhook.
#[derive(Debug, Clone, Copy)]
enum Route {
    /// Hooks → SQS queue → Lambda's SQS event source.
    Queue,
    /// Hooks → SNS topic → Lambda subscription.
    Topic,
    /// Hooks → SNS topic → SQS queue (the SNS envelope in each body) → Lambda's SQS event source.
    TopicThroughQueue,
}

/// Where the hooks publish, and how pinhook is fed from there.
struct Wiring {
    route: Route,
    target: String,
    queue: Option<Queue>,
}

impl Wiring {
    async fn new(world: &World, route: Route) -> Self {
        let name = unique("pinhook-lifecycle");
        match route {
            Route::Queue => {
                let queue = world.queue(&name).await;
                Self {
                    route,
                    target: queue.arn.clone(),
                    queue: Some(queue),
                }
            }
            Route::Topic => Self {
                route,
                target: world.topic(&name).await,
                queue: None,
            },
            Route::TopicThroughQueue => {
                let topic = world.topic(&name).await;
                let queue = world.queue(&name).await;
                world.subscribe(&topic, &queue).await;
                Self {
                    route,
                    target: topic,
                    queue: Some(queue),
                }
            }
        }
    }

    /// Delivers everything published since the last call; every record's summary.
    async fn deliver(&self, world: &World, app: &App, seen: &mut usize) -> Vec<Value> {
        let answers: Vec<Answer> = match (&self.queue, self.route) {
            (Some(queue), _) => drain(world, app, queue).await,
            (None, _) => {
                let events = world.sns_events(&self.target);
                let fresh = events[*seen..].to_vec();
                *seen = events.len();
                let mut answers = Vec::new();
                for event in fresh {
                    answers.push(
                        app.invoke(&event, Deadline::after(Duration::from_secs(60)))
                            .await
                            .unwrap(),
                    );
                }
                answers
            }
        };
        answers
            .into_iter()
            .flat_map(|a| a.summaries)
            .map(|s| serde_json::to_value(s).unwrap())
            .collect()
    }
}

/// A group over one AZ, of at most `max_size`, whose pinhook hooks publish to `wiring`'s
/// target.
async fn wired_group(
    world: &World,
    net: &Network,
    metadata: &str,
    wiring: &Wiring,
    max_size: i32,
) -> Group {
    let mut group = world
        .group(GroupSpec::bare(vec![net.subnet_a.clone()], max_size))
        .await;
    group.launch_hook = "pinhook-launch".into();
    group.terminate_hook = "pinhook-terminate".into();
    world
        .hook_to(
            &group.name,
            "pinhook-launch",
            LAUNCHING,
            metadata,
            &wiring.target,
        )
        .await;
    world
        .hook_to(
            &group.name,
            "pinhook-terminate",
            TERMINATING,
            metadata,
            &wiring.target,
        )
        .await;
    group
}

fn outcomes(summaries: &[Value]) -> Vec<String> {
    let mut outcomes: Vec<String> = summaries
        .iter()
        .map(|s| {
            format!(
                "{} {}",
                s["transition"].as_str().unwrap_or("-"),
                s["outcome"].as_str().unwrap_or("-")
            )
        })
        .collect();
    outcomes.sort();
    outcomes
}

/// Launch and terminate of one instance, its hooks wired through `route`.
async fn launch_and_terminate(route: Route, eip: bool) {
    // Given a pool, and a group whose hooks publish through the route
    let world = World::new().await;
    let net = world.network().await;
    let pool = unique("pool");
    let metadata = if eip {
        world.eip_pool(&pool, 1).await;
        eip_metadata(&pool, json!({}))
    } else {
        world.eni_pool(&net, &pool, AZ_A, 1).await;
        eni_metadata(&pool, json!({}))
    };
    let wiring = Wiring::new(&world, route).await;
    let group = wired_group(&world, &net, &metadata, &wiring, 2).await;
    let app = world.app();
    let mut seen = 0;

    // When the hooks' test notifications are delivered
    let tests = wiring.deliver(&world, &app, &mut seen).await;
    // Then they are ignored
    assert_eq!(tests.len(), 2, "{tests:?}");
    for summary in &tests {
        assert_eq!(summary["outcome"], "ignored", "{summary}");
        assert_eq!(summary["reason"], "test notification", "{summary}");
    }

    // When the group launches an instance and its notification is delivered
    world.scale(&group, 1).await;
    let launched = wiring.deliver(&world, &app, &mut seen).await;
    // Then it is pinned and completed
    assert_eq!(outcomes(&launched), ["launch CONTINUE"], "{launched:?}");
    let instance = launched[0]["instance"].as_str().unwrap().to_owned();
    let member = launched[0]["member"].as_str().unwrap().to_owned();
    assert_eq!(
        world.lifecycle_state(&instance).await.as_deref(),
        Some("InService")
    );
    let tag = if eip { "pinhook:eip" } else { "pinhook:eni" };
    assert_eq!(
        world.instance_tag(&instance, tag).await.as_deref(),
        Some(member.as_str())
    );

    // When the group scales in
    world.scale(&group, 0).await;
    let terminated = wiring.deliver(&world, &app, &mut seen).await;
    // Then the member is released and the termination completed
    assert_eq!(
        outcomes(&terminated),
        ["terminate CONTINUE"],
        "{terminated:?}"
    );
    assert_eq!(terminated[0]["member"], member.as_str());
    if eip {
        assert_eq!(world.address_state(&member).await.association, None);
    } else {
        assert_eq!(world.wait_available(&member).await.holder, None);
    }
    assert_eq!(world.ec2_state(&instance).await, "terminated");
}

#[tokio::test(start_paused = true)]
async fn eni_launch_and_terminate_through_an_sqs_queue() {
    launch_and_terminate(Route::Queue, false).await;
}

#[tokio::test(start_paused = true)]
async fn eip_launch_and_terminate_through_an_sqs_queue() {
    launch_and_terminate(Route::Queue, true).await;
}

#[tokio::test(start_paused = true)]
async fn eni_launch_and_terminate_through_an_sns_topic() {
    launch_and_terminate(Route::Topic, false).await;
}

#[tokio::test(start_paused = true)]
async fn eip_launch_and_terminate_through_an_sns_topic() {
    launch_and_terminate(Route::Topic, true).await;
}

#[tokio::test(start_paused = true)]
async fn launch_and_terminate_through_a_queue_subscribed_to_a_topic() {
    launch_and_terminate(Route::TopicThroughQueue, false).await;
}

#[tokio::test(start_paused = true)]
async fn a_batch_names_only_the_records_a_redelivery_could_fix() {
    // Given a group of nine launches whose hooks publish to a queue (an emulator of its own:
    // one instance's calls are throttled)
    let world = World::dedicated_with(crate::support::fast_settings()).await;
    let net = world.network().await;
    let pool = unique("licence");
    world.eni_pool(&net, &pool, AZ_A, 9).await;
    let wiring = Wiring::new(&world, Route::Queue).await;
    let queue = wiring.queue.clone().unwrap();
    let metadata = eni_metadata(&pool, json!({}));
    let group = wired_group(&world, &net, &metadata, &wiring, 9).await;
    world.scale(&group, 9).await;
    // the queue holds two test notifications and nine launches
    let mut records = Vec::new();
    loop {
        let received = world.receive(&queue, 30).await;
        if received.is_empty() {
            break;
        }
        records.extend(received);
    }
    let launches: Vec<Value> = records
        .iter()
        .filter(|r| {
            r["body"]
                .as_str()
                .unwrap_or_default()
                .contains("LifecycleActionToken")
        })
        .cloned()
        .collect();
    assert_eq!(launches.len(), 9, "{records:?}");
    // a batch of ten: the nine launches and one broken record
    let mut broken = launches[0].clone();
    broken["messageId"] = json!("broken-record");
    broken["body"] = json!("{\"LifecycleHookName\": \"pinhook-launch\", \"EC2InstanceId\": 42");
    let mut batch = launches.clone();
    batch.push(broken);
    // and Auto Scaling throttles every call about one of the instances
    let throttled_record = &launches[3];
    let body: Value = serde_json::from_str(throttled_record["body"].as_str().unwrap()).unwrap();
    let throttled = body["EC2InstanceId"].as_str().unwrap().to_owned();
    world.emulator.control(
        "POST",
        "faults",
        Some(&json!({"rate": 1.0, "kinds": ["throttle"], "matching": throttled})),
    );

    // When the batch is delivered
    let answer = world
        .app()
        .invoke(&sqs_event(&batch), Deadline::after(Duration::from_secs(60)))
        .await
        .unwrap();
    world
        .emulator
        .control("POST", "faults", Some(&json!({"rate": 0.0})));

    // Then only the throttled record is reported for redelivery: the broken one is rejected
    // (no redelivery can fix it), the eight others are pinned once
    assert_eq!(
        answer.response,
        json!({"batchItemFailures": [{"itemIdentifier": throttled_record["messageId"]}]})
    );
    let mut kinds: Vec<&str> = answer
        .summaries
        .iter()
        .map(|s| match s.outcome {
            Outcome::Continue => "pinned",
            Outcome::Rejected => "rejected",
            _ => "other",
        })
        .collect();
    kinds.sort();
    assert_eq!(kinds, [vec!["pinned"; 8], vec!["rejected"]].concat());
    let rejected = answer
        .summaries
        .iter()
        .find(|s| s.outcome == Outcome::Rejected)
        .unwrap();
    assert!(
        rejected
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("is not JSON"),
        "{rejected:?}"
    );
    assert_eq!(
        world.lifecycle_state(&throttled).await.as_deref(),
        Some("Pending:Wait")
    );

    // When the throttled record comes back
    let again = world
        .app()
        .invoke(
            &sqs_event(std::slice::from_ref(throttled_record)),
            Deadline::after(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    // Then it is pinned, and every action was completed exactly once
    assert_eq!(again.response, json!({"batchItemFailures": []}));
    assert_eq!(again.summaries[0].outcome, Outcome::Continue);
    for action in world.emulator.actions(&group.name, true) {
        if action["transition"] == LAUNCHING {
            assert_eq!(action["complete_calls"]["accepted"], 1, "{action}");
        }
    }
    let census = world.census(&group, &pool, Pin::Eni).await;
    assert_eq!(census.pinned, 9, "{census:?}");
    assert_eq!(census.double_held_members, 0, "{census:?}");
}

#[tokio::test(start_paused = true)]
async fn a_message_redelivered_after_its_action_completed_changes_nothing() {
    // Given a launch delivered through a queue and pinned
    let world = World::dedicated_with(crate::support::fast_settings()).await;
    let net = world.network().await;
    let pool = unique("licence");
    world.eni_pool(&net, &pool, AZ_A, 2).await;
    let wiring = Wiring::new(&world, Route::Queue).await;
    let queue = wiring.queue.clone().unwrap();
    let group = wired_group(&world, &net, &eni_metadata(&pool, json!({})), &wiring, 2).await;
    world.scale(&group, 1).await;
    let records: Vec<Value> = world
        .receive(&queue, 0)
        .await
        .into_iter()
        .filter(|r| {
            r["body"]
                .as_str()
                .unwrap_or_default()
                .contains("LifecycleActionToken")
        })
        .collect();
    assert_eq!(records.len(), 1, "{records:?}");
    let app = world.app();
    let first = app
        .invoke(
            &sqs_event(&records),
            Deadline::after(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    assert_eq!(first.summaries[0].outcome, Outcome::Continue);
    let before = world.emulator.requests(&[]).len();

    // When the same message is delivered again (SQS delivers at least once)
    let again = app
        .invoke(
            &sqs_event(&records),
            Deadline::after(Duration::from_secs(60)),
        )
        .await
        .unwrap();

    // Then nothing changes: the action is not waiting any more, and no mutating call is made
    assert_eq!(again.summaries[0].outcome, Outcome::Stale, "{again:?}");
    assert_eq!(again.response, json!({"batchItemFailures": []}));
    let after = world.emulator.requests(&[]);
    let mutating: Vec<&Value> = after[before..]
        .iter()
        .filter(|r| {
            !["ReceiveMessage", "DeleteMessage"].contains(&r["action"].as_str().unwrap_or_default())
        })
        .collect();
    assert!(mutating.is_empty(), "{mutating:?}");
}

#[tokio::test(start_paused = true)]
async fn a_target_that_does_not_exist_is_refused_when_the_hook_is_put() {
    let world = World::new().await;
    let net = world.network().await;
    let group = world
        .group(GroupSpec::bare(vec![net.subnet_a.clone()], 1))
        .await;
    let err = world
        .asg
        .put_lifecycle_hook()
        .auto_scaling_group_name(&group.name)
        .lifecycle_hook_name("pinhook-launch")
        .lifecycle_transition(LAUNCHING)
        .notification_target_arn("arn:aws:sqs:us-east-1:123456789012:no-such-queue")
        .role_arn(crate::support::HOOK_ROLE)
        .send()
        .await
        .unwrap_err();
    let message = format!("{:?}", err.into_service_error());
    assert!(
        message.contains("Unable to publish test message to notification target"),
        "{message}"
    );
}
