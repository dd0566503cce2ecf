//! Actor runtime support shared by both contexts: the aggregate runtime
//! (how every aggregate persists a decision), supervision with a restart
//! budget, typed calls with named timeouts, retry backoff, the clock, the
//! saga log and the outbox dispatcher.
//!
//! # Contracts
//! - An aggregate actor is the only writer of its aggregate. Its mailbox is
//!   processed in order, one message at a time.
//! - A reply from an aggregate actor means the change it reports is durable,
//!   but for the few *after queued* answers that [`aggregate`] names.
//! - A caller that gets no reply (the actor stopped, passivated or crashed)
//!   may send the same command again: every command is idempotent or
//!   recognises its own repeat.

pub mod aggregate;
pub mod clock;
pub mod dispatcher;
pub mod saga_log;
pub mod supervisor;

use std::time::Duration;

pub use aggregate::{Aggregate, Answer, Journal, Live, Transition};
pub use clock::{Clock, SystemClock};
pub use supervisor::{
    call, cast, child, live_children, stop_tree, ChildSpec, Children, SpawnError, Supervisor, SupervisorMsg,
};

/// How long a typed call to an aggregate actor waits for its answer.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Shortest pause between an aggregate actor's idle checks.
pub const IDLE_CHECK_MIN: Duration = Duration::from_millis(50);

/// How often an actor that passivates after `idle_after` checks whether it is
/// idle: half that period (at least [`IDLE_CHECK_MIN`]), so a live actor costs
/// two timer wake-ups per idle period, not a steady stream of them.
pub fn idle_check_interval(idle_after: Duration) -> Duration {
    (idle_after / 2).max(IDLE_CHECK_MIN)
}

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

/// Boxes an actor's message handler, so that an actor at rest (its task
/// parked between messages) holds a pointer instead of the handler's
/// largest future state: the heap cost is paid only while a message is
/// being handled.
pub(crate) fn boxed<'a, F>(future: F) -> std::pin::Pin<Box<F>>
where
    F: std::future::Future<Output = Result<(), ractor::ActorProcessingErr>> + Send + 'a,
{
    Box::pin(future)
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
