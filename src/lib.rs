//! pinhook pins a pooled ENI or Elastic IP to each instance of an EC2 Auto Scaling group through
//! lifecycle hooks, and releases it when the instance leaves.
//!
//! Three layers: parsing ([`event`], [`config`], [`model`]), decisions with no I/O
//! ([`decide`]), and the AWS adapters ([`aws`]); [`handler`] runs the steps over them, with
//! [`member`] as the only place where ENIs and Elastic IPs differ.

pub mod aws;
pub mod config;
pub mod decide;
pub mod event;
pub mod handler;
pub mod member;
pub mod metrics;
pub mod model;
pub mod sweep;

pub use handler::{
    Deadline, Done, HandlerError, Outcome, Pinhook, Summary, SweepOptions, SweepReport,
};
