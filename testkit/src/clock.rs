//! The tests' clock, which the emulator follows. A test runs on tokio's paused clock, so a wait
//! (for a boot, a release, a heartbeat timeout) is a clock step rather than a sleep. Each request
//! carries the client's reading of that clock (`X-Pinhook-Clock`), and the emulator — started with
//! a manual clock — moves its own clock by as much as the client's moved since its last request.
//! Requests are sent on blocking threads: tokio never advances a paused clock while one runs,
//! so time stands still while the emulator answers. A delay the emulator asks for (injected
//! latency or slowness) is waited on the same clock, so an SDK timeout fires as it would.

use std::sync::Arc;
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use tokio::time::Instant;

use crate::unique;

pub const CLOCK_HEADER: &str = "x-pinhook-clock";
const DELAY_HEADER: &str = "x-pinhook-delay";
const TICKET_HEADER: &str = "x-pinhook-ticket";

/// One client of the emulator's clock: a test's world, reading tokio's clock.
#[derive(Debug, Clone)]
pub struct Clock {
    id: Arc<str>,
    start: Instant,
}

impl Clock {
    /// A clock that starts now, on the current runtime's time (paused in tests).
    pub fn new() -> Self {
        Self {
            id: unique("clock").into(),
            start: Instant::now(),
        }
    }

    /// The header value for a request made now: the client's id and its reading in seconds.
    pub fn stamp(&self) -> String {
        format!("{} {:.6}", self.id, self.start.elapsed().as_secs_f64())
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// What the emulator answered, read whole.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn delay(&self) -> Option<Duration> {
        self.header(DELAY_HEADER)
            .and_then(|d| d.trim().parse::<f64>().ok())
            .filter(|d| d.is_finite() && *d > 0.0)
            .map(Duration::from_secs_f64)
    }
}

/// The SDK's HTTP client in the tests: real HTTP to the emulator, on the emulator's clock.
#[derive(Debug, Clone)]
pub struct ClockedHttp {
    agent: ureq::Agent,
    clock: Clock,
}

impl ClockedHttp {
    pub fn new(clock: Clock) -> Self {
        Self {
            agent: agent(),
            clock,
        }
    }

    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, ConnectorError> {
        let uri: http::Uri = request
            .uri()
            .parse()
            .map_err(|e| ConnectorError::user(Box::new(e)))?;
        let headers: Vec<(String, String)> = request
            .headers()
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let body = request.body().bytes().unwrap_or_default().to_vec();
        let mut answer = self
            .exchange(request.method(), &uri.to_string(), headers, body)
            .await?;
        // A slow answer the emulator defers: it lands when the emulator's clock reaches it,
        // whether or not this request is still waiting (the SDK may have timed out meanwhile).
        while let (202, Some(ticket)) = (answer.status, answer.header(TICKET_HEADER)) {
            let ticket = ticket.to_owned();
            tokio::time::sleep(answer.delay().unwrap_or(Duration::from_millis(10))).await;
            let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
            let deferred = format!("http://{authority}/_pinhook/deferred/{ticket}");
            answer = self
                .exchange("GET", &deferred, Vec::new(), Vec::new())
                .await?;
        }
        if let Some(delay) = answer.delay() {
            tokio::time::sleep(delay).await;
        }
        let status = StatusCode::try_from(answer.status)
            .map_err(|e| ConnectorError::other(Box::new(e), None))?;
        let mut response = HttpResponse::new(status, SdkBody::from(answer.body));
        for (name, value) in answer.headers {
            response.headers_mut().append(name, value);
        }
        Ok(response)
    }

    /// One request, sent on a blocking thread and stamped with the clock.
    async fn exchange(
        &self,
        method: &str,
        url: &str,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Result<Answer, ConnectorError> {
        let mut request = http::Request::builder().method(method).uri(url);
        for (name, value) in &headers {
            if !name.eq_ignore_ascii_case("content-length") {
                request = request.header(name, value);
            }
        }
        let request = request
            .header(CLOCK_HEADER, self.clock.stamp())
            .body(body)
            .map_err(|e| ConnectorError::user(Box::new(e)))?;
        let agent = self.agent.clone();
        tokio::task::spawn_blocking(move || read(agent.run(request)))
            .await
            .map_err(|e| ConnectorError::other(Box::new(e), None))?
            .map_err(|e| ConnectorError::io(Box::new(e)))
    }
}

impl HttpConnector for ClockedHttp {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let this = self.clone();
        HttpConnectorFuture::new(async move { this.send(request).await })
    }
}

impl HttpClient for ClockedHttp {
    fn http_connector(
        &self,
        _settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

/// The blocking HTTP agent every kit request goes through: no status is an error, nothing waits
/// longer than two minutes.
pub(crate) fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

fn read(response: Result<http::Response<ureq::Body>, ureq::Error>) -> Result<Answer, ureq::Error> {
    let mut response = response?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = response
        .body_mut()
        .with_config()
        .limit(256 * 1024 * 1024)
        .read_to_vec()?;
    Ok(Answer {
        status,
        headers,
        body,
    })
}
