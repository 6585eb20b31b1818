//! Bad input, as properties: events with any field missing or of the wrong type, and AWS
//! answers with any field missing, never panic, always end in a clear outcome, and a lifecycle
//! action the event identifies is completed exactly once. AWS is served by aws-smithy-mocks
//! with the XML AWS sends, so the real SDK deserialisers and adapters run.

use std::time::Duration;

use aws_sdk_autoscaling::Client as AsgSdk;
use aws_sdk_ec2::Client as Ec2Sdk;
use aws_smithy_mocks::{Rule, mock};
use pinhook::aws::{AutoScalingClient, Ec2Client};
use pinhook::config::HookMetadata;
use pinhook::metrics::MetricsSink;
use pinhook::{Deadline, HandlerError, Outcome, Pinhook};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::support::fast_settings;
use crate::support::mocks::field;

const INSTANCE: &str = "i-0aaaaaaaaaaaaaaa1";

fn clients(asg_rules: &[&Rule], ec2_rules: &[&Rule]) -> (AsgSdk, Ec2Sdk) {
    let settings = fast_settings();
    (
        crate::support::mocks::asg(asg_rules, &settings),
        crate::support::mocks::ec2(ec2_rules, &settings),
    )
}

fn describe_instance(keep: [bool; 5]) -> String {
    format!(
        r#"<DescribeAutoScalingInstancesResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><DescribeAutoScalingInstancesResult><AutoScalingInstances><member>{}{}{}{}{}</member></AutoScalingInstances></DescribeAutoScalingInstancesResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></DescribeAutoScalingInstancesResponse>"#,
        field(keep[0], "InstanceId", INSTANCE),
        field(keep[1], "AutoScalingGroupName", "g"),
        field(keep[2], "AvailabilityZone", "us-east-1a"),
        field(keep[3], "LifecycleState", "Pending:Wait"),
        field(keep[4], "HealthStatus", "HEALTHY"),
    )
}

fn pool_enis(keep: &[[bool; 6]]) -> String {
    let items: String = keep
        .iter()
        .enumerate()
        .map(|(n, k)| {
            format!(
                "<item>{}{}{}{}{}{}</item>",
                field(
                    k[0],
                    "networkInterfaceId",
                    &format!("eni-0bbbbbbbbbbbbbb{n:02}")
                ),
                field(k[1], "availabilityZone", "us-east-1a"),
                field(k[2], "status", "available"),
                field(k[3], "macAddress", "02:00:00:00:00:01"),
                field(
                    k[4],
                    "tagSet",
                    "<item><key>pinhook:pool</key><value>lic</value></item>"
                ),
                field(k[5], "attachment", "<status>detached</status>"),
            )
        })
        .collect();
    format!(
        r#"<DescribeNetworkInterfacesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId><networkInterfaceSet>{items}</networkInterfaceSet></DescribeNetworkInterfacesResponse>"#
    )
}

fn attached_eni(eni: &str) -> String {
    format!(
        r#"<DescribeNetworkInterfacesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId><networkInterfaceSet><item><networkInterfaceId>{eni}</networkInterfaceId><availabilityZone>us-east-1a</availabilityZone><status>in-use</status><tagSet><item><key>pinhook:pool</key><value>lic</value></item></tagSet><attachment><attachmentId>eni-attach-0ccccccccccccccc1</attachmentId><instanceId>{INSTANCE}</instanceId><deviceIndex>1</deviceIndex><status>attached</status></attachment></item></networkInterfaceSet></DescribeNetworkInterfacesResponse>"#
    )
}

fn ok(service: &str, operation: &str, body: &str) -> String {
    if service == "ec2" {
        format!(
            r#"<{operation}Response xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId>{body}</{operation}Response>"#
        )
    } else {
        format!(
            r#"<{operation}Response xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><{operation}Result>{body}</{operation}Result><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></{operation}Response>"#
        )
    }
}

struct Run {
    /// The summary's outcome, or why the action was left pending for a redelivery.
    outcome: Result<Outcome, String>,
    completed: bool,
    complete_calls: usize,
    heartbeats: usize,
}

/// The real handler on one event, against AWS answering with the given XML.
fn run(event: &Value, instance: String, pool: String) -> Run {
    let describe = mock!(AsgSdk::describe_auto_scaling_instances)
        .sequence()
        .http_status(200, Some(instance))
        .repeatedly()
        .build();
    let hooks = mock!(AsgSdk::describe_lifecycle_hooks)
        .sequence()
        .http_status(
            200,
            Some(ok(
                "autoscaling",
                "DescribeLifecycleHooks",
                "<LifecycleHooks/>",
            )),
        )
        .repeatedly()
        .build();
    let complete = mock!(AsgSdk::complete_lifecycle_action)
        .sequence()
        .http_status(200, Some(ok("autoscaling", "CompleteLifecycleAction", "")))
        .repeatedly()
        .build();
    // A member described as being released is waited for, with heartbeats.
    let heartbeat = mock!(AsgSdk::record_lifecycle_action_heartbeat)
        .sequence()
        .http_status(
            200,
            Some(ok("autoscaling", "RecordLifecycleActionHeartbeat", "")),
        )
        .repeatedly()
        .build();
    let by_instance = mock!(Ec2Sdk::describe_network_interfaces)
        .match_requests(|r| {
            r.filters()
                .iter()
                .any(|f| f.name() == Some("attachment.instance-id"))
        })
        .sequence()
        .http_status(200, Some(pool_enis(&[])))
        .repeatedly()
        .build();
    let by_pool = mock!(Ec2Sdk::describe_network_interfaces)
        .match_requests(|r| {
            r.filters()
                .iter()
                .any(|f| f.name() == Some("tag:pinhook:pool"))
        })
        .sequence()
        .http_status(200, Some(pool))
        .repeatedly()
        .build();
    // Each ENI the pool answer may name, described as attached once pinhook attached it.
    let by_id: Vec<Rule> = (0..4)
        .map(|n| {
            let eni = format!("eni-0bbbbbbbbbbbbbb{n:02}");
            let wanted = eni.clone();
            mock!(Ec2Sdk::describe_network_interfaces)
                .match_requests(move |r| r.network_interface_ids() == [wanted.clone()])
                .sequence()
                .http_status(200, Some(attached_eni(&eni)))
                .repeatedly()
                .build()
        })
        .collect();
    let attach = mock!(Ec2Sdk::attach_network_interface)
        .sequence()
        .http_status(
            200,
            Some(ok(
                "ec2",
                "AttachNetworkInterface",
                "<attachmentId>eni-attach-0ccccccccccccccc1</attachmentId>",
            )),
        )
        .repeatedly()
        .build();
    let tags = mock!(Ec2Sdk::create_tags)
        .sequence()
        .http_status(200, Some(ok("ec2", "CreateTags", "<return>true</return>")))
        .repeatedly()
        .build();
    let mut ec2_rules = vec![&by_instance, &by_pool, &attach, &tags];
    ec2_rules.extend(by_id.iter());
    let (asg, ec2) = clients(&[&describe, &hooks, &complete, &heartbeat], &ec2_rules);
    let app = Pinhook::new(
        AutoScalingClient::new(asg),
        Ec2Client::new(ec2),
        fast_settings(),
    )
    .with_metrics(MetricsSink::Discard);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let answer = runtime.block_on(app.handle(event, Deadline::after(Duration::from_secs(60))));
    let (outcome, completed) = match answer {
        Ok(summary) => (Ok(summary.outcome), summary.completion.is_some()),
        // Left pending for a redelivery: the only kind of error the handler may return here.
        Err(HandlerError::Unfinished { reason, .. }) => (Err(reason), false),
        Err(other) => panic!("no transient failure is served, yet: {other}"),
    };
    Run {
        outcome,
        completed,
        complete_calls: complete.num_calls(),
        heartbeats: heartbeat.num_calls(),
    }
}

fn launch() -> Value {
    json!({
        "version": "0", "id": "1", "detail-type": "EC2 Instance-launch Lifecycle Action", "source": "aws.autoscaling",
        "account": "123456789012", "time": "2026-11-21T09:00:00Z", "region": "us-east-1", "resources": ["arn"],
        "detail": {
            "LifecycleActionToken": "tok-1", "AutoScalingGroupName": "g", "LifecycleHookName": "h",
            "EC2InstanceId": INSTANCE, "LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING",
            "NotificationMetadata": "{\"pin\":\"eni\",\"pool\":\"lic\"}", "Origin": "EC2", "Destination": "AutoScalingGroup"
        }
    })
}

/// A JSON value of any shape, to put where something else belongs.
fn junk() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
        Just(json!([1, "a"])),
        Just(json!({"k": "v"})),
    ]
}

/// For each field that does not identify the action: keep it, drop it, or put junk there.
fn mangled_launch() -> impl Strategy<Value = Value> {
    let fields = [
        "/version",
        "/id",
        "/account",
        "/time",
        "/region",
        "/resources",
        "/detail/LifecycleActionToken",
        "/detail/LifecycleTransition",
        "/detail/NotificationMetadata",
        "/detail/Origin",
        "/detail/Destination",
    ];
    proptest::collection::vec((0..3u8, junk()), fields.len()).prop_map(move |choices| {
        let mut event = launch();
        for (path, (choice, junk)) in fields.iter().zip(choices) {
            let (parent, key) = path.rsplit_once('/').unwrap();
            let Some(Value::Object(object)) =
                event.pointer_mut(if parent.is_empty() { "" } else { parent })
            else {
                continue;
            };
            match choice {
                0 => {}
                1 => {
                    object.remove(key);
                }
                _ => {
                    object.insert(key.to_owned(), junk);
                }
            }
        }
        event
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever else is broken in the event, an action it identifies (group, hook, instance),
    /// for an instance AWS says is waiting, is completed exactly once when its hook is
    /// pinhook's, and never when the metadata says it is another tool's.
    #[test]
    fn an_identified_action_is_completed_exactly_once_however_broken_the_rest(event in mangled_launch()) {
        let run = run(&event, describe_instance([true; 5]), pool_enis(&[[true, true, true, true, true, false]]));
        let metadata = event.pointer("/detail/NotificationMetadata").and_then(Value::as_str);
        if !matches!(HookMetadata::parse(metadata), HookMetadata::Foreign(_)) {
            prop_assert_eq!(run.complete_calls, 1, "{}", event);
            prop_assert!(run.completed);
            prop_assert!(matches!(run.outcome, Ok(Outcome::Continue | Outcome::Abandon)));
        } else {
            prop_assert_eq!(run.complete_calls, 0, "{}", event);
            prop_assert_eq!(run.outcome, Ok(Outcome::Ignored));
        }
    }

    /// AWS answers with any field left out: no panic, a clear outcome, and a completion exactly
    /// when the summary says so.
    #[test]
    fn answers_with_any_field_missing_end_in_a_clear_outcome(
        instance in proptest::array::uniform5(any::<bool>()),
        pool in proptest::collection::vec(proptest::array::uniform6(any::<bool>()), 0..4),
    ) {
        let run = run(&launch(), describe_instance(instance), pool_enis(&pool));
        prop_assert!(run.complete_calls <= 1);
        prop_assert_eq!(run.completed, run.complete_calls == 1);
        match &run.outcome {
            // An instance described in full as waiting gets its action completed, or — when
            // every member is described as on its way back to the pool and none comes back
            // before the deadline — kept alive and left for a redelivery.
            _ if instance[..4].iter().all(|kept| *kept) => match &run.outcome {
                Ok(_) => prop_assert_eq!(run.complete_calls, 1),
                Err(reason) => {
                    prop_assert_eq!(run.complete_calls, 0);
                    prop_assert!(run.heartbeats >= 1);
                    prop_assert!(reason.contains("deadline"), "{}", reason);
                }
            },
            outcome => prop_assert_eq!(outcome, &Ok(Outcome::Stale)),
        }
    }
}
