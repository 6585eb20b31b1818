//! The handler: one event in, at most one `CompleteLifecycleAction`, one summary out. It runs
//! the steps of DESIGN.md over the adapters and leaves every choice to `decide`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;
use tracing::{Instrument, Span, error, field, info, info_span, warn};

use crate::aws::{AutoScalingApi, AwsError, Ec2Api, EniFilter, ErrorKind};
use crate::config::{HOLDER_TAG, HookConfig, INSTANCE_ENI_TAG, Pin, PoolName, Settings};
use crate::decide::{self, Exhaustion, Release, Verdict};
use crate::event::{Incoming, LifecycleAction};
use crate::metrics::{self, Metrics};
use crate::model::{
    ActionRef, AttachmentStatus, Eni, EniId, GroupInstance, InstanceId, LifecycleResult,
    LifecycleState, Location, Transition,
};

/// When the invocation must be done by: Lambda's deadline, on tokio's clock.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(Instant);

impl Deadline {
    pub fn after(budget: Duration) -> Self {
        Self(Instant::now() + budget)
    }

    /// From the deadline Lambda gives in milliseconds since the Unix epoch.
    ///
    /// Local Lambda emulators differ: `cargo lambda watch` sends the timeout itself (600000)
    /// rather than a date. No real deadline lies before 2001, so a smaller value is read as a
    /// duration, capped at Lambda's 15-minute maximum.
    pub fn from_epoch_millis(deadline_ms: u64) -> Self {
        const EPOCH_2001_MS: u64 = 1_000_000_000_000;
        const LAMBDA_MAX_MS: u64 = 15 * 60 * 1000;
        if deadline_ms < EPOCH_2001_MS {
            return Self::after(Duration::from_millis(deadline_ms.min(LAMBDA_MAX_MS)));
        }
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        Self::after(Duration::from_millis(deadline_ms.saturating_sub(now_ms)))
    }

    pub fn remaining(&self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }
}

/// What became of the lifecycle action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Outcome {
    /// Completed with CONTINUE.
    #[serde(rename = "CONTINUE")]
    Continue,
    /// Completed with ABANDON.
    #[serde(rename = "ABANDON")]
    Abandon,
    /// Not a lifecycle action for an instance: nothing to do.
    #[serde(rename = "ignored")]
    Ignored,
    /// The event no longer matches Auto Scaling: nothing was changed or completed.
    #[serde(rename = "stale")]
    Stale,
    /// A broken event that names no lifecycle action: nothing could be done.
    #[serde(rename = "rejected")]
    Rejected,
}

impl From<LifecycleResult> for Outcome {
    fn from(result: LifecycleResult) -> Self {
        match result {
            LifecycleResult::Continue => Self::Continue,
            LifecycleResult::Abandon => Self::Abandon,
        }
    }
}

/// Whether Auto Scaling took the completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Completion {
    Completed,
    /// Auto Scaling had no active action any more (completed before, or timed out): done.
    AlreadyCompleted,
}

/// The invocation's answer, so that a replayed event shows what happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub transition: Option<Transition>,
    pub group: Option<String>,
    pub instance: Option<InstanceId>,
    pub pool: Option<PoolName>,
    pub availability_zone: Option<String>,
    pub member: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_ip: Option<String>,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion: Option<Completion>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Summary {
    fn new(outcome: Outcome) -> Self {
        Self {
            transition: None,
            group: None,
            instance: None,
            pool: None,
            availability_zone: None,
            member: None,
            mac_address: None,
            private_ip: None,
            outcome,
            completion: None,
            reason: None,
        }
    }

    fn about(action: &LifecycleAction, outcome: Outcome) -> Self {
        Self {
            transition: Some(action.transition),
            group: Some(action.group.clone()),
            instance: Some(action.instance.clone()),
            ..Self::new(outcome)
        }
    }

    fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
}

/// Errors returned to Lambda, so that the event is delivered again: only for what a
/// redelivery can fix.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error(
        "AWS did not answer in time ({0}); nothing was completed, so a redelivery of the event can finish the job"
    )]
    Transient(#[source] AwsError),
    #[error(
        "could not complete the lifecycle action for instance {instance} with {result}: {source}"
    )]
    Complete {
        instance: InstanceId,
        result: LifecycleResult,
        #[source]
        source: AwsError,
    },
}

/// How one attempt to pin ended, before the lifecycle action is completed.
enum Pinning {
    Pinned(Box<Eni>, Option<String>),
    NotPinned(String),
    Stale(String),
    EnterWarmPool,
}

/// pinhook, over an Auto Scaling and an EC2 adapter.
pub struct Pinhook<A, E> {
    asg: A,
    ec2: E,
    settings: Settings,
}

impl<A: AutoScalingApi, E: Ec2Api> Pinhook<A, E> {
    pub fn new(asg: A, ec2: E, settings: Settings) -> Self {
        Self { asg, ec2, settings }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Handles one event delivered to the function.
    pub async fn handle(
        &self,
        payload: &Value,
        deadline: Deadline,
    ) -> Result<Summary, HandlerError> {
        let mut metrics = Metrics::default();
        let result = match Incoming::parse(payload) {
            Incoming::TestNotification { group } => {
                info!(
                    group = group.as_deref().unwrap_or("-"),
                    "ignoring autoscaling:TEST_NOTIFICATION"
                );
                Ok(Summary {
                    group,
                    ..Summary::new(Outcome::Ignored).reason("test notification")
                })
            }
            Incoming::NotLifecycle { reason } => {
                warn!(%reason, "ignoring an event that is not an Auto Scaling lifecycle action");
                Ok(Summary::new(Outcome::Ignored).reason(reason))
            }
            Incoming::Malformed {
                error,
                action,
                transition,
                metadata,
            } => {
                let span = info_span!(
                    "lifecycle_action",
                    group = action.as_ref().map(|a| a.group.as_str()),
                    hook = action.as_ref().map(|a| a.hook.as_str()),
                    instance = action.as_ref().map(|a| a.instance.as_str()),
                    transition = transition.map(Transition::as_str),
                );
                Box::pin(
                    self.malformed(
                        error.to_string(),
                        action,
                        transition,
                        metadata,
                        &mut metrics,
                    )
                    .instrument(span),
                )
                .await
            }
            Incoming::Action(action) => {
                let span = info_span!(
                    "lifecycle_action",
                    group = %action.group,
                    hook = %action.hook,
                    instance = %action.instance,
                    transition = action.transition.as_str(),
                    pool = field::Empty,
                    member = field::Empty,
                );
                // Boxed: the SDK's futures nest deeply, and this keeps the task small.
                Box::pin(self.act(&action, deadline, &mut metrics).instrument(span)).await
            }
        };
        metrics.emit(&self.settings.metrics_namespace);
        result
    }

    /// A lifecycle event that cannot be acted on: complete it with the failure result if it
    /// still names a waiting lifecycle action, so nothing is left waiting for its timeout.
    async fn malformed(
        &self,
        error: String,
        action: Option<ActionRef>,
        transition: Option<Transition>,
        metadata: Option<String>,
        metrics: &mut Metrics,
    ) -> Result<Summary, HandlerError> {
        let Some(action) = action else {
            error!(%error, "rejecting a malformed lifecycle event that names no lifecycle action");
            return Ok(Summary::new(Outcome::Rejected).reason(error));
        };
        error!(%error, "malformed lifecycle event; completing its action with the failure result");
        let summary = Summary {
            transition,
            group: Some(action.group.clone()),
            instance: Some(action.instance.clone()),
            ..Summary::new(Outcome::Stale)
        };
        let described = match self
            .asg
            .describe_instances(std::slice::from_ref(&action.instance))
            .await
        {
            Ok(described) => Some(described),
            Err(err) if err.is(ErrorKind::Transient) => return Err(HandlerError::Transient(err)),
            Err(err) => {
                error!(error = %err, "could not check the instance with Auto Scaling; completing unchecked");
                None
            }
        };
        let waiting = match described {
            // Unchecked: harmless, because Auto Scaling refuses a token that is not active.
            None => transition,
            Some(described) => described
                .iter()
                .find(|d| d.group == action.group)
                .and_then(|d| waiting_for(&d.state)),
        };
        let Some(waiting) = waiting else {
            return Ok(summary.reason(format!(
                "{error}; instance {} is not waiting in group {:?}, so nothing was completed",
                action.instance, action.group
            )));
        };
        let result = decide::failure_result(
            Some(waiting),
            HookConfig::on_failure_lenient(metadata.as_deref()),
        );
        metrics.add(metrics::FAILED_ACTIONS, 1.0);
        self.complete(&action, result, summary, error).await
    }

    async fn act(
        &self,
        action: &LifecycleAction,
        deadline: Deadline,
        metrics: &mut Metrics,
    ) -> Result<Summary, HandlerError> {
        let metadata = match &action.metadata {
            Some(metadata) => Some(metadata.clone()),
            // Events carry the hook's metadata; read it back only if this one did not.
            None => match self.asg.hook_metadata(&action.group, &action.hook).await {
                Ok(metadata) => metadata,
                Err(err) if err.is(ErrorKind::Transient) => {
                    return Err(HandlerError::Transient(err));
                }
                Err(err) => {
                    warn!(error = %err, "could not read the hook's metadata");
                    None
                }
            },
        };
        let config = HookConfig::parse(metadata.as_deref());
        if let Ok(config) = &config {
            Span::current().record("pool", config.pool.as_str());
            metrics.pool = Some(config.pool.to_string());
        }
        match action.transition {
            Transition::Launch => {
                self.launch(action, config, metadata.as_deref(), deadline, metrics)
                    .await
            }
            Transition::Terminate => {
                self.terminate(action, config, metadata.as_deref(), deadline, metrics)
                    .await
            }
        }
    }

    async fn launch(
        &self,
        action: &LifecycleAction,
        config: Result<HookConfig, crate::config::MetadataError>,
        metadata: Option<&str>,
        deadline: Deadline,
        metrics: &mut Metrics,
    ) -> Result<Summary, HandlerError> {
        let started = Instant::now();
        let config = match config {
            Ok(config) => config,
            Err(err) => {
                error!(error = %err, "bad hook metadata");
                let on_failure = HookConfig::on_failure_lenient(metadata);
                return match decide::check(action, self.describe(action).await?.as_ref()) {
                    Verdict::Stale { reason } => Ok(self.stale(action, reason)),
                    // Nothing is pinned in the warm pool, so the metadata does not matter yet.
                    Verdict::EnterWarmPool => {
                        self.complete(
                            &action.action_ref(),
                            LifecycleResult::Continue,
                            Summary::about(action, Outcome::Continue),
                            format!("launching into the warm pool; the hook metadata must be fixed before it leaves: {err}"),
                        )
                        .await
                    }
                    Verdict::Pin { .. } | Verdict::Release => {
                        metrics.add(metrics::FAILED_ACTIONS, 1.0);
                        self.complete(
                            &action.action_ref(),
                            on_failure,
                            Summary::about(action, on_failure.into()),
                            err.to_string(),
                        )
                        .await
                    }
                };
            }
        };
        let pinning = match config.pin {
            Pin::Eni { device_index } => {
                self.pin_eni(action, &config.pool, device_index, deadline, metrics)
                    .await
            }
            Pin::Eip { .. } => Ok(Pinning::NotPinned(
                "\"pin\": \"eip\" is not supported by this version of pinhook".to_owned(),
            )),
        };
        let mut summary = Summary {
            pool: Some(config.pool.clone()),
            availability_zone: metrics.availability_zone.clone(),
            ..Summary::about(action, Outcome::Stale)
        };
        match pinning {
            Ok(Pinning::Stale(reason)) => Ok(self.stale(action, reason).with_pool(&config.pool)),
            Ok(Pinning::EnterWarmPool) => {
                info!(
                    "instance is launching into the warm pool; it is pinned when it leaves it for the group"
                );
                summary.outcome = Outcome::Continue;
                self.complete(
                    &action.action_ref(),
                    LifecycleResult::Continue,
                    summary,
                    "launching into the warm pool",
                )
                .await
            }
            Ok(Pinning::Pinned(eni, note)) => {
                Span::current().record("member", eni.id.as_str());
                metrics.add(metrics::PINNED, 1.0);
                metrics.set(
                    metrics::TIME_TO_PIN,
                    started.elapsed().as_millis() as f64,
                    "Milliseconds",
                );
                summary.member = Some(eni.id.to_string());
                summary.mac_address = eni.mac_address.clone();
                summary.private_ip = eni.private_ip.clone();
                summary.outcome = Outcome::Continue;
                info!(mac_address = eni.mac_address.as_deref(), "pinned");
                let note = note.unwrap_or_else(|| format!("pinned {}", eni.id));
                self.complete(
                    &action.action_ref(),
                    LifecycleResult::Continue,
                    summary,
                    note,
                )
                .await
            }
            Ok(Pinning::NotPinned(reason)) => {
                warn!(%reason, on_failure = %config.on_failure, "nothing pinned");
                metrics.add(metrics::FAILED_ACTIONS, 1.0);
                summary.outcome = config.on_failure.into();
                self.complete(&action.action_ref(), config.on_failure, summary, reason)
                    .await
            }
            Err(err) if err.is(ErrorKind::Transient) => Err(HandlerError::Transient(err)),
            Err(err) => {
                error!(error = %err, on_failure = %config.on_failure, "nothing pinned");
                metrics.add(metrics::FAILED_ACTIONS, 1.0);
                summary.outcome = config.on_failure.into();
                self.complete(
                    &action.action_ref(),
                    config.on_failure,
                    summary,
                    err.to_string(),
                )
                .await
            }
        }
    }

    /// Steps 1 to 5 for an ENI: check, idempotency, candidates, claim, wait, lease tags.
    async fn pin_eni(
        &self,
        action: &LifecycleAction,
        pool: &PoolName,
        device_index: i32,
        deadline: Deadline,
        metrics: &mut Metrics,
    ) -> Result<Pinning, AwsError> {
        let instance = &action.instance;
        // Independent reads, concurrently; nothing changes before the check has passed.
        let (by_instance, by_pool) = (
            EniFilter::AttachedTo(instance.clone()),
            EniFilter::Pool(pool.clone()),
        );
        let (described, attached, members) = tokio::join!(
            self.describe_raw(action),
            self.ec2.network_interfaces(&by_instance),
            self.ec2.network_interfaces(&by_pool),
        );
        let availability_zone = match decide::check(action, described?.as_ref()) {
            Verdict::Pin { availability_zone } => availability_zone,
            Verdict::EnterWarmPool => return Ok(Pinning::EnterWarmPool),
            Verdict::Stale { reason } => return Ok(Pinning::Stale(reason)),
            Verdict::Release => {
                return Ok(Pinning::Stale("the instance is leaving the group".into()));
            }
        };
        metrics.availability_zone = Some(availability_zone.clone());
        if let Some(held) = decide::held_eni(&attached?, pool.as_str(), instance) {
            info!(member = %held.id, "the instance already holds a member of the pool");
            return self
                .settle_eni(action, &held.id, deadline, Some("already pinned"))
                .await;
        }
        let mut members = members?;
        let mut next_heartbeat: Option<Instant> = None;
        loop {
            let candidates =
                decide::eni_candidates(&members, pool.as_str(), &availability_zone, instance);
            metrics.set(metrics::FREE_MEMBERS, candidates.len() as f64, "Count");
            for candidate in candidates {
                if deadline.remaining() <= self.settings.completion_reserve {
                    return Ok(Pinning::NotPinned(
                        "the function ran out of time before a member could be claimed".into(),
                    ));
                }
                match self
                    .ec2
                    .attach_network_interface(&candidate.id, instance, device_index)
                    .await
                {
                    Ok(_) => return self.settle_eni(action, &candidate.id, deadline, None).await,
                    Err(err)
                        if matches!(
                            err.kind,
                            ErrorKind::InUse | ErrorKind::NotFound | ErrorKind::ZoneMismatch
                        ) =>
                    {
                        metrics.add(metrics::CLAIM_CONFLICTS, 1.0);
                        info!(member = %candidate.id, error = %err, "member taken meanwhile; trying the next one");
                    }
                    Err(err) if err.is(ErrorKind::DeviceIndexTaken) => {
                        // Either a concurrent delivery of this same event won, or something
                        // else sits at that device index.
                        let attached = self
                            .ec2
                            .network_interfaces(&EniFilter::AttachedTo(instance.clone()))
                            .await?;
                        if let Some(held) = decide::held_eni(&attached, pool.as_str(), instance) {
                            return self
                                .settle_eni(
                                    action,
                                    &held.id,
                                    deadline,
                                    Some("pinned by a concurrent delivery"),
                                )
                                .await;
                        }
                        let occupant = attached
                            .iter()
                            .find(|e| {
                                e.attachment.as_ref().and_then(|a| a.device_index)
                                    == Some(device_index)
                            })
                            .map_or_else(|| "another interface".to_owned(), |e| e.id.to_string());
                        return Ok(Pinning::NotPinned(format!(
                            "device index {device_index} of {instance} is taken by {occupant}, which is not in pool {pool:?}; set \"device_index\" in the hook metadata to a free index"
                        )));
                    }
                    Err(err) => return Err(err),
                }
            }
            let holders = decide::holders_in_zone(&members, pool.as_str(), &availability_zone);
            let holder_states = if holders.is_empty() {
                Vec::new()
            } else {
                self.asg.describe_instances(&holders).await?
            };
            match decide::exhaustion(&members, pool.as_str(), &availability_zone, &holder_states) {
                Exhaustion::NoMemberInZone => {
                    metrics.add(metrics::POOL_EXHAUSTED, 1.0);
                    return Ok(Pinning::NotPinned(format!(
                        "pool {pool:?} has no member in {availability_zone}"
                    )));
                }
                Exhaustion::AllHeld { held } => {
                    metrics.add(metrics::POOL_EXHAUSTED, 1.0);
                    return Ok(Pinning::NotPinned(format!(
                        "pool {pool:?} is exhausted in {availability_zone}: all {held} members are held"
                    )));
                }
                Exhaustion::Releasing { held } => {
                    if deadline.remaining()
                        <= self.settings.completion_reserve + self.settings.poll_interval
                    {
                        metrics.add(metrics::POOL_EXHAUSTED, 1.0);
                        return Ok(Pinning::NotPinned(format!(
                            "all {held} members of pool {pool:?} in {availability_zone} are held by leaving instances, and none was released before the function's deadline"
                        )));
                    }
                    if next_heartbeat.is_none_or(|at| Instant::now() >= at) {
                        info!(
                            held,
                            "every member in the zone is held by a leaving instance; waiting for a release"
                        );
                        match self.asg.record_heartbeat(&action.action_ref()).await {
                            Ok(()) => {}
                            Err(err) if err.is(ErrorKind::NoActiveAction) => {
                                return Ok(Pinning::Stale(
                                    "the lifecycle action ended while waiting for a release".into(),
                                ));
                            }
                            Err(err) => {
                                warn!(error = %err, "lifecycle heartbeat failed; waiting on")
                            }
                        }
                        next_heartbeat = Some(Instant::now() + self.settings.heartbeat_interval);
                    }
                    tokio::time::sleep(self.settings.poll_interval).await;
                    members = self.ec2.network_interfaces(&by_pool).await?;
                }
            }
        }
    }

    /// Waits until the ENI is attached to the instance, then records the lease as tags.
    async fn settle_eni(
        &self,
        action: &LifecycleAction,
        eni: &EniId,
        deadline: Deadline,
        note: Option<&str>,
    ) -> Result<Pinning, AwsError> {
        let instance = &action.instance;
        let attached = match self.wait_for_attachment(eni, instance, deadline).await? {
            Ok(attached) => attached,
            Err(reason) => {
                self.roll_back(eni, instance).await;
                return Ok(Pinning::NotPinned(reason));
            }
        };
        let (holder, lease) = tokio::join!(
            self.ec2
                .create_tag(eni.as_str(), HOLDER_TAG, instance.as_str()),
            self.ec2
                .create_tag(instance.as_str(), INSTANCE_ENI_TAG, eni.as_str()),
        );
        let mut note = note.map(str::to_owned);
        for result in [holder, lease] {
            match result {
                Ok(()) => {}
                Err(err) if err.is(ErrorKind::Transient) => return Err(err),
                // The attachment is what pins; the tags only record it. Carry on, and say so.
                Err(err) => {
                    error!(error = %err, "could not record the lease tags; the ENI is attached regardless");
                    note = Some(format!(
                        "pinned {eni}, but the lease tags were not written: {err}"
                    ));
                }
            }
        }
        Ok(Pinning::Pinned(Box::new(attached), note))
    }

    /// Detaches an ENI whose attachment never settled, so an instance completed with
    /// `on_failure` = continue does not keep a half-attached member without a lease. Best
    /// effort: an abandoned instance releases it anyway when it terminates.
    async fn roll_back(&self, eni: &EniId, instance: &InstanceId) {
        let attachment = match self.ec2.network_interface(eni).await {
            Ok(Some(current)) if current.attachment_instance() == Some(instance) => {
                current.attachment.and_then(|a| a.id)
            }
            _ => None,
        };
        if let Some(attachment) = attachment {
            match self.ec2.detach_network_interface(&attachment).await {
                Ok(()) => {
                    info!(member = %eni, "detached the member whose attachment never settled")
                }
                Err(err) => {
                    warn!(member = %eni, error = %err, "could not detach the member whose attachment never settled")
                }
            }
        }
    }

    /// Polls until the ENI's attachment to the instance is `attached`. The inner error says why
    /// it never got there.
    async fn wait_for_attachment(
        &self,
        eni: &EniId,
        instance: &InstanceId,
        deadline: Deadline,
    ) -> Result<Result<Eni, String>, AwsError> {
        let give_up = Instant::now()
            + self.settings.attach_timeout.min(
                deadline
                    .remaining()
                    .saturating_sub(self.settings.completion_reserve),
            );
        loop {
            let Some(current) = self.ec2.network_interface(eni).await? else {
                return Ok(Err(format!("{eni} disappeared while attaching")));
            };
            match &current.attachment {
                Some(a)
                    if a.instance.as_ref() == Some(instance)
                        && a.status == AttachmentStatus::Attached =>
                {
                    return Ok(Ok(current));
                }
                Some(a) if a.instance.as_ref().is_some_and(|i| i != instance) => {
                    return Ok(Err(format!(
                        "{eni} was attached to {} instead",
                        a.instance.as_ref().map_or("-", |i| i.as_str())
                    )));
                }
                _ => {}
            }
            if Instant::now() + self.settings.poll_interval > give_up {
                return Ok(Err(format!(
                    "{eni} did not reach the attached state in time"
                )));
            }
            tokio::time::sleep(self.settings.poll_interval).await;
        }
    }

    async fn terminate(
        &self,
        action: &LifecycleAction,
        config: Result<HookConfig, crate::config::MetadataError>,
        metadata: Option<&str>,
        deadline: Deadline,
        metrics: &mut Metrics,
    ) -> Result<Summary, HandlerError> {
        let instance = &action.instance;
        let (attached_to, held_by) = (
            EniFilter::AttachedTo(instance.clone()),
            EniFilter::HeldBy(instance.clone()),
        );
        let (described, attached, tagged) = tokio::join!(
            self.describe(action),
            self.ec2.network_interfaces(&attached_to),
            self.ec2.network_interfaces(&held_by),
        );
        let described = described?;
        if let Some(d) = &described {
            metrics.availability_zone = Some(d.availability_zone.clone());
        }
        match decide::check(action, described.as_ref()) {
            Verdict::Release => {}
            Verdict::Stale { reason } => return Ok(self.stale(action, reason)),
            Verdict::Pin { .. } | Verdict::EnterWarmPool => {
                return Ok(self.stale(action, "the instance is launching, not leaving".into()));
            }
        }
        let mut summary = Summary {
            availability_zone: metrics.availability_zone.clone(),
            ..Summary::about(action, Outcome::Continue)
        };
        // Termination is never blocked: whatever goes wrong below is logged, counted and left
        // to the sweep, and the action is still completed with CONTINUE.
        let pool = match &config {
            Ok(config) => Some(config.pool.clone()),
            Err(err) => {
                error!(error = %err, "bad hook metadata; releasing by the pool it names, if any");
                HookConfig::pool_lenient(metadata)
            }
        };
        let Some(pool) = pool else {
            metrics.add(metrics::RELEASE_FAILED, 1.0);
            let reason = format!(
                "nothing released: {}",
                config.err().map(|e| e.to_string()).unwrap_or_default()
            );
            return self
                .complete(
                    &action.action_ref(),
                    LifecycleResult::Continue,
                    summary,
                    reason,
                )
                .await;
        };
        summary.pool = Some(pool.clone());
        let (attached, tagged) = match (attached, tagged) {
            (Ok(a), Ok(t)) => (a, t),
            (Err(err), _) | (_, Err(err)) => {
                error!(error = %err, "could not list the instance's interfaces; leaving the release to the sweep");
                metrics.add(metrics::RELEASE_FAILED, 1.0);
                return self
                    .complete(
                        &action.action_ref(),
                        LifecycleResult::Continue,
                        summary,
                        format!("nothing released: {err}"),
                    )
                    .await;
            }
        };
        let mut released = Vec::new();
        let mut failures = Vec::new();
        for release in decide::eni_releases(&attached, &tagged, pool.as_str(), instance) {
            let eni = match release {
                Release::Detach(eni) | Release::ClearTag(eni) => eni,
            };
            Span::current().record("member", eni.id.as_str());
            match self.release_eni(release, instance, deadline).await {
                Ok(()) => {
                    info!(member = %eni.id, "released");
                    metrics.add(metrics::RELEASED, 1.0);
                    released.push(eni.id.to_string());
                }
                Err(reason) => {
                    error!(member = %eni.id, %reason, "release failed; the sweep will retry it");
                    metrics.add(metrics::RELEASE_FAILED, 1.0);
                    failures.push(format!("{}: {reason}", eni.id));
                }
            }
        }
        if let Err(err) = self
            .ec2
            .delete_tag(instance.as_str(), INSTANCE_ENI_TAG, None)
            .await
        {
            warn!(error = %err, "could not clear the instance's lease tag");
        }
        summary.member = released.first().cloned().or_else(|| {
            failures
                .first()
                .map(|f| f.split(':').next().unwrap_or_default().to_owned())
        });
        let reason = match (released.is_empty(), failures.is_empty()) {
            (true, true) => format!("the instance held no member of pool {pool:?}"),
            (_, true) => format!("released {}", released.join(", ")),
            (_, false) => format!("release failed for {}", failures.join("; ")),
        };
        self.complete(
            &action.action_ref(),
            LifecycleResult::Continue,
            summary,
            reason,
        )
        .await
    }

    /// Detaches a pool ENI from a leaving instance and waits until it is available, then
    /// clears its holder tag (only while the tag still names this instance).
    async fn release_eni(
        &self,
        release: Release<'_>,
        instance: &InstanceId,
        deadline: Deadline,
    ) -> Result<(), String> {
        let eni = match release {
            Release::Detach(eni) => {
                if let Some(attachment) = eni.attachment.as_ref().and_then(|a| a.id.as_ref()) {
                    match self.ec2.detach_network_interface(attachment).await {
                        Ok(()) => {}
                        Err(err) if err.is(ErrorKind::NotFound) => {}
                        Err(err) => return Err(err.to_string()),
                    }
                    self.wait_for_release(&eni.id, instance, deadline).await?;
                } else {
                    return Err("AWS described the attachment without an attachment id".into());
                }
                eni
            }
            Release::ClearTag(eni) => eni,
        };
        self.ec2
            .delete_tag(eni.id.as_str(), HOLDER_TAG, Some(instance.as_str()))
            .await
            .map_err(|err| err.to_string())
    }

    async fn wait_for_release(
        &self,
        eni: &EniId,
        instance: &InstanceId,
        deadline: Deadline,
    ) -> Result<(), String> {
        let give_up = Instant::now()
            + self.settings.attach_timeout.min(
                deadline
                    .remaining()
                    .saturating_sub(self.settings.completion_reserve),
            );
        loop {
            match self.ec2.network_interface(eni).await {
                Ok(None) => return Ok(()),
                Ok(Some(current)) if current.attachment_instance() != Some(instance) => {
                    return Ok(());
                }
                Ok(Some(_)) => {}
                Err(err) if err.is(ErrorKind::Transient) => {
                    warn!(error = %err, "could not read the interface; waiting on")
                }
                Err(err) => return Err(err.to_string()),
            }
            if Instant::now() + self.settings.poll_interval > give_up {
                return Err(format!("{eni} was still attached when the wait ran out"));
            }
            tokio::time::sleep(self.settings.poll_interval).await;
        }
    }

    /// Step 1's read: the instance as Auto Scaling knows it, looking in the warm pool too when
    /// the event concerns it.
    async fn describe_raw(
        &self,
        action: &LifecycleAction,
    ) -> Result<Option<GroupInstance>, AwsError> {
        let found = self
            .asg
            .describe_instances(std::slice::from_ref(&action.instance))
            .await?;
        if let Some(instance) = found.into_iter().next() {
            return Ok(Some(instance));
        }
        let warm = [action.origin, action.destination].contains(&Some(Location::WarmPool));
        if !warm {
            return Ok(None);
        }
        let pool = self.asg.warm_pool_instances(&action.group).await?;
        Ok(pool.into_iter().find(|i| i.instance == action.instance))
    }

    /// [`Self::describe_raw`] for paths that have no fallback: a transient failure is returned
    /// for redelivery, any other failure lets the completion go ahead unchecked, which is
    /// harmless because Auto Scaling refuses a stale token.
    async fn describe(
        &self,
        action: &LifecycleAction,
    ) -> Result<Option<GroupInstance>, HandlerError> {
        match self.describe_raw(action).await {
            Ok(found) => Ok(found),
            Err(err) if err.is(ErrorKind::Transient) => Err(HandlerError::Transient(err)),
            Err(err) => {
                error!(error = %err, "could not check the instance with Auto Scaling; acting on the event as given");
                Ok(Some(GroupInstance {
                    instance: action.instance.clone(),
                    group: action.group.clone(),
                    availability_zone: String::new(),
                    state: match (action.transition, action.destination) {
                        (Transition::Launch, Some(Location::WarmPool)) => {
                            LifecycleState::WarmedPendingWait
                        }
                        (Transition::Launch, _) => LifecycleState::PendingWait,
                        (Transition::Terminate, _) => LifecycleState::TerminatingWait,
                    },
                    healthy: true,
                }))
            }
        }
    }

    fn stale(&self, action: &LifecycleAction, reason: String) -> Summary {
        info!(%reason, "stale or out-of-order event; nothing changed");
        Summary::about(action, Outcome::Stale).reason(reason)
    }

    /// Step 6: the one CompleteLifecycleAction of this event.
    async fn complete(
        &self,
        action: &ActionRef,
        result: LifecycleResult,
        mut summary: Summary,
        reason: impl Into<String>,
    ) -> Result<Summary, HandlerError> {
        summary.outcome = result.into();
        summary.reason = Some(reason.into());
        match self.asg.complete_lifecycle_action(action, result).await {
            Ok(()) => {
                info!(%result, "lifecycle action completed");
                summary.completion = Some(Completion::Completed);
                Ok(summary)
            }
            Err(err) if err.is(ErrorKind::NoActiveAction) => {
                info!(%result, "lifecycle action was already completed or timed out");
                summary.completion = Some(Completion::AlreadyCompleted);
                Ok(summary)
            }
            Err(source) => {
                error!(error = %source, %result, "could not complete the lifecycle action");
                Err(HandlerError::Complete {
                    instance: action.instance.clone(),
                    result,
                    source,
                })
            }
        }
    }
}

impl Summary {
    fn with_pool(mut self, pool: &PoolName) -> Self {
        self.pool = Some(pool.clone());
        self
    }
}

/// Which transition an instance in this state is waiting on.
fn waiting_for(state: &LifecycleState) -> Option<Transition> {
    match state {
        LifecycleState::PendingWait | LifecycleState::WarmedPendingWait => Some(Transition::Launch),
        LifecycleState::TerminatingWait | LifecycleState::WarmedTerminatingWait => {
            Some(Transition::Terminate)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_lambda_deadline_is_read_as_a_date_and_an_emulators_as_a_duration() {
        let in_a_minute = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
            + 60_000;
        let remaining = Deadline::from_epoch_millis(in_a_minute).remaining();
        assert!(
            remaining > Duration::from_secs(58) && remaining <= Duration::from_secs(60),
            "{remaining:?}"
        );
        assert_eq!(
            Deadline::from_epoch_millis(600_000).remaining(),
            Duration::from_secs(600)
        );
        assert_eq!(
            Deadline::from_epoch_millis(u64::from(u32::MAX)).remaining(),
            Duration::from_secs(900)
        );
        assert_eq!(
            Deadline::from_epoch_millis(1_500_000_000_000).remaining(),
            Duration::ZERO
        );
    }
}
