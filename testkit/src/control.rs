//! The emulator's control API (`/_pinhook/…`, see `emulator/README.md`), and plain HTTP for the
//! Lambda invoke API: one blocking request each, through the kit's one HTTP agent.

use serde_json::{Value, json};

use crate::clock::{CLOCK_HEADER, Clock, agent};
use crate::process::Emulator;

/// Sends one request; its status and body. With a stamp, the emulator's manual clock first
/// catches up with the client's.
pub fn request(
    method: &str,
    url: &str,
    body: Option<&Value>,
    stamp: Option<String>,
) -> Result<(u16, String), String> {
    let mut request = http::Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json");
    if let Some(stamp) = stamp {
        request = request.header(CLOCK_HEADER, stamp);
    }
    let body = body.map(Value::to_string).unwrap_or_default();
    let request = request
        .body(body.into_bytes())
        .map_err(|e| format!("{method} {url}: {e}"))?;
    let mut response = agent()
        .run(request)
        .map_err(|e| format!("{method} {url}: {e}"))?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(256 * 1024 * 1024)
        .read_to_string()
        .map_err(|e| format!("{method} {url}: {e}"))?;
    Ok((status, text))
}

/// The emulator's control API as one client sees it: stamped with its clock, if it has one.
#[derive(Debug, Clone)]
pub struct Control {
    pub url: String,
    emulator: &'static Emulator,
    clock: Option<Clock>,
}

impl Control {
    pub fn new(emulator: &'static Emulator, clock: Option<Clock>) -> Self {
        Self {
            url: emulator.url.clone(),
            emulator,
            clock,
        }
    }

    pub fn pid(&self) -> u32 {
        self.emulator.pid()
    }

    /// Stops the emulator (by its PID).
    pub fn stop(&self) {
        self.emulator.stop();
    }

    /// Gives an emulator of the test's own back for the next test, reset to a fresh account.
    pub fn release(&self) {
        self.emulator.release();
    }

    /// One control request; its JSON answer, which must be a success.
    pub fn control(&self, method: &str, route: &str, body: Option<&Value>) -> Value {
        let url = format!("{}/_pinhook/{route}", self.url);
        let stamp = self.clock.as_ref().map(Clock::stamp);
        let (status, reply) = request(method, &url, body, stamp).unwrap_or_else(|e| panic!("{e}"));
        assert!(status < 300, "{method} {url} answered {status}: {reply}");
        serde_json::from_str(&reply)
            .unwrap_or_else(|e| panic!("{method} {url} answered non-JSON ({e}): {reply}"))
    }

    /// The lifecycle actions of a group: pending ones, or all with `all`.
    pub fn actions(&self, group: &str, all: bool) -> Vec<Value> {
        let route = format!(
            "lifecycle-actions?group={group}{}",
            if all { "&all=1" } else { "" }
        );
        array(self.control("GET", &route, None), "actions")
    }

    /// The EventBridge events of the group's pending lifecycle actions.
    pub fn pending_events(&self, group: &str) -> Vec<Value> {
        self.actions(group, false)
            .into_iter()
            .map(|a| a["event"].clone())
            .collect()
    }

    /// The action of an instance for a transition (`launch` or `terminate`), pending or not.
    pub fn action_of(&self, group: &str, instance: &str, transition: &str) -> Value {
        let wanted = match transition {
            "launch" => "autoscaling:EC2_INSTANCE_LAUNCHING",
            _ => "autoscaling:EC2_INSTANCE_TERMINATING",
        };
        self.actions(group, true)
            .into_iter()
            .find(|a| a["instance_id"] == instance && a["transition"] == wanted)
            .unwrap_or_else(|| panic!("no {transition} action for {instance} in {group}"))
    }

    /// The requests the emulator served whose recorded parameters match, e.g.
    /// `[("action", "AttachNetworkInterface"), ("InstanceId", "i-…")]`.
    pub fn requests(&self, matching: &[(&str, &str)]) -> Vec<Value> {
        let query: Vec<String> = matching.iter().map(|(k, v)| format!("{k}={v}")).collect();
        array(
            self.control("GET", &format!("requests?{}", query.join("&")), None),
            "requests",
        )
    }

    /// Requests served so far, per action.
    pub fn calls(&self) -> Value {
        self.control("GET", "calls", None)
    }

    /// The AWS calls made so far, by operation.
    pub fn call_counts(&self) -> std::collections::BTreeMap<String, u64> {
        let calls = self.calls();
        calls["calls"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The AWS calls made since `before` (a [`Control::call_counts`]), by operation.
    pub fn calls_since(
        &self,
        before: &std::collections::BTreeMap<String, u64>,
    ) -> std::collections::BTreeMap<String, u64> {
        self.call_counts()
            .into_iter()
            .map(|(op, n)| {
                let since = n - before.get(&op).copied().unwrap_or(0);
                (op, since)
            })
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// The race a claimer armed for `victim` made happen: what it took.
    pub fn claimer_fired(&self, victim: &str) -> Value {
        let fired = self.control("GET", "claimers", None)["fired"].clone();
        fired
            .as_array()
            .and_then(|f| f.iter().find(|f| f["victim"] == victim).cloned())
            .unwrap_or_else(|| panic!("no claimer fired for {victim}: {fired}"))
    }

    /// Before `victim`'s next claim lands, `winner` takes that very member.
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

    /// Auto Scaling's reads show each instance's previous lifecycle state for `seconds` after
    /// every transition, and (`unlisted`) a new instance not at all. For an emulator of the
    /// test's own.
    pub fn asg_lag(&self, seconds: f64, unlisted: bool) {
        self.settings(json!({"asg_lag": seconds, "asg_lag_unlisted": unlisted}));
    }

    /// Makes the emulator fail a share of all requests (0 turns it off), and slow another share.
    pub fn faults(&self, rate: f64, slow_rate: f64) {
        self.control(
            "POST",
            "faults",
            Some(&json!({"rate": rate, "slow_rate": slow_rate, "slow_seconds": [0.05, 0.4]})),
        );
    }

    /// Moves the emulator's clock on by `seconds`, firing what falls due.
    pub fn advance(&self, seconds: f64) -> Value {
        self.control("POST", "clock/advance", Some(&json!({"seconds": seconds})))
    }

    /// The EC2 state-change events the emulator published for an instance, in order.
    pub fn ec2_events(&self, instance: &str) -> Vec<Value> {
        array(
            self.control("GET", &format!("ec2-events?instance={instance}"), None),
            "events",
        )
    }
}

fn array(mut value: Value, key: &str) -> Vec<Value> {
    match value[key].take() {
        Value::Array(items) => items,
        _ => Vec::new(),
    }
}
