//! The AWS SDK's side of the adapters: configuration (retries, timeouts) and error conversion.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

use super::AwsError;
use crate::config::{RetryMode, Settings};
use crate::context::CallWindow;

/// The longest any AWS call may take, all its attempts included. Each attempt is bounded by
/// `PINHOOK_ATTEMPT_TIMEOUT_MS`, after which it is retried within the attempts allowed.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(120);

/// Loads the AWS configuration from the environment (Lambda's role, region, and
/// `AWS_ENDPOINT_URL` when set), with pinhook's retry and timeout policy.
pub async fn load_sdk_config(settings: &Settings) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry_config(settings))
        .timeout_config(timeout_config(settings))
        .load()
        .await
}

/// The SDK's retries, as the settings choose them: exponential backoff with full jitter for
/// throttling, 5xx and timeouts, from 200 ms up to `PINHOOK_MAX_BACKOFF_MS`; in adaptive mode
/// also a client-side rate limit once AWS throttles. Whatever the mode, no attempt and no
/// backoff runs past what the deadline leaves: each call's operation timeout is the step's
/// [`CallWindow`].
pub fn retry_config(settings: &Settings) -> RetryConfig {
    let config = match settings.retry_mode {
        RetryMode::Standard => RetryConfig::standard(),
        RetryMode::Adaptive => RetryConfig::adaptive(),
    };
    config
        .with_max_attempts(settings.max_attempts)
        .with_initial_backoff(Duration::from_millis(200))
        .with_max_backoff(settings.max_backoff)
}

pub fn timeout_config(settings: &Settings) -> TimeoutConfig {
    TimeoutConfig::builder()
        .operation_attempt_timeout(settings.attempt_timeout)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// The timeouts of a call made now, within the step's [`CallWindow`]: its operation (every
/// attempt and backoff) ends by the window's end, and no attempt lasts longer than the window
/// allows. `None` outside any window (the client's own timeouts apply); an error, without
/// sending the call, when the window has no time left for even a short attempt.
pub(super) fn window_timeouts(operation: &'static str) -> Result<Option<TimeoutConfig>, AwsError> {
    /// Less than this is no time for an attempt: AWS answers in 50–150 ms.
    const SHORTEST: Duration = Duration::from_millis(100);
    let Some(window) = CallWindow::current() else {
        return Ok(None);
    };
    let left = window.remaining();
    if left < SHORTEST {
        return Err(AwsError::transient(
            operation,
            "the function's deadline leaves no time for this call".into(),
        ));
    }
    Ok(Some(
        TimeoutConfig::builder()
            .operation_attempt_timeout(window.attempt.min(left))
            .operation_timeout(left.min(OPERATION_TIMEOUT))
            .build(),
    ))
}

/// Sends a fluent request, bounded by the step's call window, and converts its error.
macro_rules! send {
    ($operation:expr, $request:expr, $config:ty) => {{
        match $crate::aws::sdk::window_timeouts($operation)? {
            None => $request.send().await,
            Some(timeouts) => {
                $request
                    .customize()
                    .config_override(<$config>::default().timeout_config(timeouts))
                    .send()
                    .await
            }
        }
        .map_err(|e| $crate::aws::sdk::sdk_error($operation, e))
    }};
}
pub(super) use send;

/// Turns an SDK error into an [`AwsError`], keeping AWS's code and message.
pub(super) fn sdk_error<E>(
    operation: &'static str,
    err: aws_sdk_ec2::error::SdkError<E>,
) -> AwsError
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
