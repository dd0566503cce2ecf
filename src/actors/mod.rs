//! Actor runtime support shared by both contexts: supervision with a restart
//! budget, typed calls with named timeouts, retry backoff, the clock, and the
//! outbox dispatcher.
//!
//! # Contracts
//! - An aggregate actor is the only writer of its aggregate. Its mailbox is
//!   processed in order, one message at a time.
//! - A reply from an aggregate actor means the change it reports is durable.
//! - A caller that gets no reply (the actor stopped, passivated or crashed)
//!   may send the same command again: every command is idempotent or
//!   recognises its own repeat.

pub mod clock;
pub mod dispatcher;
pub mod supervisor;

use std::time::Duration;

pub use clock::{Clock, ManualClock, SystemClock};
pub use supervisor::{call, cast, ChildSpec, SpawnError, Supervisor, SupervisorMsg};

/// First retry delay of a failed effect (payment, delivery).
pub const BACKOFF_BASE: Duration = Duration::from_millis(20);
/// Longest retry delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// The delay before retry number `attempt` (0-based): doubling from
/// [`BACKOFF_BASE`] up to [`BACKOFF_MAX`].
pub fn backoff(attempt: u32) -> Duration {
    let factor = 1u32.checked_shl(attempt.min(16)).unwrap_or(u32::MAX);
    BACKOFF_BASE.saturating_mul(factor).min(BACKOFF_MAX)
}

/// Why a typed call to an actor failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The actor did not answer within the call's timeout; the command may or may not have been applied.
    #[error("the actor did not answer in time")]
    Timeout,
    /// The actor could not be reached after retries (stopping, restarting, shutting down).
    #[error("the actor is unavailable")]
    Unavailable,
    /// There is no such aggregate.
    #[error("not found")]
    NotFound,
    /// The store failed while loading the aggregate.
    #[error("storage failure: {0}")]
    Store(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_then_caps() {
        assert_eq!(backoff(0), BACKOFF_BASE);
        assert_eq!(backoff(1), BACKOFF_BASE * 2);
        assert_eq!(backoff(40), BACKOFF_MAX);
    }
}
