//! What every step works over: the two AWS adapters and the function's settings (`Ctx`), and
//! when the invocation must be done by (`Deadline`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use std::future::Future;

use tokio::time::Instant;

use crate::config::Settings;

/// The narrow context of a step: the Auto Scaling and EC2 adapters, and the settings.
#[derive(Debug)]
pub struct Ctx<'a, A, E> {
    pub asg: &'a A,
    pub ec2: &'a E,
    pub settings: &'a Settings,
}

impl<A, E> Clone for Ctx<'_, A, E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<A, E> Copy for Ctx<'_, A, E> {}

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
        const MAX: Duration = Duration::from_secs(15 * 60);
        if deadline_ms < 1_000_000_000_000 {
            return Self::after(Duration::from_millis(deadline_ms).min(MAX));
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

    /// The deadline itself.
    pub fn instant(&self) -> Instant {
        self.0
    }

    /// Until when work may go on while `reserve` is kept back before the deadline.
    pub fn keeping(&self, reserve: Duration) -> Instant {
        Instant::now() + self.remaining().saturating_sub(reserve)
    }
}

/// How long the AWS calls of a step may take: until `end` (the deadline less what is kept
/// back), each attempt at most `attempt`. The adapters bound every call by it, so that no
/// attempt, backoff or retry runs past what the deadline leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallWindow {
    pub end: Instant,
    pub attempt: Duration,
}

tokio::task_local! {
    static CALL_WINDOW: CallWindow;
}

impl CallWindow {
    /// Runs `step` with its AWS calls bounded by this window.
    pub async fn bound<F: Future>(self, step: F) -> F::Output {
        CALL_WINDOW.scope(self, step).await
    }

    /// The window the current step runs in, if any: none outside the handler (the CLI's own
    /// reads, the tests' fixtures), where the client's own timeouts apply.
    pub fn current() -> Option<Self> {
        CALL_WINDOW.try_with(|window| *window).ok()
    }

    /// What is left of the window now.
    pub fn remaining(&self) -> Duration {
        self.end.saturating_duration_since(Instant::now())
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
