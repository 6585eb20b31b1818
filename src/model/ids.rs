//! AWS resource identifiers, checked once where they enter pinhook.

use std::fmt;

use serde::Serialize;

/// Why an identifier from outside was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {value:?} is not valid: expected {expected}")]
pub struct InvalidId {
    pub what: &'static str,
    pub value: String,
    pub expected: &'static str,
}

fn check_id(
    what: &'static str,
    prefix: &'static str,
    expected: &'static str,
    value: &str,
) -> Result<String, InvalidId> {
    let rest = value.strip_prefix(prefix).unwrap_or_default();
    if rest.is_empty() || rest.len() > 64 || !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(InvalidId {
            what,
            value: value.chars().take(80).collect(),
            expected,
        });
    }
    Ok(value.to_owned())
}

macro_rules! resource_id {
    ($(#[$doc:meta])* $name:ident, $what:literal, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn parse(value: &str) -> Result<Self, InvalidId> {
                check_id($what, $prefix, concat!("\"", $prefix, "\" followed by letters and digits"), value).map(Self)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

resource_id!(
    /// An EC2 instance id, `i-…`.
    InstanceId,
    "instance id",
    "i-"
);
resource_id!(
    /// A network interface id, `eni-…`.
    EniId,
    "network interface id",
    "eni-"
);
resource_id!(
    /// A network interface attachment id, `eni-attach-…`.
    AttachmentId,
    "attachment id",
    "eni-attach-"
);
resource_id!(
    /// An Elastic IP allocation id, `eipalloc-…`.
    AllocationId,
    "allocation id",
    "eipalloc-"
);
resource_id!(
    /// An Elastic IP association id, `eipassoc-…`.
    AssociationId,
    "association id",
    "eipassoc-"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_keep_their_prefix_and_refuse_anything_else() {
        assert_eq!(
            InstanceId::parse("i-0abc123").unwrap().as_str(),
            "i-0abc123"
        );
        for bad in ["", "i-", "eni-123", "i-12 3", "i-../x", "I-123"] {
            let err = InstanceId::parse(bad).unwrap_err();
            assert_eq!(err.what, "instance id");
        }
        assert!(EniId::parse("eni-0f00").is_ok());
        assert!(AttachmentId::parse("eni-attach-0f00").is_ok());
        assert!(AttachmentId::parse("eni-0f00").is_err());
    }
}
