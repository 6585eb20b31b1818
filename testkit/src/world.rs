//! A world: the emulator, SDK clients on it, and the real handler on the same clients, as one
//! test (or example) sees them.

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_ec2::config::retry::RetryPartition;
use pinhook::aws::{AutoScalingClient, Ec2Client, retry_config, timeout_config};
use pinhook::config::Settings;
use pinhook::metrics::MetricsSink;
use pinhook::{Deadline, Pinhook, Summary, SweepOptions, SweepReport};
use serde_json::Value;

use crate::census::Deliveries;
use crate::clock::Clock;
use crate::control::Control;
use crate::process::Emulator;
use crate::sdk::{fast_settings, own_partition, sdk_config};
use crate::unique;

/// Settings for a burst against an emulator of its own: pinhook's production retry policy, and
/// attempts that may take 10 s. A burst of a hundred invocations queues behind the emulator's
/// one lock, and an attempt that times out is still served, so a shorter timeout turns the
/// burst into a storm of retries. The completion's reserve covers that attempt.
pub fn burst_settings() -> Settings {
    Settings {
        max_attempts: Settings::default().max_attempts,
        attempt_timeout: Duration::from_secs(10),
        completion_reserve: Duration::from_secs(11),
        ..fast_settings()
    }
}

/// The real handler on the real SDK clients.
pub type App = Pinhook<AutoScalingClient, Ec2Client>;

pub struct World {
    /// The metrics of every invocation made through this world, kept in memory.
    pub metrics: MetricsSink,
    /// The emulator's control API, on this world's clock.
    pub emulator: Control,
    pub sdk: SdkConfig,
    pub ec2: aws_sdk_ec2::Client,
    pub asg: aws_sdk_autoscaling::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub sns: aws_sdk_sns::Client,
    pub settings: Settings,
    /// Whether the emulator is this world's own, to give back when the world is dropped.
    dedicated: bool,
}

impl Drop for World {
    fn drop(&mut self) {
        if self.dedicated {
            self.emulator.release();
        }
    }
}

impl World {
    /// A world on the process's shared emulator, with settings that keep waits short.
    pub async fn new() -> Self {
        Self::on(Emulator::shared()).await
    }

    pub async fn on(emulator: &'static Emulator) -> Self {
        Self::on_with(emulator, fast_settings()).await
    }

    /// A world on an emulator of its own, for tests that load it or inject faults, with
    /// [`burst_settings`].
    pub async fn dedicated() -> Self {
        Self::dedicated_with(burst_settings()).await
    }

    /// A world on an emulator of its own, with these settings; the emulator is given back,
    /// reset, when the world is dropped.
    pub async fn dedicated_with(settings: Settings) -> Self {
        let mut world = Self::on_with(Emulator::dedicated(), settings).await;
        world.dedicated = true;
        world
    }

    /// A world whose clients run on the test's clock, which the emulator follows.
    pub async fn on_with(emulator: &'static Emulator, settings: Settings) -> Self {
        Self::build(emulator, settings, Some(Clock::new())).await
    }

    /// A world in real time on an emulator of its own (the chaos run, the bench), with these
    /// settings.
    pub async fn dedicated_real_time(settings: Settings) -> Self {
        let emulator: &'static Emulator = Box::leak(Box::new(Emulator::start_real_time(&[])));
        Self::real_time(emulator, settings).await
    }

    /// A world in real time, for an emulator on the wall clock (the demo, the chaos run, the
    /// bench).
    pub async fn real_time(emulator: &'static Emulator, settings: Settings) -> Self {
        Self::build(emulator, settings, None).await
    }

    async fn build(emulator: &'static Emulator, settings: Settings, clock: Option<Clock>) -> Self {
        let sdk = sdk_config(&emulator.url, &settings, clock.clone()).await;
        let partition = own_partition();
        let ec2 = aws_sdk_ec2::config::Builder::from(&sdk).retry_partition(partition.clone());
        let asg = aws_sdk_autoscaling::config::Builder::from(&sdk).retry_partition(partition);
        Self {
            metrics: MetricsSink::memory().0,
            emulator: Control::new(emulator, clock),
            ec2: aws_sdk_ec2::Client::from_conf(ec2.build()),
            asg: aws_sdk_autoscaling::Client::from_conf(asg.build()),
            sqs: aws_sdk_sqs::Client::new(&sdk),
            sns: aws_sdk_sns::Client::new(&sdk),
            sdk,
            settings,
            dedicated: false,
        }
    }

    pub fn app(&self) -> App {
        self.app_with(self.settings.clone())
    }

    pub fn app_with(&self, settings: Settings) -> App {
        Pinhook::new(
            AutoScalingClient::new(self.asg.clone()),
            Ec2Client::new(self.ec2.clone()),
            settings,
        )
        .with_metrics(self.metrics.clone())
    }

    /// One Lambda execution environment: the real handler with its own SDK clients, and so its
    /// own retry token bucket, as each concurrent invocation of a function has.
    pub fn environment(&self) -> App {
        self.environment_with(self.settings.clone(), None)
    }

    /// An execution environment with these settings, and an interceptor on both of its clients
    /// (the bench's meter), if any.
    pub fn environment_with(
        &self,
        settings: Settings,
        interceptor: Option<aws_sdk_ec2::config::SharedInterceptor>,
    ) -> App {
        let partition = RetryPartition::new(unique("pinhook-environment"));
        // The retries and timeouts of these settings, as `load_sdk_config` would give them.
        let (retry, timeout) = (retry_config(&settings), timeout_config(&settings));
        let mut ec2 = aws_sdk_ec2::config::Builder::from(&self.sdk);
        ec2.set_retry_partition(Some(partition.clone()));
        ec2.set_retry_config(Some(retry.clone()));
        ec2.set_timeout_config(Some(timeout.clone()));
        let mut asg = aws_sdk_autoscaling::config::Builder::from(&self.sdk);
        asg.set_retry_partition(Some(partition));
        asg.set_retry_config(Some(retry));
        asg.set_timeout_config(Some(timeout));
        if let Some(interceptor) = interceptor {
            ec2.push_interceptor(interceptor.clone());
            asg.push_interceptor(interceptor);
        }
        Pinhook::new(
            AutoScalingClient::new(aws_sdk_autoscaling::Client::from_conf(asg.build())),
            Ec2Client::new(aws_sdk_ec2::Client::from_conf(ec2.build())),
            settings,
        )
        .with_metrics(self.metrics.clone())
    }

    /// Delivers an event to the real handler, as the Lambda runtime would.
    pub async fn deliver(&self, event: &Value) -> Summary {
        self.deliver_within(event, Duration::from_secs(60)).await
    }

    /// Delivers an event to the real handler with this Lambda deadline.
    pub async fn deliver_within(&self, event: &Value, budget: Duration) -> Summary {
        self.app()
            .handle(event, Deadline::after(budget))
            .await
            .unwrap_or_else(|e| panic!("the handler failed: {e}"))
    }

    /// Delivers every event `copies` times, each delivery its own concurrent invocation in its
    /// own execution environment. An invocation that returns an error is delivered again, up
    /// to `retries` times, as EventBridge's retry policy does.
    pub async fn burst(&self, events: &[Value], copies: usize, retries: usize) -> Deliveries {
        self.burst_within(events, copies, retries, Duration::from_secs(120))
            .await
    }

    /// A burst whose invocations each have this Lambda deadline (the function's timeout).
    pub async fn burst_within(
        &self,
        events: &[Value],
        copies: usize,
        retries: usize,
        timeout: Duration,
    ) -> Deliveries {
        let mut invocations = tokio::task::JoinSet::new();
        for event in events {
            for _ in 0..copies {
                let app = self.environment();
                let event = event.clone();
                invocations.spawn(async move {
                    let mut redeliveries = 0;
                    loop {
                        let deadline = Deadline::after(timeout);
                        match app.handle(&event, deadline).await {
                            Ok(summary) => return (Ok(summary), redeliveries),
                            Err(_) if redeliveries < retries => {
                                redeliveries += 1;
                                let backoff = Duration::from_millis(100 * redeliveries as u64);
                                tokio::time::sleep(backoff).await;
                            }
                            Err(err) => return (Err(err.to_string()), redeliveries),
                        }
                    }
                });
            }
        }
        let mut deliveries = Deliveries::default();
        while let Some(joined) = invocations.join_next().await {
            let (summary, redeliveries) = joined.expect("an invocation panicked");
            deliveries.invocations += 1 + redeliveries;
            deliveries.redeliveries += redeliveries;
            match summary {
                Ok(summary) => deliveries.summaries.push(summary),
                Err(error) => {
                    deliveries.failed += 1;
                    deliveries.errors.push(error);
                }
            }
        }
        deliveries
    }

    /// The sum of one metric over the invocations made through this world.
    pub fn metric(&self, name: &str) -> f64 {
        match &self.metrics {
            MetricsSink::Memory(kept) => kept
                .lock()
                .map(|kept| kept.iter().filter_map(|m| m[name].as_f64()).sum())
                .unwrap_or_default(),
            _ => 0.0,
        }
    }

    /// The real handler sweeping these groups.
    pub fn sweeper(&self, groups: &[&str]) -> App {
        self.app_with(Settings {
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            ..self.settings.clone()
        })
    }

    /// A sweep of the groups, as the schedule runs it (`dry_run`: as `pinhook sweep --dry-run`).
    pub async fn sweep(&self, groups: &[&str], dry_run: bool) -> SweepReport {
        let options = SweepOptions {
            dry_run,
            ..SweepOptions::default()
        };
        self.sweeper(groups)
            .sweep(&options, Deadline::after(Duration::from_secs(60)))
            .await
            .unwrap_or_else(|e| panic!("the sweep failed: {e}"))
    }
}
