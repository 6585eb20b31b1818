//! Configuration, each parsed once into a validated type: the per-hook settings in a lifecycle
//! hook's `NotificationMetadata` (`hook`), the same settings as an instance's `pinhook:` tags
//! (`tags`), and the function-wide `PINHOOK_…` environment variables (`settings`); and the tags
//! that are pinhook's public interface on AWS resources.

mod hook;
mod settings;
mod tags;

pub use self::hook::{
    DeviceIndex, HookConfig, HookMetadata, MetadataError, Pin, PinKind, PoolName, Takeover,
    Unusable,
};
pub use self::settings::{RetryMode, Settings, SettingsError};

/// The tag that makes an instance without a group pinhook's, naming what it pins (`eni` or
/// `eip`); `pinhook:pool` names the pool, and the other keys of the hook metadata may be given
/// as tags of their own (`pinhook:device_index`, `pinhook:interface`, `pinhook:takeover`).
pub const PIN_TAG: &str = "pinhook:pin";
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
