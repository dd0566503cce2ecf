//! How envelopes travel: the [`Bus`] a dispatcher publishes to and the
//! [`EventSink`] a context receives with.
//!
//! The contract is at-least-once: [`Bus::publish`] returns `Ok` only when the
//! receiver has durably applied (or already had) the event, and a sender keeps
//! an event in its outbox until then. Receivers deduplicate by event id.
//! [`InProcessBus`] calls the receiving context directly; a broker-backed bus
//! (NATS JetStream) implements the same trait.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::EventEnvelope;

/// A boxed, sendable future (object-safe async).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a receiver did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Applied now, durably.
    Applied,
    /// Applied before; nothing changed.
    Duplicate,
}

/// Why a receiver did not take an event (yet).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// An earlier event of the same order has not arrived: deliver again later.
    #[error("not ready: {0}")]
    NotReady(String),
    /// The receiver is busy, restarting or shutting down: deliver again later.
    #[error("receiver unavailable: {0}")]
    Unavailable(String),
    /// The receiver can never apply this event (a bug or a foreign event).
    #[error("rejected: {0}")]
    Rejected(String),
}

/// The receiving side of a context.
pub trait EventSink: Send + Sync + 'static {
    /// Applies `envelope` durably (or recognises it as a duplicate).
    fn deliver(&self, envelope: EventEnvelope) -> BoxFuture<'_, Result<Delivery, DeliveryError>>;
}

/// The sending side: where a context's dispatcher hands its outbox.
pub trait Bus: Send + Sync + 'static {
    /// Delivers `envelope`; `Ok` means the receiver has it durably.
    fn publish(&self, envelope: EventEnvelope) -> BoxFuture<'_, Result<Delivery, DeliveryError>>;
}

/// A bus inside one process: publishing calls the receiving context's sink.
#[derive(Clone)]
pub struct InProcessBus {
    target: Arc<dyn EventSink>,
}

impl std::fmt::Debug for InProcessBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InProcessBus")
    }
}

impl InProcessBus {
    /// A bus delivering to `target`.
    pub fn new(target: Arc<dyn EventSink>) -> Self {
        Self { target }
    }
}

impl Bus for InProcessBus {
    fn publish(&self, envelope: EventEnvelope) -> BoxFuture<'_, Result<Delivery, DeliveryError>> {
        self.target.deliver(envelope)
    }
}

/// Deliveries one [`RecentDeliveries`] keeps.
pub const RECENT_DELIVERIES_MAX: usize = 50;

/// One event a receiver took, as the operations console lists it (no
/// allocation: noted on every delivery).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveredEvent {
    /// The event's id.
    pub event_id: crate::events::EventId,
    /// Its type (`order_placed`, `stock_reserved`, …).
    pub kind: &'static str,
    /// The order it concerns.
    pub order_id: crate::events::OrderId,
    /// The sending context.
    pub source: crate::events::ContextName,
    /// When the sender decided it.
    pub occurred_at: crate::events::Timestamp,
    /// Whether the receiver had applied it before (a redelivery).
    pub duplicate: bool,
}

impl DeliveredEvent {
    /// The summary of `envelope`, not yet delivered.
    pub fn of(envelope: &EventEnvelope) -> DeliveredEvent {
        DeliveredEvent {
            event_id: envelope.event_id,
            kind: envelope.event.kind(),
            order_id: envelope.order_id,
            source: envelope.source,
            occurred_at: envelope.occurred_at,
            duplicate: false,
        }
    }
}

/// The last [`RECENT_DELIVERIES_MAX`] events delivered across the bus, newest last.
#[derive(Debug, Default)]
pub struct RecentDeliveries {
    ring: std::sync::Mutex<std::collections::VecDeque<DeliveredEvent>>,
}

impl RecentDeliveries {
    /// Notes that the event `delivered` summarises was delivered with `outcome`.
    pub fn note(&self, mut delivered: DeliveredEvent, outcome: Delivery) {
        delivered.duplicate = outcome == Delivery::Duplicate;
        if let Ok(mut ring) = self.ring.lock() {
            if ring.len() == RECENT_DELIVERIES_MAX {
                ring.pop_front();
            }
            ring.push_back(delivered);
        }
    }

    /// The deliveries kept, oldest first.
    pub fn list(&self) -> Vec<DeliveredEvent> {
        self.ring.lock().map(|ring| ring.iter().copied().collect()).unwrap_or_default()
    }
}
