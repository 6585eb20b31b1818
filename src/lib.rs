//! pinhook pins a pooled ENI or Elastic IP to each instance of an EC2 Auto Scaling group through
//! lifecycle hooks, and releases it when the instance leaves.
//!
//! Three layers: parsing ([`event`], [`config`], [`model`]), decisions with no I/O
//! ([`decide`]), and the AWS adapters ([`aws`]). [`handler`] tells each path as one story over
//! them — launch, release, sweep — with the claim engine ([`claim`]) as the one door every
//! claim goes through, and [`member`] as the only place where ENIs and Elastic IPs differ.

pub mod aws;
pub mod claim;
pub mod config;
pub mod context;
pub mod decide;
pub mod event;
pub mod handler;
pub mod holders;
pub mod member;
pub mod metrics;
pub mod model;

pub use context::Deadline;
pub use handler::{
    HandlerError, Outcome, Pinhook, RepairResult, Summary, SweepOptions, SweepReport,
};
