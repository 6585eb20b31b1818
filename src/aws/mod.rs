//! The AWS adapters: two narrow traits over what pinhook asks of Auto Scaling and EC2, and their
//! implementations on the AWS SDK. Everything above this module works with domain types only.

mod autoscaling;
mod ec2;
pub mod error;

use std::future::Future;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

pub use self::autoscaling::AutoScalingClient;
pub use self::ec2::Ec2Client;
pub use self::error::{AwsError, ErrorKind};
use crate::config::{PoolName, Settings};
use crate::model::{
    ActionRef, Address, AllocationId, AssociationId, AttachmentId, Eni, EniId, GroupInstance,
    InstanceId, LifecycleResult,
};

/// What pinhook asks of Auto Scaling.
pub trait AutoScalingApi: Send + Sync {
    /// The instances, as Auto Scaling knows them; instances in no group are left out.
    fn describe_instances(
        &self,
        instances: &[InstanceId],
    ) -> impl Future<Output = Result<Vec<GroupInstance>, AwsError>> + Send;

    /// The instances of a group's warm pool.
    fn warm_pool_instances(
        &self,
        group: &str,
    ) -> impl Future<Output = Result<Vec<GroupInstance>, AwsError>> + Send;

    /// The `NotificationMetadata` of a lifecycle hook, `None` if the hook has none or is gone.
    fn hook_metadata(
        &self,
        group: &str,
        hook: &str,
    ) -> impl Future<Output = Result<Option<String>, AwsError>> + Send;

    fn complete_lifecycle_action(
        &self,
        action: &ActionRef,
        result: LifecycleResult,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;

    fn record_heartbeat(
        &self,
        action: &ActionRef,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
}

/// Which network interfaces to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EniFilter {
    /// Attached to the instance.
    AttachedTo(InstanceId),
    /// Tagged `pinhook:holder` = the instance.
    HeldBy(InstanceId),
    /// Tagged `pinhook:pool` = the pool.
    Pool(PoolName),
}

/// Which Elastic IPs to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressFilter {
    /// Tagged `pinhook:pool` = the pool.
    Pool(PoolName),
    /// Tagged `pinhook:holder` = the instance.
    HeldBy(InstanceId),
}

/// What pinhook asks of EC2.
pub trait Ec2Api: Send + Sync {
    fn network_interfaces(
        &self,
        filter: &EniFilter,
    ) -> impl Future<Output = Result<Vec<Eni>, AwsError>> + Send;

    /// One network interface, `None` if it does not exist.
    fn network_interface(
        &self,
        eni: &EniId,
    ) -> impl Future<Output = Result<Option<Eni>, AwsError>> + Send;

    fn attach_network_interface(
        &self,
        eni: &EniId,
        instance: &InstanceId,
        device_index: i32,
    ) -> impl Future<Output = Result<AttachmentId, AwsError>> + Send;

    fn detach_network_interface(
        &self,
        attachment: &AttachmentId,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;

    fn addresses(
        &self,
        filter: &AddressFilter,
    ) -> impl Future<Output = Result<Vec<Address>, AwsError>> + Send;

    /// Associates the address with the interface's primary private IP, refusing (with
    /// `Resource.AlreadyAssociated`) an address that is associated with anything else.
    fn associate_address(
        &self,
        allocation: &AllocationId,
        eni: &EniId,
    ) -> impl Future<Output = Result<AssociationId, AwsError>> + Send;

    fn disassociate_address(
        &self,
        association: &AssociationId,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;

    fn create_tag(
        &self,
        resource: &str,
        key: &str,
        value: &str,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;

    /// Deletes the tag, only while it still has `value` when one is given.
    fn delete_tag(
        &self,
        resource: &str,
        key: &str,
        value: Option<&str>,
    ) -> impl Future<Output = Result<(), AwsError>> + Send;
}

/// Per-attempt and per-call timeouts of every AWS call. A call that takes longer is retried,
/// within the attempts the settings allow.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
const OPERATION_TIMEOUT: Duration = Duration::from_secs(45);

/// Loads the AWS configuration from the environment (Lambda's role, region, and
/// `AWS_ENDPOINT_URL` when set), with pinhook's retry and timeout policy.
pub async fn load_sdk_config(settings: &Settings) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry_config(settings))
        .timeout_config(timeout_config())
        .load()
        .await
}

/// Standard retry mode: exponential backoff with full jitter, for throttling, 5xx and timeouts.
pub fn retry_config(settings: &Settings) -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(settings.max_attempts)
        .with_initial_backoff(Duration::from_millis(200))
        .with_max_backoff(Duration::from_secs(5))
}

pub fn timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// Turns an SDK error into an [`AwsError`], keeping AWS's code and message.
fn sdk_error<E>(operation: &'static str, err: aws_sdk_ec2::error::SdkError<E>) -> AwsError
where
    E: aws_sdk_ec2::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
    match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => {
            AwsError::transient(operation, Box::new(err))
        }
        _ => {
            let status = err.raw_response().map(|r| r.status().as_u16());
            let code = err.code().map(str::to_owned);
            let message = err.message().map(str::to_owned);
            AwsError::from_response(
                operation,
                code.as_deref(),
                message.as_deref(),
                status,
                Some(Box::new(err)),
            )
        }
    }
}
