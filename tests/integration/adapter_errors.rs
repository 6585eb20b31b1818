//! Error paths the emulator cannot produce — access denied, throttling, 5xx, answers with fields
//! missing — through the real adapters and the real SDK deserialisers, with aws-smithy-mocks
//! serving the XML AWS sends, with AWS's real error codes.

use std::time::Duration;

use aws_sdk_autoscaling::Client as AsgSdk;
use aws_sdk_ec2::Client as Ec2Sdk;
use aws_smithy_mocks::{Rule, mock};
use pinhook::aws::{AutoScalingClient, Ec2Client};
use pinhook::handler::{Completion, HandlerError};
use pinhook::{Deadline, Outcome, Pinhook, Summary};
use serde_json::{Value, json};

use crate::support::fast_settings;
use crate::support::mocks::{asg_error, asg_ok, ec2_error, ec2_ok};

fn ec2(rules: &[&Rule]) -> Ec2Sdk {
    crate::support::mocks::ec2(rules, &fast_settings())
}

fn asg(rules: &[&Rule]) -> AsgSdk {
    crate::support::mocks::asg(rules, &fast_settings())
}

const INSTANCE: &str = "i-0aaaaaaaaaaaaaaa1";
const ENI: &str = "eni-0bbbbbbbbbbbbbbb1";

fn waiting_instance(state: &str) -> String {
    asg_ok(
        "DescribeAutoScalingInstances",
        &format!(
            "<AutoScalingInstances><member><InstanceId>{INSTANCE}</InstanceId><AutoScalingGroupName>g</AutoScalingGroupName><AvailabilityZone>us-east-1a</AvailabilityZone><LifecycleState>{state}</LifecycleState><HealthStatus>HEALTHY</HealthStatus><ProtectedFromScaleIn>false</ProtectedFromScaleIn></member></AutoScalingInstances>"
        ),
    )
}

fn enis(items: &str) -> String {
    ec2_ok(
        "DescribeNetworkInterfaces",
        &format!("<networkInterfaceSet>{items}</networkInterfaceSet>"),
    )
}

fn pool_eni(attached: bool) -> String {
    let (status, attachment) = if attached {
        (
            "in-use",
            format!(
                "<attachment><attachmentId>eni-attach-0ccccccccccccccc1</attachmentId><instanceId>{INSTANCE}</instanceId><deviceIndex>1</deviceIndex><status>attached</status></attachment>"
            ),
        )
    } else {
        ("available", String::new())
    };
    format!(
        "<item><networkInterfaceId>{ENI}</networkInterfaceId><availabilityZone>us-east-1a</availabilityZone><status>{status}</status><macAddress>02:00:00:00:00:01</macAddress><privateIpAddress>10.0.1.10</privateIpAddress><tagSet><item><key>pinhook:pool</key><value>lic</value></item></tagSet>{attachment}</item>"
    )
}

fn launch_event() -> Value {
    json!({
        "version": "0", "id": "1", "detail-type": "EC2 Instance-launch Lifecycle Action", "source": "aws.autoscaling",
        "account": "123456789012", "time": "2026-11-21T09:00:00Z", "region": "us-east-1", "resources": [],
        "detail": {
            "LifecycleActionToken": "tok-1", "AutoScalingGroupName": "g", "LifecycleHookName": "h",
            "EC2InstanceId": INSTANCE, "LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING",
            "NotificationMetadata": "{\"pin\":\"eni\",\"pool\":\"lic\"}"
        }
    })
}

/// The EC2 answers of a launch that pins `ENI`, with the attach answered by `attach`.
struct Ec2Launch {
    by_instance: Rule,
    by_pool: Rule,
    by_id: Rule,
    attach: Rule,
    tags: Rule,
}

impl Ec2Launch {
    fn new(attach: Rule) -> Self {
        Self {
            by_instance: mock!(Ec2Sdk::describe_network_interfaces)
                .match_requests(|r| {
                    r.filters()
                        .iter()
                        .any(|f| f.name() == Some("attachment.instance-id"))
                })
                .sequence()
                .http_status(200, Some(enis("")))
                .repeatedly()
                .build(),
            by_pool: mock!(Ec2Sdk::describe_network_interfaces)
                .match_requests(|r| {
                    r.filters()
                        .iter()
                        .any(|f| f.name() == Some("tag:pinhook:pool"))
                })
                .sequence()
                .http_status(200, Some(enis(&pool_eni(false))))
                .repeatedly()
                .build(),
            by_id: mock!(Ec2Sdk::describe_network_interfaces)
                .match_requests(|r| !r.network_interface_ids().is_empty())
                .sequence()
                .http_status(200, Some(enis(&pool_eni(true))))
                .repeatedly()
                .build(),
            attach,
            tags: mock!(Ec2Sdk::create_tags)
                .sequence()
                .http_status(200, Some(ec2_ok("CreateTags", "<return>true</return>")))
                .repeatedly()
                .build(),
        }
    }

    fn attach_ok() -> Rule {
        mock!(Ec2Sdk::attach_network_interface)
            .sequence()
            .http_status(
                200,
                Some(ec2_ok(
                    "AttachNetworkInterface",
                    "<attachmentId>eni-attach-0ccccccccccccccc1</attachmentId><networkCardIndex>0</networkCardIndex>",
                )),
            )
            .repeatedly()
            .build()
    }

    fn client(&self) -> Ec2Sdk {
        ec2(&[
            &self.by_instance,
            &self.by_pool,
            &self.by_id,
            &self.attach,
            &self.tags,
        ])
    }
}

fn complete_answering(status: u16, body: String) -> Rule {
    mock!(AsgSdk::complete_lifecycle_action)
        .sequence()
        .http_status(status, Some(body))
        .repeatedly()
        .build()
}

fn complete_ok() -> Rule {
    complete_answering(200, asg_ok("CompleteLifecycleAction", ""))
}

fn heartbeat_ok() -> Rule {
    mock!(AsgSdk::record_lifecycle_action_heartbeat)
        .sequence()
        .http_status(200, Some(asg_ok("RecordLifecycleActionHeartbeat", "")))
        .repeatedly()
        .build()
}

fn describe_answering(status: u16, body: String) -> Rule {
    mock!(AsgSdk::describe_auto_scaling_instances)
        .sequence()
        .http_status(status, Some(body))
        .repeatedly()
        .build()
}

async fn run(asg_rules: &[&Rule], ec2_client: Ec2Sdk) -> Result<Summary, HandlerError> {
    let app = Pinhook::new(
        AutoScalingClient::new(asg(asg_rules)),
        Ec2Client::new(ec2_client),
        fast_settings(),
    );
    app.handle(&launch_event(), Deadline::after(Duration::from_secs(120)))
        .await
}

#[tokio::test(start_paused = true)]
async fn access_denied_on_attach_abandons_and_names_the_missing_permission() {
    let attach = mock!(Ec2Sdk::attach_network_interface)
        .sequence()
        .http_status(
            403,
            Some(ec2_error(
                "UnauthorizedOperation",
                "You are not authorized to perform this operation.",
            )),
        )
        .repeatedly()
        .build();
    let ec2 = Ec2Launch::new(attach);
    let describe = describe_answering(200, waiting_instance("Pending:Wait"));
    let complete = mock!(AsgSdk::complete_lifecycle_action)
        .match_requests(|r| {
            r.lifecycle_action_result() == Some("ABANDON")
                && r.lifecycle_action_token() == Some("tok-1")
        })
        .sequence()
        .http_status(200, Some(asg_ok("CompleteLifecycleAction", "")))
        .repeatedly()
        .build();

    let summary = run(&[&describe, &complete], ec2.client()).await.unwrap();

    assert_eq!(summary.outcome, Outcome::Abandon);
    let reason = summary.reason.unwrap_or_default();
    assert!(
        reason.contains("UnauthorizedOperation")
            && reason.contains("grant ec2:AttachNetworkInterface"),
        "{reason}"
    );
    assert_eq!(complete.num_calls(), 1);
    assert_eq!(ec2.attach.num_calls(), 1, "access denied is not retried");
}

#[tokio::test(start_paused = true)]
async fn throttling_is_retried_with_backoff_and_the_launch_still_pins() {
    let attach = mock!(Ec2Sdk::attach_network_interface)
        .sequence()
        .http_status(503, Some(ec2_error("RequestLimitExceeded", "Request limit exceeded.")))
        .times(2)
        .http_status(
            200,
            Some(ec2_ok(
                "AttachNetworkInterface",
                "<attachmentId>eni-attach-0ccccccccccccccc1</attachmentId><networkCardIndex>0</networkCardIndex>",
            )),
        )
        .build();
    let ec2 = Ec2Launch::new(attach);
    let describe = mock!(AsgSdk::describe_auto_scaling_instances)
        .sequence()
        .http_status(400, Some(asg_error("Throttling", "Rate exceeded")))
        .http_status(
            500,
            Some(asg_error("InternalFailure", "An internal error occurred")),
        )
        .http_status(200, Some(waiting_instance("Pending:Wait")))
        .build();
    let complete = complete_ok();

    let summary = run(&[&describe, &complete], ec2.client()).await.unwrap();

    assert_eq!(summary.outcome, Outcome::Continue, "{summary:?}");
    assert_eq!(summary.member.as_deref(), Some(ENI));
    assert_eq!(ec2.attach.num_calls(), 3);
    assert_eq!(describe.num_calls(), 3);
    assert_eq!(complete.num_calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn throttling_that_outlasts_the_retries_is_returned_for_redelivery_without_completing() {
    let ec2 = Ec2Launch::new(Ec2Launch::attach_ok());
    let describe = describe_answering(400, asg_error("Throttling", "Rate exceeded"));
    let complete = complete_ok();
    let heartbeat = heartbeat_ok();

    let err = run(&[&describe, &complete, &heartbeat], ec2.client())
        .await
        .unwrap_err();

    // Throttling is no reason to give up: the action is left pending, kept alive, and the
    // error returned so that a redelivery carries on.
    assert!(matches!(err, HandlerError::Unfinished { .. }), "{err}");
    assert!(err.to_string().contains("Throttling"), "{err}");
    // The launch was tried again, each try making the attempts the settings allow, until the
    // deadline (less the completion's reserve) left no time for another.
    let attempts = fast_settings().max_attempts as usize;
    assert!(describe.num_calls() > attempts, "{}", describe.num_calls());
    assert!(err.to_string().contains("tries"), "{err}");
    assert_eq!(complete.num_calls(), 0);
    assert!(heartbeat.num_calls() >= 1, "{}", heartbeat.num_calls());
    assert_eq!(
        ec2.attach.num_calls(),
        0,
        "nothing changes before the check has passed"
    );
}

#[tokio::test(start_paused = true)]
async fn server_errors_on_attach_are_returned_for_redelivery() {
    let attach = mock!(Ec2Sdk::attach_network_interface)
        .sequence()
        .http_status(
            500,
            Some(ec2_error("InternalError", "An internal error has occurred")),
        )
        .repeatedly()
        .build();
    let ec2 = Ec2Launch::new(attach);
    let describe = describe_answering(200, waiting_instance("Pending:Wait"));
    let complete = complete_ok();
    let heartbeat = heartbeat_ok();

    let err = run(&[&describe, &complete, &heartbeat], ec2.client())
        .await
        .unwrap_err();

    assert!(matches!(err, HandlerError::Unfinished { .. }), "{err}");
    assert!(err.to_string().contains("InternalError"), "{err}");
    assert_eq!(complete.num_calls(), 0);
    // kept alive while it tried again, and once more as it left the action pending
    assert!(heartbeat.num_calls() >= 1, "{}", heartbeat.num_calls());
}

#[tokio::test(start_paused = true)]
async fn no_active_lifecycle_action_counts_as_done() {
    let ec2 = Ec2Launch::new(Ec2Launch::attach_ok());
    let describe = describe_answering(200, waiting_instance("Pending:Wait"));
    let complete = complete_answering(
        400,
        asg_error(
            "ValidationError",
            "No active Lifecycle Action found with token tok-1",
        ),
    );

    let summary = run(&[&describe, &complete], ec2.client()).await.unwrap();

    assert_eq!(summary.outcome, Outcome::Continue);
    assert_eq!(summary.completion, Some(Completion::AlreadyCompleted));
    assert_eq!(complete.num_calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_completion_refused_for_lack_of_permission_is_an_error_naming_it() {
    let ec2 = Ec2Launch::new(Ec2Launch::attach_ok());
    let describe = describe_answering(200, waiting_instance("Pending:Wait"));
    let complete = complete_answering(
        403,
        asg_error(
            "AccessDenied",
            "User: arn:aws:sts::123456789012:assumed-role/pinhook is not authorized to perform: autoscaling:CompleteLifecycleAction",
        ),
    );

    let err = run(&[&describe, &complete], ec2.client())
        .await
        .unwrap_err();

    assert!(matches!(err, HandlerError::Complete { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("grant autoscaling:CompleteLifecycleAction"),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn access_denied_on_the_check_still_completes_with_the_failure_outcome() {
    // The completion is harmless even unchecked: Auto Scaling refuses a token that is not active.
    let ec2 = Ec2Launch::new(Ec2Launch::attach_ok());
    let describe = describe_answering(
        403,
        asg_error(
            "AccessDenied",
            "not authorized to perform: autoscaling:DescribeAutoScalingInstances",
        ),
    );
    let complete = complete_ok();

    let summary = run(&[&describe, &complete], ec2.client()).await.unwrap();

    assert_eq!(summary.outcome, Outcome::Abandon, "{summary:?}");
    assert!(
        summary
            .reason
            .unwrap_or_default()
            .contains("autoscaling:DescribeAutoScalingInstances")
    );
    assert_eq!(complete.num_calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn answers_with_fields_missing_do_not_panic() {
    // DescribeAutoScalingInstances without a lifecycle state, and ENIs without ids, zones,
    // status or attachment details: each is skipped, and the launch ends with a clear outcome.
    let partial_instance = asg_ok(
        "DescribeAutoScalingInstances",
        &format!(
            "<AutoScalingInstances><member><InstanceId>{INSTANCE}</InstanceId><AutoScalingGroupName>g</AutoScalingGroupName></member></AutoScalingInstances>"
        ),
    );
    let describe = describe_answering(200, partial_instance);
    let ragged = enis(
        "<item></item><item><networkInterfaceId>eni-0ddd</networkInterfaceId></item><item><networkInterfaceId>not-an-eni</networkInterfaceId><attachment></attachment></item>",
    );
    let all_ragged = mock!(Ec2Sdk::describe_network_interfaces)
        .sequence()
        .http_status(200, Some(ragged))
        .repeatedly()
        .build();
    let attach = Ec2Launch::attach_ok();
    let complete = complete_ok();

    let summary = run(&[&describe, &complete], ec2(&[&all_ragged, &attach]))
        .await
        .unwrap();

    assert_eq!(summary.outcome, Outcome::Stale, "{summary:?}");
    assert_eq!(attach.num_calls(), 0);
    assert_eq!(complete.num_calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn access_denied_on_associate_address_ends_with_on_failure_naming_the_permission() {
    let mut event = launch_event();
    event["detail"]["NotificationMetadata"] =
        json!("{\"pin\":\"eip\",\"pool\":\"egress\",\"on_failure\":\"continue\"}");
    let primary = format!(
        "<item><networkInterfaceId>eni-0aaaaaaaaaaaaaaa0</networkInterfaceId><availabilityZone>us-east-1a</availabilityZone><status>in-use</status><attachment><attachmentId>eni-attach-0aaaaaaaaaaaaaaa0</attachmentId><instanceId>{INSTANCE}</instanceId><deviceIndex>0</deviceIndex><status>attached</status></attachment></item>"
    );
    let interfaces = mock!(Ec2Sdk::describe_network_interfaces)
        .sequence()
        .http_status(200, Some(enis(&primary)))
        .repeatedly()
        .build();
    let addresses = mock!(Ec2Sdk::describe_addresses)
        .sequence()
        .http_status(
            200,
            Some(ec2_ok(
                "DescribeAddresses",
                "<addressesSet><item><allocationId>eipalloc-0eeeeeeeeeeeeeee1</allocationId><publicIp>203.0.113.10</publicIp><domain>vpc</domain><tagSet><item><key>pinhook:pool</key><value>egress</value></item></tagSet></item></addressesSet>",
            )),
        )
        .repeatedly()
        .build();
    let associate = mock!(Ec2Sdk::associate_address)
        .sequence()
        .http_status(
            403,
            Some(ec2_error(
                "UnauthorizedOperation",
                "You are not authorized to perform this operation.",
            )),
        )
        .repeatedly()
        .build();
    let describe = describe_answering(200, waiting_instance("Pending:Wait"));
    let complete = mock!(AsgSdk::complete_lifecycle_action)
        .match_requests(|r| r.lifecycle_action_result() == Some("CONTINUE"))
        .sequence()
        .http_status(200, Some(asg_ok("CompleteLifecycleAction", "")))
        .repeatedly()
        .build();
    let app = Pinhook::new(
        AutoScalingClient::new(asg(&[&describe, &complete])),
        Ec2Client::new(ec2(&[&interfaces, &addresses, &associate])),
        fast_settings(),
    );

    let summary = app
        .handle(&event, Deadline::after(Duration::from_secs(60)))
        .await
        .unwrap();

    assert_eq!(summary.outcome, Outcome::Continue, "{summary:?}");
    assert_eq!(summary.member, None);
    assert!(
        summary
            .reason
            .unwrap_or_default()
            .contains("grant ec2:AssociateAddress")
    );
    assert_eq!(complete.num_calls(), 1);
}

/// The sweep of group "g" through mocked Auto Scaling and EC2 answers.
async fn sweep_with(
    asg_rules: &[&Rule],
    ec2_client: Ec2Sdk,
) -> Result<pinhook::SweepReport, pinhook::aws::AwsError> {
    let settings = pinhook::config::Settings {
        groups: vec!["g".into()],
        ..fast_settings()
    };
    Pinhook::new(
        AutoScalingClient::new(asg(asg_rules)),
        Ec2Client::new(ec2_client),
        settings,
    )
    .with_metrics(pinhook::metrics::MetricsSink::Discard)
    .sweep(
        &pinhook::SweepOptions::default(),
        Deadline::after(Duration::from_secs(60)),
    )
    .await
}

#[tokio::test(start_paused = true)]
async fn a_sweep_over_answers_with_fields_missing_does_not_panic() {
    // A group described without its name, one without instance details, hooks without names,
    // and a pool ENI attached to an instance that AWS describes only in part
    let groups = asg_ok(
        "DescribeAutoScalingGroups",
        &format!(
            "<AutoScalingGroups><member></member><member><AutoScalingGroupName>g</AutoScalingGroupName><Instances><member></member><member><InstanceId>{INSTANCE}</InstanceId></member></Instances></member></AutoScalingGroups>"
        ),
    );
    let groups = mock!(AsgSdk::describe_auto_scaling_groups)
        .sequence()
        .http_status(200, Some(groups))
        .repeatedly()
        .build();
    let hooks = asg_ok(
        "DescribeLifecycleHooks",
        r#"<LifecycleHooks><member></member><member><LifecycleHookName>pinhook-launch</LifecycleHookName><LifecycleTransition>autoscaling:EC2_INSTANCE_LAUNCHING</LifecycleTransition><NotificationMetadata>{"pin":"eni","pool":"lic"}</NotificationMetadata></member></LifecycleHooks>"#,
    );
    let hooks = mock!(AsgSdk::describe_lifecycle_hooks)
        .sequence()
        .http_status(200, Some(hooks))
        .repeatedly()
        .build();
    let describe = describe_answering(
        200,
        asg_ok(
            "DescribeAutoScalingInstances",
            "<AutoScalingInstances></AutoScalingInstances>",
        ),
    );
    let pool = mock!(Ec2Sdk::describe_network_interfaces)
        .sequence()
        .http_status(200, Some(enis(&format!("<item></item>{}", pool_eni(true)))))
        .repeatedly()
        .build();
    let instances = mock!(Ec2Sdk::describe_instances)
        .sequence()
        .http_status(
            200,
            Some(ec2_ok(
                "DescribeInstances",
                "<reservationSet><item><instancesSet><item></item></instancesSet></item></reservationSet>",
            )),
        )
        .repeatedly()
        .build();
    let detach = mock!(Ec2Sdk::detach_network_interface)
        .sequence()
        .http_status(
            200,
            Some(ec2_ok("DetachNetworkInterface", "<return>true</return>")),
        )
        .repeatedly()
        .build();

    let report = sweep_with(
        &[&groups, &hooks, &describe],
        ec2(&[&pool, &instances, &detach]),
    )
    .await
    .unwrap();

    // The ENI's holder is in no group and EC2 does not show it: it is gone, and the member is
    // released; the partial group and hooks are skipped, never a panic.
    assert_eq!(report.pools.len(), 1, "{report:?}");
    assert_eq!(report.pools[0].members.len(), 1, "{report:?}");
    assert_eq!(detach.num_calls(), 1, "{report:?}");
}

#[tokio::test(start_paused = true)]
async fn a_sweep_denied_its_reads_says_which_permission_is_missing() {
    let denied = mock!(AsgSdk::describe_auto_scaling_groups)
        .sequence()
        .http_status(
            403,
            Some(asg_error(
                "AccessDenied",
                "User: arn:aws:sts::123456789012:assumed-role/pinhook/x is not authorized to perform: autoscaling:DescribeAutoScalingGroups",
            )),
        )
        .repeatedly()
        .build();
    // The sweep reads the instances tagged pinhook:pin beside the groups: none here.
    let tagged = mock!(Ec2Sdk::describe_instances)
        .sequence()
        .http_status(200, Some(ec2_ok("DescribeInstances", "<reservationSet/>")))
        .repeatedly()
        .build();

    let err = sweep_with(&[&denied], ec2(&[&tagged])).await.unwrap_err();

    assert!(
        err.to_string()
            .contains("grant autoscaling:DescribeAutoScalingGroups to the function's role"),
        "{err}"
    );
}
