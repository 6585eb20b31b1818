//! Facts: what AWS holds now, read back through the AWS API as the tests check it — instances
//! and their states, ENIs, Elastic IPs, tags.

use std::time::Duration;

use aws_sdk_ec2::types::Filter;
use tokio::time::Instant;

use crate::fixtures::Group;
use crate::world::World;
use crate::{HOLDER_TAG, POOL_TAG};

/// An instance of a group, as Auto Scaling lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceState {
    pub id: String,
    pub az: String,
    /// The lifecycle state: `Pending:Wait`, `InService`, …
    pub state: String,
}

/// What the tests check of an ENI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EniState {
    pub id: String,
    pub status: String,
    pub az: String,
    pub instance: Option<String>,
    pub device_index: Option<i32>,
    pub attachment_status: Option<String>,
    pub mac: String,
    pub private_ip: String,
    pub holder: Option<String>,
    pub pool: Option<String>,
}

impl From<&aws_sdk_ec2::types::NetworkInterface> for EniState {
    fn from(eni: &aws_sdk_ec2::types::NetworkInterface) -> Self {
        let tag = |key: &str| {
            eni.tag_set()
                .iter()
                .find(|t| t.key() == Some(key))
                .and_then(|t| t.value())
                .map(str::to_owned)
        };
        Self {
            id: eni.network_interface_id().unwrap_or_default().to_owned(),
            status: eni
                .status()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            az: eni.availability_zone().unwrap_or_default().to_owned(),
            instance: eni
                .attachment()
                .and_then(|a| a.instance_id())
                .map(str::to_owned),
            device_index: eni.attachment().and_then(|a| a.device_index()),
            attachment_status: eni
                .attachment()
                .and_then(|a| a.status())
                .map(|s| s.as_str().to_owned()),
            mac: eni.mac_address().unwrap_or_default().to_owned(),
            private_ip: eni.private_ip_address().unwrap_or_default().to_owned(),
            holder: tag(HOLDER_TAG),
            pool: tag(POOL_TAG),
        }
    }
}

/// What the tests check of an Elastic IP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressState {
    pub allocation: String,
    pub public_ip: String,
    pub association: Option<String>,
    pub instance: Option<String>,
    pub eni: Option<String>,
    pub holder: Option<String>,
}

impl World {
    /// Every instance in the group, by id.
    pub async fn instances(&self, group: &Group) -> Vec<InstanceState> {
        let groups = self
            .asg
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(&group.name)
            .send()
            .await
            .unwrap();
        let mut instances: Vec<InstanceState> = groups
            .auto_scaling_groups()
            .iter()
            .flat_map(|g| g.instances())
            .map(|i| InstanceState {
                id: i.instance_id().unwrap_or_default().to_owned(),
                az: i.availability_zone().unwrap_or_default().to_owned(),
                state: i
                    .lifecycle_state()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
            })
            .collect();
        instances.sort_by(|a, b| a.id.cmp(&b.id));
        instances
    }

    /// The lifecycle state of an instance in its group, `None` once it left every group.
    pub async fn lifecycle_state(&self, instance: &str) -> Option<String> {
        let found = self
            .asg
            .describe_auto_scaling_instances()
            .instance_ids(instance)
            .send()
            .await
            .unwrap();
        found
            .auto_scaling_instances()
            .first()
            .and_then(|i| i.lifecycle_state())
            .map(str::to_owned)
    }

    /// The instance as EC2 describes it.
    async fn described(&self, instance: &str) -> Option<aws_sdk_ec2::types::Instance> {
        let found = self
            .ec2
            .describe_instances()
            .instance_ids(instance)
            .send()
            .await
            .unwrap();
        found
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .next()
            .cloned()
    }

    /// The EC2 state of an instance: `running`, `terminated`, …
    pub async fn ec2_state(&self, instance: &str) -> String {
        self.described(instance)
            .await
            .and_then(|i| {
                i.state()
                    .and_then(|s| s.name())
                    .map(|n| n.as_str().to_owned())
            })
            .unwrap_or_default()
    }

    pub async fn eni_state(&self, eni: &str) -> EniState {
        let found = self
            .ec2
            .describe_network_interfaces()
            .network_interface_ids(eni)
            .send()
            .await
            .unwrap();
        let eni = &found.network_interfaces()[0];
        EniState::from(eni)
    }

    /// The ENIs attached to an instance, by device index.
    pub async fn attached_to(&self, instance: &str) -> Vec<EniState> {
        let found = self
            .ec2
            .describe_network_interfaces()
            .filters(
                Filter::builder()
                    .name("attachment.instance-id")
                    .values(instance)
                    .build(),
            )
            .max_results(1000)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .unwrap();
        let mut enis: Vec<EniState> = found.iter().map(EniState::from).collect();
        enis.sort_by_key(|e| e.device_index);
        enis
    }

    pub async fn instance_tag(&self, instance: &str, key: &str) -> Option<String> {
        let described = self.described(instance).await?;
        described
            .tags()
            .iter()
            .find(|t| t.key() == Some(key))
            .and_then(|t| t.value())
            .map(str::to_owned)
    }

    pub async fn address_state(&self, allocation: &str) -> AddressState {
        let found = self
            .ec2
            .describe_addresses()
            .allocation_ids(allocation)
            .send()
            .await
            .unwrap();
        let address = &found.addresses()[0];
        let tag = |key: &str| {
            address
                .tags()
                .iter()
                .find(|t| t.key() == Some(key))
                .and_then(|t| t.value())
                .map(str::to_owned)
        };
        AddressState {
            allocation: allocation.to_owned(),
            public_ip: address.public_ip().unwrap_or_default().to_owned(),
            association: address.association_id().map(str::to_owned),
            instance: address.instance_id().map(str::to_owned),
            eni: address.network_interface_id().map(str::to_owned),
            holder: tag(HOLDER_TAG),
        }
    }

    /// The Elastic IPs associated with an interface.
    pub async fn addresses_on(&self, eni: &str) -> Vec<String> {
        let found = self
            .ec2
            .describe_addresses()
            .filters(
                Filter::builder()
                    .name("network-interface-id")
                    .values(eni)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        found
            .addresses()
            .iter()
            .filter_map(|a| a.allocation_id())
            .map(str::to_owned)
            .collect()
    }

    /// The interface at a device index of an instance.
    pub async fn interface_at(&self, instance: &str, device_index: i32) -> EniState {
        self.attached_to(instance)
            .await
            .into_iter()
            .find(|e| e.device_index == Some(device_index))
            .unwrap_or_else(|| panic!("{instance} has no interface at device index {device_index}"))
    }

    /// Every instance in the group's warm pool.
    pub async fn warm_instances(&self, group: &Group) -> Vec<InstanceState> {
        let found = self
            .asg
            .describe_warm_pool()
            .auto_scaling_group_name(&group.name)
            .send()
            .await
            .unwrap();
        found
            .instances()
            .iter()
            .map(|i| InstanceState {
                id: i.instance_id().unwrap_or_default().to_owned(),
                az: i.availability_zone().unwrap_or_default().to_owned(),
                state: i
                    .lifecycle_state()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
            })
            .collect()
    }

    /// Waits on the test's clock, polling, until the ENI is `available` (at most ten seconds).
    pub async fn wait_available(&self, eni: &str) -> EniState {
        let started = Instant::now();
        loop {
            let state = self.eni_state(eni).await;
            if state.status == "available" || started.elapsed() > Duration::from_secs(10) {
                return state;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
