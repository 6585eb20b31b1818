//! Black-box tests: the real handler and the real SDK clients over HTTP against the local AWS
//! emulator, plus the adapter error paths the emulator cannot produce, with aws-smithy-mocks.

use pinhook_testkit as support;

mod adapter_errors;
mod asg_lag;
mod aws_time;
mod bad_input;
mod eip;
mod emulator;
mod eni_launch;
mod eni_release;
mod events;
mod fake;
mod foreign_hooks;
mod instances;
mod notification_targets;
mod reliability;
mod sweep;
mod takeover;
mod template;
mod throttling;
mod waiting;
mod warm_pool;
