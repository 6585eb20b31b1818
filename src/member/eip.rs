//! Pool Elastic IPs: associated with the instance's interface at a device index, disassociated
//! on release. The address always stays allocated, in the pool.

use tokio::time::Instant;

use super::{Binding, Member, MemberKind, NotReleased, Ready, Refusal, Slot, poll_until};
use crate::aws::{AddressFilter, AwsError, Ec2Api, EniFilter, ErrorKind, Resource};
use crate::config::{DeviceIndex, INSTANCE_EIP_TAG, PoolName};
use crate::context::CallWindow;
use crate::decide;
use crate::model::{Address, Eni, InstanceId, PoolMember};

/// The Elastic IPs of one pool, for the instance's interface at one device index.
pub struct EipKind<'a, E> {
    on: Binding<'a, E>,
    /// Where the interface that receives the address sits on the instance.
    interface: DeviceIndex,
    /// That interface, once found.
    receiver: Option<Eni>,
}

impl<'a, E: Ec2Api> EipKind<'a, E> {
    pub fn new(on: Binding<'a, E>, interface: DeviceIndex) -> Self {
        Self {
            on,
            interface,
            receiver: None,
        }
    }

    fn receiver(&self, operation: &'static str) -> Result<&Eni, AwsError> {
        self.receiver
            .as_ref()
            .ok_or_else(|| AwsError::unexpected(operation, "no interface to associate with yet"))
    }
}

impl<E: Ec2Api> MemberKind for EipKind<'_, E> {
    type Member = Address;

    const ZONAL: bool = false;
    const INSTANCE_TAG: &'static str = INSTANCE_EIP_TAG;
    const SLOT_UNGUARDED: bool = true;
    const CAN_TAKE_OVER: bool = true;

    fn pool(&self) -> &PoolName {
        self.on.pool
    }

    fn instance(&self) -> &InstanceId {
        self.on.instance
    }

    /// Every address of the pool: EC2 can filter addresses neither by association nor by
    /// page, and an account's Elastic IPs are bounded by its quota.
    async fn claim_reads(&self, _zone: Option<&str>) -> Result<Vec<Address>, AwsError> {
        self.all(None).await
    }

    async fn all(&self, _zone: Option<&str>) -> Result<Vec<Address>, AwsError> {
        self.on
            .ec2
            .addresses(&AddressFilter::Pool(self.on.pool.clone()))
            .await
    }

    async fn held(&self) -> Result<Vec<Address>, AwsError> {
        self.all(None).await
    }

    async fn interfaces(&self) -> Result<Vec<Eni>, AwsError> {
        let attached = EniFilter::attached_to(self.on.instance);
        self.on.ec2.network_interfaces(&attached).await
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
                        ec2.network_interfaces(&EniFilter::attached_to(instance))
                            .await?
                    }
                };
                Ok::<_, AwsError>(decide::interface_at(&interfaces, instance, index).cloned())
            }
        })
        .await?;
        let Some(receiver) = found else {
            // The function's deadline is no fact about the instance: the redelivery looks again.
            if CallWindow::current().is_some_and(|w| w.remaining() <= self.on.poll) {
                return Err(AwsError::transient(
                    "ec2:DescribeNetworkInterfaces",
                    format!("{instance} had no attached interface at device index {index} yet when the function's time ran out").into(),
                ));
            }
            return Ok(Ready::Refused(format!(
                "{instance} has no attached interface at device index {index} (\"interface\" in the hook metadata); with an ENI hook attaching it, give that hook time to finish"
            )));
        };
        let existing = receiver.elastic_ip.clone();
        self.receiver = Some(receiver);
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
        let receiver = self.receiver("ec2:AssociateAddress")?;
        self.on
            .ec2
            .associate_address(&member.allocation, &receiver.id)
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
        let receiver = self.receiver("ec2:DescribeNetworkInterfaces")?;
        let Some(existing) = self
            .on
            .ec2
            .network_interface(&receiver.id)
            .await?
            .and_then(|eni| eni.elastic_ip)
        else {
            return Ok(Slot::Empty);
        };
        // Only an address on the interface needs the pool to say whose it is.
        let in_pool = self
            .all(None)
            .await?
            .into_iter()
            .find(|a| a.allocation == existing && a.in_pool(self.on.pool.as_str()));
        Ok(match in_pool {
            Some(address) => Slot::Pool(address),
            None => Slot::Foreign(existing.to_string()),
        })
    }

    fn occupied(&self, occupant: &str) -> String {
        let receiver = self.receiver.as_ref().map_or("-", |r| r.id.as_str());
        format!(
            "interface {receiver} (device index {}) already has Elastic IP {occupant}, which is not in pool {:?}; pinhook never replaces an address outside its pool",
            self.interface, self.on.pool
        )
    }

    fn slot_interfaces(&self) -> &[Eni] {
        self.receiver.as_slice()
    }

    /// An association takes effect at once: nothing to wait for.
    async fn settle(
        &self,
        member: &Address,
        _until: Instant,
    ) -> Result<Result<Member, String>, AwsError> {
        let receiver = self.receiver.as_ref();
        Ok(Ok(Member {
            id: member.allocation.to_string(),
            mac_address: receiver.and_then(|r| r.mac_address.clone()),
            private_ip: receiver.and_then(|r| r.private_ip.clone()).or_else(|| {
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
    ) -> Result<(), NotReleased> {
        let Some(association) = member.association.as_ref().and_then(|a| a.id.as_ref()) else {
            let reason = "AWS described the association without an association id";
            return Err(NotReleased::Failed(reason.into()));
        };
        match self.on.ec2.disassociate_address(association).await {
            Ok(()) => Ok(()),
            Err(err) if err.not_found().is_some() => Ok(()),
            Err(err) => Err(err.into()),
        }
    }
}
