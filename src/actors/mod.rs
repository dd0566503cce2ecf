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
pub mod persist;
pub mod supervisor;

use std::time::Duration;

pub use clock::{Clock, SystemClock};
pub use supervisor::{
    call, cast, child, live_children, stop_tree, ChildSpec, Children, SpawnError, Supervisor, SupervisorMsg,
};

/// How long a typed call to an aggregate actor waits for its answer.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// An aggregate actor's state: the aggregate (`None` while vacant) and when it
/// last handled a message, for passivation. Nothing else lives here.
#[derive(Debug)]
pub struct Live<T> {
    /// The aggregate, or `None` for one that does not exist yet.
    pub aggregate: Option<T>,
    /// When the actor last handled a message.
    pub touched: std::time::Instant,
    /// Consecutive failed attempts of the effect being retried.
    pub attempts: u32,
    /// Whether an effect is under way (its answer comes back as a message).
    pub in_flight: bool,
    /// Changes queued in the writer and not yet known durable, oldest first
    /// (see [`persist::Change::stage`]). A handler lands them before it
    /// answers anyone and before it returns.
    pub staged: Vec<persist::Staged>,
    /// Decisions not yet handed to the writer (see [`persist::Unwritten`]).
    pub unwritten: Option<Box<persist::Unwritten>>,
    /// The last write of the actor's own that it did not wait for, because
    /// it only repeats what a durable write of another aggregate already
    /// says (a shipment's stage, which its fulfillment order recorded
    /// first). Writes commit in queue order, so it lands with any later
    /// write; the actor awaits it before it passivates, so that its
    /// successor never loads an older snapshot.
    pub unlanded: Option<persist::Staged>,
    /// The long timer armed (a reservation's expiry), cancelled when a new
    /// one is armed or the actor stops: a stopped actor leaves no sleeping
    /// task behind holding its mailbox.
    timer: Option<tokio::task::AbortHandle>,
}

impl<T> Drop for Live<T> {
    fn drop(&mut self) {
        if let Some(timer) = self.timer.take() {
            timer.abort();
        }
    }
}

impl<T> Live<T> {
    /// A live actor state around `aggregate`.
    pub fn new(aggregate: Option<T>) -> Self {
        Self {
            aggregate,
            touched: std::time::Instant::now(),
            attempts: 0,
            in_flight: false,
            staged: Vec::new(),
            unwritten: None,
            unlanded: None,
            timer: None,
        }
    }

    /// Keeps `timer` as the actor's one long timer, cancelling the previous one.
    pub fn arm<R>(&mut self, timer: &tokio::task::JoinHandle<R>) {
        if let Some(previous) = self.timer.replace(timer.abort_handle()) {
            previous.abort();
        }
    }

    /// Cancels the long timer, if one is armed: an actor that no longer
    /// needs it does not keep a sleeping task (and its memory) for it.
    pub fn disarm(&mut self) {
        if let Some(timer) = self.timer.take() {
            timer.abort();
        }
    }

    /// Whether the actor has been idle for at least `idle`.
    pub fn idle_for(&self, idle: Duration) -> bool {
        self.touched.elapsed() >= idle
    }
}

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
