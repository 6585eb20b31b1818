//! pinhook's settings for an instance without a group, from its tags (DESIGN.md, "Instances
//! without a group"): the keys of the hook metadata as `pinhook:` tags, checked by the same
//! rules, with errors that name the tag.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::PIN_TAG;
use super::hook::{HookConfig, MetadataError};

/// The keys of the hook metadata an instance without a group may carry as `pinhook:` tags; the
/// failure outcome does not apply, since no lifecycle action waits.
const TAG_KEYS: [&str; 5] = ["pin", "pool", "device_index", "interface", "takeover"];

impl HookConfig {
    /// pinhook's settings for an instance without a group, from its tags (DESIGN.md, "Instances
    /// without a group"): `None` when it has no `pinhook:pin` tag, an error naming the tag when
    /// its tags cannot be used. Checked by the same rules as hook metadata.
    pub fn from_tags(tags: &BTreeMap<String, String>) -> Option<Result<Self, String>> {
        tags.get(PIN_TAG)?;
        let object: Map<String, Value> = TAG_KEYS
            .iter()
            .filter_map(|key| {
                let value = tags.get(&format!("pinhook:{key}"))?;
                // Tag values are text: the numbers and booleans of the metadata are read from it.
                let value = match *key {
                    "device_index" | "interface" => value
                        .parse::<u64>()
                        .map_or_else(|_| Value::String(value.clone()), Value::from),
                    "takeover" => match value.as_str() {
                        "true" => Value::Bool(true),
                        "false" => Value::Bool(false),
                        _ => Value::String(value.clone()),
                    },
                    _ => Value::String(value.clone()),
                };
                Some(((*key).to_owned(), value))
            })
            .collect();
        Some(Self::from_object(&object).map_err(|err| match err {
            MetadataError::Missing(key) => {
                format!(
                    "the instance has tag pinhook:pin but no tag pinhook:{key}, which is required"
                )
            }
            MetadataError::Invalid {
                key,
                value,
                expected,
            } => format!("tag pinhook:{key} has value {value}: {expected}"),
            MetadataError::NotApplicable { key, pin } => {
                format!("tag pinhook:{key} does not apply to pinhook:pin={pin}")
            }
            MetadataError::Unknown(key) => format!("tag pinhook:{key} is unknown"),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DeviceIndex, Pin, PoolName, Takeover};
    use crate::model::LifecycleResult;

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn an_instance_is_pinhooks_by_its_tags_read_by_the_metadata_rules() {
        assert_eq!(HookConfig::from_tags(&tags(&[("Name", "node")])), None);
        let eip = HookConfig::from_tags(&tags(&[
            ("pinhook:pin", "eip"),
            ("pinhook:pool", "egress"),
            ("pinhook:takeover", "true"),
            // pinhook's own lease tag, and a key that applies to a hook only, are not read
            ("pinhook:eip", "eipalloc-1"),
            ("pinhook:on_failure", "odd"),
        ]));
        assert_eq!(
            eip,
            Some(Ok(HookConfig {
                pin: Pin::Eip {
                    interface: DeviceIndex::PRIMARY,
                    takeover: Takeover::Allowed,
                },
                pool: PoolName::parse("egress").unwrap(),
                on_failure: LifecycleResult::Abandon,
            }))
        );
        let eni = HookConfig::from_tags(&tags(&[
            ("pinhook:pin", "eni"),
            ("pinhook:pool", "licence"),
            ("pinhook:device_index", "2"),
        ]));
        assert_eq!(
            eni.unwrap().unwrap().pin,
            Pin::Eni {
                device_index: DeviceIndex::new(2).unwrap()
            }
        );
    }

    #[test]
    fn unusable_instance_tags_are_named_in_the_error() {
        let cases = [
            (vec![("pinhook:pin", "eni")], "no tag pinhook:pool"),
            (
                vec![("pinhook:pin", "nic"), ("pinhook:pool", "p")],
                "tag pinhook:pin has value \"nic\"",
            ),
            (
                vec![
                    ("pinhook:pin", "eni"),
                    ("pinhook:pool", "p"),
                    ("pinhook:device_index", "zero"),
                ],
                "tag pinhook:device_index has value \"zero\"",
            ),
            (
                vec![
                    ("pinhook:pin", "eni"),
                    ("pinhook:pool", "p"),
                    ("pinhook:takeover", "true"),
                ],
                "tag pinhook:takeover does not apply to pinhook:pin=eni",
            ),
        ];
        for (pairs, expected) in cases {
            let error = HookConfig::from_tags(&tags(&pairs)).unwrap().unwrap_err();
            assert!(error.contains(expected), "{pairs:?}: {error}");
        }
    }
}
