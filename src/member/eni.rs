//! Pool ENIs: attached at a device index, settled once the attachment is `attached`, detached
//! on release.

use tokio::time::Instant;
use tracing::{info, warn};

use super::{Binding, Member, MemberKind, NotReleased, Refusal, Slot, poll_until};
use crate::aws::{AwsError, Ec2Api, EniFilter, ErrorKind, Resource};
use crate::config::{DeviceIndex, INSTANCE_ENI_TAG, PoolName};
use crate::model::{AttachmentStatus, Eni, InstanceId, PoolMember};

/// Free members a claim reads at first, the first pages of them: enough for a spread over the
/// candidates, whatever the size of the pool.
const FREE_PAGE: usize = 25;

/// Two reads as one list, each member once.
fn merged(mut first: Vec<Eni>, second: Vec<Eni>) -> Vec<Eni> {
    for eni in second {
        if !first.iter().any(|e| e.id == eni.id) {
            first.push(eni);
        }
    }
    first
}

/// The ENIs of one pool, for one instance, at one device index.
pub struct EniKind<'a, E> {
    on: Binding<'a, E>,
    device_index: DeviceIndex,
}

impl<'a, E: Ec2Api> EniKind<'a, E> {
    pub fn new(on: Binding<'a, E>, device_index: DeviceIndex) -> Self {
        Self { on, device_index }
    }
}

impl<E: Ec2Api> MemberKind for EniKind<'_, E> {
    type Member = Eni;

    const ZONAL: bool = true;
    const INSTANCE_TAG: &'static str = INSTANCE_ENI_TAG;
    const SLOT_UNGUARDED: bool = false;
    const CAN_TAKE_OVER: bool = false;

    fn pool(&self) -> &PoolName {
        self.on.pool
    }

    fn instance(&self) -> &InstanceId {
        self.on.instance
    }

    /// The first page of the pool's free members (in the zone, once known) and the members
    /// attached to the instance, concurrently: a claim's reads do not grow with the pool.
    async fn claim_reads(&self, zone: Option<&str>) -> Result<Vec<Eni>, AwsError> {
        let free = EniFilter {
            available: true,
            zone: zone.map(str::to_owned),
            limit: Some(FREE_PAGE),
            ..EniFilter::pool(self.on.pool)
        };
        let attached = EniFilter {
            attached_to: Some(self.on.instance.clone()),
            ..EniFilter::pool(self.on.pool)
        };
        let (free, attached) = tokio::join!(
            self.on.ec2.network_interfaces(&free),
            self.on.ec2.network_interfaces(&attached)
        );
        Ok(merged(free?, attached?))
    }

    async fn all(&self, zone: Option<&str>) -> Result<Vec<Eni>, AwsError> {
        let filter = EniFilter {
            zone: zone.map(str::to_owned),
            ..EniFilter::pool(self.on.pool)
        };
        self.on.ec2.network_interfaces(&filter).await
    }

    /// The members attached to the instance, and those still tagged as its, concurrently.
    async fn held(&self) -> Result<Vec<Eni>, AwsError> {
        let attached = EniFilter {
            attached_to: Some(self.on.instance.clone()),
            ..EniFilter::pool(self.on.pool)
        };
        let tagged = EniFilter {
            held_by: Some(self.on.instance.clone()),
            ..EniFilter::pool(self.on.pool)
        };
        let (attached, tagged) = tokio::join!(
            self.on.ec2.network_interfaces(&attached),
            self.on.ec2.network_interfaces(&tagged)
        );
        Ok(merged(attached?, tagged?))
    }

    async fn claim(&self, member: &Eni) -> Result<(), AwsError> {
        self.on
            .ec2
            .attach_network_interface(&member.id, self.on.instance, self.device_index.get())
            .await
            .map(drop)
    }

    fn refusal(&self, err: &AwsError) -> Refusal {
        match err.kind {
            ErrorKind::InUse
            | ErrorKind::ZoneMismatch
            | ErrorKind::NotFound(Resource::NetworkInterface) => Refusal::Taken,
            ErrorKind::DeviceIndexTaken => Refusal::SlotTaken,
            ErrorKind::InstanceNotReady => Refusal::InstanceNotReady,
            ErrorKind::NotFound(Resource::Instance) => Refusal::InstanceGone,
            _ => Refusal::Failed,
        }
    }

    async fn slot(&self) -> Result<Slot<Eni>, AwsError> {
        let attached = self
            .on
            .ec2
            .network_interfaces(&EniFilter::attached_to(self.on.instance))
            .await?;
        let at_index = attached.into_iter().find(|e| {
            e.attachment_instance() == Some(self.on.instance)
                && e.attachment.as_ref().and_then(|a| a.device_index)
                    == Some(self.device_index.get())
        });
        Ok(match at_index {
            Some(eni) if eni.in_pool(self.on.pool.as_str()) => Slot::Pool(eni),
            Some(eni) => Slot::Foreign(eni.id.to_string()),
            None => Slot::Empty,
        })
    }

    fn occupied(&self, occupant: &str) -> String {
        format!(
            "device index {} of {} is taken by {occupant}, which is not in pool {:?}; set \"device_index\" in the hook metadata to a free index",
            self.device_index, self.on.instance, self.on.pool
        )
    }

    fn slot_interfaces(&self) -> &[Eni] {
        &[]
    }

    async fn settle(
        &self,
        member: &Eni,
        until: Instant,
    ) -> Result<Result<Member, String>, AwsError> {
        let (ec2, eni, instance) = (self.on.ec2, &member.id, self.on.instance);
        let settled = poll_until(self.on.poll, until, || async move {
            let Some(current) = ec2.network_interface(eni).await? else {
                return Ok::<_, AwsError>(Some(Err(format!("{eni} disappeared while attaching"))));
            };
            Ok(match &current.attachment {
                Some(a) if a.instance.as_ref() == Some(instance) => {
                    (a.status == AttachmentStatus::Attached).then_some(Ok(current))
                }
                Some(a) if a.instance.is_some() => Some(Err(format!(
                    "{eni} was attached to {} instead",
                    a.instance.as_ref().map_or("-", |i| i.as_str())
                ))),
                // EC2's reads may not show the attachment yet
                _ => None,
            })
        })
        .await?;
        Ok(
            match settled
                .unwrap_or_else(|| Err(format!("{eni} did not reach the attached state in time")))
            {
                Ok(attached) => Ok(Member {
                    id: eni.to_string(),
                    mac_address: attached.mac_address,
                    private_ip: attached.private_ip,
                    public_ip: attached.public_ip,
                }),
                Err(reason) => Err(reason),
            },
        )
    }

    async fn roll_back(&self, member: &Eni) {
        let attachment = match self.on.ec2.network_interface(&member.id).await {
            Ok(Some(current)) if current.attachment_instance() == Some(self.on.instance) => {
                current.attachment.and_then(|a| a.id)
            }
            _ => None,
        };
        let Some(attachment) = attachment else {
            return;
        };
        match self.on.ec2.detach_network_interface(&attachment).await {
            Ok(()) => {
                info!(member = %member.id, "detached the member whose attachment never settled")
            }
            Err(err) => {
                warn!(member = %member.id, error = %err, "could not detach the member whose attachment never settled")
            }
        }
    }

    async fn release(
        &self,
        member: &Eni,
        holder: &InstanceId,
        until: Instant,
    ) -> Result<(), NotReleased> {
        // Never the primary interface, never an attachment to anyone but the holder.
        if member.attachment_instance() != Some(holder) || member.is_primary() {
            return Ok(());
        }
        let Some(attachment) = member.attachment.as_ref().and_then(|a| a.id.as_ref()) else {
            let reason = "AWS described the attachment without an attachment id";
            return Err(NotReleased::Failed(reason.into()));
        };
        match self.on.ec2.detach_network_interface(attachment).await {
            Ok(()) => {}
            Err(err) if err.not_found().is_some() => {}
            Err(err) => return Err(err.into()),
        }
        let (ec2, eni) = (self.on.ec2, &member.id);
        let detached = poll_until(self.on.poll, until, || async move {
            Ok::<_, NotReleased>(match ec2.network_interface(eni).await {
                Ok(None) => Some(()),
                Ok(Some(current)) if current.attachment_instance() != Some(holder) => Some(()),
                Ok(Some(_)) => None,
                Err(err) if err.is(ErrorKind::Transient) => {
                    warn!(error = %err, "could not read the interface; waiting on");
                    None
                }
                Err(err) => return Err(err.into()),
            })
        })
        .await?;
        detached.ok_or_else(|| {
            let why = format!("{eni} was still attached when the wait ran out");
            NotReleased::Transient(AwsError::transient(
                "ec2:DetachNetworkInterface",
                why.into(),
            ))
        })
    }
}
