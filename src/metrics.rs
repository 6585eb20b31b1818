//! Metrics as CloudWatch Embedded Metric Format log lines: one JSON line per invocation,
//! which CloudWatch Logs turns into metrics without any API call from the function.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

/// The counts of one invocation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metrics {
    pub pool: Option<String>,
    pub availability_zone: Option<String>,
    pub values: BTreeMap<&'static str, (f64, &'static str)>,
}

pub const PINNED: &str = "Pinned";
pub const RELEASED: &str = "Released";
pub const RELEASE_FAILED: &str = "ReleaseFailed";
pub const POOL_EXHAUSTED: &str = "PoolExhausted";
pub const CLAIM_CONFLICTS: &str = "ClaimConflicts";
pub const TIME_TO_PIN: &str = "TimeToPin";
pub const FREE_MEMBERS: &str = "FreeMembers";
pub const FAILED_ACTIONS: &str = "FailedActions";
/// Lifecycle actions left pending for a redelivery: AWS's errors or the deadline came before a
/// member was pinned or a failure confirmed.
pub const LEFT_PENDING: &str = "LeftPending";
/// Launches tried again from their reads within one invocation, after AWS's transient errors.
pub const TRIED_AGAIN: &str = "TriedAgain";
pub const TAKEN_OVER: &str = "TakenOver";
/// Instances without a group that got no member (no lifecycle action to fail): left to the
/// sweep.
pub const NOT_PINNED: &str = "NotPinned";
/// Lifecycle actions of other tools' hooks, left alone.
pub const FOREIGN_ACTIONS: &str = "ForeignActions";
/// Milliseconds a launch waited for its instance to boot before it could be pinned.
pub const BOOT_WAIT: &str = "BootWait";
/// Repairs the sweep found needed in a pool (and AZ): missed launches, members held by
/// instances gone or out of the group, stale or missing lease tags.
pub const DRIFT: &str = "Drift";
/// A pool's Elastic IPs unassociated for longer than `PINHOOK_IDLE_ADDRESS_MINUTES`.
pub const IDLE_ADDRESSES: &str = "IdleAddresses";
/// Members beyond what the pool's groups can place in the AZ (below 1: short of a spare).
pub const SPARE_MEMBERS: &str = "SpareMembers";

impl Metrics {
    pub fn add(&mut self, name: &'static str, n: f64) {
        self.values.entry(name).or_insert((0.0, "Count")).0 += n;
    }

    pub fn set(&mut self, name: &'static str, value: f64, unit: &'static str) {
        self.values.insert(name, (value, unit));
    }

    /// The EMF document, `None` when there is nothing to report.
    pub fn to_emf(&self, namespace: &str, now: SystemTime) -> Option<Value> {
        if self.values.is_empty() {
            return None;
        }
        let timestamp = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        let mut dimension_sets = Vec::new();
        let mut root = Map::new();
        if let Some(pool) = &self.pool {
            root.insert("Pool".into(), json!(pool));
            dimension_sets.push(json!(["Pool"]));
            if let Some(az) = &self.availability_zone {
                root.insert("AvailabilityZone".into(), json!(az));
                dimension_sets.push(json!(["Pool", "AvailabilityZone"]));
            }
        } else {
            dimension_sets.push(json!([]));
        }
        let definitions: Vec<Value> = self
            .values
            .iter()
            .map(|(name, (_, unit))| json!({"Name": name, "Unit": unit}))
            .collect();
        for (name, (value, _)) in &self.values {
            root.insert((*name).into(), json!(value));
        }
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp,
                "CloudWatchMetrics": [{
                    "Namespace": namespace,
                    "Dimensions": dimension_sets,
                    "Metrics": definitions,
                }],
            }),
        );
        Some(Value::Object(root))
    }
}

/// Where the metrics of each invocation go.
#[derive(Debug, Clone, Default)]
pub enum MetricsSink {
    /// One EMF line per invocation on standard output, which Lambda sends to CloudWatch Logs.
    #[default]
    Stdout,
    /// Kept in memory, for tests and local runs that read them back.
    Memory(Arc<Mutex<Vec<Value>>>),
    /// Dropped.
    Discard,
}

impl MetricsSink {
    /// A sink that keeps the EMF documents, and the handle to read them.
    pub fn memory() -> (Self, Arc<Mutex<Vec<Value>>>) {
        let kept = Arc::new(Mutex::new(Vec::new()));
        (Self::Memory(kept.clone()), kept)
    }

    pub fn record(&self, metrics: &Metrics, namespace: &str) {
        let Some(document) = metrics.to_emf(namespace, SystemTime::now()) else {
            return;
        };
        match self {
            Self::Stdout => println!("{document}"),
            Self::Memory(kept) => {
                if let Ok(mut kept) = kept.lock() {
                    kept.push(document);
                }
            }
            Self::Discard => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_carries_every_metric_with_its_dimensions() {
        let mut metrics = Metrics {
            pool: Some("lic".into()),
            availability_zone: Some("us-east-1a".into()),
            ..Metrics::default()
        };
        metrics.add(PINNED, 1.0);
        metrics.add(CLAIM_CONFLICTS, 1.0);
        metrics.add(CLAIM_CONFLICTS, 1.0);
        metrics.set(TIME_TO_PIN, 250.0, "Milliseconds");
        let emf = metrics.to_emf("pinhook", UNIX_EPOCH).unwrap();
        assert_eq!(emf["Pool"], "lic");
        assert_eq!(emf["ClaimConflicts"], 2.0);
        assert_eq!(emf["_aws"]["CloudWatchMetrics"][0]["Namespace"], "pinhook");
        assert_eq!(
            emf["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Pool"], ["Pool", "AvailabilityZone"]])
        );
        assert_eq!(
            emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
                .len(),
            3
        );
        assert!(Metrics::default().to_emf("pinhook", UNIX_EPOCH).is_none());
    }
}
