//! The claim engine, the one door through which every trigger (a launch, the sweep) pins a
//! member: candidates in a stable spread order, claims that AWS arbitrates, a lost claim moving
//! on to the next candidate, a booting instance waited for, a leaving holder waited for with
//! heartbeats, takeover on confirmed facts only, a concurrent delivery's win settled on, an
//! attachment that never settles rolled back, and failure decided only on reads that can have
//! caught up with the last conflict. It returns what it pinned: the caller records the lease
//! and completes the action.

use std::time::Duration;

use tokio::time::Instant;
use tracing::{info, warn};

use crate::aws::{AutoScalingApi, AwsError, Ec2Api, ErrorKind};
use crate::config::{PoolName, Takeover};
use crate::context::Ctx;
use crate::decide::{self, AfterPass, Exhaustion, HolderStates, MayTakeOver, Stale, Wait};
use crate::event::LifecycleAction;
use crate::holders::holder_states;
use crate::member::{Member, MemberKind, NotReleased, Ready, Refusal, Slot};
use crate::model::{Eni, InstanceId, PoolMember, RunState};

/// Claims tried on one read of the pool. After that many lost races the read is stale: a
/// fresh one avoids a storm of claims on members that are gone, when a burst of launches
/// empties the pool.
const CLAIMS_PER_PASS: usize = 3;

/// The note a pinning carries when a concurrent delivery of the same event won the claim.
const CONCURRENT_WIN: &str = "pinned by a concurrent delivery";

/// Whom a claim is for: an instance of a group, and the lifecycle action that holds it, if any.
/// The sweep claims for an instance in service, with no action to keep alive: it never waits
/// for a release.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The instance's Auto Scaling group; `None` for an instance without one.
    pub group: Option<&'a str>,
    pub instance: &'a InstanceId,
    pub action: Option<&'a LifecycleAction>,
}

impl<'a> Subject<'a> {
    pub fn of(action: &'a LifecycleAction) -> Self {
        Self {
            group: Some(&action.group),
            instance: &action.instance,
            action: Some(action),
        }
    }
}

/// What a claim starts from: one read of the pool, and of the instance's interfaces where the
/// kind needs them. A launch makes these reads beside its check against Auto Scaling.
#[derive(Debug, Clone)]
pub struct FirstReads<M> {
    pub members: Vec<M>,
    pub interfaces: Vec<Eni>,
}

/// The first reads for a claim, concurrently; `zone` when it is known already.
pub async fn first_reads<K: MemberKind>(
    kind: &K,
    zone: Option<&str>,
) -> Result<FirstReads<K::Member>, AwsError> {
    let (members, interfaces) = tokio::join!(kind.claim_reads(zone), kind.interfaces());
    Ok(FirstReads {
        members: members?,
        interfaces: interfaces?,
    })
}

/// How a claim ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    /// The member is attached or associated, and settled; `note` says how, when not simply.
    Pinned {
        member: Member,
        note: Option<String>,
    },
    /// Nothing can be pinned, decided on reads that can have caught up: why.
    NotPinned(String),
    /// The lifecycle action ended while the claim waited (completed elsewhere, timed out).
    ActionEnded(Stale),
    /// Time or AWS ran out before a member was pinned or a failure confirmed: not a failure;
    /// what is under way is left for a redelivery, which finds a claim that landed. Why.
    Unfinished(String),
}

/// What a claim met on its way, for the caller's metrics and summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Claims AWS refused because someone else held the member.
    pub conflicts: u32,
    /// Candidates on the last read of the pool.
    pub free_members: Option<usize>,
    pub taken_over: bool,
    /// Ended without a member because the pool had none to give.
    pub exhausted: bool,
    /// How long the claim waited for its instance to boot.
    pub booted: Duration,
}

/// A claim's ending and its tally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimReport {
    pub claimed: Claimed,
    pub tally: Tally,
}

/// What to claim: for whom, where, and whether a member may be taken over.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub subject: Subject<'a>,
    /// The instance's Availability Zone.
    pub zone: &'a str,
    /// Taken into account only for a kind whose members can be taken over.
    pub takeover: Takeover,
    /// Until when the claim may go on: the deadline less what its caller keeps back.
    pub until: Instant,
}

/// Steps 2 to 4 of a launch: the member the instance already holds, or a claim of a free one.
pub async fn pin<A: AutoScalingApi, E: Ec2Api, K: MemberKind>(
    ctx: Ctx<'_, A, E>,
    request: Request<'_>,
    kind: K,
    first: FirstReads<K::Member>,
) -> Result<ClaimReport, AwsError> {
    let mut engine = Engine {
        ctx,
        subject: request.subject,
        pool: kind.pool().clone(),
        kind,
        zone: request.zone,
        takeover: match K::CAN_TAKE_OVER {
            true => MayTakeOver::Setting(request.takeover),
            false => MayTakeOver::NotThisKind,
        },
        until: request.until,
        tally: Tally::default(),
        next_heartbeat: None,
        heartbeats_refused: false,
        passes_contended: 0,
        last_conflict: None,
        running: false,
    };
    let claimed = engine.run(first).await?;
    Ok(ClaimReport {
        claimed,
        tally: engine.tally,
    })
}

/// One claim under way.
struct Engine<'a, A, E, K> {
    ctx: Ctx<'a, A, E>,
    subject: Subject<'a>,
    kind: K,
    pool: PoolName,
    zone: &'a str,
    takeover: MayTakeOver,
    until: Instant,
    tally: Tally,
    next_heartbeat: Option<Instant>,
    /// AWS refused a heartbeat for a reason waiting does not change (a permission).
    heartbeats_refused: bool,
    passes_contended: u32,
    last_conflict: Option<Instant>,
    /// EC2 has confirmed the instance runs.
    running: bool,
}

impl<A: AutoScalingApi, E: Ec2Api, K: MemberKind> Engine<'_, A, E, K> {
    async fn run(&mut self, first: FirstReads<K::Member>) -> Result<Claimed, AwsError> {
        let pool = self.pool.clone();
        let (instance, pool) = (self.subject.instance, pool.as_str());
        let FirstReads {
            mut members,
            interfaces,
        } = first;
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
            Ready::Refused(reason) => return Ok(Claimed::NotPinned(reason)),
        }
        loop {
            let candidates = decide::candidates(&members, pool, self.zone, instance);
            self.tally.free_members = Some(candidates.len());
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
            // No candidate won: decide on a fresh read of the pool, and of who holds what once
            // nothing is free.
            members = self.kind.claim_reads(Some(self.zone)).await?;
            let interfaces = self.kind.slot_interfaces();
            if let Some(won) = decide::held(&members, pool, instance, interfaces).cloned() {
                return self.settle(&won, Some(CONCURRENT_WIN.into())).await;
            }
            if decide::candidates(&members, pool, self.zone, instance).is_empty() {
                members = self.kind.all(Some(self.zone)).await?;
            }
            let holdings = decide::holdings(&members, pool, self.zone);
            let holders = decide::holders_to_check(&holdings);
            let states = holder_states(self.ctx, &holders).await?;
            let exhaustion = decide::exhaustion(&holdings, &states.asg);
            let all_held = matches!(
                exhaustion,
                Exhaustion::AllHeld { .. } | Exhaustion::Releasing { .. }
            );
            // Losing a race for a free member never leads to a takeover.
            if all_held && self.takeover == MayTakeOver::Setting(Takeover::Allowed) {
                if let Some(end) = self.take_over(&members, &states).await? {
                    return Ok(end);
                }
            }
            if let Some(end) = self.after_pass(&exhaustion).await? {
                return Ok(end);
            }
        }
    }

    /// Claims one member (or takes it over from `takeover_from`), until it is won, lost to
    /// someone else (`None`), or the attempt ends the claim.
    async fn attempt(
        &mut self,
        candidate: &K::Member,
        takeover_from: Option<&InstanceId>,
    ) -> Result<Option<Claimed>, AwsError> {
        loop {
            let err = match self.kind.claim(candidate).await {
                Ok(()) => {
                    let note = takeover_from.map(|holder| {
                        self.tally.taken_over = true;
                        format!("took {} over from {holder}", candidate.member_id())
                    });
                    return self.settle(candidate, note).await.map(Some);
                }
                Err(err) if err.is_transient() => {
                    // The claim may have landed all the same: a redelivery's first read finds it.
                    return Ok(Some(Claimed::Unfinished(format!(
                        "claiming {}: {err}",
                        candidate.member_id()
                    ))));
                }
                Err(err) => err,
            };
            match self.kind.refusal(&err) {
                Refusal::Taken => {
                    self.tally.conflicts += 1;
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
                    return Ok(Some(Claimed::NotPinned(format!(
                        "the instance or its interface is gone: {err}"
                    ))));
                }
                Refusal::Failed => return Err(err),
            }
        }
    }

    /// Waits until a claimed member has taken effect; rolls back one that never does. One
    /// still settling when the deadline comes is left in place, for a redelivery to find.
    async fn settle(
        &mut self,
        member: &K::Member,
        note: Option<String>,
    ) -> Result<Claimed, AwsError> {
        match self.kind.settle(member, self.wait_limit()).await? {
            Ok(member) => Ok(Claimed::Pinned { member, note }),
            Err(reason) if Instant::now() + self.ctx.settings.poll_interval > self.until => {
                Ok(Claimed::Unfinished(format!(
                    "{reason}, and the function's deadline came before it settled"
                )))
            }
            Err(reason) => {
                self.kind.roll_back(member).await;
                Ok(Claimed::NotPinned(reason))
            }
        }
    }

    /// Looks at the instance's slot after a lost claim: a pool member there means a concurrent
    /// delivery of this event won, so settle on it; anything else there means nothing can be
    /// pinned. `taken` when AWS said the slot is occupied even if the read shows it empty.
    async fn look_at_slot(&mut self, taken: bool) -> Result<Option<Claimed>, AwsError> {
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

    /// Ends the claim without a member — but abandoning terminates an instance, so after a
    /// conflict it looks at the instance's slot again once EC2's reads can have caught up: a
    /// concurrent delivery of this event may have pinned it meanwhile.
    async fn fail(&mut self, mut reason: String) -> Result<Claimed, AwsError> {
        if let Some(conflict) = self.last_conflict.take() {
            let converged = conflict + self.ctx.settings.consistency_window;
            if converged > self.until {
                return Ok(Claimed::Unfinished(format!(
                    "{reason}; the function's deadline comes before EC2's reads can have caught up with the last conflict"
                )));
            }
            if Instant::now() < converged {
                info!(%reason, "looking again once EC2's reads can have caught up, before giving up");
                tokio::time::sleep_until(converged).await;
            }
            match self.kind.slot().await? {
                Slot::Pool(member) => {
                    return self.settle(&member, Some(CONCURRENT_WIN.into())).await;
                }
                Slot::Foreign(occupant) => reason = self.kind.occupied(&occupant),
                Slot::Empty => {}
            }
        }
        Ok(Claimed::NotPinned(reason))
    }

    /// After a pass in which no candidate was won: `None` to claim again (after a short pause,
    /// or a wait for a release), or how the claim ends.
    async fn after_pass(&mut self, exhaustion: &Exhaustion) -> Result<Option<Claimed>, AwsError> {
        if matches!(exhaustion, Exhaustion::Contended { .. }) {
            self.passes_contended += 1;
        }
        let poll = self.ctx.settings.poll_interval;
        // Only a launch waits: the sweep has no action to keep alive, and comes back.
        let wait = match (self.subject.action, Instant::now() + poll < self.until) {
            (None, _) => Wait::NoAction,
            (Some(_), true) => Wait::ForRelease,
            (Some(_), false) => Wait::NoTimeLeft,
        };
        let zone = K::ZONAL.then_some(self.zone);
        match decide::after_pass(
            exhaustion,
            &self.pool,
            zone,
            self.passes_contended,
            self.takeover,
            wait,
        ) {
            AfterPass::ClaimAgain => {
                // After a short random pause, so the claimers fall out of step.
                let pause = poll.as_millis() as u64 / 2;
                tokio::time::sleep(Duration::from_millis(fastrand::u64(0..=pause))).await;
                Ok(None)
            }
            AfterPass::WaitForRelease => {
                let why = "waiting for a leaving holder to release a member";
                if let Some(end) = self.heartbeat(true, why).await {
                    return Ok(Some(end));
                }
                tokio::time::sleep(poll).await;
                Ok(None)
            }
            AfterPass::GiveUp(reason) => {
                let end = self.fail(reason).await?;
                if matches!(end, Claimed::NotPinned(_)) {
                    self.tally.exhausted = true;
                }
                Ok(Some(end))
            }
            AfterPass::Unfinished(reason) => Ok(Some(Claimed::Unfinished(reason))),
        }
    }

    /// Takes a member over from a holder AWS has just confirmed is leaving, unhealthy or gone:
    /// an explicit release of exactly that holder's claim, then a claim that AWS refuses if
    /// someone else was quicker.
    async fn take_over(
        &mut self,
        members: &[K::Member],
        states: &HolderStates,
    ) -> Result<Option<Claimed>, AwsError> {
        let victims = decide::takeover_victims(
            members,
            self.pool.as_str(),
            self.subject.group,
            self.subject.instance,
            states,
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
            match self.kind.release(victim, holder, self.wait_limit()).await {
                Ok(()) => {}
                // AWS's transient errors decide nothing: the redelivery takes it over.
                Err(NotReleased::Transient(err)) => {
                    return Ok(Some(Claimed::Unfinished(format!(
                        "taking {} over from {holder}: {err}",
                        victim.member_id()
                    ))));
                }
                Err(NotReleased::Failed(reason)) => {
                    warn!(member = victim.member_id(), %reason, "could not take the member from its holder");
                    continue;
                }
            }
            if let Some(end) = self.attempt(victim, Some(holder)).await? {
                return Ok(Some(end));
            }
        }
        Ok(None)
    }

    /// Makes sure the instance runs before a claim that cannot wait: a booting instance is
    /// waited for. An instance EC2 does not show yet is left to the claim to find out.
    async fn ensure_running(&mut self) -> Result<Option<Claimed>, AwsError> {
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
            Some(state) => Ok(Some(Claimed::NotPinned(format!(
                "{instance} is {state}, so it cannot be pinned"
            )))),
        }
    }

    /// The instance is still booting: poll EC2 until it runs, with heartbeats if that takes
    /// long. `Some` ending when it never will, or the deadline comes first.
    async fn wait_until_running(&mut self, refusal: &str) -> Result<Option<Claimed>, AwsError> {
        let instance = self.subject.instance;
        let poll = self.ctx.settings.poll_interval;
        let started = Instant::now();
        loop {
            if Instant::now() + poll > self.until {
                return Ok(Some(Claimed::Unfinished(format!(
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
                    self.tally.booted += started.elapsed();
                    self.running = true;
                    return Ok(None);
                }
                // so new that EC2's reads may not show it yet
                Some(RunState::Pending) | None => {}
                Some(state) => {
                    return Ok(Some(Claimed::NotPinned(format!(
                        "{instance} is {state}, so it cannot be pinned"
                    ))));
                }
            }
        }
    }

    /// The instance's state as EC2 reports it; `None` while EC2's reads do not show it yet.
    async fn run_state(&self) -> Result<Option<RunState>, AwsError> {
        let instance = std::slice::from_ref(self.subject.instance);
        let described = self.ctx.ec2.instances(instance).await?;
        Ok(described.into_iter().next().map(|i| i.state))
    }

    /// Keeps the lifecycle action alive during a wait: a heartbeat whenever one is due, the
    /// first at once for a wait that may be long (`at_once`), else after an interval. `Some`
    /// ending when the action ended meanwhile.
    async fn heartbeat(&mut self, at_once: bool, why: &str) -> Option<Claimed> {
        let action = self.subject.action?;
        if self.heartbeats_refused {
            return None;
        }
        let interval = self.ctx.settings.heartbeat_interval;
        let due = *self.next_heartbeat.get_or_insert_with(|| match at_once {
            true => Instant::now(),
            false => Instant::now() + interval,
        });
        if Instant::now() < due {
            return None;
        }
        info!(why, "sending a lifecycle heartbeat");
        match self.ctx.asg.record_heartbeat(&action.action_ref()).await {
            Ok(()) => {}
            Err(err) if err.is(ErrorKind::NoActiveAction) => {
                return Some(Claimed::ActionEnded(Stale(format!(
                    "the lifecycle action ended while {why}"
                ))));
            }
            // A permission missing stays missing: say so once, and wait on without.
            Err(err) if err.is(ErrorKind::AccessDenied) => {
                warn!(error = %err, "lifecycle heartbeats are refused; waiting on without them");
                self.heartbeats_refused = true;
            }
            // Throttling and the like pass: the next heartbeat is due soon.
            Err(err) => warn!(error = %err, "lifecycle heartbeat failed; waiting on"),
        }
        self.next_heartbeat = Some(Instant::now() + interval);
        None
    }

    /// Until when a wait for AWS may last: the attach timeout, within the budget.
    fn wait_limit(&self) -> Instant {
        (Instant::now() + self.ctx.settings.attach_timeout).min(self.until)
    }
}

#[cfg(test)]
mod tests;
