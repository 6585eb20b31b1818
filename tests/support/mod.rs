//! Shared by the integration tests and the demo: the local AWS emulator, SDK clients pointed at
//! it, builders for networks, pools and groups, and a small HTTP client for the control APIs.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_autoscaling::types::LaunchTemplateSpecification;
use aws_sdk_ec2::config::Credentials;
use aws_sdk_ec2::config::retry::RetryPartition;
use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use pinhook::aws::{AutoScalingClient, Ec2Client, retry_config, timeout_config};
use pinhook::config::Settings;
use pinhook::metrics::MetricsSink;
use pinhook::{Deadline, Pinhook, Summary, SweepOptions, SweepReport};
use serde_json::{Value, json};

pub const REGION: &str = "us-east-1";
pub const AZ_A: &str = "us-east-1a";
pub const AZ_B: &str = "us-east-1b";
pub const POOL_TAG: &str = "pinhook:pool";
pub const HOLDER_TAG: &str = "pinhook:holder";
pub const AMI: &str = "ami-12c6146b";

pub type App = Pinhook<AutoScalingClient, Ec2Client>;

pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A name no other test (or earlier run against the same emulator) uses.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

// --------------------------------------------------------------------------------------------
// A minimal HTTP/1.1 client for the emulator's control API and Lambda's invoke API.

/// Sends one request and returns the status and body.
pub fn http(method: &str, url: &str, body: Option<&str>) -> Result<(u16, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("not an http URL: {url}"))?;
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut stream = TcpStream::connect(host).map_err(|e| format!("connecting to {host}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .map_err(|e| e.to_string())?;
    let body = body.unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader
        .read_line(&mut status_line)
        .map_err(|e| e.to_string())?;
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut chunked = false;
    let mut length: Option<usize> = None;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).map_err(|e| e.to_string())?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("transfer-encoding")
                && value.eq_ignore_ascii_case("chunked")
            {
                chunked = true;
            }
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse().ok();
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).map_err(|e| e.to_string())?;
            let size = usize::from_str_radix(size.trim(), 16).map_err(|e| e.to_string())?;
            if size == 0 {
                break;
            }
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).map_err(|e| e.to_string())?;
            body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(length) = length {
        body.resize(length, 0);
        reader.read_exact(&mut body).map_err(|e| e.to_string())?;
    } else {
        reader.read_to_end(&mut body).map_err(|e| e.to_string())?;
    }
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

pub fn http_json(method: &str, url: &str, body: Option<&Value>) -> Value {
    let text = body.map(Value::to_string);
    let (status, reply) =
        http(method, url, text.as_deref()).unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    assert!(status < 300, "{method} {url} answered {status}: {reply}");
    serde_json::from_str(&reply)
        .unwrap_or_else(|e| panic!("{method} {url} answered non-JSON ({e}): {reply}"))
}

// --------------------------------------------------------------------------------------------
// The emulator process.

/// A running emulator on 127.0.0.1, stopped (by its PID) when dropped, and in any case when
/// the process that started it exits.
pub struct Emulator {
    child: std::sync::Mutex<Child>,
    pub url: String,
    pid: u32,
}

/// The Python that has the emulator's requirements: `.venv`'s, or `PINHOOK_PYTHON`.
pub fn python() -> PathBuf {
    let python = std::env::var_os("PINHOOK_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv/bin/python"));
    assert!(
        python.exists(),
        "{} does not exist: run `make test` (it creates .venv with the emulator), or set PINHOOK_PYTHON to a Python that has emulator/requirements.txt installed",
        python.display()
    );
    python
}

impl Emulator {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// An emulator started with extra options, e.g. `["--boot-delay", "2"]`.
    pub fn start_with(options: &[&str]) -> Self {
        let python = python();
        let port_file = std::env::temp_dir().join(unique("pinhook-emulator-port"));
        let child = Command::new(&python)
            .arg(repo_root().join("emulator/pinhook_emulator.py"))
            .args([
                "--port",
                "0",
                "--parent-pid",
                &std::process::id().to_string(),
            ])
            .arg("--port-file")
            .arg(&port_file)
            .args(options)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting the emulator with {}: {e}", python.display()));
        let pid = child.id();
        let mut emulator = Self {
            child: std::sync::Mutex::new(child),
            url: String::new(),
            pid,
        };
        let started = Instant::now();
        loop {
            if let Ok(port) = std::fs::read_to_string(&port_file) {
                if let Ok(port) = port.trim().parse::<u16>() {
                    emulator.url = format!("http://127.0.0.1:{port}");
                    let _ = std::fs::remove_file(&port_file);
                    break;
                }
            }
            if let Ok(Some(status)) = emulator
                .child
                .get_mut()
                .map(|c| c.try_wait())
                .unwrap_or(Ok(None))
            {
                panic!("the emulator exited at start-up with {status}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the emulator did not start within 60 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        emulator
    }

    /// One emulator for every test of this process.
    pub fn shared() -> &'static Emulator {
        static SHARED: OnceLock<Emulator> = OnceLock::new();
        SHARED.get_or_init(Emulator::start)
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Stops the emulator (by its PID).
    pub fn stop(&self) {
        if let Ok(mut child) = self.child.lock() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn control(&self, method: &str, route: &str, body: Option<&Value>) -> Value {
        http_json(method, &format!("{}/_pinhook/{route}", self.url), body)
    }

    /// The lifecycle actions of a group: pending ones, or all with `all`.
    pub fn actions(&self, group: &str, all: bool) -> Vec<Value> {
        let route = format!(
            "lifecycle-actions?group={group}{}",
            if all { "&all=1" } else { "" }
        );
        self.control("GET", &route, None)["actions"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub fn pending_events(&self, group: &str) -> Vec<Value> {
        self.actions(group, false)
            .into_iter()
            .map(|a| a["event"].clone())
            .collect()
    }

    /// The action of an instance for a transition (`launch` or `terminate`), pending or not.
    pub fn action_of(&self, group: &str, instance: &str, transition: &str) -> Value {
        let wanted = if transition == "launch" {
            "autoscaling:EC2_INSTANCE_LAUNCHING"
        } else {
            "autoscaling:EC2_INSTANCE_TERMINATING"
        };
        self.actions(group, true)
            .into_iter()
            .find(|a| a["instance_id"] == instance && a["transition"] == wanted)
            .unwrap_or_else(|| panic!("no {transition} action for {instance} in {group}"))
    }

    /// The mutating requests the emulator served whose recorded parameters match, e.g.
    /// `[("action", "AttachNetworkInterface"), ("InstanceId", "i-…")]`.
    pub fn requests(&self, matching: &[(&str, &str)]) -> Vec<Value> {
        let query: Vec<String> = matching.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let route = format!("requests?{}", query.join("&"));
        self.control("GET", &route, None)["requests"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The race a claimer armed for `victim` made happen: what it took.
    pub fn claimer_fired(&self, victim: &str) -> Value {
        let fired = self.control("GET", "claimers", None)["fired"].clone();
        fired
            .as_array()
            .and_then(|f| f.iter().find(|f| f["victim"] == victim).cloned())
            .unwrap_or_else(|| panic!("no claimer fired for {victim}: {fired}"))
    }

    /// Before `victim`'s next AttachNetworkInterface lands, `winner` takes that very ENI.
    pub fn arm_claimer(&self, victim: &str, winner: &str) {
        self.arm_claimers(victim, &[winner]);
    }

    /// Before each of `victim`'s next claims lands, the next of `winners` takes that very
    /// member: `victim` loses that many claims in a row.
    pub fn arm_claimers(&self, victim: &str, winners: &[&str]) {
        self.control(
            "POST",
            "claimers",
            Some(&json!({"instance_id": victim, "by_instance_ids": winners})),
        );
    }

    /// Changes the emulator's settings (`POST /_pinhook/settings`).
    pub fn settings(&self, settings: Value) -> Value {
        self.control("POST", "settings", Some(&settings))
    }

    /// New instances of the group stay `pending` this long, as EC2 keeps them while they boot.
    pub fn boot_delay(&self, group: &str, seconds: f64) {
        self.settings(json!({"boot_delay": seconds, "group": group}));
    }

    /// EC2's reads lag its writes by up to `seconds` (0 turns the lag off). For an emulator of
    /// the test's own: the lag applies to every EC2 read.
    pub fn read_lag(&self, seconds: f64) {
        self.settings(json!({"read_lag": seconds, "lag_mode": "random", "lag_seed": 8}));
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.stop();
    }
}

// --------------------------------------------------------------------------------------------
// SDK clients and fixtures.

/// Settings that keep waits short against the emulator.
pub fn fast_settings() -> Settings {
    Settings {
        attach_timeout: Duration::from_secs(15),
        poll_interval: Duration::from_millis(50),
        // one whole attempt of the completion, plus a little
        completion_reserve: Duration::from_millis(2500),
        attempt_timeout: Duration::from_secs(2),
        // the emulator's reads do not lag unless a test makes them
        consistency_window: Duration::from_millis(300),
        heartbeat_interval: Duration::from_secs(1),
        max_attempts: 3,
        metrics_namespace: "pinhook-test".to_owned(),
        ..Settings::default()
    }
}

/// The SDK's clock for tests: it follows tokio's, so the adaptive retry mode's client-side rate
/// limit sees the time a test with paused time lets pass.
#[derive(Debug)]
pub struct TokioClock {
    wall: std::time::SystemTime,
    start: tokio::time::Instant,
}

impl TokioClock {
    /// Starts now; inside a runtime with paused time, it moves only as that time does.
    pub fn new() -> Self {
        Self {
            wall: std::time::SystemTime::now(),
            start: tokio::time::Instant::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl aws_smithy_async::time::TimeSource for TokioClock {
    fn now(&self) -> std::time::SystemTime {
        self.wall + self.start.elapsed()
    }
}

/// A retry partition of its own. The adaptive retry mode's client-side rate limit is kept per
/// partition for the whole process, so tests that share one would slow each other down.
pub fn own_partition() -> RetryPartition {
    RetryPartition::new(unique("pinhook-test"))
}

pub async fn sdk_config(endpoint: &str, settings: &Settings) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .time_source(TokioClock::new())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "pinhook-tests",
        ))
        .endpoint_url(endpoint)
        .retry_config(retry_config(settings))
        .timeout_config(timeout_config(settings))
        .load()
        .await
}

/// A VPC with one subnet in each of two AZs.
#[derive(Debug, Clone)]
pub struct Network {
    pub vpc: String,
    pub subnet_a: String,
    pub subnet_b: String,
}

impl Network {
    pub fn subnet(&self, az: &str) -> &str {
        if az == AZ_A {
            &self.subnet_a
        } else {
            &self.subnet_b
        }
    }
}

/// An Auto Scaling group with pinhook's hooks.
#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    pub launch_hook: String,
    pub terminate_hook: String,
}

/// What a group is made of.
#[derive(Debug, Clone)]
pub struct GroupSpec {
    pub subnets: Vec<String>,
    /// Metadata of the launch hook; no launch hook when `None`.
    pub launch_metadata: Option<String>,
    /// Metadata of the terminate hook; no terminate hook when `None`.
    pub terminate_metadata: Option<String>,
    /// An extra terminate hook that pinhook does not serve, so that an instance stays in
    /// Terminating:Wait after pinhook completed its action.
    pub extra_terminate_hook: bool,
    pub max_size: i32,
}

impl GroupSpec {
    /// A group with no hook of pinhook's, over the subnets.
    pub fn bare(subnets: Vec<String>, max_size: i32) -> Self {
        Self {
            subnets,
            launch_metadata: None,
            terminate_metadata: None,
            extra_terminate_hook: false,
            max_size,
        }
    }

    /// A launch and a terminate hook with the same metadata, over the subnets.
    pub fn pinning(subnets: Vec<String>, metadata: String, max_size: i32) -> Self {
        Self {
            subnets,
            launch_metadata: Some(metadata.clone()),
            terminate_metadata: Some(metadata),
            extra_terminate_hook: false,
            max_size,
        }
    }
}

/// The emulator, SDK clients on it, and the real handler on the same clients.
pub struct World {
    /// The metrics of every invocation made through this world, kept in memory.
    pub metrics: MetricsSink,
    pub emulator: &'static Emulator,
    pub sdk: SdkConfig,
    pub ec2: aws_sdk_ec2::Client,
    pub asg: aws_sdk_autoscaling::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub sns: aws_sdk_sns::Client,
    pub settings: Settings,
}

/// An SQS queue of the emulator's.
#[derive(Debug, Clone)]
pub struct Queue {
    pub url: String,
    pub arn: String,
}

/// The role Auto Scaling assumes to publish to a notification target (the emulator does not
/// check it; AWS requires one).
pub const HOOK_ROLE: &str = "arn:aws:iam::123456789012:role/pinhook-lifecycle-notifications";

impl World {
    pub async fn new() -> Self {
        Self::on(Emulator::shared()).await
    }

    pub async fn on(emulator: &'static Emulator) -> Self {
        Self::on_with(emulator, fast_settings()).await
    }

    /// A world on an emulator of its own, for tests that load it or inject faults, with
    /// pinhook's production retry policy (five attempts per call). Each attempt may take 10 s:
    /// a burst of a hundred invocations queues for seconds behind the emulator's one lock (AWS
    /// answers in 50–150 ms), and an attempt that times out is still served, so a shorter timeout
    /// turns the burst into a storm of retries. The completion's reserve covers that attempt.
    pub async fn dedicated() -> Self {
        Self::dedicated_with(Settings {
            max_attempts: Settings::default().max_attempts,
            attempt_timeout: Duration::from_secs(10),
            completion_reserve: Duration::from_secs(11),
            ..fast_settings()
        })
        .await
    }

    /// A world on an emulator of its own, with these settings.
    pub async fn dedicated_with(settings: Settings) -> Self {
        let emulator: &'static Emulator = Box::leak(Box::new(Emulator::start()));
        Self::on_with(emulator, settings).await
    }

    pub async fn on_with(emulator: &'static Emulator, settings: Settings) -> Self {
        let sdk = sdk_config(&emulator.url, &settings).await;
        let partition = own_partition();
        let ec2 = aws_sdk_ec2::config::Builder::from(&sdk).retry_partition(partition.clone());
        let asg = aws_sdk_autoscaling::config::Builder::from(&sdk).retry_partition(partition);
        Self {
            metrics: MetricsSink::memory().0,
            emulator,
            ec2: aws_sdk_ec2::Client::from_conf(ec2.build()),
            asg: aws_sdk_autoscaling::Client::from_conf(asg.build()),
            sqs: aws_sdk_sqs::Client::new(&sdk),
            sns: aws_sdk_sns::Client::new(&sdk),
            sdk,
            settings,
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
        let mut ec2 = aws_sdk_ec2::config::Builder::from(&self.sdk);
        ec2.set_retry_partition(Some(partition.clone()));
        let mut asg = aws_sdk_autoscaling::config::Builder::from(&self.sdk);
        asg.set_retry_partition(Some(partition));
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

    /// Delivers every event `copies` times, each delivery its own concurrent invocation in its
    /// own execution environment. An invocation that returns an error is delivered again, up
    /// to `retries` times, as EventBridge's retry policy does.
    pub async fn burst(&self, events: &[Value], copies: usize, retries: usize) -> Deliveries {
        let mut invocations = tokio::task::JoinSet::new();
        for event in events {
            for _ in 0..copies {
                let app = self.environment();
                let event = event.clone();
                invocations.spawn(async move {
                    let mut redeliveries = 0;
                    loop {
                        match app
                            .handle(&event, Deadline::after(Duration::from_secs(120)))
                            .await
                        {
                            Ok(summary) => return (Ok(summary), redeliveries),
                            Err(_) if redeliveries < retries => {
                                redeliveries += 1;
                                tokio::time::sleep(Duration::from_millis(
                                    100 * redeliveries as u64,
                                ))
                                .await;
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

    /// Makes the emulator fail a share of all requests from now on (0 turns it off).
    pub fn faults(&self, rate: f64, slow_rate: f64) {
        self.emulator.control(
            "POST",
            "faults",
            Some(&json!({"rate": rate, "slow_rate": slow_rate, "slow_seconds": [0.05, 0.4]})),
        );
    }

    /// What a burst left behind in the group and its pool, as counted from AWS's side.
    pub async fn census(&self, group: &Group, pool: &str, pin: &str) -> Census {
        let actions = self.emulator.actions(&group.name, true);
        let launches: Vec<&Value> = actions
            .iter()
            .filter(|a| a["transition"] == "autoscaling:EC2_INSTANCE_LAUNCHING")
            .collect();
        // Where every pool member is attached or associated, per AWS.
        let mut held_by: Vec<(String, String)> = Vec::new();
        if pin == "eni" {
            let found = self
                .ec2
                .describe_network_interfaces()
                .filters(pool_filter(pool))
                .send()
                .await
                .unwrap();
            for eni in found.network_interfaces() {
                if let Some(instance) = eni.attachment().and_then(|a| a.instance_id()) {
                    held_by.push((
                        eni.network_interface_id().unwrap_or_default().to_owned(),
                        instance.to_owned(),
                    ));
                }
            }
        } else {
            let found = self
                .ec2
                .describe_addresses()
                .filters(pool_filter(pool))
                .send()
                .await
                .unwrap();
            for address in found.addresses() {
                if let Some(instance) = address.instance_id() {
                    held_by.push((
                        address.allocation_id().unwrap_or_default().to_owned(),
                        instance.to_owned(),
                    ));
                }
            }
        }
        let in_service: Vec<String> = self
            .instances(group)
            .await
            .into_iter()
            .filter(|(_, _, state)| state == "InService")
            .map(|(instance, _, _)| instance)
            .collect();
        let lease_tag = if pin == "eni" {
            "pinhook:eni"
        } else {
            "pinhook:eip"
        };
        let mut census = Census {
            instances: launches.len(),
            abandoned: launches.iter().filter(|a| a["result"] == "ABANDON").count(),
            uncompleted_actions: actions.iter().filter(|a| a["pending"] == true).count(),
            completed_twice: actions
                .iter()
                .filter(|a| a["complete_calls"]["accepted"].as_u64().unwrap_or(0) > 1)
                .count(),
            ..Census::default()
        };
        let mut claims: std::collections::HashMap<String, std::collections::BTreeSet<String>> =
            Default::default();
        for (member, instance) in &held_by {
            claims
                .entry(member.clone())
                .or_default()
                .insert(instance.clone());
        }
        for instance in &in_service {
            let members: Vec<&String> = held_by
                .iter()
                .filter(|(_, i)| i == instance)
                .map(|(m, _)| m)
                .collect();
            match members.len() {
                0 => census.continued_unpinned += 1,
                1 => census.pinned += 1,
                _ => census.multi_member_instances += 1,
            }
            let lease = self.instance_tag(instance, lease_tag).await;
            if let Some(lease) = &lease {
                claims
                    .entry(lease.clone())
                    .or_default()
                    .insert(instance.clone());
            }
            if members.len() == 1 && lease.as_deref() != Some(members[0].as_str()) {
                census.lease_mismatches += 1;
            }
        }
        census.double_held_members = claims.values().filter(|holders| holders.len() > 1).count();
        census
    }

    /// The sum of one metric over the invocations made through this world.
    pub fn metric(&self, name: &str) -> f64 {
        match &self.metrics {
            MetricsSink::Memory(kept) => kept
                .lock()
                .unwrap()
                .iter()
                .filter_map(|m| m[name].as_f64())
                .sum(),
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
        self.sweeper(groups)
            .sweep(
                &SweepOptions {
                    dry_run,
                    ..SweepOptions::default()
                },
                Deadline::after(Duration::from_secs(60)),
            )
            .await
            .unwrap_or_else(|e| panic!("the sweep failed: {e}"))
    }

    /// Detaches an ENI by hand, as a person with the console would, and waits until it is free.
    pub async fn detach_by_hand(&self, eni: &str) {
        let state = self.eni_state(eni).await;
        let found = self
            .ec2
            .describe_network_interfaces()
            .network_interface_ids(eni)
            .send()
            .await
            .unwrap();
        let attachment = found.network_interfaces()[0]
            .attachment()
            .and_then(|a| a.attachment_id())
            .unwrap_or_else(|| panic!("{eni} is not attached: {state:?}"))
            .to_owned();
        self.ec2
            .detach_network_interface()
            .attachment_id(attachment)
            .send()
            .await
            .unwrap();
        self.wait_available(eni).await;
    }

    /// Disassociates an address by hand.
    pub async fn disassociate_by_hand(&self, allocation: &str) {
        let association = self
            .address_state(allocation)
            .await
            .association
            .unwrap_or_else(|| panic!("{allocation} is not associated"));
        self.ec2
            .disassociate_address()
            .association_id(association)
            .send()
            .await
            .unwrap();
    }

    pub async fn tag(&self, resource: &str, key: &str, value: &str) {
        self.ec2
            .create_tags()
            .resources(resource)
            .tags(Tag::builder().key(key).value(value).build())
            .send()
            .await
            .unwrap();
    }

    /// Terminates an instance through EC2, as a Spot reclaim or a person does: no hooks run.
    pub async fn terminate_in_ec2(&self, instance: &str) {
        self.ec2
            .terminate_instances()
            .instance_ids(instance)
            .send()
            .await
            .unwrap();
    }

    /// Takes an instance out of its group (it keeps running), lowering the desired capacity.
    pub async fn detach_from_group(&self, group: &Group, instance: &str) {
        self.asg
            .detach_instances()
            .auto_scaling_group_name(&group.name)
            .instance_ids(instance)
            .should_decrement_desired_capacity(true)
            .send()
            .await
            .unwrap();
    }

    /// Gives the group a warm pool of `size` stopped instances, reused on scale-in.
    pub async fn warm_pool(&self, group: &Group, size: i32) {
        self.asg
            .put_warm_pool()
            .auto_scaling_group_name(&group.name)
            .min_size(size)
            .max_group_prepared_capacity(0)
            .pool_state(aws_sdk_autoscaling::types::WarmPoolState::Stopped)
            .instance_reuse_policy(
                aws_sdk_autoscaling::types::InstanceReusePolicy::builder()
                    .reuse_on_scale_in(true)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }

    /// (instance, lifecycle state) of every instance in the group's warm pool.
    pub async fn warm_instances(&self, group: &Group) -> Vec<(String, String)> {
        let found = self
            .asg
            .describe_warm_pool()
            .auto_scaling_group_name(&group.name)
            .send()
            .await
            .unwrap();
        found
            .instances()
            .iter()
            .map(|i| {
                (
                    i.instance_id().unwrap_or_default().to_owned(),
                    i.lifecycle_state()
                        .map(|s| s.as_str().to_owned())
                        .unwrap_or_default(),
                )
            })
            .collect()
    }

    /// A new SQS queue.
    pub async fn queue(&self, name: &str) -> Queue {
        let url = self
            .sqs
            .create_queue()
            .queue_name(name)
            .send()
            .await
            .unwrap()
            .queue_url()
            .unwrap()
            .to_owned();
        let attributes = self
            .sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap();
        let arn = attributes
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
            .unwrap()
            .clone();
        Queue { url, arn }
    }

    /// A new SNS topic: its ARN.
    pub async fn topic(&self, name: &str) -> String {
        self.sns
            .create_topic()
            .name(name)
            .send()
            .await
            .unwrap()
            .topic_arn()
            .unwrap()
            .to_owned()
    }

    /// Subscribes the queue to the topic, as a queue behind a topic receives it: the SNS
    /// envelope around each message.
    pub async fn subscribe(&self, topic: &str, queue: &Queue) {
        self.sns
            .subscribe()
            .topic_arn(topic)
            .protocol("sqs")
            .endpoint(&queue.arn)
            .send()
            .await
            .unwrap();
    }

    /// A lifecycle hook whose notifications go to `target` (a queue or a topic).
    pub async fn hook_to(
        &self,
        group: &str,
        hook: &str,
        transition: &str,
        metadata: &str,
        target: &str,
    ) {
        self.asg
            .put_lifecycle_hook()
            .auto_scaling_group_name(group)
            .lifecycle_hook_name(hook)
            .lifecycle_transition(transition)
            .heartbeat_timeout(600)
            .default_result(if transition.ends_with("LAUNCHING") {
                "ABANDON"
            } else {
                "CONTINUE"
            })
            .notification_metadata(metadata)
            .notification_target_arn(target)
            .role_arn(HOOK_ROLE)
            .send()
            .await
            .unwrap();
    }

    /// Up to ten messages from the queue, as the records of the SQS event Lambda's event source
    /// mapping would build from them; received messages stay invisible for `visibility` seconds.
    pub async fn receive(&self, queue: &Queue, visibility: i32) -> Vec<Value> {
        let received = self
            .sqs
            .receive_message()
            .queue_url(&queue.url)
            .max_number_of_messages(10)
            .visibility_timeout(visibility)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap();
        received
            .messages()
            .iter()
            .map(|m| {
                let attributes: serde_json::Map<String, Value> = m
                    .attributes()
                    .map(|a| {
                        a.iter()
                            .map(|(k, v)| (k.as_str().to_owned(), json!(v)))
                            .collect()
                    })
                    .unwrap_or_default();
                json!({
                    "messageId": m.message_id(),
                    "receiptHandle": m.receipt_handle(),
                    "body": m.body(),
                    "attributes": attributes,
                    "messageAttributes": {},
                    "md5OfBody": m.md5_of_body(),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": queue.arn,
                    "awsRegion": REGION,
                })
            })
            .collect()
    }

    /// Deletes the records' messages from the queue, as the event source mapping does for the
    /// records a batch did not report as failed.
    pub async fn delete(&self, queue: &Queue, records: &[Value]) {
        for record in records {
            self.sqs
                .delete_message()
                .queue_url(&queue.url)
                .receipt_handle(record["receiptHandle"].as_str().unwrap_or_default())
                .send()
                .await
                .unwrap();
        }
    }

    /// What Auto Scaling published to the topic, each message as an SNS event a Lambda
    /// subscription would receive.
    pub fn sns_events(&self, topic: &str) -> Vec<Value> {
        let found = self
            .emulator
            .control("GET", &format!("sns-records?topic={topic}"), None);
        found["records"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|record| json!({ "Records": [record] }))
            .collect()
    }

    /// Delivers an event to the real handler, as the Lambda runtime would.
    pub async fn deliver(&self, event: &Value) -> Summary {
        self.app()
            .handle(event, Deadline::after(Duration::from_secs(60)))
            .await
            .unwrap_or_else(|e| panic!("the handler failed: {e}"))
    }

    pub async fn network(&self) -> Network {
        let vpc = self
            .ec2
            .create_vpc()
            .cidr_block("10.0.0.0/16")
            .send()
            .await
            .unwrap();
        let vpc = vpc.vpc().and_then(|v| v.vpc_id()).unwrap().to_owned();
        let mut subnets = Vec::new();
        for (az, cidr) in [(AZ_A, "10.0.1.0/24"), (AZ_B, "10.0.2.0/24")] {
            let subnet = self
                .ec2
                .create_subnet()
                .vpc_id(&vpc)
                .cidr_block(cidr)
                .availability_zone(az)
                .send()
                .await
                .unwrap();
            subnets.push(
                subnet
                    .subnet()
                    .and_then(|s| s.subnet_id())
                    .unwrap()
                    .to_owned(),
            );
        }
        Network {
            vpc,
            subnet_b: subnets.pop().unwrap(),
            subnet_a: subnets.pop().unwrap(),
        }
    }

    /// An ENI in the subnet, with the given tags.
    pub async fn eni(&self, subnet: &str, tags: &[(&str, &str)]) -> String {
        let mut request = self.ec2.create_network_interface().subnet_id(subnet);
        if !tags.is_empty() {
            let mut spec =
                TagSpecification::builder().resource_type(ResourceType::NetworkInterface);
            for (key, value) in tags {
                spec = spec.tags(Tag::builder().key(*key).value(*value).build());
            }
            request = request.tag_specifications(spec.build());
        }
        let eni = request.send().await.unwrap();
        eni.network_interface()
            .and_then(|e| e.network_interface_id())
            .unwrap()
            .to_owned()
    }

    /// Attaches the ENI to the instance at the device index, directly (not through pinhook).
    pub async fn attach(&self, eni: &str, instance: &str, device_index: i32) -> String {
        let attached = self
            .ec2
            .attach_network_interface()
            .network_interface_id(eni)
            .instance_id(instance)
            .device_index(device_index)
            .send()
            .await
            .unwrap();
        attached.attachment_id().unwrap_or_default().to_owned()
    }

    /// `count` pool ENIs tagged `pinhook:pool` = `pool` in the AZ's subnet.
    pub async fn eni_pool(
        &self,
        network: &Network,
        pool: &str,
        az: &str,
        count: usize,
    ) -> Vec<String> {
        let mut enis = Vec::new();
        for _ in 0..count {
            enis.push(
                self.eni(network.subnet(az), &[(POOL_TAG, pool), ("Name", pool)])
                    .await,
            );
        }
        enis
    }

    pub async fn group(&self, spec: GroupSpec) -> Group {
        self.group_named(&unique("asg"), spec).await
    }

    pub async fn group_named(&self, name: &str, spec: GroupSpec) -> Group {
        let name = name.to_owned();
        let template = format!("lt-{name}");
        self.ec2
            .create_launch_template()
            .launch_template_name(&template)
            .launch_template_data(
                aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                    .image_id(AMI)
                    .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        self.asg
            .create_auto_scaling_group()
            .auto_scaling_group_name(&name)
            .launch_template(
                LaunchTemplateSpecification::builder()
                    .launch_template_name(&template)
                    .build(),
            )
            .min_size(0)
            .max_size(spec.max_size)
            .desired_capacity(0)
            .vpc_zone_identifier(spec.subnets.join(","))
            .send()
            .await
            .unwrap();
        let group = Group {
            launch_hook: format!("{name}-launch"),
            terminate_hook: format!("{name}-terminate"),
            name,
        };
        if let Some(metadata) = &spec.launch_metadata {
            self.hook(
                &group.name,
                &group.launch_hook,
                "autoscaling:EC2_INSTANCE_LAUNCHING",
                metadata,
            )
            .await;
        }
        if let Some(metadata) = &spec.terminate_metadata {
            self.hook(
                &group.name,
                &group.terminate_hook,
                "autoscaling:EC2_INSTANCE_TERMINATING",
                metadata,
            )
            .await;
        }
        if spec.extra_terminate_hook {
            self.hook(
                &group.name,
                "drain-logs",
                "autoscaling:EC2_INSTANCE_TERMINATING",
                "{}",
            )
            .await;
        }
        group
    }

    pub async fn hook(&self, group: &str, hook: &str, transition: &str, metadata: &str) {
        self.any_hook(group, hook, transition, Some(metadata)).await;
    }

    /// A lifecycle hook with any metadata, or none: another tool's, or pinhook's.
    pub async fn any_hook(
        &self,
        group: &str,
        hook: &str,
        transition: &str,
        metadata: Option<&str>,
    ) {
        self.asg
            .put_lifecycle_hook()
            .auto_scaling_group_name(group)
            .lifecycle_hook_name(hook)
            .lifecycle_transition(transition)
            .set_notification_metadata(metadata.map(str::to_owned))
            .heartbeat_timeout(300)
            .default_result("ABANDON")
            .send()
            .await
            .unwrap();
    }

    /// Completes a lifecycle action as the tool that owns its hook would.
    pub async fn complete(&self, action: &Value, result: &str) {
        self.asg
            .complete_lifecycle_action()
            .auto_scaling_group_name(action["group"].as_str().unwrap())
            .lifecycle_hook_name(action["hook"].as_str().unwrap())
            .lifecycle_action_token(action["token"].as_str().unwrap())
            .lifecycle_action_result(result)
            .send()
            .await
            .unwrap();
    }

    pub async fn scale(&self, group: &Group, capacity: i32) {
        self.asg
            .set_desired_capacity()
            .auto_scaling_group_name(&group.name)
            .desired_capacity(capacity)
            .send()
            .await
            .unwrap();
    }

    /// Terminates the instance in its group without lowering the desired capacity, so the group
    /// launches a replacement while the instance waits on its terminate hooks.
    pub async fn replace(&self, instance: &str) {
        self.asg
            .terminate_instance_in_auto_scaling_group()
            .instance_id(instance)
            .should_decrement_desired_capacity(false)
            .send()
            .await
            .unwrap();
    }

    /// (instance, AZ, lifecycle state) of every instance in the group.
    pub async fn instances(&self, group: &Group) -> Vec<(String, String, String)> {
        let groups = self
            .asg
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(&group.name)
            .send()
            .await
            .unwrap();
        let mut instances: Vec<(String, String, String)> = groups
            .auto_scaling_groups()
            .iter()
            .flat_map(|g| g.instances())
            .map(|i| {
                (
                    i.instance_id().unwrap_or_default().to_owned(),
                    i.availability_zone().unwrap_or_default().to_owned(),
                    i.lifecycle_state()
                        .map(|s| s.as_str().to_owned())
                        .unwrap_or_default(),
                )
            })
            .collect();
        instances.sort();
        instances
    }

    /// The lifecycle state of an instance in its group, `None` once it left every group.
    pub async fn lifecycle_state(&self, instance: &str) -> Option<String> {
        let found = self
            .asg
            .describe_auto_scaling_instances()
            .instance_ids(instance)
            .send()
            .await
            .unwrap();
        found
            .auto_scaling_instances()
            .first()
            .and_then(|i| i.lifecycle_state())
            .map(str::to_owned)
    }

    /// The EC2 state of an instance: `running`, `terminated`, …
    pub async fn ec2_state(&self, instance: &str) -> String {
        let found = self
            .ec2
            .describe_instances()
            .instance_ids(instance)
            .send()
            .await
            .unwrap();
        found
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .find_map(|i| {
                i.state()
                    .and_then(|s| s.name())
                    .map(|n| n.as_str().to_owned())
            })
            .unwrap_or_default()
    }

    /// A plain EC2 instance in the subnet, outside any group.
    pub async fn lone_instance(&self, subnet: &str) -> String {
        let run = self
            .ec2
            .run_instances()
            .image_id(AMI)
            .min_count(1)
            .max_count(1)
            .subnet_id(subnet)
            .send()
            .await
            .unwrap();
        run.instances()[0].instance_id().unwrap().to_owned()
    }

    pub async fn eni_state(&self, eni: &str) -> EniState {
        let found = self
            .ec2
            .describe_network_interfaces()
            .network_interface_ids(eni)
            .send()
            .await
            .unwrap();
        let eni = &found.network_interfaces()[0];
        EniState::from(eni)
    }

    /// The ENIs attached to an instance, by device index.
    pub async fn attached_to(&self, instance: &str) -> Vec<EniState> {
        let found = self
            .ec2
            .describe_network_interfaces()
            .filters(
                Filter::builder()
                    .name("attachment.instance-id")
                    .values(instance)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let mut enis: Vec<EniState> = found
            .network_interfaces()
            .iter()
            .map(EniState::from)
            .collect();
        enis.sort_by_key(|e| e.device_index);
        enis
    }

    pub async fn instance_tag(&self, instance: &str, key: &str) -> Option<String> {
        let found = self
            .ec2
            .describe_instances()
            .instance_ids(instance)
            .send()
            .await
            .unwrap();
        found
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .flat_map(|i| i.tags())
            .find(|t| t.key() == Some(key))
            .and_then(|t| t.value())
            .map(str::to_owned)
    }

    /// `count` Elastic IPs tagged `pinhook:pool` = `pool`.
    pub async fn eip_pool(&self, pool: &str, count: usize) -> Vec<String> {
        let mut addresses = Vec::new();
        for _ in 0..count {
            addresses.push(self.eip(&[(POOL_TAG, pool)]).await);
        }
        addresses
    }

    /// An Elastic IP with the given tags; its allocation id.
    pub async fn eip(&self, tags: &[(&str, &str)]) -> String {
        let mut request = self
            .ec2
            .allocate_address()
            .domain(aws_sdk_ec2::types::DomainType::Vpc);
        if !tags.is_empty() {
            let mut spec = TagSpecification::builder().resource_type(ResourceType::ElasticIp);
            for (key, value) in tags {
                spec = spec.tags(Tag::builder().key(*key).value(*value).build());
            }
            request = request.tag_specifications(spec.build());
        }
        request
            .send()
            .await
            .unwrap()
            .allocation_id()
            .unwrap()
            .to_owned()
    }

    pub async fn associate(&self, allocation: &str, eni: &str) {
        self.ec2
            .associate_address()
            .allocation_id(allocation)
            .network_interface_id(eni)
            .allow_reassociation(false)
            .send()
            .await
            .unwrap();
    }

    pub async fn address_state(&self, allocation: &str) -> AddressState {
        let found = self
            .ec2
            .describe_addresses()
            .allocation_ids(allocation)
            .send()
            .await
            .unwrap();
        let address = &found.addresses()[0];
        let tag = |key: &str| {
            address
                .tags()
                .iter()
                .find(|t| t.key() == Some(key))
                .and_then(|t| t.value())
                .map(str::to_owned)
        };
        AddressState {
            allocation: allocation.to_owned(),
            public_ip: address.public_ip().unwrap_or_default().to_owned(),
            association: address.association_id().map(str::to_owned),
            instance: address.instance_id().map(str::to_owned),
            eni: address.network_interface_id().map(str::to_owned),
            holder: tag(HOLDER_TAG),
        }
    }

    /// The Elastic IPs associated with an interface.
    pub async fn addresses_on(&self, eni: &str) -> Vec<String> {
        let found = self
            .ec2
            .describe_addresses()
            .filters(
                Filter::builder()
                    .name("network-interface-id")
                    .values(eni)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        found
            .addresses()
            .iter()
            .filter_map(|a| a.allocation_id())
            .map(str::to_owned)
            .collect()
    }

    /// The interface at a device index of an instance.
    pub async fn interface_at(&self, instance: &str, device_index: i32) -> EniState {
        self.attached_to(instance)
            .await
            .into_iter()
            .find(|e| e.device_index == Some(device_index))
            .unwrap_or_else(|| panic!("{instance} has no interface at device index {device_index}"))
    }

    pub async fn nat_gateway(&self, subnet: &str, allocation: &str) {
        self.ec2
            .create_nat_gateway()
            .subnet_id(subnet)
            .allocation_id(allocation)
            .send()
            .await
            .unwrap();
    }

    pub async fn set_unhealthy(&self, instance: &str) {
        self.asg
            .set_instance_health()
            .instance_id(instance)
            .health_status("Unhealthy")
            .send()
            .await
            .unwrap();
    }

    /// Delivers an event to the real handler with a short Lambda deadline.
    pub async fn deliver_within(&self, event: &Value, budget: Duration) -> Summary {
        self.app()
            .handle(event, Deadline::after(budget))
            .await
            .unwrap_or_else(|e| panic!("the handler failed: {e}"))
    }

    /// Waits (polling the emulator) until the ENI is `available`.
    pub async fn wait_available(&self, eni: &str) -> EniState {
        let started = Instant::now();
        loop {
            let state = self.eni_state(eni).await;
            if state.status == "available" || started.elapsed() > Duration::from_secs(10) {
                return state;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// An SQS event of these records.
pub fn sqs_event(records: &[Value]) -> Value {
    json!({ "Records": records })
}

/// Drains the queue into the handler as Lambda's SQS event source mapping does: batches of up
/// to ten, the messages of each batch deleted unless `batchItemFailures` names them. The
/// answer of each batch.
pub async fn drain(world: &World, app: &App, queue: &Queue) -> Vec<pinhook::handler::Answer> {
    poll_queue(world, queue, |event| async move {
        let answer = app
            .invoke(&event, Deadline::after(Duration::from_secs(60)))
            .await
            .unwrap_or_else(|e| panic!("the handler failed the whole batch: {e}"));
        (answer.response.clone(), answer)
    })
    .await
}

/// The project's SQS poller, as Lambda's event source mapping runs it: receives batches of up to
/// ten until the queue is empty, hands each to `deliver` as an SQS event, and deletes the
/// messages its response does not name in `batchItemFailures` (those come back after the
/// visibility timeout). What `deliver` made of each batch.
pub async fn poll_queue<T, F, Fut>(world: &World, queue: &Queue, mut deliver: F) -> Vec<T>
where
    F: FnMut(Value) -> Fut,
    Fut: std::future::Future<Output = (Value, T)>,
{
    let mut delivered = Vec::new();
    loop {
        let records = world.receive(queue, 30).await;
        if records.is_empty() {
            return delivered;
        }
        let (response, made) = deliver(sqs_event(&records)).await;
        let failed: Vec<&str> = response["batchItemFailures"]
            .as_array()
            .map(|f| {
                f.iter()
                    .filter_map(|i| i["itemIdentifier"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        let done: Vec<Value> = records
            .iter()
            .filter(|r| !failed.contains(&r["messageId"].as_str().unwrap_or_default()))
            .cloned()
            .collect();
        world.delete(queue, &done).await;
        delivered.push(made);
    }
}

/// What a burst of invocations came to.
#[derive(Debug, Clone, Default)]
pub struct Deliveries {
    /// Invocations made, redeliveries included.
    pub invocations: usize,
    pub redeliveries: usize,
    /// Deliveries that still failed after every redelivery, and their last errors.
    pub failed: usize,
    pub errors: Vec<String>,
    pub summaries: Vec<Summary>,
}

/// The end state of a burst, counted from AWS's side: what `make chaos` prints and the
/// reliability tests check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Census {
    /// Launch lifecycle actions of the group.
    pub instances: usize,
    /// Instances in service holding exactly one pool member.
    pub pinned: usize,
    /// Launches completed with ABANDON.
    pub abandoned: usize,
    /// Instances in service without a member (on_failure = continue).
    pub continued_unpinned: usize,
    /// Members that two instances hold: attached or associated to one, named by the lease tag
    /// of another.
    pub double_held_members: usize,
    /// Instances holding more than one member.
    pub multi_member_instances: usize,
    /// Lifecycle actions still waiting.
    pub uncompleted_actions: usize,
    /// Lifecycle actions Auto Scaling accepted a completion for more than once.
    pub completed_twice: usize,
    /// Pinned instances whose lease tag does not name the member they hold.
    pub lease_mismatches: usize,
}

impl std::ops::AddAssign for Census {
    /// The census of several groups together.
    fn add_assign(&mut self, other: Self) {
        self.instances += other.instances;
        self.pinned += other.pinned;
        self.abandoned += other.abandoned;
        self.continued_unpinned += other.continued_unpinned;
        self.double_held_members += other.double_held_members;
        self.multi_member_instances += other.multi_member_instances;
        self.uncompleted_actions += other.uncompleted_actions;
        self.completed_twice += other.completed_twice;
        self.lease_mismatches += other.lease_mismatches;
    }
}

/// What the tests check of an ENI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EniState {
    pub id: String,
    pub status: String,
    pub az: String,
    pub instance: Option<String>,
    pub device_index: Option<i32>,
    pub attachment_status: Option<String>,
    pub mac: String,
    pub private_ip: String,
    pub holder: Option<String>,
    pub pool: Option<String>,
}

impl From<&aws_sdk_ec2::types::NetworkInterface> for EniState {
    fn from(eni: &aws_sdk_ec2::types::NetworkInterface) -> Self {
        let tag = |key: &str| {
            eni.tag_set()
                .iter()
                .find(|t| t.key() == Some(key))
                .and_then(|t| t.value())
                .map(str::to_owned)
        };
        Self {
            id: eni.network_interface_id().unwrap_or_default().to_owned(),
            status: eni
                .status()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            az: eni.availability_zone().unwrap_or_default().to_owned(),
            instance: eni
                .attachment()
                .and_then(|a| a.instance_id())
                .map(str::to_owned),
            device_index: eni.attachment().and_then(|a| a.device_index()),
            attachment_status: eni
                .attachment()
                .and_then(|a| a.status())
                .map(|s| s.as_str().to_owned()),
            mac: eni.mac_address().unwrap_or_default().to_owned(),
            private_ip: eni.private_ip_address().unwrap_or_default().to_owned(),
            holder: tag(HOLDER_TAG),
            pool: tag(POOL_TAG),
        }
    }
}

/// What the tests check of an Elastic IP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressState {
    pub allocation: String,
    pub public_ip: String,
    pub association: Option<String>,
    pub instance: Option<String>,
    pub eni: Option<String>,
    pub holder: Option<String>,
}

/// Hook metadata pinning from the pool, with extra keys.
pub fn hook_metadata(pin: &str, pool: &str, extra: Value) -> String {
    let mut metadata = json!({"pin": pin, "pool": pool});
    if let (Some(m), Some(extra)) = (metadata.as_object_mut(), extra.as_object()) {
        m.extend(extra.clone());
    }
    metadata.to_string()
}

pub fn eni_metadata(pool: &str, extra: Value) -> String {
    hook_metadata("eni", pool, extra)
}

pub fn eip_metadata(pool: &str, extra: Value) -> String {
    hook_metadata("eip", pool, extra)
}

/// The instance a lifecycle event names.
pub fn instance_of(event: &Value) -> String {
    event["detail"]["EC2InstanceId"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A sample event from `events/`, as a template.
pub fn sample_event(name: &str) -> Value {
    let path = repo_root().join("events").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A sample event with its detail pointing at a real lifecycle action of the emulator.
pub fn sample_for(name: &str, action: &Value) -> Value {
    let mut event = sample_event(name);
    for key in [
        "LifecycleActionToken",
        "AutoScalingGroupName",
        "LifecycleHookName",
        "EC2InstanceId",
        "NotificationMetadata",
    ] {
        event["detail"][key] = action["event"]["detail"][key].clone();
    }
    event
}

/// Runs the futures concurrently on this task, returning their outputs in order.
pub async fn join_all<F: std::future::Future>(
    futures: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    let mut set = Vec::new();
    for future in futures {
        set.push(Box::pin(future));
    }
    let mut outputs: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in set.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs
        .into_iter()
        .map(|o| o.expect("every future finished"))
        .collect()
}

// --------------------------------------------------------------------------------------------
// The real Lambda runtime loop: cargo-lambda's Lambda API emulator and the pinhook binary.

/// The pinhook binary that cargo built beside this test or example.
pub fn pinhook_binary() -> PathBuf {
    if let Some(path) = option_env!("CARGO_BIN_EXE_pinhook") {
        return PathBuf::from(path);
    }
    // examples live in target/<profile>/examples/, the binary in target/<profile>/
    let exe = std::env::current_exe().expect("the path of this program");
    let path = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("pinhook"))
        .unwrap_or_default();
    assert!(
        path.exists(),
        "{} does not exist: build it with `cargo build --bin pinhook`",
        path.display()
    );
    path
}

/// Runs the pinhook CLI against the emulator at `endpoint`, as an operator runs it from a
/// terminal with the standard AWS environment.
pub fn pinhook_cli(endpoint: &str, args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(pinhook_binary())
        .args(args)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("AWS_PROFILE")
        .output()
        .expect("running the pinhook binary")
}

pub fn cargo_lambda() -> PathBuf {
    std::env::var_os("PINHOOK_CARGO_LAMBDA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv/bin/cargo-lambda"))
}

/// A port nobody listens on at the moment.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// pinhook running in the Lambda runtime loop, fed by cargo-lambda's emulation of the Lambda
/// APIs. Both processes are stopped by PID when this is dropped.
pub struct LambdaRuntime {
    apis: Child,
    function: std::sync::Mutex<Child>,
    pub port: u16,
    pub log: PathBuf,
}

impl LambdaRuntime {
    pub fn start(emulator: &Emulator, extra_env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let cargo_lambda = cargo_lambda();
        assert!(
            cargo_lambda.exists(),
            "{} does not exist: run `make test` or `make demo` (they install cargo-lambda into .venv), or set PINHOOK_CARGO_LAMBDA",
            cargo_lambda.display()
        );
        let log = std::env::temp_dir().join(format!("{}.log", unique("pinhook-function")));
        let apis = Command::new(&cargo_lambda)
            .args([
                "lambda",
                "watch",
                "--only-lambda-apis",
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
            ])
            .arg(port.to_string())
            .current_dir(repo_root())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", cargo_lambda.display()));
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "cargo lambda did not listen on {port} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let output = std::fs::File::create(&log).expect("a log file");
        // PINHOOK_FUNCTION_COMMAND runs another build of the function instead, e.g. the arm64
        // release artifact under qemu: "qemu-aarch64 -L /usr/aarch64-linux-gnu …/bootstrap".
        let mut command = match std::env::var("PINHOOK_FUNCTION_COMMAND") {
            Ok(line) if !line.trim().is_empty() => {
                let mut words = line.split_whitespace();
                let mut command = Command::new(words.next().unwrap_or_default());
                command.args(words);
                command
            }
            _ => Command::new(pinhook_binary()),
        };
        // The function's settings are these alone: it refuses unknown PINHOOK_ variables.
        for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("PINHOOK_")) {
            command.env_remove(name);
        }
        command
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{port}/.rt"),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", "_")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .env("AWS_REGION", REGION)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_ENDPOINT_URL", &emulator.url)
            .env("PINHOOK_POLL_INTERVAL_MS", "100")
            .env_remove("AWS_PROFILE")
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("a log file"))
            .stderr(output);
        for (key, value) in extra_env {
            command.env(key, value);
        }
        let function = command
            .spawn()
            .unwrap_or_else(|e| panic!("starting {command:?}: {e}"));
        Self {
            apis,
            function: std::sync::Mutex::new(function),
            port,
            log,
        }
    }

    /// Panics with the function's log if it is no longer running.
    fn check_running(&self) {
        let exited = self
            .function
            .lock()
            .map(|mut f| f.try_wait())
            .ok()
            .and_then(Result::ok)
            .flatten();
        if let Some(status) = exited {
            panic!("the function exited ({status}):\n{}", self.logs());
        }
    }

    /// Invokes the function through Lambda's Invoke API, as `cargo lambda invoke` does.
    pub fn invoke(&self, event: &Value) -> Value {
        let url = format!(
            "http://127.0.0.1:{}/2015-03-31/functions/_/invocations",
            self.port
        );
        self.check_running();
        let (status, body) = http("POST", &url, Some(&event.to_string())).unwrap_or_else(|e| {
            self.check_running();
            panic!("invoking: {e}\n{}", self.logs())
        });
        let body: Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("invoke answered non-JSON ({e}): {body}"));
        assert!(status < 300, "invoke answered {status}: {body}");
        body
    }

    /// Replays a file with `cargo lambda invoke --data-file`, as a user would.
    pub fn invoke_file(&self, path: &Path) -> Result<Value, String> {
        let output = Command::new(cargo_lambda())
            .args([
                "lambda",
                "invoke",
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
            ])
            .arg(self.port.to_string())
            .arg("--data-file")
            .arg(path)
            .current_dir(repo_root())
            .output()
            .map_err(|e| e.to_string())?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            return Err(format!(
                "{stdout}{}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        serde_json::from_str(stdout.trim()).map_err(|e| format!("{e}: {stdout}"))
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for LambdaRuntime {
    fn drop(&mut self) {
        if let Ok(function) = self.function.get_mut() {
            let _ = function.kill();
            let _ = function.wait();
        }
        let _ = self.apis.kill();
        let _ = self.apis.wait();
    }
}

/// The EC2 filter that selects the members of `pool`.
fn pool_filter(pool: &str) -> Filter {
    Filter::builder()
        .name(format!("tag:{POOL_TAG}"))
        .values(pool)
        .build()
}
