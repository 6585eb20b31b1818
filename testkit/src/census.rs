//! The census of a burst: its end state counted from AWS's side — what `make chaos` prints and
//! the reliability tests check — and what the invocations themselves came to.

use std::collections::{BTreeSet, HashMap};

use aws_sdk_ec2::types::Filter;
use pinhook::Summary;
use serde_json::Value;

use crate::POOL_TAG;
use crate::fixtures::{Group, Pin};
use crate::world::World;

/// What a burst of invocations came to.
#[derive(Debug, Clone, Default)]
pub struct Deliveries {
    /// Invocations made, redeliveries included.
    pub invocations: usize,
    pub redeliveries: usize,
    /// Deliveries that still failed after every redelivery, and their last errors.
    pub failed: usize,
    pub errors: Vec<String>,
    pub summaries: Vec<Summary>,
}

/// The end state of a burst, counted from AWS's side: what `make chaos` prints and the
/// reliability tests check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Census {
    /// Launch lifecycle actions of the group.
    pub instances: usize,
    /// Instances in service holding exactly one pool member.
    pub pinned: usize,
    /// Launches completed with ABANDON.
    pub abandoned: usize,
    /// Instances in service without a member (on_failure = continue).
    pub continued_unpinned: usize,
    /// Members that two instances hold: attached or associated to one, named by the lease tag
    /// of another.
    pub double_held_members: usize,
    /// Instances holding more than one member.
    pub multi_member_instances: usize,
    /// Lifecycle actions still waiting.
    pub uncompleted_actions: usize,
    /// Lifecycle actions Auto Scaling accepted a completion for more than once.
    pub completed_twice: usize,
    /// Pinned instances whose lease tag does not name the member they hold.
    pub lease_mismatches: usize,
}

impl Census {
    /// The counts that must be 0 whatever happened: a member held twice, an instance holding
    /// two, an action left waiting or completed twice, a lease that does not match.
    pub fn integrity_errors(&self) -> usize {
        self.double_held_members
            + self.multi_member_instances
            + self.uncompleted_actions
            + self.completed_twice
            + self.lease_mismatches
    }
}

impl std::ops::AddAssign for Census {
    /// The census of several groups together.
    fn add_assign(&mut self, other: Self) {
        self.instances += other.instances;
        self.pinned += other.pinned;
        self.abandoned += other.abandoned;
        self.continued_unpinned += other.continued_unpinned;
        self.double_held_members += other.double_held_members;
        self.multi_member_instances += other.multi_member_instances;
        self.uncompleted_actions += other.uncompleted_actions;
        self.completed_twice += other.completed_twice;
        self.lease_mismatches += other.lease_mismatches;
    }
}

impl World {
    /// What a burst left behind in the group and its pool, as counted from AWS's side.
    pub async fn census(&self, group: &Group, pool: &str, pin: Pin) -> Census {
        let actions = self.emulator.actions(&group.name, true);
        let launches: Vec<&Value> = actions
            .iter()
            .filter(|a| a["transition"] == "autoscaling:EC2_INSTANCE_LAUNCHING")
            .collect();
        // Where every pool member is attached or associated, per AWS.
        let mut held_by: Vec<(String, String)> = Vec::new();
        if pin == Pin::Eni {
            let found: Vec<_> = self
                .ec2
                .describe_network_interfaces()
                .filters(pool_filter(pool))
                .max_results(1000)
                .into_paginator()
                .items()
                .send()
                .collect::<Result<_, _>>()
                .await
                .unwrap();
            for eni in &found {
                if let Some(instance) = eni.attachment().and_then(|a| a.instance_id()) {
                    held_by.push((
                        eni.network_interface_id().unwrap_or_default().to_owned(),
                        instance.to_owned(),
                    ));
                }
            }
        } else {
            let found = self
                .ec2
                .describe_addresses()
                .filters(pool_filter(pool))
                .send()
                .await
                .unwrap();
            for address in found.addresses() {
                if let Some(instance) = address.instance_id() {
                    held_by.push((
                        address.allocation_id().unwrap_or_default().to_owned(),
                        instance.to_owned(),
                    ));
                }
            }
        }
        let in_service: Vec<String> = self
            .instances(group)
            .await
            .into_iter()
            .filter(|i| i.state == "InService")
            .map(|i| i.id)
            .collect();
        let lease_tag = if pin == Pin::Eni {
            "pinhook:eni"
        } else {
            "pinhook:eip"
        };
        let mut census = Census {
            instances: launches.len(),
            abandoned: launches.iter().filter(|a| a["result"] == "ABANDON").count(),
            uncompleted_actions: actions.iter().filter(|a| a["pending"] == true).count(),
            completed_twice: actions
                .iter()
                .filter(|a| a["complete_calls"]["accepted"].as_u64().unwrap_or(0) > 1)
                .count(),
            ..Census::default()
        };
        let mut claims: HashMap<String, BTreeSet<String>> = Default::default();
        for (member, instance) in &held_by {
            claims
                .entry(member.clone())
                .or_default()
                .insert(instance.clone());
        }
        for instance in &in_service {
            let members: Vec<&String> = held_by
                .iter()
                .filter(|(_, i)| i == instance)
                .map(|(m, _)| m)
                .collect();
            match members.len() {
                0 => census.continued_unpinned += 1,
                1 => census.pinned += 1,
                _ => census.multi_member_instances += 1,
            }
            let lease = self.instance_tag(instance, lease_tag).await;
            if let Some(lease) = &lease {
                claims
                    .entry(lease.clone())
                    .or_default()
                    .insert(instance.clone());
            }
            if members.len() == 1 && lease.as_deref() != Some(members[0].as_str()) {
                census.lease_mismatches += 1;
            }
        }
        census.double_held_members = claims.values().filter(|holders| holders.len() > 1).count();
        census
    }
}

/// The EC2 filter that selects the members of `pool`.
fn pool_filter(pool: &str) -> Filter {
    Filter::builder()
        .name(format!("tag:{POOL_TAG}"))
        .values(pool)
        .build()
}
