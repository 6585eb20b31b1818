//! Member kinds: what the claim engine needs of pool ENIs and of pool Elastic IPs — list, claim,
//! the codes that mean someone else took it, settle, release. This is the only place where the
//! two differ; every rule about claiming, waiting and releasing lives once, for both, in the
//! claim engine (`claim.rs`) and the decisions (`decide/`).

mod eip;
mod eni;

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

pub use self::eip::EipKind;
pub use self::eni::EniKind;
use crate::aws::AwsError;
use crate::config::PoolName;
use crate::context::Ctx;
use crate::model::{Eni, InstanceId, PoolMember};

/// What a refused claim means for the claim engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Someone else holds the member, or it is gone: try the next candidate.
    Taken,
    /// The instance's slot for this kind (an ENI's device index) is already occupied: by a
    /// concurrent delivery's member, or by something else.
    SlotTaken,
    /// The instance is not running yet: wait for it to boot, then claim again.
    InstanceNotReady,
    /// The instance, or the interface that was to receive the member, no longer exists.
    InstanceGone,
    /// Anything else: the error stands.
    Failed,
}

/// What occupies the instance's slot for this kind: the device index an ENI is attached at, or
/// the interface that receives an Elastic IP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slot<M> {
    Empty,
    /// A member of the pool: the instance is pinned already.
    Pool(M),
    /// Something outside the pool, by id.
    Foreign(String),
}

/// Where a kind stands once it has looked at the instance, before claiming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ready<M> {
    Claim,
    /// The instance holds a member already.
    Held(M),
    /// Nothing can be pinned to this instance, and why.
    Refused(String),
}

/// What a kind is bound to: the EC2 adapter, one pool, one instance, and the pause between two
/// reads while waiting on AWS.
#[derive(Debug)]
pub struct Binding<'a, E> {
    pub ec2: &'a E,
    pub pool: &'a PoolName,
    pub instance: &'a InstanceId,
    pub poll: Duration,
}

impl<'a, E> Binding<'a, E> {
    pub fn new<A>(ctx: Ctx<'a, A, E>, pool: &'a PoolName, instance: &'a InstanceId) -> Self {
        Self {
            ec2: ctx.ec2,
            pool,
            instance,
            poll: ctx.settings.poll_interval,
        }
    }
}

impl<E> Clone for Binding<'_, E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<E> Copy for Binding<'_, E> {}

/// What was pinned, as the summary reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Member {
    pub id: String,
    pub mac_address: Option<String>,
    pub private_ip: Option<String>,
    pub public_ip: Option<String>,
}

/// A kind of pool member, bound to one pool and one instance.
pub trait MemberKind: Send + Sync {
    type Member: PoolMember + Clone + Send + Sync;

    /// Whether a member belongs to one Availability Zone (an ENI) rather than to the region.
    const ZONAL: bool;
    /// The tag on the instance that records the lease.
    const INSTANCE_TAG: &'static str;
    /// Whether a claim of another candidate could silently displace a member that a concurrent
    /// delivery has just put in the slot. AWS moves an Elastic IP off an interface that is given
    /// another, but refuses an ENI at a device index that is taken; where the slot is unguarded,
    /// the engine looks at it before claiming again after a lost claim.
    const SLOT_UNGUARDED: bool;
    /// Whether a member may be taken over from a holder that is leaving, unhealthy or gone
    /// (an Elastic IP, for single-instance HA).
    const CAN_TAKE_OVER: bool;

    /// The pool this kind is bound to.
    fn pool(&self) -> &PoolName;

    /// The instance this kind claims for, or releases from.
    fn instance(&self) -> &InstanceId;

    /// What a claim reads of the pool: the free members that can serve the instance (in
    /// `zone` once known) and the members the instance holds already — not every member where
    /// the kind can filter.
    fn claim_reads(
        &self,
        zone: Option<&str>,
    ) -> impl Future<Output = Result<Vec<Self::Member>, AwsError>> + Send;

    /// Every member of the pool (in `zone`, for a zonal kind): what a claim reads once nothing
    /// is free, to see who holds what.
    fn all(
        &self,
        zone: Option<&str>,
    ) -> impl Future<Output = Result<Vec<Self::Member>, AwsError>> + Send;

    /// The members the instance holds, or that are still tagged as its: what a release reads.
    fn held(&self) -> impl Future<Output = Result<Vec<Self::Member>, AwsError>> + Send;

    /// The instance's network interfaces, read beside the pool when a claim needs them (an
    /// Elastic IP needs the interface that receives it); none for a kind whose pool read alone
    /// shows what the instance holds (an ENI).
    fn interfaces(&self) -> impl Future<Output = Result<Vec<Eni>, AwsError>> + Send {
        async { Ok(Vec::new()) }
    }

    /// Looks at the instance before the first claim: `interfaces` are the instance's network
    /// interfaces, `members` the pool. May wait until `until`.
    /// By default there is nothing to look at: claim.
    fn prepare(
        &mut self,
        interfaces: Vec<Eni>,
        members: &[Self::Member],
        until: Instant,
    ) -> impl Future<Output = Result<Ready<Self::Member>, AwsError>> + Send {
        let _ = (interfaces, members, until);
        async { Ok(Ready::Claim) }
    }

    /// Claims a free member for the instance, in one AWS call that AWS refuses if someone else
    /// holds the member.
    fn claim(&self, member: &Self::Member) -> impl Future<Output = Result<(), AwsError>> + Send;

    /// What a refused claim means.
    fn refusal(&self, err: &AwsError) -> Refusal;

    /// What occupies the instance's slot now.
    fn slot(&self) -> impl Future<Output = Result<Slot<Self::Member>, AwsError>> + Send;

    /// Why nothing can be pinned while `occupant`, which is not in the pool, holds the slot.
    fn occupied(&self, occupant: &str) -> String;

    /// The interfaces a member of this kind is held through, once prepared (for an Elastic IP,
    /// the interface that receives it).
    fn slot_interfaces(&self) -> &[Eni];

    /// Waits until a claimed member has taken effect, until `until`; the inner error says why it
    /// never did.
    fn settle(
        &self,
        member: &Self::Member,
        until: Instant,
    ) -> impl Future<Output = Result<Result<Member, String>, AwsError>> + Send;

    /// Undoes a claim that never took effect. Best effort: whatever is left is found by its
    /// attachment when the instance leaves.
    fn roll_back(&self, member: &Self::Member) -> impl Future<Output = ()> + Send;

    /// Takes a member from `holder` (detach and wait until it is available, or disassociate),
    /// leaving tags alone. Only what `holder` still holds is touched.
    fn release(
        &self,
        member: &Self::Member,
        holder: &InstanceId,
        until: Instant,
    ) -> impl Future<Output = Result<(), NotReleased>> + Send;
}

/// Why a member was not released.
#[derive(Debug)]
pub enum NotReleased {
    /// AWS's transient errors (throttling, 5xx, timeouts), or the time, kept it from finishing:
    /// a later try goes on.
    Transient(AwsError),
    /// Why it cannot be released.
    Failed(String),
}

impl std::fmt::Display for NotReleased {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Transient(err) => write!(f, "{err}"),
            Self::Failed(reason) => f.write_str(reason),
        }
    }
}

impl From<AwsError> for NotReleased {
    fn from(err: AwsError) -> Self {
        match err.is_transient() {
            true => Self::Transient(err),
            false => Self::Failed(err.to_string()),
        }
    }
}

/// Runs `step` every `interval` until it has an answer, or until `until`: `Ok(None)` then.
pub(crate) async fn poll_until<T, E, F, Fut>(
    interval: Duration,
    until: Instant,
    mut step: F,
) -> Result<Option<T>, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, E>>,
{
    loop {
        if let Some(done) = step().await? {
            return Ok(Some(done));
        }
        if Instant::now() + interval > until {
            return Ok(None);
        }
        tokio::time::sleep(interval).await;
    }
}
