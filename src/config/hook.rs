//! A lifecycle hook's settings, read once from its `NotificationMetadata` into the one value the
//! rest of pinhook works with: pinhook's hook and its configuration, pinhook's hook that cannot
//! be used (and what could still be read of it), or another tool's hook (and why).

use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};
use strum::{Display, EnumString, IntoStaticStr};

use crate::model::LifecycleResult;

/// A pool name: the value of the `pinhook:pool` tag its members carry.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct PoolName(String);

/// Quoted, as in messages: `pool "licence" is exhausted`.
impl fmt::Debug for PoolName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl fmt::Display for PoolName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PoolName {
    /// A pool name as a tag value may hold it: 1 to 256 characters, no outer spaces.
    pub fn parse(value: &str) -> Option<Self> {
        let valid = !value.is_empty() && value.chars().count() <= 256 && value.trim() == value;
        valid.then(|| Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A network interface's position on an instance (EC2's `DeviceIndex`); 0 is the primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct DeviceIndex(u8);

impl DeviceIndex {
    pub const PRIMARY: Self = Self(0);
    /// The most network interfaces an instance type takes is far below this.
    pub const MAX: u8 = 127;

    pub fn new(index: u8) -> Option<Self> {
        (index <= Self::MAX).then_some(Self(index))
    }

    /// As the EC2 API takes it.
    pub fn get(self) -> i32 {
        i32::from(self.0)
    }
}

impl fmt::Display for DeviceIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Whether an Elastic IP launch may take a member from a holder AWS confirms is leaving,
/// unhealthy or gone, when no member is free (single-instance HA).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Takeover {
    #[default]
    Off,
    Allowed,
}

/// The two kinds of pool member.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Display,
    EnumString,
    IntoStaticStr,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum PinKind {
    Eni,
    Eip,
}

/// What a hook pins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pin {
    /// A pool ENI, attached at `device_index`.
    Eni { device_index: DeviceIndex },
    /// A pool Elastic IP, associated with the instance's interface at device index `interface`.
    Eip {
        interface: DeviceIndex,
        takeover: Takeover,
    },
}

impl Pin {
    pub fn kind(&self) -> PinKind {
        match self {
            Self::Eni { .. } => PinKind::Eni,
            Self::Eip { .. } => PinKind::Eip,
        }
    }
}

/// The settings of one of pinhook's lifecycle hooks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookConfig {
    pub pin: Pin,
    pub pool: PoolName,
    pub on_failure: LifecycleResult,
}

/// Why pinhook's hook metadata was refused; the message names the key and the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
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
    NotApplicable { key: &'static str, pin: PinKind },
}

/// pinhook's hook whose metadata cannot be used: the error, and what could still be read, so
/// that its action is completed with the hook's own failure outcome and a release still finds
/// the pool it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unusable {
    pub error: MetadataError,
    /// The hook's `on_failure` if that key alone is readable, else the documented default.
    pub on_failure: LifecycleResult,
    /// The pool, if that key alone is readable.
    pub pool: Option<PoolName>,
}

/// A hook's `NotificationMetadata`, read once (DESIGN.md, "Whose hooks").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookMetadata {
    /// pinhook's hook, and its settings.
    Pinhook(HookConfig),
    /// pinhook's hook (a JSON object with `pin`), with metadata it cannot use.
    Unusable(Unusable),
    /// Another tool's hook: pinhook changes nothing and completes nothing. Why it is not
    /// pinhook's.
    Foreign(String),
}

const KEYS: [&str; 6] = [
    "pin",
    "pool",
    "device_index",
    "interface",
    "on_failure",
    "takeover",
];

impl HookMetadata {
    pub fn parse(metadata: Option<&str>) -> Self {
        let Some(text) = metadata.filter(|m| !m.trim().is_empty()) else {
            return Self::Foreign("the hook has no NotificationMetadata".into());
        };
        let kind = match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(object)) if object.contains_key("pin") => {
                return match HookConfig::from_object(&object) {
                    Ok(config) => Self::Pinhook(config),
                    Err(error) => Self::Unusable(Unusable {
                        error,
                        on_failure: object
                            .get("on_failure")
                            .and_then(|v| on_failure(v).ok())
                            .unwrap_or(LifecycleResult::Abandon),
                        pool: object.get("pool").map(pool).and_then(Result::ok),
                    }),
                };
            }
            Ok(Value::Object(_)) => "a JSON object without a \"pin\" key",
            Ok(Value::Array(_)) => "a JSON array",
            Ok(Value::String(_)) => "a JSON string",
            Ok(Value::Number(_)) => "a JSON number",
            Ok(Value::Bool(_) | Value::Null) => "a JSON literal",
            Err(_) => "text that is not JSON",
        };
        Self::Foreign(format!("its NotificationMetadata is {kind}"))
    }

    /// The pool the hook names, if any can be read.
    pub fn pool(&self) -> Option<&PoolName> {
        match self {
            Self::Pinhook(config) => Some(&config.pool),
            Self::Unusable(unusable) => unusable.pool.as_ref(),
            Self::Foreign(_) => None,
        }
    }
}

impl HookConfig {
    pub(super) fn from_object(object: &Map<String, Value>) -> Result<Self, MetadataError> {
        if let Some(unknown) = object.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(MetadataError::Unknown(unknown.chars().take(64).collect()));
        }
        let kind = match object.get("pin") {
            None => return Err(MetadataError::Missing("pin")),
            Some(Value::String(s)) if s == "eni" => PinKind::Eni,
            Some(Value::String(s)) if s == "eip" => PinKind::Eip,
            Some(other) => return Err(invalid("pin", other, "\"eni\" or \"eip\"")),
        };
        let pool = match object.get("pool").map(pool) {
            None => return Err(MetadataError::Missing("pool")),
            Some(pool) => pool?,
        };
        let on_failure = match object.get("on_failure") {
            None => LifecycleResult::Abandon,
            Some(value) => on_failure(value)?,
        };
        // A key that belongs to the other kind is refused rather than ignored: it is a mistake.
        let not_for = |key: &'static str| match object.contains_key(key) {
            true => Err(MetadataError::NotApplicable { key, pin: kind }),
            false => Ok(()),
        };
        let pin = match kind {
            PinKind::Eni => {
                not_for("interface")?;
                not_for("takeover")?;
                Pin::Eni {
                    device_index: index(object, "device_index", 1)?,
                }
            }
            PinKind::Eip => {
                not_for("device_index")?;
                let takeover = match object.get("takeover") {
                    None | Some(Value::Bool(false)) => Takeover::Off,
                    Some(Value::Bool(true)) => Takeover::Allowed,
                    Some(other) => return Err(invalid("takeover", other, "true or false")),
                };
                Pin::Eip {
                    interface: index(object, "interface", 0)?,
                    takeover,
                }
            }
        };
        Ok(Self {
            pin,
            pool,
            on_failure,
        })
    }
}

fn pool(value: &Value) -> Result<PoolName, MetadataError> {
    value.as_str().and_then(PoolName::parse).ok_or_else(|| {
        invalid(
            "pool",
            value,
            "a non-empty string of at most 256 characters without leading or trailing spaces, the value of the members' pinhook:pool tag",
        )
    })
}

fn on_failure(value: &Value) -> Result<LifecycleResult, MetadataError> {
    value
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid("on_failure", value, "\"abandon\" or \"continue\""))
}

/// The device index under `key`: `default` when absent, from `default` up when given.
fn index(
    object: &Map<String, Value>,
    key: &'static str,
    default: u8,
) -> Result<DeviceIndex, MetadataError> {
    let Some(value) = object.get(key) else {
        return Ok(DeviceIndex(default));
    };
    value
        .as_u64()
        .and_then(|n| u8::try_from(n).ok())
        .filter(|n| *n >= default)
        .and_then(DeviceIndex::new)
        .ok_or_else(|| {
            let max = DeviceIndex::MAX;
            let expected = match default {
                1 => format!(
                    "an integer from 1 to {max} (0 is the primary interface, which pinhook never attaches or detaches)"
                ),
                _ => format!("an integer from {default} to {max}"),
            };
            invalid(key, value, &expected)
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn config(metadata: &str) -> HookConfig {
        match HookMetadata::parse(Some(metadata)) {
            HookMetadata::Pinhook(config) => config,
            other => panic!("{metadata}: {other:?}"),
        }
    }

    fn unusable(metadata: &str) -> Unusable {
        match HookMetadata::parse(Some(metadata)) {
            HookMetadata::Unusable(unusable) => unusable,
            other => panic!("{metadata}: {other:?}"),
        }
    }

    fn index(n: u8) -> DeviceIndex {
        DeviceIndex::new(n).unwrap()
    }

    #[test]
    fn eni_defaults_to_device_index_1_and_abandon() {
        let eni = config(r#"{"pin":"eni","pool":"licence"}"#);
        assert_eq!(
            eni.pin,
            Pin::Eni {
                device_index: index(1)
            }
        );
        assert_eq!(eni.pool.as_str(), "licence");
        assert_eq!(eni.on_failure, LifecycleResult::Abandon);
    }

    #[test]
    fn eip_defaults_to_the_primary_interface_without_takeover() {
        let eip = config(r#"{"pin":"eip","pool":"egress","on_failure":"continue"}"#);
        assert_eq!(
            eip.pin,
            Pin::Eip {
                interface: DeviceIndex::PRIMARY,
                takeover: Takeover::Off
            }
        );
        assert_eq!(eip.on_failure, LifecycleResult::Continue);
        let ha = config(r#"{"pin":"eip","pool":"egress","interface":1,"takeover":true}"#);
        assert_eq!(
            ha.pin,
            Pin::Eip {
                interface: index(1),
                takeover: Takeover::Allowed
            }
        );
    }

    #[test]
    fn errors_name_the_key_and_the_value() {
        let cases = [
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
                r#"{"pin":"eni","pool":"p","device_index":128}"#,
                "key \"device_index\" has value 128: an integer from 1 to 127",
            ),
            (
                r#"{"pin":"eni","pool":"p","device_index":"1"}"#,
                "key \"device_index\" has value \"1\"",
            ),
            (
                r#"{"pin":"eip","pool":"p","interface":-1}"#,
                "key \"interface\" has value -1: an integer from 0 to 127",
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
                "\"device_index\" does not apply to \"pin\": \"eip\"",
            ),
        ];
        for (metadata, expected) in cases {
            let message = unusable(metadata).error.to_string();
            assert!(message.contains(expected), "{metadata}: {message}");
        }
    }

    #[test]
    fn a_hook_is_pinhooks_only_when_its_metadata_is_a_json_object_with_pin() {
        for (metadata, why) in [
            (None, "has no NotificationMetadata"),
            (Some("  "), "has no NotificationMetadata"),
            (Some("node-ready"), "text that is not JSON"),
            (Some(r#"{"drain": 300}"#), "without a \"pin\" key"),
            (Some(r#"{"pool": "p"}"#), "without a \"pin\" key"),
            (Some(r#"["pin"]"#), "a JSON array"),
            (Some(r#""pin""#), "a JSON string"),
        ] {
            match HookMetadata::parse(metadata) {
                HookMetadata::Foreign(reason) => {
                    assert!(reason.contains(why), "{metadata:?}: {reason}")
                }
                other => panic!("{metadata:?} was taken for pinhook's: {other:?}"),
            }
        }
        // pinhook's hook with bad metadata: still pinhook's, with the error naming the key
        let bad = unusable(r#"{"pin":"nic","pool":"lic"}"#);
        assert!(bad.error.to_string().contains("\"pin\""), "{bad:?}");
    }

    #[test]
    fn what_is_readable_of_unusable_metadata_is_kept() {
        let bad = unusable(r#"{"pin":"nic","pool":"p","on_failure":"continue"}"#);
        assert_eq!(bad.on_failure, LifecycleResult::Continue);
        assert_eq!(bad.pool.as_ref().map(PoolName::as_str), Some("p"));
        let worse = unusable(r#"{"pin":"eni","pool":7,"on_failure":"retry"}"#);
        assert_eq!(worse.on_failure, LifecycleResult::Abandon);
        assert_eq!(worse.pool, None);
        assert_eq!(
            HookMetadata::Unusable(bad).pool().map(PoolName::as_str),
            Some("p")
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
            /// Any object with `pin` and known (and one unknown) keys: parsed, or refused with
            /// the key named.
            #[test]
            fn metadata_is_accepted_or_refused_by_key(entries in proptest::collection::btree_map(
                proptest::sample::select(vec!["pool", "device_index", "interface", "on_failure", "takeover", "typo"]),
                value(),
                0..6,
            ), pin in value()) {
                let mut object: Map<String, Value> = entries.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
                object.insert("pin".into(), pin);
                let text = Value::Object(object).to_string();
                match HookMetadata::parse(Some(&text)) {
                    HookMetadata::Pinhook(config) => {
                        prop_assert_eq!(Some(&Value::from(config.pool.as_str())), entries.get("pool"));
                        prop_assert!(!entries.contains_key("typo"));
                    }
                    HookMetadata::Unusable(Unusable { error, .. }) => {
                        let message = error.to_string();
                        let named = ["pin"].iter().chain(entries.keys()).any(|k| message.contains(&format!("\"{k}\"")));
                        prop_assert!(named || message.contains("which is required"), "{message}");
                    }
                    HookMetadata::Foreign(why) => prop_assert!(false, "an object with pin is pinhook's: {why}"),
                }
            }

            #[test]
            fn any_text_is_sorted_without_panicking(text in "\\PC{0,64}") {
                let _ = HookMetadata::parse(Some(&text));
            }
        }
    }
}
