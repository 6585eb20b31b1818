//! Pool Elastic IPs: associated with the instance's interface at a device index, disassociated
//! on release. The address always stays allocated, in the pool.

use tokio::time::Instant;

use super::{Binding, Member, MemberKind, Ready, Refusal, Slot, poll_until};
use crate::aws::{AddressFilter, AwsError, Ec2Api, EniFilter, ErrorKind, Resource};
use crate::config::{INSTANCE_EIP_TAG, PoolName};
use crate::decide;
use crate::model::{Address, Eni, InstanceId, PoolMember};

/// The Elastic IPs of one pool, for one instance's interface at one device index.
pub struct EipKind<'a, E> {
    on: Binding<'a, E>,
    interface: i32,
    /// The interface that receives the address, once found.
    target: Option<Eni>,
}

impl<'a, E: Ec2Api> EipKind<'a, E> {
    pub fn new(on: Binding<'a, E>, interface: i32) -> Self {
        Self {
            on,
            interface,
            target: None,
        }
    }

    fn target(&self, operation: &'static str) -> Result<&Eni, AwsError> {
        self.target
            .as_ref()
            .ok_or_else(|| AwsError::unexpected(operation, "no interface to associate with yet"))
    }
}

impl<E: Ec2Api> MemberKind for EipKind<'_, E> {
    type Member = Address;

    const ZONAL: bool = false;
    const INSTANCE_TAG: &'static str = INSTANCE_EIP_TAG;
    const SLOT_UNGUARDED: bool = true;
    const READS_INTERFACES: bool = true;

    fn pool(&self) -> &PoolName {
        self.on.pool
    }

    fn instance(&self) -> &InstanceId {
        self.on.instance
    }

    async fn list(&self) -> Result<Vec<Address>, AwsError> {
        self.on
            .ec2
            .addresses(&AddressFilter::Pool(self.on.pool.clone()))
            .await
    }

    /// Waits for the interface at the device index (another hook may still be attaching it),
    /// and refuses one that already has an address outside the pool: AWS would silently move
    /// that address off.
    async fn prepare(
        &mut self,
        interfaces: Vec<Eni>,
        members: &[Address],
        until: Instant,
    ) -> Result<Ready<Address>, AwsError> {
        let (ec2, instance, index) = (self.on.ec2, self.on.instance, self.interface);
        let mut first = Some(interfaces);
        let found = poll_until(self.on.poll, until, || {
            let given = first.take();
            async move {
                let interfaces = match given {
                    Some(interfaces) => interfaces,
                    None => {
                        ec2.network_interfaces(&EniFilter::AttachedTo(instance.clone()))
                            .await?
                    }
                };
                Ok::<_, AwsError>(decide::interface_at(&interfaces, instance, index).cloned())
            }
        })
        .await?;
        let Some(target) = found else {
            return Ok(Ready::Refused(format!(
                "{instance} has no attached interface at device index {index} (\"interface\" in the hook metadata); with an ENI hook attaching it, give that hook time to finish"
            )));
        };
        let existing = target.elastic_ip.clone();
        self.target = Some(target);
        Ok(match existing {
            None => Ready::Claim,
            Some(existing) => match members
                .iter()
                .find(|a| a.allocation == existing && a.in_pool(self.on.pool.as_str()))
            {
                Some(held) => Ready::Held(held.clone()),
                None => Ready::Refused(self.occupied(existing.as_str())),
            },
        })
    }

    async fn claim(&self, member: &Address) -> Result<(), AwsError> {
        let target = self.target("ec2:AssociateAddress")?;
        self.on
            .ec2
            .associate_address(&member.allocation, &target.id)
            .await
            .map(drop)
    }

    fn refusal(&self, err: &AwsError) -> Refusal {
        match err.kind {
            ErrorKind::AlreadyAssociated | ErrorKind::NotFound(Resource::Address) => Refusal::Taken,
            ErrorKind::InstanceNotReady => Refusal::InstanceNotReady,
            ErrorKind::NotFound(Resource::NetworkInterface | Resource::Instance) => {
                Refusal::InstanceGone
            }
            _ => Refusal::Failed,
        }
    }

    async fn slot(&self) -> Result<Slot<Address>, AwsError> {
        let target = self.target("ec2:DescribeNetworkInterfaces")?;
        let Some(existing) = self
            .on
            .ec2
            .network_interface(&target.id)
            .await?
            .and_then(|eni| eni.elastic_ip)
        else {
            return Ok(Slot::Empty);
        };
        // Only an address on the interface needs the pool to say whose it is.
        let in_pool = self
            .list()
            .await?
            .into_iter()
            .find(|a| a.allocation == existing && a.in_pool(self.on.pool.as_str()));
        Ok(match in_pool {
            Some(address) => Slot::Pool(address),
            None => Slot::Foreign(existing.to_string()),
        })
    }

    fn occupied(&self, occupant: &str) -> String {
        let target = self.target.as_ref().map_or("-", |t| t.id.as_str());
        format!(
            "interface {target} (device index {}) already has Elastic IP {occupant}, which is not in pool {:?}; pinhook never replaces an address outside its pool",
            self.interface, self.on.pool
        )
    }

    fn slot_interfaces(&self) -> &[Eni] {
        self.target.as_slice()
    }

    /// An association takes effect at once: nothing to wait for.
    async fn settle(
        &self,
        member: &Address,
        _until: Instant,
    ) -> Result<Result<Member, String>, AwsError> {
        let target = self.target.as_ref();
        Ok(Ok(Member {
            id: member.allocation.to_string(),
            mac_address: target.and_then(|t| t.mac_address.clone()),
            private_ip: target.and_then(|t| t.private_ip.clone()).or_else(|| {
                member
                    .association
                    .as_ref()
                    .and_then(|a| a.private_ip.clone())
            }),
            public_ip: member.public_ip.clone(),
        }))
    }

    /// An association never fails to settle, so there is nothing to undo.
    async fn roll_back(&self, _member: &Address) {}

    /// Disassociates exactly the association that was read: if the address moved meanwhile,
    /// AWS answers that the association is gone, and the address is left where it is.
    async fn release(
        &self,
        member: &Address,
        _holder: &InstanceId,
        _until: Instant,
    ) -> Result<(), String> {
        let Some(association) = member.association.as_ref().and_then(|a| a.id.as_ref()) else {
            return Err("AWS described the association without an association id".into());
        };
        match self.on.ec2.disassociate_address(association).await {
            Ok(()) => Ok(()),
            Err(err) if err.not_found().is_some() => Ok(()),
            Err(err) => Err(err.to_string()),
        }
    }
}
