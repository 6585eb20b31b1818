//! AWS errors as pinhook sees them: the operation, AWS's error code and message kept intact, and
//! the one classification by code that decides what happens next.

use std::error::Error as StdError;
use std::fmt;

/// What an AWS error means for pinhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The ENI is attached elsewhere or changing state: someone else holds it; try the next one.
    InUse,
    /// The instance already has an interface at the requested device index.
    DeviceIndexTaken,
    /// The ENI is in another Availability Zone than the instance.
    ZoneMismatch,
    /// The Elastic IP is already associated: someone else holds it; try the next one.
    AlreadyAssociated,
    /// The instance is not running (yet): EC2 refuses attachments and associations while it
    /// boots (`IncorrectInstanceState`, or `InvalidInstanceID` "The pending instance … is not in
    /// a valid state"). Its state says whether to wait.
    InstanceNotReady,
    /// The resource does not exist (any more).
    NotFound(Resource),
    /// Auto Scaling has no active lifecycle action with that token or instance: already
    /// completed, or timed out. Counts as done.
    NoActiveAction,
    /// The function's role lacks a permission.
    AccessDenied,
    /// Throttling, a 5xx, a timeout or a dropped connection: worth retrying later.
    Transient,
    /// Anything else AWS refused.
    Other,
    /// Not sent: the sweep's budget of calls for this run is spent, or the call would change
    /// something in a dry run.
    NotSent,
}

/// What a `NotFound` error is about: a pool member that is gone and an instance (or its
/// interface) that is gone call for different endings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Instance,
    NetworkInterface,
    Attachment,
    Address,
    Association,
}

/// An AWS call that failed.
#[derive(Debug)]
pub struct AwsError {
    /// The IAM action of the call, e.g. `ec2:AttachNetworkInterface`.
    pub operation: &'static str,
    pub kind: ErrorKind,
    pub code: Option<String>,
    pub message: Option<String>,
    pub source: Option<Box<dyn StdError + Send + Sync>>,
}

impl AwsError {
    /// Builds an error from what AWS answered, classified by its code.
    pub fn from_response(
        operation: &'static str,
        code: Option<&str>,
        message: Option<&str>,
        status: Option<u16>,
        source: Option<Box<dyn StdError + Send + Sync>>,
    ) -> Self {
        Self {
            operation,
            kind: classify(code, message, status),
            code: code.map(str::to_owned),
            message: message.map(str::to_owned),
            source,
        }
    }

    /// An error with no answer from AWS at all (timeout, connection refused, …).
    pub fn transient(operation: &'static str, source: Box<dyn StdError + Send + Sync>) -> Self {
        Self {
            operation,
            kind: ErrorKind::Transient,
            code: None,
            message: None,
            source: Some(source),
        }
    }

    /// An answer pinhook cannot use, e.g. a required field AWS left out.
    pub fn unexpected(operation: &'static str, what: impl Into<String>) -> Self {
        Self {
            operation,
            kind: ErrorKind::Other,
            code: None,
            message: Some(what.into()),
            source: None,
        }
    }

    /// A call pinhook chose not to send, and why.
    pub fn not_sent(operation: &'static str, why: impl Into<String>) -> Self {
        Self {
            operation,
            kind: ErrorKind::NotSent,
            code: None,
            message: Some(why.into()),
            source: None,
        }
    }

    pub fn is(&self, kind: ErrorKind) -> bool {
        self.kind == kind
    }

    pub fn is_transient(&self) -> bool {
        self.kind == ErrorKind::Transient
    }

    /// What is gone, when AWS answered that something does not exist.
    pub fn not_found(&self) -> Option<Resource> {
        match self.kind {
            ErrorKind::NotFound(resource) => Some(resource),
            _ => None,
        }
    }
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed", self.operation)?;
        match (&self.code, &self.message) {
            (Some(code), Some(message)) => write!(f, ": {code}: {message}")?,
            (Some(code), None) => write!(f, ": {code}")?,
            (None, Some(message)) => write!(f, ": {message}")?,
            (None, None) => {
                if let Some(source) = &self.source {
                    write!(f, ": {}", DisplayChain(source.as_ref()))?;
                }
            }
        }
        if self.kind == ErrorKind::AccessDenied {
            write!(
                f,
                " (grant {} to the function's role; see the IAM table in the README)",
                self.operation
            )?;
        }
        Ok(())
    }
}

impl StdError for AwsError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

/// A transient AWS error (throttling, a 5xx, a timeout, no answer): a later attempt or a
/// redelivery of the event can get past it, so it is never a reason to give up.
#[derive(Debug)]
pub struct Transient(pub AwsError);

impl fmt::Display for Transient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<Transient> for AwsError {
    fn from(transient: Transient) -> Self {
        transient.0
    }
}

/// The one place a result is sorted by whether its error is transient.
pub trait SplitTransient<T> {
    /// `Err` with a transient error, for `?` to pass up; `Ok` with the result otherwise, for
    /// the caller to decide on any other error.
    fn split_transient(self) -> Result<Result<T, AwsError>, Transient>;
}

impl<T> SplitTransient<T> for Result<T, AwsError> {
    fn split_transient(self) -> Result<Result<T, AwsError>, Transient> {
        match self {
            Err(err) if err.is_transient() => Err(Transient(err)),
            other => Ok(other),
        }
    }
}

/// An error and its causes on one line.
struct DisplayChain<'a>(&'a (dyn StdError + 'static));

impl fmt::Display for DisplayChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(cause) = next {
            write!(f, ": {cause}")?;
            next = cause.source();
        }
        Ok(())
    }
}

/// Sorts an AWS error by its code (and, where AWS reuses a generic code, by its message).
pub fn classify(code: Option<&str>, message: Option<&str>, status: Option<u16>) -> ErrorKind {
    let message = message.unwrap_or_default();
    match code.unwrap_or_default() {
        "InvalidNetworkInterface.InUse" | "IncorrectState" => ErrorKind::InUse,
        "InvalidParameterValue"
            if message.contains("already has an interface attached at device index") =>
        {
            ErrorKind::DeviceIndexTaken
        }
        "InvalidParameterCombination"
            if message.to_ascii_lowercase().contains("availability zone") =>
        {
            ErrorKind::ZoneMismatch
        }
        "Resource.AlreadyAssociated" => ErrorKind::AlreadyAssociated,
        "IncorrectInstanceState" => ErrorKind::InstanceNotReady,
        "InvalidInstanceID" if message.contains("not in a valid state") => {
            ErrorKind::InstanceNotReady
        }
        "InvalidInstanceID.NotFound" => ErrorKind::NotFound(Resource::Instance),
        "InvalidNetworkInterfaceID.NotFound" => ErrorKind::NotFound(Resource::NetworkInterface),
        "InvalidAttachmentID.NotFound" => ErrorKind::NotFound(Resource::Attachment),
        "InvalidAllocationID.NotFound" | "InvalidAddress.NotFound" => {
            ErrorKind::NotFound(Resource::Address)
        }
        "InvalidAssociationID.NotFound" => ErrorKind::NotFound(Resource::Association),
        "ValidationError" if message.contains("No active Lifecycle Action found") => {
            ErrorKind::NoActiveAction
        }
        "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" | "AuthFailure" => {
            ErrorKind::AccessDenied
        }
        "Throttling"
        | "ThrottlingException"
        | "ThrottledException"
        | "RequestLimitExceeded"
        | "RequestThrottled"
        | "RequestThrottledException"
        | "TooManyRequestsException"
        | "ProvisionedThroughputExceededException"
        | "SlowDown"
        | "PriorRequestNotComplete"
        | "EC2ThrottledException"
        | "ResourceContention"
        | "InternalError"
        | "InternalFailure"
        | "ServiceUnavailable"
        | "Unavailable"
        | "RequestTimeout"
        | "RequestTimeoutException" => ErrorKind::Transient,
        _ if status.is_some_and(|s| s >= 500) => ErrorKind::Transient,
        _ => ErrorKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_pinhook_acts_on_are_classified() {
        let cases = [
            (
                "InvalidNetworkInterface.InUse",
                "Interface: [eni-1] in use.",
                ErrorKind::InUse,
            ),
            (
                "InvalidParameterValue",
                "Instance 'i-1' already has an interface attached at device index '1'.",
                ErrorKind::DeviceIndexTaken,
            ),
            (
                "InvalidParameterCombination",
                "You may not attach a network interface to an instance if they are not in the same availability zone",
                ErrorKind::ZoneMismatch,
            ),
            (
                "Resource.AlreadyAssociated",
                "",
                ErrorKind::AlreadyAssociated,
            ),
            (
                "IncorrectInstanceState",
                "The pending-instance-creation instance to which 'eni-1' is attached is not in a valid state for this operation",
                ErrorKind::InstanceNotReady,
            ),
            (
                "InvalidInstanceID",
                "The pending instance 'i-1' is not in a valid state for this operation.",
                ErrorKind::InstanceNotReady,
            ),
            (
                "InvalidInstanceID.NotFound",
                "The instance ID 'i-1' does not exist",
                ErrorKind::NotFound(Resource::Instance),
            ),
            (
                "InvalidNetworkInterfaceID.NotFound",
                "The networkInterface ID 'eni-1' does not exist",
                ErrorKind::NotFound(Resource::NetworkInterface),
            ),
            (
                "InvalidAllocationID.NotFound",
                "The allocation ID 'eipalloc-1' does not exist",
                ErrorKind::NotFound(Resource::Address),
            ),
            (
                "ValidationError",
                "No active Lifecycle Action found with token 1234",
                ErrorKind::NoActiveAction,
            ),
            ("ValidationError", "Group g not found", ErrorKind::Other),
            (
                "UnauthorizedOperation",
                "You are not authorized",
                ErrorKind::AccessDenied,
            ),
            (
                "AccessDenied",
                "User is not authorized",
                ErrorKind::AccessDenied,
            ),
            (
                "RequestLimitExceeded",
                "Request limit exceeded.",
                ErrorKind::Transient,
            ),
            ("Throttling", "Rate exceeded", ErrorKind::Transient),
            (
                "InvalidParameterValue",
                "Value (x) for parameter y is invalid",
                ErrorKind::Other,
            ),
        ];
        for (code, message, kind) in cases {
            assert_eq!(
                classify(Some(code), Some(message), Some(400)),
                kind,
                "{code}"
            );
        }
        assert_eq!(classify(None, None, Some(503)), ErrorKind::Transient);
        assert_eq!(
            classify(Some("Weird"), None, Some(500)),
            ErrorKind::Transient
        );
        assert_eq!(classify(None, None, None), ErrorKind::Other);
    }

    #[test]
    fn access_denied_names_the_missing_permission() {
        let err = AwsError::from_response(
            "ec2:AttachNetworkInterface",
            Some("UnauthorizedOperation"),
            Some("You are not authorized to perform this operation."),
            Some(403),
            None,
        );
        let text = err.to_string();
        assert!(
            text.starts_with("ec2:AttachNetworkInterface failed: UnauthorizedOperation"),
            "{text}"
        );
        assert!(text.contains("grant ec2:AttachNetworkInterface"), "{text}");
    }
}
