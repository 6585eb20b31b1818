//! The handler: one event in, at most one `CompleteLifecycleAction`, one summary out. It runs
//! the steps of DESIGN.md over the adapters and leaves every choice to `decide`.

mod eip;
mod eni;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;
use tracing::{Instrument, Span, error, field, info, info_span, warn};

use crate::aws::{AddressFilter, AutoScalingApi, AwsError, Ec2Api, EniFilter, ErrorKind};
use crate::config::{
    HOLDER_TAG, HookConfig, INSTANCE_EIP_TAG, INSTANCE_ENI_TAG, Pin, PoolName, Settings,
};
use crate::decide::{self, AddressRelease, Exhaustion, Holding, Release, Verdict};
use crate::event::{Incoming, LifecycleAction};
use crate::metrics::{self, Metrics, MetricsSink};
use crate::model::{
    ActionRef, GroupInstance, InstanceId, LifecycleResult, LifecycleState, Location, Transition,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_ip: Option<String>,
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
            public_ip: None,
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

/// Claims tried on one read of the pool. After that many lost races the read is stale: a
/// fresh one avoids a storm of claims on members that are gone, when a burst of launches
/// empties the pool.
const CLAIMS_PER_PASS: usize = 3;

/// The note a pinning carries when a concurrent delivery of the same event won the claim.
const CONCURRENT_WIN: &str = "pinned by a concurrent delivery";

/// What was pinned, as the summary reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Member {
    id: String,
    mac_address: Option<String>,
    private_ip: Option<String>,
    public_ip: Option<String>,
}

/// How one attempt to pin ended, before the lifecycle action is completed.
enum Pinning {
    Pinned(Box<Member>, Option<String>),
    NotPinned(String),
    Stale(String),
    EnterWarmPool,
}

/// What a claim loop remembers between passes: how often it lost every race, and when the
/// next lifecycle heartbeat is due while it waits for a release.
#[derive(Debug, Default)]
struct Waiting {
    contended: u32,
    next_heartbeat: Option<Instant>,
}

impl Waiting {
    /// After a pass in which no candidate was won: `None` to claim again (after a short pause,
    /// or a wait for a release), or how the attempt ends. `exhausted` words the end when the
    /// pool has no member here (`None`) or all of them are held (`Some(held)`).
    #[allow(clippy::too_many_arguments)]
    async fn after_pass<A: AutoScalingApi, E: Ec2Api>(
        &mut self,
        app: &Pinhook<A, E>,
        action: &LifecycleAction,
        deadline: Deadline,
        exhaustion: Exhaustion,
        where_: &str,
        metrics: &mut Metrics,
        exhausted: impl FnOnce(Option<usize>) -> String,
    ) -> Result<Option<Pinning>, AwsError> {
        let end = match exhaustion {
            Exhaustion::NoMember => Some(Pinning::NotPinned(exhausted(None))),
            Exhaustion::AllHeld { held } => Some(Pinning::NotPinned(exhausted(Some(held)))),
            Exhaustion::Contended { free, members } => {
                return Ok(self.contended(app, free, members, where_).await);
            }
            Exhaustion::Releasing { held } => {
                self.releasing(app, action, deadline, held, where_).await?
            }
        };
        if matches!(end, Some(Pinning::NotPinned(_))) {
            metrics.add(metrics::POOL_EXHAUSTED, 1.0);
        }
        Ok(end)
    }

    /// Members are free again after the candidates were lost to concurrent claims: claim again
    /// after a short random pause, so that the claimers fall out of step. Every lost race means
    /// another claimer won a member, so a pool of `members` can beat one claimer only so many
    /// times before it is all held; past that, something else is wrong.
    async fn contended<A: AutoScalingApi, E: Ec2Api>(
        &mut self,
        app: &Pinhook<A, E>,
        free: usize,
        members: usize,
        where_: &str,
    ) -> Option<Pinning> {
        self.contended += 1;
        let limit = members as u32 + 5;
        if self.contended > limit {
            return Some(Pinning::NotPinned(format!(
                "lost every claim on {where_} {limit} times in a row, with {free} members still listed as free"
            )));
        }
        let pause = app.settings.poll_interval.as_millis() as u64 / 2;
        tokio::time::sleep(Duration::from_millis(fastrand::u64(0..=pause))).await;
        None
    }

    /// Every member is held by a leaving instance: wait for a release, sending lifecycle
    /// heartbeats, until the deadline.
    async fn releasing<A: AutoScalingApi, E: Ec2Api>(
        &mut self,
        app: &Pinhook<A, E>,
        action: &LifecycleAction,
        deadline: Deadline,
        held: usize,
        where_: &str,
    ) -> Result<Option<Pinning>, AwsError> {
        let settings = &app.settings;
        if deadline.remaining() <= settings.completion_reserve + settings.poll_interval {
            return Ok(Some(Pinning::NotPinned(format!(
                "all {held} members of {where_} are held by leaving instances, and none was released before the function's deadline"
            ))));
        }
        if self.next_heartbeat.is_none_or(|at| Instant::now() >= at) {
            info!(
                held,
                "every member is held by a leaving instance; waiting for a release"
            );
            match app.asg.record_heartbeat(&action.action_ref()).await {
                Ok(()) => {}
                Err(err) if err.is(ErrorKind::NoActiveAction) => {
                    return Ok(Some(Pinning::Stale(
                        "the lifecycle action ended while waiting for a release".into(),
                    )));
                }
                Err(err) => warn!(error = %err, "lifecycle heartbeat failed; waiting on"),
            }
            self.next_heartbeat = Some(Instant::now() + settings.heartbeat_interval);
        }
        tokio::time::sleep(settings.poll_interval).await;
        Ok(None)
    }
}

/// pinhook, over an Auto Scaling and an EC2 adapter.
pub struct Pinhook<A, E> {
    asg: A,
    ec2: E,
    settings: Settings,
    metrics: MetricsSink,
}

impl<A: AutoScalingApi, E: Ec2Api> Pinhook<A, E> {
    pub fn new(asg: A, ec2: E, settings: Settings) -> Self {
        Self {
            asg,
            ec2,
            settings,
            metrics: MetricsSink::default(),
        }
    }

    /// Sends the metrics elsewhere than standard output.
    pub fn with_metrics(mut self, sink: MetricsSink) -> Self {
        self.metrics = sink;
        self
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
                        deadline,
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
        self.metrics
            .record(&metrics, &self.settings.metrics_namespace);
        result
    }

    /// A lifecycle event that cannot be acted on: complete it with the failure result if it
    /// still names a waiting lifecycle action, so nothing is left waiting for its timeout.
    async fn malformed(
        &self,
        deadline: Deadline,
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
        self.complete(&action, deadline, result, summary, error)
            .await
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
                            &action.action_ref(), deadline,
                            LifecycleResult::Continue,
                            Summary::about(action, Outcome::Continue),
                            format!("launching into the warm pool; the hook metadata must be fixed before it leaves: {err}"),
                        )
                        .await
                    }
                    Verdict::Pin { .. } | Verdict::Release => {
                        metrics.add(metrics::FAILED_ACTIONS, 1.0);
                        self.complete(
                            &action.action_ref(), deadline,
                            on_failure,
                            Summary::about(action, on_failure.into()),
                            err.to_string(),
                        )
                        .await
                    }
                };
            }
        };
        // Pinning may take until the time kept back for the completion; after that, whatever
        // was under way is dropped and the action completed with `on_failure`.
        let budget = deadline
            .remaining()
            .saturating_sub(self.settings.completion_reserve);
        let pinning = async {
            match config.pin {
                Pin::Eni { device_index } => {
                    self.pin_eni(action, &config.pool, device_index, deadline, metrics)
                        .await
                }
                Pin::Eip {
                    interface,
                    takeover,
                } => {
                    self.pin_eip(action, &config.pool, interface, takeover, deadline, metrics)
                        .await
                }
            }
        };
        let pinning = tokio::time::timeout(budget, pinning)
            .await
            .unwrap_or_else(|_| {
                Ok(Pinning::NotPinned(
                    "the function's deadline came before a member could be pinned".into(),
                ))
            });
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
                    deadline,
                    LifecycleResult::Continue,
                    summary,
                    "launching into the warm pool",
                )
                .await
            }
            Ok(Pinning::Pinned(member, note)) => {
                Span::current().record("member", member.id.as_str());
                metrics.add(metrics::PINNED, 1.0);
                metrics.set(
                    metrics::TIME_TO_PIN,
                    started.elapsed().as_millis() as f64,
                    "Milliseconds",
                );
                info!(
                    mac_address = member.mac_address.as_deref(),
                    public_ip = member.public_ip.as_deref(),
                    "pinned"
                );
                let note = note.unwrap_or_else(|| format!("pinned {}", member.id));
                summary.member = Some(member.id);
                summary.mac_address = member.mac_address;
                summary.private_ip = member.private_ip;
                summary.public_ip = member.public_ip;
                summary.outcome = Outcome::Continue;
                self.complete(
                    &action.action_ref(),
                    deadline,
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
                self.complete(
                    &action.action_ref(),
                    deadline,
                    config.on_failure,
                    summary,
                    reason,
                )
                .await
            }
            Err(err) if err.is(ErrorKind::Transient) => Err(HandlerError::Transient(err)),
            Err(err) => {
                error!(error = %err, on_failure = %config.on_failure, "nothing pinned");
                metrics.add(metrics::FAILED_ACTIONS, 1.0);
                summary.outcome = config.on_failure.into();
                self.complete(
                    &action.action_ref(),
                    deadline,
                    config.on_failure,
                    summary,
                    err.to_string(),
                )
                .await
            }
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
        // With metadata too broken to say what the hook pins, release both kinds: each release
        // is limited to members of the named pool held by this instance.
        let (pool, enis, eips) = match &config {
            Ok(config) => (
                Some(config.pool.clone()),
                matches!(config.pin, Pin::Eni { .. }),
                matches!(config.pin, Pin::Eip { .. }),
            ),
            Err(err) => {
                error!(error = %err, "bad hook metadata; releasing by the pool it names, if any");
                (HookConfig::pool_lenient(metadata), true, true)
            }
        };
        let attached_to = EniFilter::AttachedTo(instance.clone());
        let held_by = EniFilter::HeldBy(instance.clone());
        let in_pool = pool.clone().map(AddressFilter::Pool);
        let (described, attached, tagged, addresses) = tokio::join!(
            self.describe(action),
            self.ec2.network_interfaces(&attached_to),
            async {
                match enis {
                    true => Some(self.ec2.network_interfaces(&held_by).await),
                    false => None,
                }
            },
            async {
                match (&in_pool, eips) {
                    (Some(filter), true) => Some(self.ec2.addresses(filter).await),
                    _ => None,
                }
            },
        );
        let described = described?;
        if let Some(d) = &described {
            metrics.availability_zone =
                Some(d.availability_zone.clone()).filter(|az| !az.is_empty());
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
        let Some(pool) = pool else {
            metrics.add(metrics::RELEASE_FAILED, 1.0);
            let reason = format!(
                "nothing released: {}",
                config.err().map(|e| e.to_string()).unwrap_or_default()
            );
            return self
                .complete(
                    &action.action_ref(),
                    deadline,
                    LifecycleResult::Continue,
                    summary,
                    reason,
                )
                .await;
        };
        summary.pool = Some(pool.clone());
        let mut released = Vec::new();
        let mut failures = Vec::new();
        let mut record =
            |id: String, result: Result<(), String>, metrics: &mut Metrics| match result {
                Ok(()) => {
                    info!(member = %id, "released");
                    metrics.add(metrics::RELEASED, 1.0);
                    released.push(id);
                }
                Err(reason) => {
                    error!(member = %id, %reason, "release failed; the sweep will retry it");
                    metrics.add(metrics::RELEASE_FAILED, 1.0);
                    failures.push(format!("{id}: {reason}"));
                }
            };
        let attached = match attached {
            Ok(attached) => attached,
            Err(err) => {
                record(
                    instance.to_string(),
                    Err(format!("listing its interfaces failed: {err}")),
                    metrics,
                );
                Vec::new()
            }
        };
        match tagged {
            Some(Ok(tagged)) => {
                for release in decide::eni_releases(&attached, &tagged, pool.as_str(), instance) {
                    let (Release::Detach(eni) | Release::ClearTag(eni)) = release;
                    Span::current().record("member", eni.id.as_str());
                    let result = self.release_eni(release, instance, deadline).await;
                    record(eni.id.to_string(), result, metrics);
                }
                self.clear_instance_tag(instance, INSTANCE_ENI_TAG).await;
            }
            Some(Err(err)) => record(
                pool.to_string(),
                Err(format!("listing the pool failed: {err}")),
                metrics,
            ),
            None => {}
        }
        match addresses {
            Some(Ok(addresses)) => {
                for release in
                    decide::address_releases(&addresses, pool.as_str(), instance, &attached)
                {
                    let (AddressRelease::Disassociate(address) | AddressRelease::ClearTag(address)) =
                        release;
                    Span::current().record("member", address.allocation.as_str());
                    let result = self.release_address(release, instance).await;
                    record(address.allocation.to_string(), result, metrics);
                }
                self.clear_instance_tag(instance, INSTANCE_EIP_TAG).await;
            }
            Some(Err(err)) => record(
                pool.to_string(),
                Err(format!("listing the pool failed: {err}")),
                metrics,
            ),
            None => {}
        }
        summary.member = released.first().cloned();
        let reason = match (released.is_empty(), failures.is_empty()) {
            (true, true) => format!("the instance held no member of pool {pool:?}"),
            (_, true) => format!("released {}", released.join(", ")),
            (_, false) => format!("release failed for {}", failures.join("; ")),
        };
        self.complete(
            &action.action_ref(),
            deadline,
            LifecycleResult::Continue,
            summary,
            reason,
        )
        .await
    }

    async fn clear_instance_tag(&self, instance: &InstanceId, key: &str) {
        if let Err(err) = self.ec2.delete_tag(instance.as_str(), key, None).await {
            warn!(error = %err, tag = key, "could not clear the instance's lease tag");
        }
    }

    /// The Auto Scaling view of the instances holding members, when the decision needs it.
    async fn holder_states(
        &self,
        holdings: &[Holding<'_>],
    ) -> Result<Vec<GroupInstance>, AwsError> {
        let holders = decide::holders_to_check(holdings);
        if holders.is_empty() {
            return Ok(Vec::new());
        }
        self.asg.describe_instances(&holders).await
    }

    /// Until when a wait for AWS may last: the attach timeout, but never into the time kept
    /// back for completing the lifecycle action.
    fn wait_limit(&self, deadline: Deadline) -> Instant {
        Instant::now()
            + self.settings.attach_timeout.min(
                deadline
                    .remaining()
                    .saturating_sub(self.settings.completion_reserve),
            )
    }

    /// Step 5: the holder tag on the member and the lease tag on the instance. The attachment
    /// or association is what pins; the tags only record it, so a refusal is reported in the
    /// summary rather than failing the launch. A transient failure is returned for redelivery.
    async fn record_lease(
        &self,
        member: &str,
        instance: &InstanceId,
        instance_tag: &str,
        note: Option<&str>,
    ) -> Result<Option<String>, AwsError> {
        let (holder, lease) = tokio::join!(
            self.ec2.create_tag(member, HOLDER_TAG, instance.as_str()),
            self.ec2.create_tag(instance.as_str(), instance_tag, member),
        );
        let mut note = note.map(str::to_owned);
        for result in [holder, lease] {
            match result {
                Ok(()) => {}
                Err(err) if err.is(ErrorKind::Transient) => return Err(err),
                Err(err) => {
                    error!(error = %err, "could not record the lease tags; the member is pinned regardless");
                    note = Some(format!(
                        "pinned {member}, but the lease tags were not written: {err}"
                    ));
                }
            }
        }
        Ok(note)
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
        deadline: Deadline,
        result: LifecycleResult,
        mut summary: Summary,
        reason: impl Into<String>,
    ) -> Result<Summary, HandlerError> {
        summary.outcome = result.into();
        summary.reason = Some(reason.into());
        // Bounded by Lambda's deadline: past it, the runtime would kill the invocation anyway,
        // and an error lets the event be delivered again.
        let completion = tokio::time::timeout(
            deadline.remaining(),
            self.asg.complete_lifecycle_action(action, result),
        )
        .await
        .unwrap_or_else(|_| {
            Err(AwsError::transient(
                "autoscaling:CompleteLifecycleAction",
                "no answer before the function's deadline".into(),
            ))
        });
        match completion {
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

/// Step 1's verdict for a launch: the AZ to pin in, or how the attempt ends.
fn zone_to_pin(
    action: &LifecycleAction,
    described: Option<&GroupInstance>,
) -> Result<String, Pinning> {
    match decide::check(action, described) {
        Verdict::Pin { availability_zone } => Ok(availability_zone),
        Verdict::EnterWarmPool => Err(Pinning::EnterWarmPool),
        Verdict::Stale { reason } => Err(Pinning::Stale(reason)),
        Verdict::Release => Err(Pinning::Stale("the instance is leaving the group".into())),
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
