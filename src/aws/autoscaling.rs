//! The Auto Scaling adapter: instances, hooks and lifecycle actions, on the AWS SDK.

use tracing::{instrument, warn};

use super::sdk::send;
use super::{AutoScalingApi, AwsError};
use crate::model::{
    ActionRef, Group, GroupInstance, Hook, InstanceId, LifecycleResult, LifecycleState, Transition,
};

/// DescribeAutoScalingInstances takes at most 50 instance ids per call, and answers at most 50
/// per page.
const DESCRIBE_BATCH: usize = 50;
/// DescribeAutoScalingGroups takes at most 100 group names per call, and answers at most 100 per
/// page; DescribeWarmPool answers at most 100 per page.
const GROUPS_BATCH: usize = 100;

type Config = aws_sdk_autoscaling::config::Builder;

/// [`AutoScalingApi`] on the AWS SDK for Rust.
#[derive(Debug, Clone)]
pub struct AutoScalingClient {
    client: aws_sdk_autoscaling::Client,
}

impl AutoScalingClient {
    pub fn new(client: aws_sdk_autoscaling::Client) -> Self {
        Self { client }
    }
}

impl AutoScalingApi for AutoScalingClient {
    #[instrument(level = "debug", skip(self))]
    async fn describe_instances(
        &self,
        instances: &[InstanceId],
    ) -> Result<Vec<GroupInstance>, AwsError> {
        const OP: &str = "autoscaling:DescribeAutoScalingInstances";
        let mut found = Vec::new();
        for batch in instances.chunks(DESCRIBE_BATCH) {
            let mut token = None;
            loop {
                let request = self
                    .client
                    .describe_auto_scaling_instances()
                    .set_instance_ids(Some(batch.iter().map(|i| i.as_str().to_owned()).collect()))
                    .max_records(DESCRIBE_BATCH as i32)
                    .set_next_token(token.take());
                let page = send!(OP, request, Config)?;
                for details in page.auto_scaling_instances() {
                    let instance = group_instance(
                        details.instance_id(),
                        details.auto_scaling_group_name(),
                        details.availability_zone(),
                        details.lifecycle_state(),
                        details.health_status(),
                    );
                    match instance {
                        Some(instance) if batch.contains(&instance.instance) => {
                            found.push(instance)
                        }
                        Some(_) => {}
                        None => warn!(
                            ?details,
                            "skipping an Auto Scaling instance AWS described only in part"
                        ),
                    }
                }
                match page.next_token() {
                    Some(next) if !next.is_empty() => token = Some(next.to_owned()),
                    _ => break,
                }
            }
        }
        Ok(found)
    }

    #[instrument(level = "debug", skip(self))]
    async fn warm_pool_instances(&self, group: &str) -> Result<Vec<GroupInstance>, AwsError> {
        const OP: &str = "autoscaling:DescribeWarmPool";
        let mut found = Vec::new();
        let mut next_token: Option<String> = None;
        loop {
            let request = self
                .client
                .describe_warm_pool()
                .auto_scaling_group_name(group)
                .max_records(GROUPS_BATCH as i32)
                .set_next_token(next_token.take());
            let output: Result<_, AwsError> = send!(OP, request, Config);
            let output = match output {
                Ok(output) => output,
                Err(err) => {
                    // A group that does not exist has no warm pool instances.
                    if err.code.as_deref() == Some("ValidationError")
                        && err
                            .message
                            .as_deref()
                            .is_some_and(|m| m.contains("not found"))
                    {
                        return Ok(Vec::new());
                    }
                    return Err(err);
                }
            };
            for instance in output.instances() {
                let state = instance.lifecycle_state().map(|s| s.as_str());
                match group_instance(
                    instance.instance_id(),
                    Some(group),
                    instance.availability_zone(),
                    state,
                    instance.health_status(),
                ) {
                    Some(instance) => found.push(instance),
                    None => warn!(
                        ?instance,
                        "skipping a warm pool instance AWS described only in part"
                    ),
                }
            }
            match output.next_token() {
                Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
                _ => return Ok(found),
            }
        }
    }

    #[instrument(level = "debug", skip(self))]
    async fn groups(&self, names: &[String]) -> Result<Vec<Group>, AwsError> {
        const OP: &str = "autoscaling:DescribeAutoScalingGroups";
        let mut found = Vec::new();
        for batch in names.chunks(GROUPS_BATCH) {
            let mut token = None;
            loop {
                let request = self
                    .client
                    .describe_auto_scaling_groups()
                    .set_auto_scaling_group_names(Some(batch.to_vec()))
                    .max_records(GROUPS_BATCH as i32)
                    .set_next_token(token.take());
                let page = send!(OP, request, Config)?;
                for group in page.auto_scaling_groups() {
                    let Some(name) = group.auto_scaling_group_name().filter(|n| !n.is_empty())
                    else {
                        warn!(
                            ?group,
                            "skipping an Auto Scaling group AWS described without a name"
                        );
                        continue;
                    };
                    let instances = group
                        .instances()
                        .iter()
                        .filter_map(|i| {
                            group_instance(
                                i.instance_id(),
                                Some(name),
                                i.availability_zone(),
                                i.lifecycle_state().map(|s| s.as_str()),
                                i.health_status(),
                            )
                        })
                        .collect();
                    found.push(Group {
                        name: name.to_owned(),
                        max_size: group.max_size().unwrap_or_default().max(0) as u32,
                        availability_zones: group.availability_zones().to_vec(),
                        instances,
                    });
                }
                match page.next_token() {
                    Some(next) if !next.is_empty() => token = Some(next.to_owned()),
                    _ => break,
                }
            }
        }
        Ok(found)
    }

    #[instrument(level = "debug", skip(self))]
    async fn hooks(&self, group: &str) -> Result<Vec<Hook>, AwsError> {
        self.describe_hooks(group, None).await
    }

    #[instrument(level = "debug", skip(self))]
    async fn hook_metadata(&self, group: &str, hook: &str) -> Result<Option<String>, AwsError> {
        let hooks = self.describe_hooks(group, Some(hook)).await?;
        Ok(hooks
            .into_iter()
            .find(|h| h.name == hook)
            .and_then(|h| h.metadata))
    }

    #[instrument(level = "debug", skip(self))]
    async fn complete_lifecycle_action(
        &self,
        action: &ActionRef,
        result: LifecycleResult,
    ) -> Result<(), AwsError> {
        let request = self
            .client
            .complete_lifecycle_action()
            .auto_scaling_group_name(&action.group)
            .lifecycle_hook_name(&action.hook)
            .lifecycle_action_result(result.as_str());
        let request = match &action.token {
            Some(token) => request.lifecycle_action_token(token),
            None => request.instance_id(action.instance.as_str()),
        };
        send!("autoscaling:CompleteLifecycleAction", request, Config)?;
        Ok(())
    }

    #[instrument(level = "debug", skip(self))]
    async fn record_heartbeat(&self, action: &ActionRef) -> Result<(), AwsError> {
        let request = self
            .client
            .record_lifecycle_action_heartbeat()
            .auto_scaling_group_name(&action.group)
            .lifecycle_hook_name(&action.hook);
        let request = match &action.token {
            Some(token) => request.lifecycle_action_token(token),
            None => request.instance_id(action.instance.as_str()),
        };
        send!(
            "autoscaling:RecordLifecycleActionHeartbeat",
            request,
            Config
        )?;
        Ok(())
    }
}

impl AutoScalingClient {
    /// The group's lifecycle hooks, or only the one named.
    async fn describe_hooks(&self, group: &str, only: Option<&str>) -> Result<Vec<Hook>, AwsError> {
        let request = self
            .client
            .describe_lifecycle_hooks()
            .auto_scaling_group_name(group)
            .set_lifecycle_hook_names(only.map(|hook| vec![hook.to_owned()]));
        let output = send!("autoscaling:DescribeLifecycleHooks", request, Config)?;
        Ok(output
            .lifecycle_hooks()
            .iter()
            .filter_map(|h| {
                Some(Hook {
                    group: group.to_owned(),
                    name: h
                        .lifecycle_hook_name()
                        .filter(|n| !n.is_empty())?
                        .to_owned(),
                    transition: h.lifecycle_transition().and_then(Transition::parse),
                    metadata: h.notification_metadata().map(str::to_owned),
                })
            })
            .collect())
    }
}

/// Builds a [`GroupInstance`] from what AWS returned; `None` if a field pinhook needs is missing.
fn group_instance(
    instance: Option<&str>,
    group: Option<&str>,
    availability_zone: Option<&str>,
    state: Option<&str>,
    health: Option<&str>,
) -> Option<GroupInstance> {
    // The SDK fills a required field AWS left out with an empty string: that is missing too.
    let present = |value: Option<&str>| value.filter(|v| !v.is_empty()).map(str::to_owned);
    Some(GroupInstance {
        instance: InstanceId::parse(instance?).ok()?,
        group: present(group)?,
        availability_zone: present(availability_zone)?,
        state: LifecycleState::parse(&present(state)?),
        // DescribeAutoScalingInstances says HEALTHY, DescribeAutoScalingGroups says Healthy.
        healthy: health.is_some_and(|h| h.eq_ignore_ascii_case("healthy")),
    })
}
