//! SDK clients for the tests: pinhook's own retry and timeout policy, on the emulator's clock.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::stalled_stream_protection::StalledStreamProtectionConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ec2::config::Credentials;
use aws_sdk_ec2::config::retry::RetryPartition;
use pinhook::aws::{retry_config, timeout_config};
use pinhook::config::Settings;

use crate::clock::{Clock, ClockedHttp};
use crate::{REGION, unique};

/// Settings that keep waits short against the emulator.
pub fn fast_settings() -> Settings {
    Settings {
        attach_timeout: Duration::from_secs(15),
        poll_interval: Duration::from_millis(50),
        // one whole attempt of the completion, plus a little
        completion_reserve: Duration::from_millis(2500),
        attempt_timeout: Duration::from_secs(2),
        // the emulator's reads do not lag unless a test makes them
        consistency_window: Duration::from_millis(300),
        heartbeat_interval: Duration::from_secs(1),
        max_attempts: 3,
        metrics_namespace: "pinhook-test".to_owned(),
        ..Settings::default()
    }
}

/// The SDK's clock for tests: it follows tokio's, so the adaptive retry mode's client-side rate
/// limit sees the time a test with paused time lets pass.
#[derive(Debug)]
pub struct TokioClock {
    wall: std::time::SystemTime,
    start: tokio::time::Instant,
}

impl TokioClock {
    /// Starts now; inside a runtime with paused time, it moves only as that time does.
    pub fn new() -> Self {
        Self {
            wall: std::time::SystemTime::now(),
            start: tokio::time::Instant::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl aws_smithy_async::time::TimeSource for TokioClock {
    fn now(&self) -> std::time::SystemTime {
        self.wall + self.start.elapsed()
    }
}

/// A retry partition of its own. The adaptive retry mode's client-side rate limit is kept per
/// partition for the whole process, so tests that share one would slow each other down.
pub fn own_partition() -> RetryPartition {
    RetryPartition::new(unique("pinhook-test"))
}

/// The SDK configuration for the emulator at `endpoint`, with pinhook's retry and timeout
/// policy from `settings`. With a `clock`, requests go through the kit's clocked HTTP client,
/// so that the emulator's clock follows the test's; without, through the SDK's own.
pub async fn sdk_config(endpoint: &str, settings: &Settings, clock: Option<Clock>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .time_source(TokioClock::new())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "pinhook-tests",
        ))
        .endpoint_url(endpoint)
        .retry_config(retry_config(settings))
        .timeout_config(timeout_config(settings));
    if let Some(clock) = clock {
        // Bodies arrive whole from the clocked client: no stream can stall.
        loader = loader
            .http_client(ClockedHttp::new(clock))
            .stalled_stream_protection(StalledStreamProtectionConfig::disabled());
    }
    loader.load().await
}

/// The retry policy with retries off: every error as AWS sent it.
pub fn no_retries() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(1)
}
