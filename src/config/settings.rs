//! Function-wide settings, from `PINHOOK_…` environment variables: read and checked once at
//! start-up, printed once.

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use strum::{Display, EnumString};

/// How the AWS SDK retries a call that failed for a reason worth retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Display, EnumString)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum RetryMode {
    /// Exponential backoff with full jitter.
    Standard,
    /// The same, and a client-side rate limit that slows every later call of the environment
    /// once AWS throttles.
    Adaptive,
}

/// Function-wide settings, from `PINHOOK_…` environment variables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Settings {
    /// Longest wait for an ENI to reach `attached` after attaching, or `available` after detaching.
    pub attach_timeout: Duration,
    /// Pause between two reads while waiting for AWS to change a state.
    pub poll_interval: Duration,
    /// Time kept back before the Lambda deadline to complete the lifecycle action: at least one
    /// whole attempt of the call.
    pub completion_reserve: Duration,
    /// Longest wait for one attempt of an AWS call before it is retried.
    pub attempt_timeout: Duration,
    /// How long EC2's reads may lag its writes: before giving up after a lost claim, pinhook
    /// looks again once this long has passed, so that it never abandons an instance that a
    /// concurrent delivery of the same event has pinned.
    pub consistency_window: Duration,
    /// Interval between lifecycle heartbeats while waiting for a pool member to be released.
    pub heartbeat_interval: Duration,
    /// Attempts per AWS call, including the first, before a transient error is given up on.
    pub max_attempts: u32,
    /// How the SDK retries.
    pub retry_mode: RetryMode,
    /// The longest pause between two attempts of a call.
    pub max_backoff: Duration,
    /// CloudWatch namespace of the Embedded Metric Format lines.
    pub metrics_namespace: String,
    /// The groups the sweep serves (`PINHOOK_GROUPS`, comma-separated).
    pub groups: Vec<String>,
    /// The calls one sweep may make: no repair starts that the rest does not cover, and one under
    /// way may finish a little past it. The next sweep goes on.
    pub sweep_max_calls: u32,
    /// How long a pool's Elastic IP may stay unassociated before the sweep reports it.
    pub idle_address_after: Duration,
    /// How many records of an SQS batch (or SNS event) are handled at once.
    pub batch_concurrency: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            attach_timeout: Duration::from_secs(60),
            poll_interval: Duration::from_millis(1000),
            completion_reserve: Duration::from_secs(6),
            attempt_timeout: Duration::from_secs(5),
            consistency_window: Duration::from_secs(5),
            heartbeat_interval: Duration::from_secs(20),
            max_attempts: 8,
            retry_mode: RetryMode::Standard,
            max_backoff: Duration::from_secs(20),
            metrics_namespace: "pinhook".to_owned(),
            groups: Vec::new(),
            sweep_max_calls: 400,
            idle_address_after: Duration::from_secs(3600),
            batch_concurrency: 10,
        }
    }
}

/// A `PINHOOK_…` variable that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("{name}={value:?} is not valid: expected {expected}")]
    Invalid {
        name: String,
        value: String,
        expected: String,
    },
    #[error("{0} is not a pinhook setting; the settings are {list}", list = SETTING_NAMES.join(", "))]
    Unknown(String),
    #[error(
        "PINHOOK_COMPLETION_RESERVE_MS={reserve} must be greater than PINHOOK_ATTEMPT_TIMEOUT_MS={attempt}: the time kept back for completing the lifecycle action must cover one whole attempt of the call"
    )]
    ReserveTooShort { reserve: u128, attempt: u128 },
}

const SETTING_NAMES: [&str; 14] = [
    "PINHOOK_ATTACH_TIMEOUT_SECS",
    "PINHOOK_POLL_INTERVAL_MS",
    "PINHOOK_COMPLETION_RESERVE_MS",
    "PINHOOK_ATTEMPT_TIMEOUT_MS",
    "PINHOOK_CONSISTENCY_WINDOW_MS",
    "PINHOOK_HEARTBEAT_INTERVAL_SECS",
    "PINHOOK_MAX_ATTEMPTS",
    "PINHOOK_RETRY_MODE",
    "PINHOOK_MAX_BACKOFF_MS",
    "PINHOOK_METRICS_NAMESPACE",
    "PINHOOK_GROUPS",
    "PINHOOK_SWEEP_MAX_CALLS",
    "PINHOOK_IDLE_ADDRESS_MINUTES",
    "PINHOOK_BATCH_CONCURRENCY",
];

impl fmt::Display for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PINHOOK_ATTACH_TIMEOUT_SECS={} PINHOOK_POLL_INTERVAL_MS={} PINHOOK_COMPLETION_RESERVE_MS={} PINHOOK_ATTEMPT_TIMEOUT_MS={} PINHOOK_CONSISTENCY_WINDOW_MS={} PINHOOK_HEARTBEAT_INTERVAL_SECS={} PINHOOK_MAX_ATTEMPTS={} PINHOOK_RETRY_MODE={} PINHOOK_MAX_BACKOFF_MS={} PINHOOK_METRICS_NAMESPACE={} PINHOOK_GROUPS={} PINHOOK_SWEEP_MAX_CALLS={} PINHOOK_IDLE_ADDRESS_MINUTES={} PINHOOK_BATCH_CONCURRENCY={}",
            self.attach_timeout.as_secs(),
            self.poll_interval.as_millis(),
            self.completion_reserve.as_millis(),
            self.attempt_timeout.as_millis(),
            self.consistency_window.as_millis(),
            self.heartbeat_interval.as_secs(),
            self.max_attempts,
            self.retry_mode,
            self.max_backoff.as_millis(),
            self.metrics_namespace,
            self.groups.join(","),
            self.sweep_max_calls,
            self.idle_address_after.as_secs() / 60,
            self.batch_concurrency
        )
    }
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_vars(std::env::vars())
    }

    /// Reads settings from `(name, value)` pairs; names without the `PINHOOK_` prefix are
    /// skipped, and an unknown `PINHOOK_` name is an error so that a typo is not silently
    /// ignored.
    pub fn from_vars(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, SettingsError> {
        let mut settings = Self::default();
        for (name, value) in vars {
            if !name.starts_with("PINHOOK_") {
                continue;
            }
            let number = |min: u64, max: u64, unit: &str| -> Result<u64, SettingsError> {
                match value.trim().parse::<u64>() {
                    Ok(n) if (min..=max).contains(&n) => Ok(n),
                    _ => Err(SettingsError::Invalid {
                        name: name.clone(),
                        value: value.clone(),
                        expected: format!("a whole number of {unit} from {min} to {max}"),
                    }),
                }
            };
            match name.as_str() {
                "PINHOOK_ATTACH_TIMEOUT_SECS" => {
                    settings.attach_timeout = Duration::from_secs(number(1, 900, "seconds")?);
                }
                "PINHOOK_POLL_INTERVAL_MS" => {
                    settings.poll_interval =
                        Duration::from_millis(number(10, 60_000, "milliseconds")?);
                }
                "PINHOOK_COMPLETION_RESERVE_MS" => {
                    settings.completion_reserve =
                        Duration::from_millis(number(200, 60_000, "milliseconds")?);
                }
                "PINHOOK_ATTEMPT_TIMEOUT_MS" => {
                    settings.attempt_timeout =
                        Duration::from_millis(number(100, 30_000, "milliseconds")?);
                }
                "PINHOOK_CONSISTENCY_WINDOW_MS" => {
                    settings.consistency_window =
                        Duration::from_millis(number(0, 60_000, "milliseconds")?);
                }
                "PINHOOK_HEARTBEAT_INTERVAL_SECS" => {
                    settings.heartbeat_interval = Duration::from_secs(number(1, 3600, "seconds")?);
                }
                "PINHOOK_MAX_ATTEMPTS" => {
                    settings.max_attempts = number(1, 20, "attempts")? as u32;
                }
                "PINHOOK_RETRY_MODE" => {
                    settings.retry_mode =
                        value.trim().parse().map_err(|_| SettingsError::Invalid {
                            name: name.clone(),
                            value: value.clone(),
                            expected: "standard or adaptive".to_owned(),
                        })?;
                }
                "PINHOOK_MAX_BACKOFF_MS" => {
                    settings.max_backoff =
                        Duration::from_millis(number(100, 60_000, "milliseconds")?);
                }
                "PINHOOK_METRICS_NAMESPACE" => {
                    let v = value.trim();
                    if v.is_empty() || v.len() > 255 {
                        return Err(SettingsError::Invalid {
                            name,
                            value,
                            expected: "a CloudWatch namespace of 1 to 255 characters".to_owned(),
                        });
                    }
                    settings.metrics_namespace = v.to_owned();
                }
                "PINHOOK_GROUPS" => {
                    let groups: Vec<String> = value
                        .split(',')
                        .map(str::trim)
                        .filter(|g| !g.is_empty())
                        .map(str::to_owned)
                        .collect();
                    if groups.iter().any(|g| g.len() > 255) {
                        return Err(SettingsError::Invalid {
                            name,
                            value,
                            expected: "Auto Scaling group names of at most 255 characters, separated by commas".to_owned(),
                        });
                    }
                    settings.groups = groups;
                }
                "PINHOOK_SWEEP_MAX_CALLS" => {
                    settings.sweep_max_calls = number(10, 100_000, "calls")? as u32;
                }
                "PINHOOK_BATCH_CONCURRENCY" => {
                    settings.batch_concurrency = number(1, 100, "records")? as u32;
                }
                "PINHOOK_IDLE_ADDRESS_MINUTES" => {
                    settings.idle_address_after =
                        Duration::from_secs(60 * number(0, 525_600, "minutes")?);
                }
                _ => return Err(SettingsError::Unknown(name)),
            }
        }
        settings.check()?;
        Ok(settings)
    }

    /// The rules between settings, checked once at start-up.
    pub fn check(&self) -> Result<(), SettingsError> {
        if self.completion_reserve <= self.attempt_timeout {
            return Err(SettingsError::ReserveTooShort {
                reserve: self.completion_reserve.as_millis(),
                attempt: self.attempt_timeout.as_millis(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_defaults_are_the_documented_ones() {
        // The values the README's settings table gives; a default changed without it fails here.
        let defaults = Settings::default();
        assert_eq!(defaults.attach_timeout, Duration::from_secs(60));
        assert_eq!(defaults.poll_interval, Duration::from_millis(1000));
        assert_eq!(defaults.completion_reserve, Duration::from_secs(6));
        assert_eq!(defaults.attempt_timeout, Duration::from_secs(5));
        assert_eq!(defaults.consistency_window, Duration::from_secs(5));
        assert_eq!(defaults.heartbeat_interval, Duration::from_secs(20));
        assert_eq!(defaults.max_attempts, 8);
        assert_eq!(defaults.retry_mode, RetryMode::Standard);
        assert_eq!(defaults.max_backoff, Duration::from_secs(20));
        assert_eq!(defaults.metrics_namespace, "pinhook");
        assert!(defaults.groups.is_empty());
        assert_eq!(defaults.sweep_max_calls, 400);
        assert_eq!(defaults.idle_address_after, Duration::from_secs(3600));
        assert_eq!(defaults.batch_concurrency, 10);
        // and no variable set means exactly these
        assert_eq!(Settings::from_vars(vars(&[])).unwrap(), defaults);
    }

    #[test]
    fn each_variable_sets_its_setting() {
        let settings = Settings::from_vars(vars(&[
            ("PINHOOK_POLL_INTERVAL_MS", "250"),
            ("PINHOOK_MAX_ATTEMPTS", "3"),
            ("HOME", "/root"),
        ]))
        .unwrap();
        assert_eq!(settings.poll_interval, Duration::from_millis(250));
        assert_eq!(settings.max_attempts, 3);
    }

    /// Settings in which every value differs from its default.
    fn all_changed() -> Settings {
        Settings {
            attach_timeout: Duration::from_secs(61),
            poll_interval: Duration::from_millis(1001),
            completion_reserve: Duration::from_millis(6001),
            attempt_timeout: Duration::from_millis(5001),
            consistency_window: Duration::from_millis(5001),
            heartbeat_interval: Duration::from_secs(21),
            max_attempts: 9,
            retry_mode: RetryMode::Adaptive,
            max_backoff: Duration::from_millis(20001),
            metrics_namespace: "elsewhere".into(),
            groups: vec!["a".into(), "b".into()],
            sweep_max_calls: 401,
            idle_address_after: Duration::from_secs(3660),
            batch_concurrency: 11,
        }
    }

    #[test]
    fn settings_print_as_the_variables_that_set_them() {
        let changed = all_changed();
        let printed = changed.to_string();
        let reparsed = Settings::from_vars(printed.split(' ').map(|pair| {
            let (name, value) = pair.split_once('=').unwrap();
            (name.to_owned(), value.to_owned())
        }))
        .unwrap();
        // every setting differs from its default, so one left out of the print fails here
        assert_eq!(reparsed, changed);
        assert_eq!(printed.split(' ').count(), SETTING_NAMES.len());
    }

    #[test]
    fn settings_errors_name_the_variable() {
        let err = Settings::from_vars(vars(&[("PINHOOK_POLL_INTERVAL_MS", "fast")])).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("PINHOOK_POLL_INTERVAL_MS=\"fast\" is not valid"),
            "{err}"
        );
        let err = Settings::from_vars(vars(&[("PINHOOK_POLL_INTERVAL", "1")])).unwrap_err();
        assert!(
            err.to_string()
                .contains("PINHOOK_POLL_INTERVAL is not a pinhook setting"),
            "{err}"
        );
        let err =
            Settings::from_vars(vars(&[("PINHOOK_COMPLETION_RESERVE_MS", "2000")])).unwrap_err();
        assert!(
            err.to_string()
                .contains("PINHOOK_COMPLETION_RESERVE_MS=2000")
                && err.to_string().contains("PINHOOK_ATTEMPT_TIMEOUT_MS=5000"),
            "{err}"
        );
    }

    #[test]
    fn the_sweeps_settings_are_read_and_checked() {
        let settings = Settings::from_vars(vars(&[
            ("PINHOOK_GROUPS", " licensed-app, egress-nodes ,"),
            ("PINHOOK_SWEEP_MAX_CALLS", "120"),
            ("PINHOOK_IDLE_ADDRESS_MINUTES", "30"),
        ]))
        .unwrap();
        assert_eq!(settings.groups, ["licensed-app", "egress-nodes"]);
        assert_eq!(settings.sweep_max_calls, 120);
        assert_eq!(settings.idle_address_after, Duration::from_secs(1800));
        assert!(
            settings
                .to_string()
                .contains("PINHOOK_GROUPS=licensed-app,egress-nodes")
        );
        let err = Settings::from_vars(vars(&[("PINHOOK_SWEEP_MAX_CALLS", "5")])).unwrap_err();
        assert!(err.to_string().contains("from 10 to 100000"), "{err}");
    }
}
