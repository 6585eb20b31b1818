//! The SAM template, read as CloudFormation reads it: no wildcard action, every mutating EC2
//! action conditioned on the pool tag (or the group tag) wherever the Service Authorization
//! Reference allows a condition for that resource type, lifecycle actions scoped to the named
//! groups, and an EventBridge rule that matches the sample lifecycle events of those groups and
//! nothing else.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::support::cfn::{self, ACCOUNT, REGION, as_list};
use crate::support::{repo_root, sample_event};

/// The template with its intrinsic functions evaluated for these parameter values.
fn template(group_names: &[&str]) -> Value {
    template_with(group_names, &[])
}

/// The same, with the optional `HookNames` parameter.
fn template_with(group_names: &[&str], hook_names: &[&str]) -> Value {
    template_full(group_names, hook_names, false)
}

/// The same, with the optional lifecycle queue (`NotificationQueue`) and the hooks created on a
/// group.
fn template_full(group_names: &[&str], hook_names: &[&str], queue: bool) -> Value {
    template_given(group_names, hook_names, queue, &[])
}

/// The template for these parameter values, and these others; every other parameter takes its
/// Default, as CloudFormation does (StateChangeRule: NONE).
fn template_given(
    group_names: &[&str],
    hook_names: &[&str],
    queue: bool,
    others: &[(&str, Value)],
) -> Value {
    let mut parameters = BTreeMap::new();
    parameters.insert("GroupNames".to_owned(), json!(group_names));
    // CloudFormation passes an empty CommaDelimitedList default as one empty string
    let hook_names = if hook_names.is_empty() {
        &[""][..]
    } else {
        hook_names
    };
    parameters.insert("HookNames".to_owned(), json!(hook_names));
    parameters.insert(
        "HookGroupName".to_owned(),
        json!(if queue { group_names[0] } else { "" }),
    );
    parameters.insert("NotificationQueue".to_owned(), json!(queue.to_string()));
    parameters.insert("ReservedConcurrency".to_owned(), json!(5));
    parameters.insert("LifecycleRuleState".to_owned(), json!("ENABLED"));
    parameters.insert("AlarmTopicArn".to_owned(), json!(""));
    parameters.insert("SweepSchedule".to_owned(), json!("rate(5 minutes)"));
    for (name, value) in others {
        parameters.insert((*name).to_owned(), value.clone());
    }
    cfn::evaluated(&repo_root().join("template.yaml"), parameters)
}

/// Every IAM statement of the function's role.
fn statements(template: &Value) -> Vec<Value> {
    let policies = &template["Resources"]["PinhookFunction"]["Properties"]["Policies"];
    let statements: Vec<Value> = as_list(policies)
        .iter()
        .flat_map(|policy| as_list(&policy["Statement"]))
        .collect();
    // Every test over the statements would pass on none: they must be where they are read.
    assert!(
        statements.len() >= 5,
        "the function's policy statements are not at Resources.PinhookFunction.Properties.Policies: {policies}"
    );
    statements
}

/// The resource type of an EC2 ARN pattern: `network-interface`, `instance`, …
fn ec2_resource_type(arn: &str) -> Option<&str> {
    arn.split(':').nth(5).and_then(|r| r.split('/').next())
}

/// From the Service Authorization Reference (Amazon EC2): each mutating action pinhook calls,
/// the resource types it is authorised on, and the tag condition each must carry. `None`
/// where a tag condition exists in IAM but cannot single out what pinhook touches (the instance's
/// own primary interface carries no tag of ours): recorded in the README's IAM table.
const EC2_ACTIONS: [(&str, &str, Option<&str>); 16] = [
    (
        "ec2:AttachNetworkInterface",
        "network-interface",
        Some(POOL_TAG),
    ),
    ("ec2:AttachNetworkInterface", "instance", Some(GROUP_TAG)),
    (
        "ec2:DetachNetworkInterface",
        "network-interface",
        Some(POOL_TAG),
    ),
    // A release only takes a pool member off an instance; the sweep releases from instances
    // that left the groups, which need not carry the group tag any more.
    ("ec2:DetachNetworkInterface", "instance", None),
    ("ec2:AssociateAddress", "elastic-ip", Some(POOL_TAG)),
    ("ec2:AssociateAddress", "instance", Some(GROUP_TAG)),
    ("ec2:AssociateAddress", "network-interface", None),
    ("ec2:DisassociateAddress", "elastic-ip", Some(POOL_TAG)),
    ("ec2:DisassociateAddress", "instance", None),
    ("ec2:DisassociateAddress", "network-interface", None),
    ("ec2:CreateTags", "network-interface", Some(POOL_TAG)),
    ("ec2:CreateTags", "elastic-ip", Some(POOL_TAG)),
    ("ec2:CreateTags", "instance", Some(GROUP_TAG)),
    ("ec2:DeleteTags", "network-interface", Some(POOL_TAG)),
    ("ec2:DeleteTags", "elastic-ip", Some(POOL_TAG)),
    ("ec2:DeleteTags", "instance", Some(GROUP_TAG)),
];
const POOL_TAG: &str = "aws:ResourceTag/pinhook:pool";
const GROUP_TAG: &str = "aws:ResourceTag/aws:autoscaling:groupName";

/// Condition keys of a statement, whatever the operator.
fn condition_keys(statement: &Value) -> Vec<String> {
    statement["Condition"]
        .as_object()
        .map(|operators| {
            operators
                .values()
                .filter_map(Value::as_object)
                .flat_map(|keys| keys.keys().cloned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_role_grants_no_wildcard_action() {
    for statement in statements(&template(&["licensed-app"])) {
        for action in as_list(&statement["Action"]) {
            let action = action.as_str().unwrap();
            assert!(
                !action.contains('*'),
                "wildcard action {action} in {statement}"
            );
        }
        assert_eq!(statement["Effect"], "Allow");
    }
}

#[test]
fn mutating_ec2_actions_carry_their_tag_condition_wherever_aws_allows_one() {
    let statements = statements(&template(&["licensed-app"]));
    let mutating: Vec<&str> = EC2_ACTIONS.iter().map(|(action, _, _)| *action).collect();
    let mut granted = Vec::new();
    for statement in &statements {
        for action in as_list(&statement["Action"])
            .iter()
            .filter_map(Value::as_str)
        {
            if !mutating.contains(&action) {
                continue;
            }
            for resource in as_list(&statement["Resource"])
                .iter()
                .filter_map(Value::as_str)
            {
                assert_ne!(resource, "*", "{action} on every resource: {statement}");
                let kind = ec2_resource_type(resource).unwrap_or_else(|| panic!("{resource}"));
                let expected = EC2_ACTIONS
                    .iter()
                    .find(|(a, k, _)| *a == action && *k == kind)
                    .unwrap_or_else(|| {
                        panic!("{action} on {kind} is not in the reviewed table: {statement}")
                    });
                if let Some(key) = expected.2 {
                    assert!(
                        condition_keys(statement).iter().any(|k| k == key),
                        "{action} on {kind} without {key}: {statement}"
                    );
                }
                granted.push((action.to_owned(), kind.to_owned()));
            }
        }
    }
    // and the role can do everything pinhook calls
    for (action, kind, _) in EC2_ACTIONS {
        assert!(
            granted.iter().any(|(a, k)| a == action && k == kind),
            "{action} on {kind} is not granted"
        );
    }
}

#[test]
fn the_group_condition_names_exactly_the_served_groups() {
    let statements = statements(&template(&["licensed-app", "egress-nodes"]));
    let key = "aws:ResourceTag/aws:autoscaling:groupName";
    let conditioned: Vec<&Value> = statements
        .iter()
        .filter(|s| s["Condition"]["StringEquals"].get(key).is_some())
        .collect();
    // The claims on group instances are the statements that carry it.
    for action in ["ec2:AttachNetworkInterface", "ec2:AssociateAddress"] {
        assert!(
            conditioned
                .iter()
                .any(|s| as_list(&s["Action"]).contains(&json!(action))),
            "{action} is granted without the group condition: {statements:?}"
        );
    }
    for statement in conditioned {
        assert_eq!(
            statement["Condition"]["StringEquals"][key],
            json!(["licensed-app", "egress-nodes"]),
            "{statement}"
        );
    }
}

#[test]
fn lifecycle_actions_can_be_completed_for_the_named_groups_only() {
    let statements = statements(&template(&["licensed-app", "egress-nodes"]));
    let lifecycle = statements
        .iter()
        .find(|s| as_list(&s["Action"]).contains(&json!("autoscaling:CompleteLifecycleAction")))
        .expect("a statement for CompleteLifecycleAction");
    assert!(
        as_list(&lifecycle["Action"])
            .contains(&json!("autoscaling:RecordLifecycleActionHeartbeat"))
    );
    let prefix =
        format!("arn:aws:autoscaling:{REGION}:{ACCOUNT}:autoScalingGroup:*:autoScalingGroupName/");
    assert_eq!(
        lifecycle["Resource"],
        json!([
            format!("{prefix}licensed-app"),
            format!("{prefix}egress-nodes")
        ])
    );
}

#[test]
fn only_describe_calls_are_granted_on_every_resource() {
    for statement in statements(&template(&["licensed-app"])) {
        if as_list(&statement["Resource"]).contains(&json!("*")) {
            for action in as_list(&statement["Action"]) {
                let name = action.as_str().unwrap().split(':').nth(1).unwrap();
                assert!(name.starts_with("Describe"), "{action} on *");
            }
        }
    }
}

/// EventBridge content filtering, for the forms the template uses: a list of values, nested
/// objects, and fields that must be present.
fn matches(pattern: &Value, event: &Value) -> bool {
    pattern.as_object().unwrap().iter().all(|(key, wanted)| {
        let Some(actual) = event.get(key) else {
            return false;
        };
        match wanted {
            Value::Object(_) => matches(wanted, actual),
            Value::Array(values) => match actual {
                Value::Array(actuals) => actuals.iter().any(|a| values.contains(a)),
                other => values.contains(other),
            },
            other => panic!("unexpected pattern {other}"),
        }
    })
}

#[test]
fn the_rule_matches_lifecycle_actions_of_the_named_groups_and_nothing_else() {
    let template = template(&["licensed-app"]);
    let rule = &template["Resources"]["LifecycleRule"]["Properties"];
    let pattern = &rule["EventPattern"];
    for sample in ["launch.json", "terminate.json", "warm-pool-launch.json"] {
        assert!(
            matches(pattern, &sample_event(sample)),
            "{sample} must reach pinhook"
        );
    }
    // the EIP samples are for another group than this deployment serves
    for sample in [
        "test-notification.json",
        "eip-launch.json",
        "eip-terminate.json",
    ] {
        assert!(
            !matches(pattern, &sample_event(sample)),
            "{sample} must not reach pinhook"
        );
    }
    let mut state_change = sample_event("launch.json");
    state_change["detail-type"] = json!("EC2 Instance State-change Notification");
    assert!(!matches(pattern, &state_change));
    let mut forged = sample_event("launch.json");
    forged["source"] = json!("my.app");
    assert!(!matches(pattern, &forged));
    let both = self::template(&["licensed-app", "eks-egress-nodes"]);
    let pattern = &both["Resources"]["LifecycleRule"]["Properties"]["EventPattern"];
    assert!(matches(pattern, &sample_event("eip-launch.json")));
    // and the rule sends them to the function, with retries and a dead-letter queue
    let target = &rule["Targets"][0];
    assert_eq!(target["Arn"], "getatt:PinhookFunction.Arn");
    assert!(
        target["RetryPolicy"]["MaximumRetryAttempts"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert_eq!(
        target["DeadLetterConfig"]["Arn"],
        "getatt:DeadLetterQueue.Arn"
    );
}

#[test]
fn with_hook_names_the_rule_narrows_on_pinhooks_hooks() {
    let other_tool = sample_event("other-tool-launch.json");
    // Without HookNames, every hook of the served groups reaches pinhook, which leaves other
    // tools' actions alone
    let all_hooks = template(&["licensed-app"]);
    let pattern = &all_hooks["Resources"]["LifecycleRule"]["Properties"]["EventPattern"];
    assert!(matches(pattern, &sample_event("launch.json")));
    assert!(matches(pattern, &other_tool));
    // With HookNames, other tools' hooks do not invoke the function at all
    let narrowed = template_with(&["licensed-app"], &["pinhook-launch", "pinhook-terminate"]);
    let pattern = &narrowed["Resources"]["LifecycleRule"]["Properties"]["EventPattern"];
    for sample in ["launch.json", "terminate.json"] {
        assert!(matches(pattern, &sample_event(sample)), "{sample}");
    }
    assert!(!matches(pattern, &other_tool));
}

#[test]
fn the_function_is_arm64_on_provided_al2023_built_by_cargo_lambda_with_json_logs() {
    let template = template(&["licensed-app"]);
    let function = &template["Resources"]["PinhookFunction"];
    assert_eq!(function["Metadata"]["BuildMethod"], "rust-cargolambda");
    assert_eq!(function["Properties"]["Runtime"], "provided.al2023");
    assert_eq!(function["Properties"]["Architectures"], json!(["arm64"]));
    assert_eq!(function["Properties"]["LoggingConfig"]["LogFormat"], "JSON");
    let failures = &function["Properties"]["EventInvokeConfig"]["DestinationConfig"]["OnFailure"];
    assert_eq!(failures["Destination"], "getatt:DeadLetterQueue.Arn");
    let alarm = &template["Resources"]["DeadLetterAlarm"]["Properties"];
    assert_eq!(
        alarm["Dimensions"][0]["Value"],
        "getatt:DeadLetterQueue.QueueName"
    );
}

#[test]
fn the_sweep_runs_on_a_schedule_over_the_same_groups_as_the_rule() {
    let template = template(&["licensed-app", "egress-nodes"]);
    let resources = &template["Resources"];
    let rule = &resources["SweepRule"];
    assert_eq!(rule["Condition"], "Sweep");
    assert_eq!(rule["Properties"]["ScheduleExpression"], "rate(5 minutes)");
    assert_eq!(
        rule["Properties"]["Targets"][0]["Arn"],
        "getatt:PinhookFunction.Arn"
    );
    assert_eq!(
        resources["SweepRulePermission"]["Properties"]["SourceArn"],
        "getatt:SweepRule.Arn"
    );
    let variables = &resources["PinhookFunction"]["Properties"]["Environment"]["Variables"];
    assert_eq!(variables["PINHOOK_GROUPS"], "licensed-app,egress-nodes");
    // the function reads what it serves: the groups' instances and hooks
    let describe = statements(&template)
        .into_iter()
        .find(|s| as_list(&s["Resource"]).contains(&json!("*")))
        .expect("the describe statement");
    for action in [
        "autoscaling:DescribeAutoScalingGroups",
        "autoscaling:DescribeLifecycleHooks",
        "ec2:DescribeInstances",
    ] {
        assert!(
            as_list(&describe["Action"]).contains(&json!(action)),
            "{action}"
        );
    }
    // the scheduled sample event is what the schedule sends
    let scheduled = sample_event("scheduled.json");
    assert_eq!(scheduled["source"], "aws.events");
    assert_eq!(scheduled["detail-type"], "Scheduled Event");
}

#[test]
fn the_optional_queue_is_encrypted_drained_with_batch_item_failures_and_fed_by_the_hooks() {
    let with = template_full(&["licensed-app"], &[], true);
    let resources = &with["Resources"];
    // the queue and its dead-letter queue, encrypted at rest, redriven after five receives
    let queue = &resources["LifecycleQueue"]["Properties"];
    assert_eq!(queue["SqsManagedSseEnabled"], true);
    assert_eq!(
        queue["RedrivePolicy"]["deadLetterTargetArn"],
        "getatt:LifecycleQueueDeadLetters.Arn"
    );
    assert_eq!(queue["RedrivePolicy"]["maxReceiveCount"], 5);
    assert!(queue["VisibilityTimeout"].as_u64().unwrap() >= 6 * 300);
    assert_eq!(
        resources["LifecycleQueueDeadLetters"]["Properties"]["SqsManagedSseEnabled"],
        true
    );
    // the event source mapping reports only the failed records
    let mapping = &resources["LifecycleQueueMapping"]["Properties"];
    assert_eq!(mapping["EventSourceArn"], "getatt:LifecycleQueue.Arn");
    assert_eq!(
        mapping["FunctionResponseTypes"],
        json!(["ReportBatchItemFailures"])
    );
    assert!(mapping["BatchSize"].as_u64().unwrap() <= 10);
    // Auto Scaling publishes with a role of its own, limited to the queue
    let role = &resources["LifecycleNotificationRole"]["Properties"];
    assert_eq!(
        role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"],
        "autoscaling.amazonaws.com"
    );
    let publish = &role["Policies"][0]["PolicyDocument"]["Statement"][0];
    assert_eq!(
        publish["Action"],
        json!(["sqs:SendMessage", "sqs:GetQueueUrl"])
    );
    assert_eq!(publish["Resource"], "getatt:LifecycleQueue.Arn");
    // the created hooks publish to it
    for hook in ["LaunchHook", "TerminateHook"] {
        let properties = &resources[hook]["Properties"];
        assert_eq!(
            properties["NotificationTargetARN"],
            "getatt:LifecycleQueue.Arn"
        );
        assert_eq!(
            properties["RoleARN"],
            "getatt:LifecycleNotificationRole.Arn"
        );
    }
    // the function may drain the queue, and nothing more of SQS
    let drain = statements(&with)
        .into_iter()
        .find(|s| as_list(&s["Action"]).contains(&json!("sqs:ReceiveMessage")))
        .expect("a statement to drain the queue");
    assert_eq!(drain["Resource"], "getatt:LifecycleQueue.Arn");
    assert_eq!(resources["LifecycleRule"]["Properties"]["State"], "ENABLED");
    // and the function has a concurrency limit
    assert_eq!(
        resources["PinhookFunction"]["Properties"]["ReservedConcurrentExecutions"],
        5
    );
    // without the queue, no statement about it
    let without = template(&["licensed-app"]);
    assert!(
        statements(&without)
            .iter()
            .all(|s| !as_list(&s["Action"]).contains(&json!("sqs:ReceiveMessage")))
    );
    assert!(without["Resources"]["LaunchHook"]["Properties"]["NotificationTargetARN"].is_null());
}

#[test]
fn the_state_change_rule_and_its_statements_serve_tagged_instances_outside_any_group_only() {
    // Without StateChangeRule (NONE, the default) nothing of it exists
    let without = template(&["licensed-app"]);
    assert!(without["Resources"]["InstanceStateRule"].is_null());
    let statement =
        |template: &Value, sid: &str| statements(template).into_iter().find(|s| s["Sid"] == sid);
    let sid = "MembersArePinnedToTaggedInstancesWithoutAGroupOnly";
    assert_eq!(statement(&without, sid), None);

    // With it, a rule for the states that act, matching the samples and not a stop
    let with = template_given(
        &["licensed-app"],
        &[],
        false,
        &[("StateChangeRule", json!("ENABLED"))],
    );
    let rule = &with["Resources"]["InstanceStateRule"]["Properties"];
    assert_eq!(rule["State"], "ENABLED");
    let pattern = &rule["EventPattern"];
    for sample in ["instance-running.json", "instance-terminated.json"] {
        assert!(matches(pattern, &sample_event(sample)), "{sample}");
    }
    let mut stopped = sample_event("instance-running.json");
    stopped["detail"]["state"] = json!("stopped");
    assert!(!matches(pattern, &stopped));
    assert!(!matches(pattern, &sample_event("launch.json")));

    // and claims and lease tags only on instances tagged pinhook:pin outside any group
    let tagged_only = json!({
        "aws:ResourceTag/pinhook:pin": "false",
        "aws:ResourceTag/aws:autoscaling:groupName": "true",
    });
    let claims = statement(&with, sid).expect("the claims on tagged instances");
    assert_eq!(
        as_list(&claims["Action"]),
        [
            json!("ec2:AttachNetworkInterface"),
            json!("ec2:AssociateAddress")
        ]
    );
    assert_eq!(claims["Condition"]["Null"], tagged_only, "{claims}");
    let leases = statement(&with, "LeaseTagsOnTaggedInstancesWithoutAGroupOnly")
        .expect("the lease tags on tagged instances");
    assert_eq!(leases["Condition"]["Null"], tagged_only, "{leases}");
    assert_eq!(
        leases["Condition"]["ForAllValues:StringEquals"]["aws:TagKeys"],
        json!(["pinhook:eni", "pinhook:eip"])
    );
}

/// The alarms on one set of parameters: name → properties.
fn alarms(template: &Value) -> BTreeMap<String, Value> {
    template["Resources"]
        .as_object()
        .expect("the template's resources")
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::CloudWatch::Alarm")
        .map(|(name, r)| (name.clone(), r["Properties"].clone()))
        .collect()
}

#[test]
fn the_alarms_watch_failed_actions_exhausted_pools_failed_releases_drift_and_dead_letters() {
    use pinhook::metrics::{DRIFT, FAILED_ACTIONS, POOL_EXHAUSTED, RELEASE_FAILED};
    let topic = "arn:aws:sns:us-east-1:123456789012:oncall";
    let template = template_given(
        &["licensed-app"],
        &[],
        true,
        &[
            ("AlarmTopicArn", json!(topic)),
            ("CreateAlarmTopic", json!("true")),
        ],
    );
    let alarms = alarms(&template);
    // pinhook's own metrics, each by the name src/metrics.rs emits, over every pool (a Metrics
    // Insights query), firing on the first count; drift only when it persists over three sweeps
    for (metric, periods) in [
        (FAILED_ACTIONS, 1),
        (POOL_EXHAUSTED, 1),
        (RELEASE_FAILED, 1),
        (DRIFT, 3),
    ] {
        let (name, alarm) = alarms
            .iter()
            .find(|(_, a)| {
                as_list(&a["Metrics"]).iter().any(|m| {
                    m["Expression"]
                        .as_str()
                        .is_some_and(|e| e.contains(&format!("({metric})")))
                })
            })
            .unwrap_or_else(|| panic!("no alarm watches {metric}: {alarms:?}"));
        assert_eq!(alarm["Threshold"], json!(0), "{name}");
        assert_eq!(
            alarm["ComparisonOperator"], "GreaterThanThreshold",
            "{name}"
        );
        assert_eq!(alarm["EvaluationPeriods"], json!(periods), "{name}");
        assert_eq!(alarm["DatapointsToAlarm"], json!(periods), "{name}");
        assert_eq!(alarm["TreatMissingData"], "notBreaching", "{name}");
    }
    // and both dead-letter queues
    let mut queues: Vec<&Value> = alarms
        .values()
        .filter(|a| a["MetricName"] == "ApproximateNumberOfMessagesVisible")
        .map(|a| &a["Dimensions"][0]["Value"])
        .collect();
    queues.sort_by_key(|v| v.to_string());
    assert_eq!(
        queues,
        [
            &json!("getatt:DeadLetterQueue.QueueName"),
            &json!("getatt:LifecycleQueueDeadLetters.QueueName")
        ]
    );
    assert_eq!(alarms.len(), 6, "{:?}", alarms.keys());
    // every one notifies the topic the stack creates and the one it was given
    for (name, alarm) in &alarms {
        assert_eq!(
            alarm["AlarmActions"],
            json!(["ref:AlarmTopic", topic]),
            "{name}"
        );
    }
}
