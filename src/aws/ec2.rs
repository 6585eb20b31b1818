//! The EC2 adapter: network interfaces and tags, on the AWS SDK.

use aws_sdk_ec2::types::{Filter, NetworkInterface, Tag};
use tracing::{instrument, warn};

use super::sdk::send;
use super::{AddressFilter, AwsError, Ec2Api, EniFilter};
use crate::config::{HOLDER_TAG, IDLE_SINCE_TAG, PIN_TAG, POOL_TAG};
use crate::model::{
    Address, AddressAssociation, AllocationId, AssociationId, Attachment, AttachmentId,
    AttachmentStatus, Ec2Instance, Eni, EniId, InstanceId, RunState,
};

/// Values of one DescribeInstances filter: AWS takes up to 200.
const FILTER_VALUES: usize = 200;
/// Items per page of a paginated describe: EC2 takes 5 to 1000. A describe that names no page
/// size is unpaginated, which EC2 refuses once an account holds many interfaces and throttles
/// in a smaller bucket.
const PAGE: usize = 1000;

type Config = aws_sdk_ec2::config::Builder;

/// [`Ec2Api`] on the AWS SDK for Rust.
#[derive(Debug, Clone)]
pub struct Ec2Client {
    client: aws_sdk_ec2::Client,
}

impl Ec2Client {
    pub fn new(client: aws_sdk_ec2::Client) -> Self {
        Self { client }
    }

    /// Every instance that passes the filters, page by page: its state, AZ and tags.
    async fn describe_instances(&self, filters: Vec<Filter>) -> Result<Vec<Ec2Instance>, AwsError> {
        const OP: &str = "ec2:DescribeInstances";
        let mut found = Vec::new();
        let mut token = None;
        loop {
            let request = self
                .client
                .describe_instances()
                .set_filters(Some(filters.clone()))
                .max_results(PAGE as i32)
                .set_next_token(token.take());
            let page = send!(OP, request, Config)?;
            for instance in page.reservations().iter().flat_map(|r| r.instances()) {
                let id = instance
                    .instance_id()
                    .and_then(|id| InstanceId::parse(id).ok());
                let state = instance.state().and_then(|s| s.name());
                let (Some(id), Some(state)) = (id, state) else {
                    warn!("skipping an instance EC2 described without its id or state");
                    continue;
                };
                let tags = instance
                    .tags()
                    .iter()
                    .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
                    .collect();
                found.push(Ec2Instance {
                    availability_zone: instance
                        .placement()
                        .and_then(|p| p.availability_zone())
                        .filter(|z| !z.is_empty())
                        .map(str::to_owned),
                    tags,
                    ..Ec2Instance::new(id, RunState::parse(state.as_str()))
                });
            }
            match page.next_token() {
                Some(next) if !next.is_empty() => token = Some(next.to_owned()),
                _ => return Ok(found),
            }
        }
    }
}

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

impl Ec2Api for Ec2Client {
    #[instrument(level = "debug", skip(self))]
    async fn instances(&self, instances: &[InstanceId]) -> Result<Vec<Ec2Instance>, AwsError> {
        let mut found = Vec::new();
        // A filter rather than instance ids: an id EC2 does not know is left out of the answer
        // instead of failing the whole call with InvalidInstanceID.NotFound.
        for batch in instances.chunks(FILTER_VALUES) {
            let ids = Filter::builder()
                .name("instance-id")
                .set_values(Some(batch.iter().map(|i| i.as_str().to_owned()).collect()))
                .build();
            let described = self.describe_instances(vec![ids]).await?;
            found.extend(
                described
                    .into_iter()
                    .filter(|i| batch.contains(&i.instance)),
            );
        }
        Ok(found)
    }

    #[instrument(level = "debug", skip(self))]
    async fn tagged_instances(&self) -> Result<Vec<Ec2Instance>, AwsError> {
        let tagged = filter("tag-key", PIN_TAG);
        let states = Filter::builder()
            .name("instance-state-name")
            .set_values(Some(
                ["pending", "running", "stopping", "stopped"]
                    .map(str::to_owned)
                    .to_vec(),
            ))
            .build();
        self.describe_instances(vec![tagged, states]).await
    }

    #[instrument(level = "debug", skip(self))]
    async fn network_interfaces(&self, which: &EniFilter) -> Result<Vec<Eni>, AwsError> {
        const OP: &str = "ec2:DescribeNetworkInterfaces";
        let mut filters = Vec::new();
        if let Some(pool) = &which.pool {
            filters.push(filter(&format!("tag:{POOL_TAG}"), pool.as_str()));
        }
        if let Some(instance) = &which.attached_to {
            filters.push(filter("attachment.instance-id", instance.as_str()));
        }
        if let Some(instance) = &which.held_by {
            filters.push(filter(&format!("tag:{HOLDER_TAG}"), instance.as_str()));
        }
        if which.available {
            filters.push(filter("status", "available"));
        }
        if let Some(zone) = &which.zone {
            filters.push(filter("availability-zone", zone));
        }
        let limit = which.limit.unwrap_or(usize::MAX);
        let mut enis = Vec::new();
        let mut token = None;
        loop {
            let page_size = (limit - enis.len()).clamp(5, PAGE);
            let request = self
                .client
                .describe_network_interfaces()
                .set_filters(Some(filters.clone()))
                .max_results(page_size as i32)
                .set_next_token(token.take());
            let page = send!(OP, request, Config)?;
            enis.extend(page.network_interfaces().iter().filter_map(eni_from_sdk));
            match page.next_token() {
                Some(next) if !next.is_empty() && enis.len() < limit => {
                    token = Some(next.to_owned());
                }
                _ => return Ok(enis),
            }
        }
    }

    #[instrument(level = "debug", skip(self))]
    async fn network_interface(&self, eni: &EniId) -> Result<Option<Eni>, AwsError> {
        const OP: &str = "ec2:DescribeNetworkInterfaces";
        let request = self
            .client
            .describe_network_interfaces()
            .network_interface_ids(eni.as_str());
        let result: Result<_, AwsError> = send!(OP, request, Config);
        match result {
            Ok(output) => Ok(output
                .network_interfaces()
                .iter()
                .filter_map(eni_from_sdk)
                .find(|found| &found.id == eni)),
            Err(err) if err.not_found().is_some() => Ok(None),
            Err(err) => Err(err),
        }
    }

    #[instrument(level = "debug", skip(self))]
    async fn attach_network_interface(
        &self,
        eni: &EniId,
        instance: &InstanceId,
        device_index: i32,
    ) -> Result<AttachmentId, AwsError> {
        const OP: &str = "ec2:AttachNetworkInterface";
        let request = self
            .client
            .attach_network_interface()
            .network_interface_id(eni.as_str())
            .instance_id(instance.as_str())
            .device_index(device_index);
        let output = send!(OP, request, Config)?;
        output
            .attachment_id()
            .and_then(|id| AttachmentId::parse(id).ok())
            .ok_or_else(|| AwsError::unexpected(OP, "the answer has no valid AttachmentId"))
    }

    #[instrument(level = "debug", skip(self))]
    async fn detach_network_interface(&self, attachment: &AttachmentId) -> Result<(), AwsError> {
        let request = self
            .client
            .detach_network_interface()
            .attachment_id(attachment.as_str());
        send!("ec2:DetachNetworkInterface", request, Config)?;
        Ok(())
    }

    #[instrument(level = "debug", skip(self))]
    async fn addresses(&self, which: &AddressFilter) -> Result<Vec<Address>, AwsError> {
        let filter = match which {
            AddressFilter::Pool(pool) => filter(&format!("tag:{POOL_TAG}"), pool.as_str()),
            AddressFilter::HeldBy(instance) => {
                filter(&format!("tag:{HOLDER_TAG}"), instance.as_str())
            }
        };
        // DescribeAddresses is not paginated: it returns every match at once, and an account's
        // Elastic IPs are bounded by its quota.
        let request = self.client.describe_addresses().filters(filter);
        let output = send!("ec2:DescribeAddresses", request, Config)?;
        Ok(output
            .addresses()
            .iter()
            .filter_map(address_from_sdk)
            .collect())
    }

    #[instrument(level = "debug", skip(self))]
    async fn associate_address(
        &self,
        allocation: &AllocationId,
        eni: &EniId,
    ) -> Result<AssociationId, AwsError> {
        const OP: &str = "ec2:AssociateAddress";
        let request = self
            .client
            .associate_address()
            .allocation_id(allocation.as_str())
            .network_interface_id(eni.as_str())
            // Never take an address from whoever holds it by implicit reassociation.
            .allow_reassociation(false);
        let output = send!(OP, request, Config)?;
        output
            .association_id()
            .and_then(|id| AssociationId::parse(id).ok())
            .ok_or_else(|| AwsError::unexpected(OP, "the answer has no valid AssociationId"))
    }

    #[instrument(level = "debug", skip(self))]
    async fn disassociate_address(&self, association: &AssociationId) -> Result<(), AwsError> {
        let request = self
            .client
            .disassociate_address()
            .association_id(association.as_str());
        send!("ec2:DisassociateAddress", request, Config)?;
        Ok(())
    }

    #[instrument(level = "debug", skip(self))]
    async fn create_tag(&self, resource: &str, key: &str, value: &str) -> Result<(), AwsError> {
        let request = self
            .client
            .create_tags()
            .resources(resource)
            .tags(Tag::builder().key(key).value(value).build());
        send!("ec2:CreateTags", request, Config)?;
        Ok(())
    }

    #[instrument(level = "debug", skip(self))]
    async fn delete_tag(
        &self,
        resource: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<(), AwsError> {
        let mut tag = Tag::builder().key(key);
        if let Some(value) = value {
            tag = tag.value(value);
        }
        let request = self
            .client
            .delete_tags()
            .resources(resource)
            .tags(tag.build());
        send!("ec2:DeleteTags", request, Config)?;
        Ok(())
    }
}

/// Converts an SDK network interface; one without a valid id is skipped, with a warning.
fn eni_from_sdk(eni: &NetworkInterface) -> Option<Eni> {
    let id = match eni.network_interface_id().map(EniId::parse) {
        Some(Ok(id)) => id,
        other => {
            warn!(network_interface_id = ?other, "skipping a network interface without a valid id");
            return None;
        }
    };
    let tag = |key: &str| {
        eni.tag_set()
            .iter()
            .find(|t| t.key() == Some(key))
            .and_then(|t| t.value())
            .map(str::to_owned)
    };
    let attachment = eni.attachment().map(|a| Attachment {
        id: a
            .attachment_id()
            .and_then(|id| AttachmentId::parse(id).ok()),
        instance: a.instance_id().and_then(|id| InstanceId::parse(id).ok()),
        device_index: a.device_index(),
        status: AttachmentStatus::parse(a.status().map(|s| s.as_str()).unwrap_or_default()),
    });
    let association = eni.association();
    Some(Eni {
        availability_zone: eni.availability_zone().map(str::to_owned),
        status: eni.status().map(|s| s.as_str().to_owned()),
        attachment,
        mac_address: eni.mac_address().map(str::to_owned),
        private_ip: eni.private_ip_address().map(str::to_owned),
        public_ip: association
            .and_then(|a| a.public_ip())
            .filter(|ip| !ip.is_empty())
            .map(str::to_owned),
        elastic_ip: association
            .and_then(|a| a.allocation_id())
            .and_then(|id| AllocationId::parse(id).ok()),
        pool: tag(POOL_TAG),
        holder: tag(HOLDER_TAG),
        id,
    })
}

/// Converts an SDK address; one without a valid allocation id (not a VPC address) is skipped.
fn address_from_sdk(address: &aws_sdk_ec2::types::Address) -> Option<Address> {
    let allocation = match address.allocation_id().map(AllocationId::parse) {
        Some(Ok(id)) => id,
        other => {
            warn!(allocation_id = ?other, public_ip = address.public_ip(), "skipping an address without a valid allocation id");
            return None;
        }
    };
    let present = |value: Option<&str>| value.filter(|v| !v.is_empty()).map(str::to_owned);
    let association = AddressAssociation {
        id: address
            .association_id()
            .and_then(|id| AssociationId::parse(id).ok()),
        instance: address
            .instance_id()
            .and_then(|id| InstanceId::parse(id).ok()),
        network_interface: address
            .network_interface_id()
            .and_then(|id| EniId::parse(id).ok()),
        private_ip: present(address.private_ip_address()),
    };
    // Anything at all in the association fields means the address is in use by something.
    let associated = association.id.is_some()
        || association.instance.is_some()
        || association.network_interface.is_some()
        || association.private_ip.is_some()
        || present(address.association_id()).is_some()
        || present(address.instance_id()).is_some()
        || present(address.network_interface_id()).is_some();
    let tag = |key: &str| {
        address
            .tags()
            .iter()
            .find(|t| t.key() == Some(key))
            .and_then(|t| t.value())
            .map(str::to_owned)
    };
    Some(Address {
        allocation,
        public_ip: present(address.public_ip()),
        association: associated.then_some(association),
        pool: tag(POOL_TAG),
        holder: tag(HOLDER_TAG),
        idle_since: tag(IDLE_SINCE_TAG),
    })
}
