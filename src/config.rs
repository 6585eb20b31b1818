//! Configuration: the per-hook settings in a lifecycle hook's `NotificationMetadata`, and the
//! function-wide `PINHOOK_…` environment variables, each parsed once into a validated type.

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::model::LifecycleResult;

/// The tag that puts a resource in a pool.
pub const POOL_TAG: &str = "pinhook:pool";
/// The tag on a pool member naming the instance that holds it.
pub const HOLDER_TAG: &str = "pinhook:holder";
/// The tag on an instance naming the ENI it holds.
pub const INSTANCE_ENI_TAG: &str = "pinhook:eni";
/// The tag on an instance naming the Elastic IP allocation it holds.
pub const INSTANCE_EIP_TAG: &str = "pinhook:eip";
/// The tag on a pool Elastic IP that the sweep found unassociated: since when (RFC 3339, UTC).
pub const IDLE_SINCE_TAG: &str = "pinhook:idle-since";

const METADATA_KEYS: [&str; 6] = [
    "pin",
    "pool",
    "device_index",
    "interface",
    "on_failure",
    "takeover",
];

/// A pool name: the value of the `pinhook:pool` tag its members carry.
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct PoolName(String);

/// Quoted, as in messages: `pool "licence" is exhausted`.
impl fmt::Debug for PoolName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl PoolName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PoolName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a hook pins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pin {
    /// A pool ENI, attached at `device_index`.
    Eni { device_index: i32 },
    /// A pool Elastic IP, associated with the instance's interface at device index `interface`.
    Eip { interface: i32, takeover: bool },
}

/// The settings of one lifecycle hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookConfig {
    pub pin: Pin,
    pub pool: PoolName,
    pub on_failure: LifecycleResult,
}

/// Why a hook's metadata was refused; the message names the key and the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error(
        "the hook has no NotificationMetadata; set it to JSON such as {{\"pin\":\"eni\",\"pool\":\"my-pool\"}}"
    )]
    Absent,
    #[error("NotificationMetadata is not a JSON object: {0}")]
    NotJson(String),
    #[error("NotificationMetadata has no \"{0}\" key, which is required")]
    Missing(&'static str),
    #[error("NotificationMetadata key \"{key}\" has value {value}: {expected}")]
    Invalid {
        key: &'static str,
        value: String,
        expected: String,
    },
    #[error(
        "NotificationMetadata key \"{0}\" is unknown; the keys are pin, pool, device_index, interface, on_failure and takeover"
    )]
    Unknown(String),
    #[error("NotificationMetadata key \"{key}\" does not apply to \"pin\": \"{pin}\"")]
    NotApplicable {
        key: &'static str,
        pin: &'static str,
    },
}

/// Whose lifecycle hook an action belongs to, read from the hook's `NotificationMetadata`
/// (DESIGN.md, "Whose hooks").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// pinhook's: the metadata is a JSON object with the key `pin`. The configuration, or what
    /// is wrong with it (an error pinhook completes with the failure outcome).
    Pinhook(Result<HookConfig, MetadataError>),
    /// Another tool's: why. pinhook changes nothing and completes nothing.
    Other(String),
}

impl HookConfig {
    /// Whether the hook is pinhook's and, if so, its configuration.
    pub fn owner(metadata: Option<&str>) -> Owner {
        let Some(text) = metadata.filter(|m| !m.trim().is_empty()) else {
            return Owner::Other("the hook has no NotificationMetadata".into());
        };
        let kind = match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(object)) if object.contains_key("pin") => {
                return Owner::Pinhook(Self::parse(metadata));
            }
            Ok(Value::Object(_)) => "a JSON object without a \"pin\" key",
            Ok(Value::Array(_)) => "a JSON array",
            Ok(Value::String(_)) => "a JSON string",
            Ok(Value::Number(_)) => "a JSON number",
            Ok(Value::Bool(_) | Value::Null) => "a JSON literal",
            Err(_) => "text that is not JSON",
        };
        Owner::Other(format!("its NotificationMetadata is {kind}"))
    }

    pub fn parse(metadata: Option<&str>) -> Result<Self, MetadataError> {
        let object = metadata_object(metadata)?;
        if let Some(unknown) = object.keys().find(|k| !METADATA_KEYS.contains(&k.as_str())) {
            return Err(MetadataError::Unknown(unknown.chars().take(64).collect()));
        }
        let pin_name = match object.get("pin") {
            None => return Err(MetadataError::Missing("pin")),
            Some(Value::String(s)) if s == "eni" => "eni",
            Some(Value::String(s)) if s == "eip" => "eip",
            Some(other) => return Err(invalid("pin", other, "\"eni\" or \"eip\"")),
        };
        let pool = match object.get("pool") {
            None => return Err(MetadataError::Missing("pool")),
            Some(Value::String(s)) if valid_pool(s) => PoolName(s.clone()),
            Some(other) => {
                return Err(invalid(
                    "pool",
                    other,
                    "a non-empty string of at most 256 characters without leading or trailing spaces, the value of the members' pinhook:pool tag",
                ));
            }
        };
        let on_failure = match object.get("on_failure") {
            None => LifecycleResult::Abandon,
            Some(value) => parse_on_failure(value)?,
        };
        let pin = if pin_name == "eni" {
            if object.contains_key("interface") {
                return Err(MetadataError::NotApplicable {
                    key: "interface",
                    pin: "eni",
                });
            }
            if object.contains_key("takeover") {
                return Err(MetadataError::NotApplicable {
                    key: "takeover",
                    pin: "eni",
                });
            }
            let device_index = match object.get("device_index") {
                None => 1,
                Some(value) => index(value, "device_index", 1)?,
            };
            Pin::Eni { device_index }
        } else {
            if object.contains_key("device_index") {
                return Err(MetadataError::NotApplicable {
                    key: "device_index",
                    pin: "eip",
                });
            }
            let interface = match object.get("interface") {
                None => 0,
                Some(value) => index(value, "interface", 0)?,
            };
            let takeover = match object.get("takeover") {
                None => false,
                Some(Value::Bool(b)) => *b,
                Some(other) => return Err(invalid("takeover", other, "true or false")),
            };
            Pin::Eip {
                interface,
                takeover,
            }
        };
        Ok(Self {
            pin,
            pool,
            on_failure,
        })
    }

    /// The launch outcome to use when the metadata cannot be read in full: the hook's own
    /// `on_failure` if that key alone is readable, otherwise the documented default.
    pub fn on_failure_lenient(metadata: Option<&str>) -> LifecycleResult {
        metadata_object(metadata)
            .ok()
            .and_then(|o| o.get("on_failure").map(parse_on_failure))
            .and_then(Result::ok)
            .unwrap_or(LifecycleResult::Abandon)
    }

    /// The pool named by metadata that is otherwise unreadable, so a release can still find
    /// what to release.
    pub fn pool_lenient(metadata: Option<&str>) -> Option<PoolName> {
        let object = metadata_object(metadata).ok()?;
        match object.get("pool") {
            Some(Value::String(s)) if valid_pool(s) => Some(PoolName(s.clone())),
            _ => None,
        }
    }
}

fn metadata_object(metadata: Option<&str>) -> Result<Map<String, Value>, MetadataError> {
    let text = metadata
        .filter(|m| !m.trim().is_empty())
        .ok_or(MetadataError::Absent)?;
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(other) => Err(MetadataError::NotJson(format!(
            "found {}",
            shorten(&other.to_string())
        ))),
        Err(err) => Err(MetadataError::NotJson(format!(
            "{err} in {}",
            shorten(text)
        ))),
    }
}

fn valid_pool(s: &str) -> bool {
    !s.is_empty() && s.chars().count() <= 256 && s.trim() == s
}

fn parse_on_failure(value: &Value) -> Result<LifecycleResult, MetadataError> {
    match value.as_str().map(str::to_ascii_lowercase).as_deref() {
        Some("abandon") => Ok(LifecycleResult::Abandon),
        Some("continue") => Ok(LifecycleResult::Continue),
        _ => Err(invalid("on_failure", value, "\"abandon\" or \"continue\"")),
    }
}

fn index(value: &Value, key: &'static str, min: i64) -> Result<i32, MetadataError> {
    const MAX: i64 = 127;
    match value.as_i64() {
        Some(n) if (min..=MAX).contains(&n) => Ok(n as i32),
        _ => Err(invalid(
            key,
            value,
            &if min == 1 {
                format!(
                    "an integer from 1 to {MAX} (0 is the primary interface, which pinhook never attaches or detaches)"
                )
            } else {
                format!("an integer from 0 to {MAX}")
            },
        )),
    }
}

fn invalid(key: &'static str, value: &Value, expected: &str) -> MetadataError {
    MetadataError::Invalid {
        key,
        value: shorten(&value.to_string()),
        expected: expected.to_owned(),
    }
}

fn shorten(text: &str) -> String {
    const LIMIT: usize = 120;
    if text.chars().count() <= LIMIT {
        text.to_owned()
    } else {
        format!("{}…", text.chars().take(LIMIT).collect::<String>())
    }
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

const SETTING_NAMES: [&str; 12] = [
    "PINHOOK_ATTACH_TIMEOUT_SECS",
    "PINHOOK_POLL_INTERVAL_MS",
    "PINHOOK_COMPLETION_RESERVE_MS",
    "PINHOOK_ATTEMPT_TIMEOUT_MS",
    "PINHOOK_CONSISTENCY_WINDOW_MS",
    "PINHOOK_HEARTBEAT_INTERVAL_SECS",
    "PINHOOK_MAX_ATTEMPTS",
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
            "PINHOOK_ATTACH_TIMEOUT_SECS={} PINHOOK_POLL_INTERVAL_MS={} PINHOOK_COMPLETION_RESERVE_MS={} PINHOOK_ATTEMPT_TIMEOUT_MS={} PINHOOK_CONSISTENCY_WINDOW_MS={} PINHOOK_HEARTBEAT_INTERVAL_SECS={} PINHOOK_MAX_ATTEMPTS={} PINHOOK_METRICS_NAMESPACE={} PINHOOK_GROUPS={} PINHOOK_SWEEP_MAX_CALLS={} PINHOOK_IDLE_ADDRESS_MINUTES={} PINHOOK_BATCH_CONCURRENCY={}",
            self.attach_timeout.as_secs(),
            self.poll_interval.as_millis(),
            self.completion_reserve.as_millis(),
            self.attempt_timeout.as_millis(),
            self.consistency_window.as_millis(),
            self.heartbeat_interval.as_secs(),
            self.max_attempts,
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

    fn parse(metadata: &str) -> Result<HookConfig, MetadataError> {
        HookConfig::parse(Some(metadata))
    }

    #[test]
    fn eni_defaults_to_device_index_1_and_abandon() {
        let config = parse(r#"{"pin":"eni","pool":"licence"}"#).unwrap();
        assert_eq!(config.pin, Pin::Eni { device_index: 1 });
        assert_eq!(config.pool.as_str(), "licence");
        assert_eq!(config.on_failure, LifecycleResult::Abandon);
    }

    #[test]
    fn eip_defaults_to_the_primary_interface_without_takeover() {
        let config = parse(r#"{"pin":"eip","pool":"egress","on_failure":"continue"}"#).unwrap();
        assert_eq!(
            config.pin,
            Pin::Eip {
                interface: 0,
                takeover: false
            }
        );
        assert_eq!(config.on_failure, LifecycleResult::Continue);
        let config =
            parse(r#"{"pin":"eip","pool":"egress","interface":1,"takeover":true}"#).unwrap();
        assert_eq!(
            config.pin,
            Pin::Eip {
                interface: 1,
                takeover: true
            }
        );
    }

    #[test]
    fn errors_name_the_key_and_the_value() {
        let cases = [
            (r#"{"pool":"p"}"#, "no \"pin\" key"),
            (
                r#"{"pin":"nic","pool":"p"}"#,
                "key \"pin\" has value \"nic\"",
            ),
            (r#"{"pin":"eni"}"#, "no \"pool\" key"),
            (r#"{"pin":"eni","pool":""}"#, "key \"pool\" has value \"\""),
            (
                r#"{"pin":"eni","pool":"p","device_index":0}"#,
                "key \"device_index\" has value 0",
            ),
            (
                r#"{"pin":"eni","pool":"p","device_index":"1"}"#,
                "key \"device_index\" has value \"1\"",
            ),
            (
                r#"{"pin":"eni","pool":"p","on_failure":"retry"}"#,
                "key \"on_failure\" has value \"retry\"",
            ),
            (
                r#"{"pin":"eip","pool":"p","takeover":"yes"}"#,
                "key \"takeover\" has value \"yes\"",
            ),
            (
                r#"{"pin":"eni","pool":"p","devce_index":2}"#,
                "key \"devce_index\" is unknown",
            ),
            (
                r#"{"pin":"eni","pool":"p","interface":1}"#,
                "\"interface\" does not apply to \"pin\": \"eni\"",
            ),
            (
                r#"{"pin":"eip","pool":"p","device_index":1}"#,
                "\"device_index\" does not apply",
            ),
            ("pool=p", "not a JSON object"),
            ("[1]", "not a JSON object"),
        ];
        for (metadata, expected) in cases {
            let message = parse(metadata).unwrap_err().to_string();
            assert!(message.contains(expected), "{metadata}: {message}");
        }
        assert_eq!(HookConfig::parse(None), Err(MetadataError::Absent));
    }

    #[test]
    fn a_hook_is_pinhooks_only_when_its_metadata_is_a_json_object_with_pin() {
        for (metadata, why) in [
            (None, "has no NotificationMetadata"),
            (Some("  "), "has no NotificationMetadata"),
            (Some("node-ready"), "text that is not JSON"),
            (Some(r#"{"drain": 300}"#), "without a \"pin\" key"),
            (Some(r#"["pin"]"#), "a JSON array"),
            (Some(r#""pin""#), "a JSON string"),
        ] {
            match HookConfig::owner(metadata) {
                Owner::Other(reason) => assert!(reason.contains(why), "{metadata:?}: {reason}"),
                other => panic!("{metadata:?} was taken for pinhook's: {other:?}"),
            }
        }
        let ours = HookConfig::owner(Some(r#"{"pin":"eni","pool":"lic"}"#));
        assert!(matches!(ours, Owner::Pinhook(Ok(_))), "{ours:?}");
        // pinhook's hook with bad metadata: still pinhook's, with the error naming the key
        let Owner::Pinhook(Err(err)) = HookConfig::owner(Some(r#"{"pin":"nic","pool":"lic"}"#))
        else {
            panic!("bad metadata with pin must stay pinhook's");
        };
        assert!(err.to_string().contains("\"pin\""), "{err}");
    }

    #[test]
    fn a_readable_on_failure_survives_otherwise_bad_metadata() {
        let metadata = Some(r#"{"pin":"nic","pool":"p","on_failure":"continue"}"#);
        assert_eq!(
            HookConfig::on_failure_lenient(metadata),
            LifecycleResult::Continue
        );
        assert_eq!(
            HookConfig::on_failure_lenient(Some("{")),
            LifecycleResult::Abandon
        );
        assert_eq!(HookConfig::pool_lenient(metadata).unwrap().as_str(), "p");
    }

    #[test]
    fn settings_default_and_parse() {
        let defaults = Settings::from_vars(Vec::new()).unwrap();
        assert_eq!(defaults, Settings::default());
        let settings = Settings::from_vars([
            ("PINHOOK_POLL_INTERVAL_MS".to_owned(), "250".to_owned()),
            ("PINHOOK_MAX_ATTEMPTS".to_owned(), "3".to_owned()),
            ("HOME".to_owned(), "/root".to_owned()),
        ])
        .unwrap();
        assert_eq!(settings.poll_interval, Duration::from_millis(250));
        assert_eq!(settings.max_attempts, 3);
    }

    #[test]
    fn settings_print_as_the_variables_that_set_them() {
        let printed = Settings::default().to_string();
        let reparsed = Settings::from_vars(printed.split(' ').map(|pair| {
            let (name, value) = pair.split_once('=').unwrap();
            (name.to_owned(), value.to_owned())
        }))
        .unwrap();
        assert_eq!(reparsed, Settings::default());
    }

    #[test]
    fn settings_errors_name_the_variable() {
        let err = Settings::from_vars([("PINHOOK_POLL_INTERVAL_MS".to_owned(), "fast".to_owned())])
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("PINHOOK_POLL_INTERVAL_MS=\"fast\" is not valid"),
            "{err}"
        );
        let err = Settings::from_vars([("PINHOOK_POLL_INTERVAL".to_owned(), "1".to_owned())])
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("PINHOOK_POLL_INTERVAL is not a pinhook setting"),
            "{err}"
        );
        let err = Settings::from_vars([(
            "PINHOOK_COMPLETION_RESERVE_MS".to_owned(),
            "2000".to_owned(),
        )])
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("PINHOOK_COMPLETION_RESERVE_MS=2000")
                && err.to_string().contains("PINHOOK_ATTEMPT_TIMEOUT_MS=5000"),
            "{err}"
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn value() -> impl Strategy<Value = Value> {
            prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                (-3i64..200).prop_map(Value::from),
                prop_oneof![
                    Just("eni"),
                    Just("eip"),
                    Just("abandon"),
                    Just("continue"),
                    Just(""),
                    Just("x")
                ]
                .prop_map(Value::from),
                Just(Value::from(vec![1])),
            ]
        }

        proptest! {
            /// Any object of known (and one unknown) keys: parsed or refused with the key named.
            #[test]
            fn metadata_is_accepted_or_refused_by_key(entries in proptest::collection::btree_map(
                proptest::sample::select(vec!["pin", "pool", "device_index", "interface", "on_failure", "takeover", "typo"]),
                value(),
                0..7,
            )) {
                let object: Map<String, Value> = entries.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
                let text = Value::Object(object).to_string();
                match HookConfig::parse(Some(&text)) {
                    Ok(config) => {
                        prop_assert_eq!(Some(&Value::from(config.pool.as_str())), entries.get("pool"));
                        prop_assert!(!entries.contains_key("typo"));
                    }
                    Err(err) => {
                        let message = err.to_string();
                        prop_assert!(entries.keys().any(|k| message.contains(&format!("\"{k}\""))) || message.contains("required"), "{message}");
                    }
                }
            }

            #[test]
            fn any_text_is_refused_without_panicking(text in "\\PC{0,64}") {
                let _ = HookConfig::parse(Some(&text));
                let _ = HookConfig::on_failure_lenient(Some(&text));
                let _ = HookConfig::pool_lenient(Some(&text));
            }
        }
    }

    #[test]
    fn the_sweeps_settings_are_read_and_checked() {
        let settings = Settings::from_vars([
            (
                "PINHOOK_GROUPS".to_owned(),
                " licensed-app, egress-nodes ,".to_owned(),
            ),
            ("PINHOOK_SWEEP_MAX_CALLS".to_owned(), "120".to_owned()),
            ("PINHOOK_IDLE_ADDRESS_MINUTES".to_owned(), "30".to_owned()),
        ])
        .unwrap();
        assert_eq!(settings.groups, ["licensed-app", "egress-nodes"]);
        assert_eq!(settings.sweep_max_calls, 120);
        assert_eq!(settings.idle_address_after, Duration::from_secs(1800));
        assert!(
            settings
                .to_string()
                .contains("PINHOOK_GROUPS=licensed-app,egress-nodes")
        );
        let err = Settings::from_vars([("PINHOOK_SWEEP_MAX_CALLS".to_owned(), "5".to_owned())])
            .unwrap_err();
        assert!(err.to_string().contains("from 10 to 100000"), "{err}");
    }
}
