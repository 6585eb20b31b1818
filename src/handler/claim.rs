//! The claim engine, one loop for every member kind: candidates in a stable spread order, claims
//! that AWS arbitrates, a lost claim moving on to the next candidate, a booting instance waited
//! for, a leaving holder waited for with heartbeats, takeover on confirmed facts only, a
//! concurrent delivery's win settled on, an attachment that never settles rolled back, and
//! failure decided only on reads that can have caught up with the last conflict.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;
use tracing::{info, warn};

use super::Pinhook;
use crate::aws::{AutoScalingApi, AwsError, Ec2Api, ErrorKind};
use crate::config::PoolName;
use crate::decide::{self, Exhaustion, Holding};
use crate::event::LifecycleAction;
use crate::member::{Member, MemberKind, Ready, Refusal, Slot};
use crate::metrics::{self, Metrics};
use crate::model::{Eni, GroupInstance, InstanceId, PoolMember, RunState};

/// Claims tried on one read of the pool. After that many lost races the read is stale: a
/// fresh one avoids a storm of claims on members that are gone, when a burst of launches
/// empties the pool.
const CLAIMS_PER_PASS: usize = 3;

/// The note a pinning carries when a concurrent delivery of the same event won the claim.
const CONCURRENT_WIN: &str = "pinned by a concurrent delivery";

/// How a claim ended, before the lease is recorded and the action completed.
#[derive(Debug)]
pub(crate) enum Pinning {
    Pinned {
        member: Member,
        note: Option<String>,
        /// How long the launch waited for its instance to boot first.
        booted: Duration,
    },
    NotPinned(String),
    /// The lifecycle action is over (completed elsewhere, timed out): complete nothing.
    Stale(String),
    /// The instance launches into the warm pool: nothing to pin until it leaves it.
    EnterWarmPool,
}

/// Until when pinning may go on, and the member a claim is under way for, so that a launch cut
/// short by its deadline can say where a late claim will land.
#[derive(Debug)]
pub(crate) struct Budget {
    pub end: Instant,
    in_flight: Mutex<Option<String>>,
}

impl Budget {
    pub fn until(end: Instant) -> Self {
        Self {
            end,
            in_flight: Mutex::new(None),
        }
    }

    fn claiming(&self, member: Option<&str>) {
        if let Ok(mut in_flight) = self.in_flight.lock() {
            *in_flight = member.map(str::to_owned);
        }
    }

    /// The member whose claim had not settled when pinning stopped.
    pub fn in_flight(&self) -> Option<String> {
        self.in_flight.lock().ok().and_then(|m| m.clone())
    }
}

/// Whom a claim is for: an instance of a group, and the lifecycle action that holds it, if any.
/// The sweep claims for an instance in service, with no action to keep alive: it never waits
/// for a release.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Subject<'a> {
    pub group: &'a str,
    pub instance: &'a InstanceId,
    pub action: Option<&'a LifecycleAction>,
}

impl<'a> Subject<'a> {
    pub fn of(action: &'a LifecycleAction) -> Self {
        Self {
            group: &action.group,
            instance: &action.instance,
            action: Some(action),
        }
    }
}

/// One claim of a member of `pool` in `zone`, for a launch or for the sweep.
pub(crate) struct Claim<'a, A, E, K> {
    app: &'a Pinhook<A, E>,
    subject: Subject<'a>,
    kind: K,
    pool: PoolName,
    zone: String,
    /// `Some(allowed)` for a kind whose members may be taken over.
    takeover: Option<bool>,
    budget: &'a Budget,
    metrics: &'a mut Metrics,
    next_heartbeat: Option<Instant>,
    contended: u32,
    last_conflict: Option<Instant>,
    booted: Duration,
    /// EC2 has confirmed the instance runs.
    running: bool,
}

impl<'a, A: AutoScalingApi, E: Ec2Api, K: MemberKind> Claim<'a, A, E, K> {
    pub fn new(
        app: &'a Pinhook<A, E>,
        subject: Subject<'a>,
        kind: K,
        zone: String,
        takeover: Option<bool>,
        budget: &'a Budget,
        metrics: &'a mut Metrics,
    ) -> Self {
        Self {
            app,
            subject,
            pool: kind.pool().clone(),
            kind,
            zone,
            takeover,
            budget,
            metrics,
            next_heartbeat: None,
            contended: 0,
            last_conflict: None,
            booted: Duration::ZERO,
            running: false,
        }
    }

    /// Steps 2 to 4 from the first reads of the pool and of the instance's interfaces.
    pub async fn run(
        mut self,
        members: Vec<K::Member>,
        interfaces: Vec<Eni>,
    ) -> Result<Pinning, AwsError> {
        let pool = self.pool.clone();
        let (instance, pool) = (self.subject.instance, pool.as_str());
        if let Some(held) = decide::held(&members, pool, instance, &interfaces) {
            info!(
                member = held.member_id(),
                "the instance already holds a member of the pool"
            );
            return self.settle(held, Some("already pinned".into())).await;
        }
        let until = self.wait_limit();
        match self.kind.prepare(interfaces, &members, until).await? {
            Ready::Claim => {}
            Ready::Held(held) => return self.settle(&held, Some("already pinned".into())).await,
            Ready::Refused(reason) => return Ok(Pinning::NotPinned(reason)),
        }
        let mut members = members;
        loop {
            let candidates = decide::candidates(&members, pool, &self.zone, instance);
            self.metrics
                .set(metrics::FREE_MEMBERS, candidates.len() as f64, "Count");
            let mut lost = false;
            for candidate in candidates.into_iter().take(CLAIMS_PER_PASS) {
                // Where another claim could displace a member a concurrent delivery has just
                // put in the slot, look at the slot before claiming again. After the last claim
                // of a pass, the fresh read of the pool below shows such a win anyway.
                if lost && K::SLOT_UNGUARDED {
                    if let Some(end) = self.look_at_slot(false).await? {
                        return Ok(end);
                    }
                }
                match self.attempt(candidate, None).await? {
                    Some(end) => return Ok(end),
                    None => lost = true,
                }
            }
            // No candidate won: decide on a fresh read of the pool.
            members = self.kind.list().await?;
            let interfaces = self.kind.slot_interfaces();
            if let Some(won) = decide::held(&members, pool, instance, interfaces).cloned() {
                return self.settle(&won, Some(CONCURRENT_WIN.into())).await;
            }
            let holdings = decide::holdings(&members, pool, &self.zone);
            let states = self.holder_states(&holdings).await?;
            let exhaustion = decide::exhaustion(&holdings, &states);
            let all_held = matches!(
                exhaustion,
                Exhaustion::AllHeld { .. } | Exhaustion::Releasing { .. }
            );
            // Losing a race for a free member never leads to a takeover.
            if all_held && self.takeover == Some(true) {
                if let Some(end) = self.take_over(&members, &holdings, &states).await? {
                    return Ok(end);
                }
            }
            if let Some(end) = self.after_pass(exhaustion).await? {
                return Ok(end);
            }
        }
    }

    /// Steps 2 to 5: the claim, then the lease tags of what it pinned.
    pub async fn run_and_lease(
        self,
        members: Vec<K::Member>,
        interfaces: Vec<Eni>,
    ) -> Result<Pinning, AwsError> {
        let (app, instance) = (self.app, self.subject.instance);
        match self.run(members, interfaces).await? {
            Pinning::Pinned {
                member,
                note,
                booted,
            } => {
                let note = app
                    .record_lease(&member.id, instance, K::INSTANCE_TAG, note)
                    .await?;
                Ok(Pinning::Pinned {
                    member,
                    note,
                    booted,
                })
            }
            other => Ok(other),
        }
    }

    /// Claims one member (or takes it over from `takeover_from`), until it is won, lost to
    /// someone else (`None`), or the attempt ends the launch.
    async fn attempt(
        &mut self,
        candidate: &K::Member,
        takeover_from: Option<&InstanceId>,
    ) -> Result<Option<Pinning>, AwsError> {
        loop {
            self.budget.claiming(Some(candidate.member_id()));
            let err = match self.kind.claim(candidate).await {
                Ok(()) => {
                    let note = takeover_from.map(|holder| {
                        self.metrics.add(metrics::TAKEN_OVER, 1.0);
                        format!("took {} over from {holder}", candidate.member_id())
                    });
                    return self.settle(candidate, note).await.map(Some);
                }
                Err(err) => err,
            };
            self.budget.claiming(None);
            match self.kind.refusal(&err) {
                Refusal::Taken => {
                    self.metrics.add(metrics::CLAIM_CONFLICTS, 1.0);
                    self.last_conflict = Some(Instant::now());
                    info!(member = candidate.member_id(), error = %err, "member taken meanwhile; trying the next one");
                    return Ok(None);
                }
                Refusal::SlotTaken => {
                    self.last_conflict = Some(Instant::now());
                    return self.look_at_slot(true).await;
                }
                Refusal::InstanceNotReady => {
                    info!(error = %err, "the instance is not running yet; waiting for it to boot");
                    if let Some(end) = self.wait_until_running(&err.to_string()).await? {
                        return Ok(Some(end));
                    }
                }
                Refusal::InstanceGone => {
                    return Ok(Some(Pinning::NotPinned(format!(
                        "the instance or its interface is gone: {err}"
                    ))));
                }
                Refusal::Failed => return Err(err),
            }
        }
    }

    /// Waits until a claimed member has taken effect; rolls back one that never does.
    async fn settle(
        &mut self,
        member: &K::Member,
        note: Option<String>,
    ) -> Result<Pinning, AwsError> {
        self.budget.claiming(Some(member.member_id()));
        match self.kind.settle(member, self.wait_limit()).await? {
            Ok(member) => Ok(Pinning::Pinned {
                member,
                note,
                booted: self.booted,
            }),
            Err(reason) => {
                self.kind.roll_back(member).await;
                self.budget.claiming(None);
                Ok(Pinning::NotPinned(reason))
            }
        }
    }

    /// Looks at the instance's slot after a lost claim: a pool member there means a concurrent
    /// delivery of this event won, so settle on it; anything else there means nothing can be
    /// pinned. `taken` when AWS said the slot is occupied even if the read shows it empty.
    async fn look_at_slot(&mut self, taken: bool) -> Result<Option<Pinning>, AwsError> {
        match self.kind.slot().await? {
            Slot::Pool(member) => self
                .settle(&member, Some(CONCURRENT_WIN.into()))
                .await
                .map(Some),
            Slot::Foreign(occupant) => {
                let reason = self.kind.occupied(&occupant);
                self.fail(reason).await.map(Some)
            }
            Slot::Empty if taken => {
                let reason = self.kind.occupied("another interface");
                self.fail(reason).await.map(Some)
            }
            Slot::Empty => Ok(None),
        }
    }

    /// Ends the launch without a member — but abandoning terminates an instance, so after a
    /// conflict it looks at the instance's slot again once EC2's reads can have caught up: a
    /// concurrent delivery of this event may have pinned it meanwhile.
    async fn fail(&mut self, mut reason: String) -> Result<Pinning, AwsError> {
        if let Some(conflict) = self.last_conflict.take() {
            let converged = conflict + self.app.settings.consistency_window;
            if Instant::now() < converged {
                info!(%reason, "looking again once EC2's reads can have caught up, before giving up");
                tokio::time::sleep_until(converged.min(self.budget.end)).await;
            }
            match self.kind.slot().await? {
                Slot::Pool(member) => {
                    return self.settle(&member, Some(CONCURRENT_WIN.into())).await;
                }
                Slot::Foreign(occupant) => reason = self.kind.occupied(&occupant),
                Slot::Empty => {}
            }
        }
        Ok(Pinning::NotPinned(reason))
    }

    /// After a pass in which no candidate was won: `None` to claim again (after a short pause,
    /// or a wait for a release), or how the launch ends.
    async fn after_pass(&mut self, exhaustion: Exhaustion) -> Result<Option<Pinning>, AwsError> {
        let pool = &self.pool;
        let scope = match K::ZONAL {
            true => format!(" in {}", self.zone),
            false => String::new(),
        };
        let reason = match exhaustion {
            Exhaustion::NoMember => format!("pool {pool:?} has no member{scope}"),
            Exhaustion::AllHeld { held } => {
                let why = match self.takeover {
                    Some(true) => {
                        ", and no holder may be taken over (each is a healthy member in service or launching, in another group, or not confirmed gone)"
                    }
                    Some(false) => " (set \"takeover\": true for single-instance HA)",
                    None => "",
                };
                format!("pool {pool:?} is exhausted{scope}: all {held} members are held{why}")
            }
            Exhaustion::Contended { free, members } => {
                // Every lost race means another claimer won a member, so a pool of `members`
                // can beat one claimer only so many times before it is all held.
                self.contended += 1;
                let limit = members as u32 + 5;
                if self.contended <= limit {
                    // Claim again after a short random pause, so the claimers fall out of step.
                    let pause = self.app.settings.poll_interval.as_millis() as u64 / 2;
                    tokio::time::sleep(Duration::from_millis(fastrand::u64(0..=pause))).await;
                    return Ok(None);
                }
                format!(
                    "lost every claim on pool {pool:?}{scope} {limit} times in a row, with {free} members still listed as free"
                )
            }
            Exhaustion::Releasing { held } => {
                let poll = self.app.settings.poll_interval;
                // Only a launch waits: the sweep has no action to keep alive, and comes back.
                if self.subject.action.is_some() && Instant::now() + poll < self.budget.end {
                    let why = "waiting for a leaving holder to release a member";
                    if let Some(end) = self.heartbeat(true, why).await {
                        return Ok(Some(end));
                    }
                    tokio::time::sleep(poll).await;
                    return Ok(None);
                }
                format!(
                    "all {held} members of pool {pool:?}{scope} are held by leaving instances, and none was released before the function's deadline"
                )
            }
        };
        let end = self.fail(reason).await?;
        if matches!(end, Pinning::NotPinned(_)) {
            self.metrics.add(metrics::POOL_EXHAUSTED, 1.0);
        }
        Ok(Some(end))
    }

    /// Takes a member over from a holder AWS has just confirmed is leaving, unhealthy or gone:
    /// an explicit release of exactly that holder's claim, then a claim that AWS refuses if
    /// someone else was quicker.
    async fn take_over(
        &mut self,
        members: &[K::Member],
        holdings: &[Holding<'_>],
        asg: &[GroupInstance],
    ) -> Result<Option<Pinning>, AwsError> {
        let unknown = decide::unknown_holders(holdings, asg);
        let ec2 = match unknown.is_empty() {
            true => Some(Vec::new()),
            false => match self.app.ec2.instances(&unknown).await {
                Ok(found) => Some(found),
                Err(err) if err.is(ErrorKind::Transient) => return Err(err),
                Err(err) => {
                    warn!(error = %err, "could not read the holders' state from EC2: none of them is taken from");
                    None
                }
            },
        };
        let victims = decide::takeover_victims(
            members,
            self.pool.as_str(),
            self.subject.group,
            self.subject.instance,
            asg,
            ec2.as_deref(),
        );
        if !victims.is_empty() {
            // A member taken from its holder must not sit free while the instance boots.
            if let Some(end) = self.ensure_running().await? {
                return Ok(Some(end));
            }
        }
        for victim in victims {
            let Some(holder) = victim.holder_instance() else {
                continue;
            };
            info!(member = victim.member_id(), from = %holder, "taking the member over from its holder, which is leaving, unhealthy or gone");
            if let Err(reason) = self.kind.release(victim, holder, self.wait_limit()).await {
                warn!(member = victim.member_id(), %reason, "could not take the member from its holder");
                continue;
            }
            if let Some(end) = self.attempt(victim, Some(holder)).await? {
                return Ok(Some(end));
            }
        }
        Ok(None)
    }

    /// Makes sure the instance runs before a claim that cannot wait: a booting instance is
    /// waited for. An instance EC2 does not show yet is left to the claim to find out.
    async fn ensure_running(&mut self) -> Result<Option<Pinning>, AwsError> {
        if self.running {
            return Ok(None);
        }
        let instance = self.subject.instance;
        match self.run_state().await? {
            Some(RunState::Pending) => {
                info!("the instance is still booting; waiting for it before taking a member over");
                self.wait_until_running("the instance is pending").await
            }
            Some(RunState::Running) | None => {
                self.running = true;
                Ok(None)
            }
            Some(state) => Ok(Some(Pinning::NotPinned(format!(
                "{instance} is {state}, so it cannot be pinned"
            )))),
        }
    }

    /// The instance is still booting: poll EC2 until it runs, with heartbeats if that takes
    /// long. `Some` ending when it never will, or the deadline comes first.
    async fn wait_until_running(&mut self, refusal: &str) -> Result<Option<Pinning>, AwsError> {
        let instance = self.subject.instance;
        let poll = self.app.settings.poll_interval;
        let started = Instant::now();
        loop {
            if Instant::now() + poll > self.budget.end {
                return Ok(Some(Pinning::NotPinned(format!(
                    "{instance} was still not running when the function's deadline came ({refusal})"
                ))));
            }
            if let Some(end) = self
                .heartbeat(false, "waiting for the instance to boot")
                .await
            {
                return Ok(Some(end));
            }
            tokio::time::sleep(poll).await;
            match self.run_state().await? {
                Some(RunState::Running) => {
                    self.booted += started.elapsed();
                    self.running = true;
                    return Ok(None);
                }
                // so new that EC2's reads may not show it yet
                Some(RunState::Pending) | None => {}
                Some(state) => {
                    return Ok(Some(Pinning::NotPinned(format!(
                        "{instance} is {state}, so it cannot be pinned"
                    ))));
                }
            }
        }
    }

    /// The instance's state as EC2 reports it; `None` while EC2's reads do not show it yet.
    async fn run_state(&self) -> Result<Option<RunState>, AwsError> {
        let instance = std::slice::from_ref(self.subject.instance);
        let described = self.app.ec2.instances(instance).await?;
        Ok(described.into_iter().next().map(|i| i.state))
    }

    /// Keeps the lifecycle action alive during a wait: a heartbeat whenever one is due, the
    /// first at once for a wait that may be long (`at_once`), else after an interval. `Some`
    /// ending when the action ended meanwhile.
    async fn heartbeat(&mut self, at_once: bool, why: &str) -> Option<Pinning> {
        let action = self.subject.action?;
        let interval = self.app.settings.heartbeat_interval;
        let due = *self.next_heartbeat.get_or_insert_with(|| match at_once {
            true => Instant::now(),
            false => Instant::now() + interval,
        });
        if Instant::now() < due {
            return None;
        }
        info!(why, "sending a lifecycle heartbeat");
        match self.app.asg.record_heartbeat(&action.action_ref()).await {
            Ok(()) => {}
            Err(err) if err.is(ErrorKind::NoActiveAction) => {
                return Some(Pinning::Stale(format!(
                    "the lifecycle action ended while {why}"
                )));
            }
            Err(err) => warn!(error = %err, "lifecycle heartbeat failed; waiting on"),
        }
        self.next_heartbeat = Some(Instant::now() + interval);
        None
    }

    /// The Auto Scaling view of the instances holding members, when the decision needs it:
    /// only when no member is free.
    async fn holder_states(
        &self,
        holdings: &[Holding<'_>],
    ) -> Result<Vec<GroupInstance>, AwsError> {
        let holders = decide::holders_to_check(holdings);
        if holders.is_empty() {
            return Ok(Vec::new());
        }
        self.app.asg.describe_instances(&holders).await
    }

    /// Until when a wait for AWS may last: the attach timeout, within the budget.
    fn wait_limit(&self) -> Instant {
        (Instant::now() + self.app.settings.attach_timeout).min(self.budget.end)
    }
}
