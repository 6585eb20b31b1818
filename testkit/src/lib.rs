//! pinhook's test kit, shared by the integration tests, the examples and the bench: the local
//! AWS emulator's process and control API (`process`, `control`), SDK clients that run on the
//! emulator's clock (`clock`, `sdk`), a world of clients and the real handler on them
//! (`world`), fixtures that build groups, pools and hooks (`fixtures`) and read back what AWS
//! holds (`facts`), SQS and SNS delivery (`queues`), the census of a burst (`census`), and
//! aws-smithy-mocks answers in AWS's XML for the error paths the emulator cannot produce
//! (`mocks`).

pub mod census;
pub mod cfn;
pub mod clock;
pub mod control;
pub mod facts;
pub mod fixtures;
pub mod mocks;
pub mod process;
pub mod queues;
pub mod sdk;
pub mod world;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

pub use census::{Census, Deliveries};
pub use clock::Clock;
pub use control::Control;
pub use facts::{AddressState, EniState, InstanceState};
pub use fixtures::{
    Group, GroupSpec, Network, Pin, Pinning, eip_metadata, eni_metadata, hook_metadata,
    instance_of, node_tags, sample_event, sample_for,
};
pub use futures_util::future::join_all;
pub use process::{Emulator, LambdaRuntime, pinhook_binary, pinhook_cli, python};
pub use queues::{Queue, drain, poll_queue, sqs_event};
pub use sdk::{TokioClock, fast_settings, own_partition, sdk_config};
pub use world::{App, World, burst_settings};

pub const REGION: &str = "us-east-1";
pub const AZ_A: &str = "us-east-1a";
pub const AZ_B: &str = "us-east-1b";
pub const POOL_TAG: &str = "pinhook:pool";
pub const HOLDER_TAG: &str = "pinhook:holder";
pub const AMI: &str = "ami-12c6146b";
/// The role Auto Scaling assumes to publish to a notification target (the emulator does not
/// check it; AWS requires one).
pub const HOOK_ROLE: &str = "arn:aws:iam::123456789012:role/pinhook-lifecycle-notifications";

/// The repository's root, where `events/`, `emulator/` and `.venv` are.
pub fn repo_root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// A name no other test (or earlier run against the same emulator) uses.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
