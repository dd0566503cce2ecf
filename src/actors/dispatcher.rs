//! The outbox dispatcher: delivers a context's committed events over a
//! [`Bus`] and deletes each outbox row once the receiver has acknowledged it.
//!
//! Actors hand it envelopes right after their commit ([`DispatcherHandle::enqueue`]);
//! at start, and whenever its in-memory queue overflowed, it rescans the
//! store's outbox, so an event committed is delivered even across crashes.
//! Events of one order are delivered one at a time, in sequence order;
//! different orders are delivered concurrently. A failed delivery is retried
//! with backoff until it succeeds or the dispatcher stops.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{mpsc, watch};

use crate::events::bus::{Bus, DeliveryError};
use crate::events::{EventEnvelope, EventId, OrderId};
use crate::persistence::{codec, Store, WriteBatch, WriteOp};

/// Version byte of an encoded envelope in the outbox.
pub const ENVELOPE_VERSION: u8 = 1;
/// Envelopes waiting in memory before the dispatcher falls back to rescanning the outbox table.
pub const DISPATCH_QUEUE_MAX: usize = 100_000;
/// How often an overflowed dispatcher rescans the outbox table.
pub const RESCAN_INTERVAL: Duration = Duration::from_millis(200);

/// Encodes an envelope for the outbox.
///
/// # Errors
/// [`crate::persistence::StoreError::Encode`] (a programming error).
pub fn encode_envelope(envelope: &EventEnvelope) -> crate::persistence::Result<Vec<u8>> {
    codec::encode(ENVELOPE_VERSION, envelope)
}

/// Decodes an envelope from the outbox.
///
/// # Errors
/// [`crate::persistence::StoreError::Corrupt`].
pub fn decode_envelope(bytes: &[u8]) -> crate::persistence::Result<EventEnvelope> {
    codec::decode(ENVELOPE_VERSION, "outbox envelope", bytes)
}

/// Outbox rows to write with the state change that emitted `events`.
///
/// # Errors
/// [`crate::persistence::StoreError::Encode`].
pub fn outbox_ops(batch: &mut WriteBatch, events: &[EventEnvelope]) -> crate::persistence::Result<()> {
    for envelope in events {
        batch.push(WriteOp::PutOutbox { key: envelope.event_id.as_raw(), bytes: encode_envelope(envelope)? });
    }
    Ok(())
}

/// Counters of a dispatcher.
#[derive(Debug, Default)]
pub struct DispatchStats {
    /// Events delivered and acknowledged.
    pub delivered: AtomicU64,
    /// Delivery attempts that failed and were retried.
    pub retries: AtomicU64,
}

/// A handle to a running dispatcher.
#[derive(Clone, Debug)]
pub struct DispatcherHandle {
    sender: mpsc::Sender<EventEnvelope>,
    overflowed: Arc<AtomicBool>,
    pending: watch::Receiver<usize>,
    stats: Arc<DispatchStats>,
    stop: Arc<tokio::sync::Notify>,
}

impl DispatcherHandle {
    /// Hands over envelopes that were just committed to the outbox.
    pub fn enqueue(&self, events: Vec<EventEnvelope>) {
        for envelope in events {
            if self.sender.try_send(envelope).is_err() {
                // Still in the outbox table: the next rescan picks it up.
                self.overflowed.store(true, Ordering::Release);
            }
        }
    }

    /// Events queued or being delivered.
    pub fn pending(&self) -> usize {
        *self.pending.borrow()
    }

    /// Delivery counters.
    pub fn stats(&self) -> &DispatchStats {
        &self.stats
    }

    /// Waits until nothing is pending, or `timeout` passes. Returns whether it drained.
    pub async fn drain(&self, timeout: Duration) -> bool {
        let mut pending = self.pending.clone();
        tokio::time::timeout(timeout, pending.wait_for(|n| *n == 0)).await.is_ok_and(|r| r.is_ok())
    }

    /// Stops delivering. Undelivered events stay in the outbox for the next start.
    pub fn stop(&self) {
        self.stop.notify_one();
    }
}

/// Starts a dispatcher that drains `store`'s outbox onto `bus`.
pub fn start(store: Store, bus: Arc<dyn Bus>) -> DispatcherHandle {
    let (sender, receiver) = mpsc::channel(DISPATCH_QUEUE_MAX);
    let (pending_tx, pending) = watch::channel(0usize);
    let overflowed = Arc::new(AtomicBool::new(true)); // first pass reads the table
    let stats = Arc::new(DispatchStats::default());
    let stop = Arc::new(tokio::sync::Notify::new());
    let dispatcher = Dispatcher {
        store,
        bus,
        lanes: HashMap::new(),
        known: HashSet::new(),
        overflowed: overflowed.clone(),
        pending: pending_tx,
        stats: stats.clone(),
    };
    tokio::spawn(dispatcher.run(receiver, stop.clone()));
    DispatcherHandle { sender, overflowed, pending, stats, stop }
}

/// The deliveries under way, polled by the dispatcher's own task (one boxed
/// future each, not a spawned task: most of their time is spent waiting for
/// the receiver).
type Deliveries = FuturesUnordered<crate::events::bus::BoxFuture<'static, (OrderId, EventId)>>;

struct Dispatcher {
    store: Store,
    bus: Arc<dyn Bus>,
    /// Per order with an event in flight: the envelopes waiting behind it,
    /// in sequence order.
    lanes: HashMap<OrderId, VecDeque<EventEnvelope>>,
    /// Every event queued or in flight.
    known: HashSet<EventId>,
    overflowed: Arc<AtomicBool>,
    pending: watch::Sender<usize>,
    stats: Arc<DispatchStats>,
}

impl Dispatcher {
    async fn run(mut self, mut receiver: mpsc::Receiver<EventEnvelope>, stop: Arc<tokio::sync::Notify>) {
        let mut deliveries = Deliveries::new();
        let mut rescan = tokio::time::interval(RESCAN_INTERVAL);
        rescan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.notified() => break,
                Some(envelope) = receiver.recv() => self.enqueue(envelope, &mut deliveries),
                Some((order, event)) = deliveries.next() => self.delivered(order, event, &mut deliveries),
                _ = rescan.tick() => {
                    if self.overflowed.swap(false, Ordering::AcqRel) {
                        self.rescan(&mut deliveries).await;
                    }
                }
            }
            let _ = self.pending.send(self.known.len());
        }
        drop(deliveries);
    }

    fn enqueue(&mut self, envelope: EventEnvelope, deliveries: &mut Deliveries) {
        if !self.known.insert(envelope.event_id) {
            return;
        }
        match self.lanes.entry(envelope.order_id) {
            Entry::Vacant(vacant) => {
                vacant.insert(VecDeque::new());
                self.start_delivery(envelope, deliveries);
            }
            Entry::Occupied(mut lane) => {
                // Behind the one in flight, in sequence order.
                let lane = lane.get_mut();
                let at = lane.iter().position(|queued| queued.sequence > envelope.sequence).unwrap_or(lane.len());
                lane.insert(at, envelope);
            }
        }
    }

    fn delivered(&mut self, order: OrderId, event: EventId, deliveries: &mut Deliveries) {
        self.known.remove(&event);
        self.stats.delivered.fetch_add(1, Ordering::Relaxed);
        let mut batch = WriteBatch::new();
        batch.push(WriteOp::DeleteOutbox { key: event.as_raw() });
        self.store.submit(batch);
        if let Some(lane) = self.lanes.get_mut(&order) {
            match lane.pop_front() {
                Some(next) => self.start_delivery(next, deliveries),
                None => {
                    self.lanes.remove(&order);
                }
            }
        }
    }

    fn start_delivery(&self, envelope: EventEnvelope, deliveries: &mut Deliveries) {
        let bus = self.bus.clone();
        let stats = self.stats.clone();
        deliveries.push(Box::pin(async move {
            let mut attempt = 0u32;
            loop {
                match bus.publish(envelope.clone()).await {
                    Ok(_) => return (envelope.order_id, envelope.event_id),
                    Err(err) => {
                        stats.retries.fetch_add(1, Ordering::Relaxed);
                        match &err {
                            DeliveryError::Rejected(_) => {
                                tracing::error!(event_id = %envelope.event_id, cause = %err, "event rejected; retrying")
                            }
                            DeliveryError::NotReady(_) | DeliveryError::Unavailable(_) => {
                                tracing::debug!(event_id = %envelope.event_id, cause = %err, "delivery deferred")
                            }
                        }
                        tokio::time::sleep(super::backoff(attempt)).await;
                        attempt = attempt.saturating_add(1);
                    }
                }
            }
        }));
    }

    async fn rescan(&mut self, deliveries: &mut Deliveries) {
        let store = self.store.clone();
        let rows = match tokio::task::spawn_blocking(move || store.outbox()).await {
            Ok(Ok(rows)) => rows,
            Ok(Err(err)) => {
                tracing::error!(cause = %err, "cannot read the outbox; will retry");
                self.overflowed.store(true, Ordering::Release);
                return;
            }
            Err(_) => return,
        };
        let mut envelopes = Vec::with_capacity(rows.len());
        for (key, bytes) in rows {
            match decode_envelope(&bytes) {
                Ok(envelope) => envelopes.push(envelope),
                Err(err) => tracing::error!(key, cause = %err, "undecodable outbox row left in place"),
            }
        }
        envelopes.sort_by_key(|e| (e.order_id, e.sequence));
        for envelope in envelopes {
            self.enqueue(envelope, deliveries);
        }
    }
}
