//! The sweep, top to bottom: read pinhook's hooks on the served groups, then pool by pool read
//! the members and their holders, plan (`sweep.rs`), repair, and report. It runs over metered
//! adapters: a budget of calls per run, and in a dry run no call that changes anything.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::time::Instant;
use tracing::{info, warn};

use super::claim::{Budget, Claim, Pinning, Subject};
use super::{Deadline, Pinhook};
use crate::aws::{
    AddressFilter, AutoScalingApi, AwsError, Ec2Api, EniFilter, ErrorKind, Meter, Metered,
};
use crate::config::{HOLDER_TAG, IDLE_SINCE_TAG, INSTANCE_EIP_TAG, INSTANCE_ENI_TAG, Pin};
use crate::member::{EipKind, EniKind, MemberKind};
use crate::metrics::{self, Metrics};
use crate::model::{InstanceId, PoolMember};
use crate::sweep::{self, Finding, Holders, IdleMark, PoolPlan, PoolSpec, Repair, Severity};

/// What to sweep, and whether to change anything.
#[derive(Debug, Clone, Default)]
pub struct SweepOptions {
    pub dry_run: bool,
    /// The groups to read; the function's `PINHOOK_GROUPS` when empty.
    pub groups: Vec<String>,
    /// Only this pool.
    pub pool: Option<String>,
}

/// A repair carried out, or tried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Done {
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
    pub done: Vec<Done>,
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
        format!(
            "{} pools of {} groups: {work}, {} findings, {} calls{stopped}",
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

impl<A: AutoScalingApi, E: Ec2Api> Pinhook<A, E> {
    /// Sweeps every pool of the served groups (or, with `dry_run`, only reports what it would
    /// do), until the deadline less the completion reserve, within the call budget.
    pub async fn sweep(
        &self,
        options: &SweepOptions,
        deadline: Deadline,
    ) -> Result<SweepReport, AwsError> {
        let meter = Meter::new(self.settings.sweep_max_calls, options.dry_run);
        let metered = Pinhook {
            asg: Metered::new(&self.asg, &meter),
            ec2: Metered::new(&self.ec2, &meter),
            settings: self.settings.clone(),
            metrics: self.metrics.clone(),
        };
        let mut report = metered.sweep_within(options, deadline, &meter).await?;
        report.calls = meter.calls();
        for plan in &report.pools {
            self.record_pool_metrics(plan);
        }
        Ok(report)
    }

    async fn sweep_within(
        &self,
        options: &SweepOptions,
        deadline: Deadline,
        meter: &Meter,
    ) -> Result<SweepReport, AwsError> {
        let end = deadline.keeping(self.settings.completion_reserve);
        let names = match options.groups.is_empty() {
            true => self.settings.groups.clone(),
            false => options.groups.clone(),
        };
        let groups = self.asg.groups(&names).await?;
        // Each group's hooks, read concurrently.
        let hooks: Vec<_> =
            futures_util::future::try_join_all(groups.iter().map(|g| self.asg.hooks(&g.name)))
                .await?
                .into_iter()
                .flatten()
                .collect();
        let (mut specs, findings) = sweep::pools(&names, &groups, &hooks);
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
            if let Some(stop) = Self::must_stop(end, meter, 3, "reading pool", spec) {
                report.stopped = Some(stop);
                break;
            }
            let plan = match self.read_pool(spec, &groups).await {
                Ok(plan) => plan,
                Err(err) if err.is(ErrorKind::NotSent) => {
                    report.stopped = Some(err.to_string());
                    break;
                }
                // One pool that cannot be read does not keep the others from their sweep.
                Err(err) => {
                    warn!(pool = spec.pool.as_str(), error = %err, "could not read the pool");
                    report.findings.push(Finding {
                        pool: Some(spec.pool.to_string()),
                        ..Finding::new(
                            Severity::Error,
                            "unreadable-pool",
                            format!(
                                "pool {:?} could not be read, so it was not swept: {err}",
                                spec.pool.as_str()
                            ),
                        )
                    });
                    continue;
                }
            };
            if !options.dry_run {
                if let Some(stop) = self.repair_pool(spec, &plan, end, meter, &mut report).await {
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
    async fn read_pool(
        &self,
        spec: &PoolSpec,
        groups: &[crate::model::Group],
    ) -> Result<PoolPlan, AwsError> {
        match spec.eip {
            false => {
                let filter = EniFilter::Pool(spec.pool.clone());
                let members = self.ec2.network_interfaces(&filter).await?;
                self.plan_pool(spec, groups, &members).await
            }
            true => {
                let filter = AddressFilter::Pool(spec.pool.clone());
                let members = self.ec2.addresses(&filter).await?;
                self.plan_pool(spec, groups, &members).await
            }
        }
    }

    /// Reads the holders of a pool's members and plans the pool.
    async fn plan_pool<M: PoolMember>(
        &self,
        spec: &PoolSpec,
        groups: &[crate::model::Group],
        members: &[M],
    ) -> Result<PoolPlan, AwsError> {
        let holders = Holders {
            groups,
            elsewhere: &[],
            ec2: Some(&[]),
        };
        let outside = holders.outside(members);
        let elsewhere = match outside.is_empty() {
            true => Vec::new(),
            false => self.asg.describe_instances(&outside).await?,
        };
        let unknown: Vec<InstanceId> = outside
            .into_iter()
            .filter(|i| !elsewhere.iter().any(|e| &e.instance == i))
            .collect();
        let ec2 = match unknown.is_empty() {
            true => Some(Vec::new()),
            false => match self.ec2.instances(&unknown).await {
                Ok(found) => Some(found),
                Err(err) => {
                    warn!(error = %err, "could not read the holders' state from EC2; their members are left alone");
                    None
                }
            },
        };
        let holders = Holders {
            groups,
            elsewhere: &elsewhere,
            ec2: ec2.as_deref(),
        };
        Ok(sweep::plan(
            spec,
            members,
            &holders,
            SystemTime::now(),
            self.settings.idle_address_after,
        ))
    }

    /// Carries out a pool's plan: the idle marks, then releases and tags, then pins (which may
    /// use what was released). `Some` reason when the sweep must stop.
    async fn repair_pool(
        &self,
        spec: &PoolSpec,
        plan: &PoolPlan,
        end: Instant,
        meter: &Meter,
        report: &mut SweepReport,
    ) -> Option<String> {
        let now = sweep::format_rfc3339(SystemTime::now());
        for mark in &plan.idle_marks {
            let result = match mark {
                IdleMark::Since(member) => self.ec2.create_tag(member, IDLE_SINCE_TAG, &now).await,
                IdleMark::Clear(member) => self.ec2.delete_tag(member, IDLE_SINCE_TAG, None).await,
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
            if let Some(stop) = Self::must_stop(end, meter, repair.cost(), "repairing pool", spec) {
                return Some(stop);
            }
            let result = tokio::time::timeout_at(end, self.repair(spec, repair, end)).await;
            let (ok, result) = match result {
                Ok(Ok(done)) => (true, done),
                Ok(Err(err)) => (false, err),
                Err(_) => (false, "the sweep's deadline came first".into()),
            };
            match ok {
                true => info!(repair = %repair, %result, "repaired"),
                false => {
                    warn!(repair = %repair, %result, "repair failed; the next sweep tries again")
                }
            }
            report.done.push(Done {
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
    async fn repair(
        &self,
        spec: &PoolSpec,
        repair: &Repair,
        until: Instant,
    ) -> Result<String, String> {
        let pool = &spec.pool;
        let instance_tag = match spec.eip {
            true => INSTANCE_EIP_TAG,
            false => INSTANCE_ENI_TAG,
        };
        match repair {
            Repair::ClearTag {
                member, instance, ..
            } => self
                .ec2
                .delete_tag(member, HOLDER_TAG, Some(instance))
                .await
                .map(|()| format!("cleared the holder tag of {member}"))
                .map_err(|e| e.to_string()),
            Repair::RecordLease {
                member, instance, ..
            } => self
                .record_lease(member, instance, instance_tag, None)
                .await
                .map(|note| note.unwrap_or_else(|| format!("recorded the lease of {member}")))
                .map_err(|e| e.to_string()),
            Repair::Release { instance, .. } => {
                let on = self.binding(pool, instance);
                match spec.eip {
                    false => self.release_holder(EniKind::new(on, 1), until).await,
                    true => self.release_holder(EipKind::new(on, 0), until).await,
                }
                .outcome(pool)
            }
            Repair::Pin {
                group,
                instance,
                availability_zone,
                ..
            } => {
                let Some(config) = spec.groups.get(group) else {
                    return Err(format!("group {group:?} has no pinhook hook for the pool"));
                };
                let on = self.binding(pool, instance);
                match config.pin {
                    Pin::Eni { device_index } => {
                        let kind = EniKind::new(on, device_index);
                        self.sweep_pin(kind, group, availability_zone, until).await
                    }
                    Pin::Eip { interface, .. } => {
                        let kind = EipKind::new(on, interface);
                        self.sweep_pin(kind, group, availability_zone, until).await
                    }
                }
            }
        }
    }

    /// Gives back everything of the pool the kind's instance holds (its release, as the
    /// terminate path does it), and clears its tags. The device index plays no part.
    async fn release_holder<K: MemberKind>(
        &self,
        kind: K,
        until: Instant,
    ) -> super::release::Released {
        let mut released = super::release::Released::default();
        let listed = kind.list().await;
        self.release_kind(&kind, listed, true, until, &mut released)
            .await;
        released
    }

    /// Pins a member to an instance in service, through the claim engine with no lifecycle
    /// action: no heartbeats, no waiting for releases, no takeover.
    async fn sweep_pin<K: MemberKind>(
        &self,
        kind: K,
        group: &str,
        zone: &str,
        until: Instant,
    ) -> Result<String, String> {
        let instance = kind.instance().clone();
        let attached_to = EniFilter::AttachedTo(instance.clone());
        let (interfaces, members) =
            tokio::join!(self.ec2.network_interfaces(&attached_to), kind.list());
        let (interfaces, members) = (
            interfaces.map_err(|e| e.to_string())?,
            members.map_err(|e| e.to_string())?,
        );
        let budget = Budget::until(until);
        let mut metrics = Metrics::default();
        let subject = Subject {
            group,
            instance: &instance,
            action: None,
        };
        let claim = Claim::new(
            self,
            subject,
            kind,
            zone.to_owned(),
            None,
            &budget,
            &mut metrics,
        );
        match claim
            .run_and_lease(members, interfaces)
            .await
            .map_err(|e| e.to_string())?
        {
            Pinning::Pinned { member, note, .. } => {
                Ok(note.unwrap_or_else(|| format!("pinned {}", member.id)))
            }
            Pinning::NotPinned(reason) | Pinning::Stale(reason) => Err(reason),
            Pinning::EnterWarmPool => Err("the instance is entering the warm pool".into()),
        }
    }

    /// The pool's figures as EMF, per Availability Zone (per pool for Elastic IPs): every sweep
    /// emits them, so an alarm has a value when nothing launches.
    fn record_pool_metrics(&self, plan: &PoolPlan) {
        for zone in &plan.zones {
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
            self.metrics.record(&m, &self.settings.metrics_namespace);
        }
    }
}
