//! The sweep, top to bottom: read pinhook's hooks on the served groups, then pool by pool read
//! the members and their holders, plan (`decide::sweep`), repair through the same doors a
//! launch and a termination use (the claim engine, the lease, the release), and report. It
//! runs over metered adapters: a budget of calls per run, and in a dry run no call that changes
//! anything.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::time::Instant;
use tracing::{error, info, warn};

use super::instance::pin_without_action;
use super::lease;
use super::outcome::{Handled, Outcome, Summary};
use super::release::release_holder;
use crate::aws::{
    AddressFilter, AutoScalingApi, AwsError, Ec2Api, EniFilter, ErrorKind, Meter, Metered,
};
use crate::config::{
    DeviceIndex, HOLDER_TAG, IDLE_SINCE_TAG, INSTANCE_EIP_TAG, INSTANCE_ENI_TAG, Pin, PinKind,
    Takeover,
};
use crate::context::{CallWindow, Ctx, Deadline};
use crate::decide::sweep::{
    self, Finding, FindingKind, Holders, IdleMark, PoolPlan, PoolSpec, Repair, Severity,
};
use crate::holders::holder_states;
use crate::member::{Binding, EipKind, EniKind, MemberKind};
use crate::metrics::{self, Metrics};
use crate::model::{Group, PoolMember};

/// What to sweep, and whether to change anything.
#[derive(Debug, Clone, Default)]
pub struct SweepOptions {
    pub dry_run: bool,
    /// The groups to read; the function's `PINHOOK_GROUPS` when empty.
    pub groups: Vec<String>,
    /// Only this pool.
    pub pool: Option<String>,
}

/// A repair carried out, or tried, and what came of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepairResult {
    #[serde(flatten)]
    pub repair: Repair,
    pub ok: bool,
    pub result: String,
}

/// What a sweep saw and did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    pub dry_run: bool,
    pub groups: Vec<String>,
    pub pools: Vec<PoolPlan>,
    /// About the hooks and groups; each pool's own are in `pools`.
    pub findings: Vec<Finding>,
    pub done: Vec<RepairResult>,
    /// Why the sweep stopped before the end, if it did: the next one goes on from the state it
    /// leaves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    pub calls: u32,
}

impl SweepReport {
    /// Every finding, the hooks' and the pools'.
    pub fn all_findings(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .chain(self.pools.iter().flat_map(|p| &p.findings))
    }

    /// One line: what the sweep covered, did and found.
    pub fn headline(&self) -> String {
        let failed = self.done.iter().filter(|d| !d.ok).count();
        let work = match self.dry_run {
            true => format!(
                "{} repairs to do (dry run: nothing changed)",
                self.repairs().count()
            ),
            false => format!("{} repairs done, {failed} failed", self.done.len() - failed),
        };
        let stopped = self
            .stopped
            .as_deref()
            .map(|s| format!("; stopped early: {s}"))
            .unwrap_or_default();
        let tagged: usize = self.pools.iter().map(|p| p.instances.len()).sum();
        let tagged = match tagged {
            0 => String::new(),
            n => format!(" and {n} tagged instances"),
        };
        format!(
            "{} pools of {} groups{tagged}: {work}, {} findings, {} calls{stopped}",
            self.pools.len(),
            self.groups.len(),
            self.all_findings().count(),
            self.calls
        )
    }

    /// The repairs the sweep found needed (all of them, in a dry run).
    pub fn repairs(&self) -> impl Iterator<Item = &Repair> {
        self.pools.iter().flat_map(|p| &p.repairs)
    }
}

/// The schedule's sweep of the groups in `PINHOOK_GROUPS`, and of the instances without a
/// group that their tags make pinhook's.
pub(super) async fn scheduled<A: AutoScalingApi, E: Ec2Api>(
    ctx: Ctx<'_, A, E>,
    deadline: Deadline,
) -> Handled {
    let (report, metrics) = match sweep(ctx, &SweepOptions::default(), deadline).await {
        Ok(swept) => swept,
        Err(err) if err.is_transient() => {
            return Handled {
                result: Err(super::HandlerError::Transient(err)),
                metrics: Vec::new(),
            };
        }
        Err(err) => {
            error!(error = %err, "the sweep could not read what it sweeps");
            return Handled::answer(
                Summary::new(Outcome::Swept).reason(format!("the sweep failed: {err}")),
            );
        }
    };
    if report.groups.is_empty() && report.pools.is_empty() && report.findings.is_empty() {
        let reason = "scheduled sweep: PINHOOK_GROUPS names no group, and no instance without a group is tagged pinhook:pin";
        warn!("{reason}: nothing to sweep");
        return Handled {
            result: Ok(Summary::new(Outcome::Ignored).reason(reason)),
            metrics,
        };
    }
    let reason = format!("swept {}", report.headline());
    info!(%reason, "sweep done");
    Handled {
        result: Ok(Summary {
            sweep: Some(Box::new(report)),
            ..Summary::new(Outcome::Swept).reason(reason)
        }),
        metrics,
    }
}

/// Sweeps every pool of the served groups (or, with `dry_run`, only reports what it would do),
/// until the deadline less the completion reserve, within the call budget; the report, and
/// each pool's figures per Availability Zone.
pub(crate) async fn sweep<A: AutoScalingApi, E: Ec2Api>(
    ctx: Ctx<'_, A, E>,
    options: &SweepOptions,
    deadline: Deadline,
) -> Result<(SweepReport, Vec<Metrics>), AwsError> {
    let meter = Meter::new(ctx.settings.sweep_max_calls, options.dry_run);
    let (asg, ec2) = (Metered::new(ctx.asg, &meter), Metered::new(ctx.ec2, &meter));
    let metered = Ctx {
        asg: &asg,
        ec2: &ec2,
        settings: ctx.settings,
    };
    let window = CallWindow {
        end: deadline.keeping(ctx.settings.completion_reserve),
        attempt: ctx.settings.attempt_timeout,
    };
    let mut report = window
        .bound(sweep_within(metered, options, deadline, &meter))
        .await?;
    report.calls = meter.calls();
    let metrics = report.pools.iter().flat_map(pool_metrics).collect();
    Ok((report, metrics))
}

async fn sweep_within<A: AutoScalingApi, E: Ec2Api>(
    ctx: Ctx<'_, A, E>,
    options: &SweepOptions,
    deadline: Deadline,
    meter: &Meter,
) -> Result<SweepReport, AwsError> {
    let end = deadline.keeping(ctx.settings.completion_reserve);
    let names = match options.groups.is_empty() {
        true => ctx.settings.groups.clone(),
        false => options.groups.clone(),
    };
    if Instant::now() >= end {
        return Ok(SweepReport {
            dry_run: options.dry_run,
            groups: names,
            pools: Vec::new(),
            findings: Vec::new(),
            done: Vec::new(),
            stopped: Some("the function's deadline came before the sweep could start".into()),
            calls: 0,
        });
    }
    // The groups, and the instances without a group that their tags make pinhook's, side by
    // side; then each group's hooks, concurrently.
    // No names would ask Auto Scaling for every group of the account.
    let groups = async {
        match names.is_empty() {
            true => Ok(Vec::new()),
            false => ctx.asg.groups(&names).await,
        }
    };
    let (groups, tagged) = tokio::join!(groups, ctx.ec2.tagged_instances());
    let (groups, tagged) = (groups?, tagged?);
    let hooks: Vec<_> =
        futures_util::future::try_join_all(groups.iter().map(|g| ctx.asg.hooks(&g.name)))
            .await?
            .into_iter()
            .flatten()
            .collect();
    let (mut specs, findings) = sweep::pools(&names, &groups, &hooks, &tagged);
    if let Some(only) = &options.pool {
        specs.retain(|s| s.pool.as_str() == only);
    }
    // Each run starts at another pool, so a sweep that keeps running out of time or calls
    // still reaches every pool in turn.
    if !specs.is_empty() && !options.dry_run {
        let minute = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() / 60)
            .unwrap_or_default();
        let start = (minute % specs.len() as u64) as usize;
        specs.rotate_left(start);
    }
    let mut report = SweepReport {
        dry_run: options.dry_run,
        groups: names,
        pools: Vec::new(),
        findings,
        done: Vec::new(),
        stopped: None,
        calls: 0,
    };
    for spec in &specs {
        if let Some(stop) = must_stop(end, meter, 3, "reading pool", spec) {
            report.stopped = Some(stop);
            break;
        }
        let plan = match read_pool(ctx, spec, &groups).await {
            Ok(plan) => plan,
            Err(err) if err.is(ErrorKind::NotSent) => {
                report.stopped = Some(err.to_string());
                break;
            }
            // One pool that cannot be read does not keep the others from their sweep.
            Err(err) => {
                warn!(pool = spec.pool.as_str(), error = %err, "could not read the pool");
                report.findings.push(
                    Finding::new(
                        Severity::Error,
                        FindingKind::UnreadablePool,
                        format!(
                            "pool {:?} could not be read, so it was not swept: {err}",
                            spec.pool.as_str()
                        ),
                    )
                    .of_pool(spec.pool.as_str()),
                );
                continue;
            }
        };
        if !options.dry_run {
            if let Some(stop) = repair_pool(ctx, spec, &plan, end, meter, &mut report).await {
                report.stopped = Some(stop);
                report.pools.push(plan);
                break;
            }
        }
        report.pools.push(plan);
    }
    if let Some(stopped) = &report.stopped {
        warn!(%stopped, "the sweep stopped early; the next one goes on");
    }
    Ok(report)
}

/// Reads a pool's members and their holders, and plans the pool.
async fn read_pool<A: AutoScalingApi, E: Ec2Api>(
    ctx: Ctx<'_, A, E>,
    spec: &PoolSpec,
    groups: &[Group],
) -> Result<PoolPlan, AwsError> {
    match spec.pin {
        PinKind::Eni => {
            let filter = EniFilter::pool(&spec.pool);
            let members = ctx.ec2.network_interfaces(&filter).await?;
            plan_pool(ctx, spec, groups, &members).await
        }
        PinKind::Eip => {
            let filter = AddressFilter::Pool(spec.pool.clone());
            let members = ctx.ec2.addresses(&filter).await?;
            plan_pool(ctx, spec, groups, &members).await
        }
    }
}

/// Reads the holders of a pool's members that are no served group's instances, and plans the
/// pool.
async fn plan_pool<A: AutoScalingApi, E: Ec2Api, M: PoolMember>(
    ctx: Ctx<'_, A, E>,
    spec: &PoolSpec,
    groups: &[Group],
    members: &[M],
) -> Result<PoolPlan, AwsError> {
    let outside = Holders::outside_of(groups, spec, members);
    let outside = holder_states(ctx, &outside).await?;
    let holders = Holders {
        groups,
        outside: &outside,
    };
    Ok(sweep::plan(
        spec,
        members,
        &holders,
        SystemTime::now(),
        ctx.settings.idle_address_after,
    ))
}

/// Carries out a pool's plan: the idle marks, then releases and tags, then pins (which may
/// use what was released). `Some` reason when the sweep must stop.
async fn repair_pool<A: AutoScalingApi, E: Ec2Api>(
    ctx: Ctx<'_, A, E>,
    spec: &PoolSpec,
    plan: &PoolPlan,
    end: Instant,
    meter: &Meter,
    report: &mut SweepReport,
) -> Option<String> {
    let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    for mark in &plan.idle_marks {
        let result = match mark {
            IdleMark::Since(member) => ctx.ec2.create_tag(member, IDLE_SINCE_TAG, &now).await,
            IdleMark::Clear(member) => ctx.ec2.delete_tag(member, IDLE_SINCE_TAG, None).await,
        };
        if let Err(err) = result {
            warn!(error = %err, "could not update the idle mark of an Elastic IP");
        }
    }
    let (pins, others): (Vec<&Repair>, Vec<&Repair>) = plan
        .repairs
        .iter()
        .partition(|r| matches!(r, Repair::Pin { .. }));
    for repair in others.into_iter().chain(pins) {
        if let Some(stop) = must_stop(end, meter, repair.cost(), "repairing pool", spec) {
            return Some(stop);
        }
        let result = tokio::time::timeout_at(end, repair_one(ctx, spec, repair, end)).await;
        let (ok, result) = match result {
            Ok(Ok(done)) => (true, done),
            Ok(Err(err)) => (false, err),
            Err(_) => (false, "the sweep's deadline came first".into()),
        };
        match ok {
            true => info!(repair = %repair, %result, "repaired"),
            false => warn!(repair = %repair, %result, "repair failed; the next sweep tries again"),
        }
        report.done.push(RepairResult {
            repair: repair.clone(),
            ok,
            result,
        });
    }
    None
}

/// Why the sweep must stop before work that takes `cost` calls, if it must: the deadline
/// came, or the budget no longer covers it.
fn must_stop(
    end: Instant,
    meter: &Meter,
    cost: u32,
    doing: &str,
    spec: &PoolSpec,
) -> Option<String> {
    let pool = spec.pool.as_str();
    if Instant::now() >= end {
        return Some(format!(
            "the function's deadline came while {doing} {pool:?}"
        ));
    }
    (meter.left() < cost).then(|| {
        format!(
            "the budget of {} calls (PINHOOK_SWEEP_MAX_CALLS) was spent while {doing} {pool:?}",
            meter.limit()
        )
    })
}

/// One repair; the text says what came of it.
async fn repair_one<A: AutoScalingApi, E: Ec2Api>(
    ctx: Ctx<'_, A, E>,
    spec: &PoolSpec,
    repair: &Repair,
    until: Instant,
) -> Result<String, String> {
    let pool = &spec.pool;
    match repair {
        Repair::ClearTag {
            member, instance, ..
        } => ctx
            .ec2
            .delete_tag(member, HOLDER_TAG, Some(instance))
            .await
            .map(|()| format!("cleared the holder tag of {member}"))
            .map_err(|e| e.to_string()),
        Repair::RecordLease {
            member, instance, ..
        } => {
            let instance_tag = match spec.pin {
                PinKind::Eni => INSTANCE_ENI_TAG,
                PinKind::Eip => INSTANCE_EIP_TAG,
            };
            lease::record(ctx.ec2, member, instance, instance_tag)
                .await
                .map(|note| note.unwrap_or_else(|| format!("recorded the lease of {member}")))
                .map_err(|e| e.to_string())
        }
        Repair::Release { instance, .. } => {
            let on = Binding::new(ctx, pool, instance);
            // The device index plays no part in a release.
            let index = DeviceIndex::PRIMARY;
            match spec.pin {
                PinKind::Eni => release_holder(ctx, EniKind::new(on, index), until, true).await,
                PinKind::Eip => release_holder(ctx, EipKind::new(on, index), until, true).await,
            }
            .outcome(pool)
        }
        Repair::Pin {
            group,
            instance,
            availability_zone,
            ..
        } => {
            let config = match group {
                Some(group) => spec
                    .groups
                    .get(group)
                    .ok_or_else(|| format!("group {group:?} has no pinhook hook for the pool"))?,
                None => match spec.tagged(instance) {
                    Some(tagged) => &tagged.config,
                    None => return Err(format!("{instance} is not tagged for the pool")),
                },
            };
            let group = group.as_deref();
            let on = Binding::new(ctx, pool, instance);
            match config.pin {
                Pin::Eni { device_index } => {
                    let kind = EniKind::new(on, device_index);
                    pin(ctx, kind, group, availability_zone, until).await
                }
                Pin::Eip { interface, .. } => {
                    let kind = EipKind::new(on, interface);
                    pin(ctx, kind, group, availability_zone, until).await
                }
            }
        }
    }
}

/// Pins a member to an instance in service through the claim engine, with no lifecycle action
/// and no takeover; then records the lease.
async fn pin<A: AutoScalingApi, E: Ec2Api, K: MemberKind>(
    ctx: Ctx<'_, A, E>,
    kind: K,
    group: Option<&str>,
    zone: &str,
    until: Instant,
) -> Result<String, String> {
    let pinned = pin_without_action(ctx, kind, group, zone, Takeover::Off, until)
        .await
        .map_err(|e| e.to_string())?;
    pinned
        .result
        .map(|(member, note)| note.unwrap_or_else(|| format!("pinned {}", member.id)))
}

/// The pool's figures as EMF, per Availability Zone (per pool for Elastic IPs): every sweep
/// emits them, so an alarm has a value when nothing launches.
fn pool_metrics(plan: &PoolPlan) -> Vec<Metrics> {
    plan.zones
        .iter()
        .map(|zone| {
            let mut m = Metrics {
                pool: Some(plan.pool.clone()),
                availability_zone: zone.availability_zone.clone(),
                ..Metrics::default()
            };
            m.set(metrics::FREE_MEMBERS, f64::from(zone.free), "Count");
            m.set(metrics::DRIFT, f64::from(zone.drift), "Count");
            m.set(
                metrics::IDLE_ADDRESSES,
                f64::from(zone.idle_addresses),
                "Count",
            );
            m.set(metrics::SPARE_MEMBERS, zone.spare as f64, "Count");
            m
        })
        .collect()
}
