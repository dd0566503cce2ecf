//! Building the write batch of one aggregate's state change: its snapshot
//! (with the ids of the events it applied: the inbox), whether its saga is
//! still open, its outbox events and its saga steps — all in one atomic
//! batch (the outbox rule).

use crate::events::{EventEnvelope, OrderId, SagaStep};
use crate::persistence::{codec, Pending, Store, StoreError, Urgency, WriteBatch, WriteOp};

use super::dispatcher::{outbox_ops, DispatcherHandle};

/// Saga steps queued for watchers before the slowest one starts losing them.
pub const WATCH_CAPACITY: usize = 65_536;

/// One order's saga step, published after it was committed.
#[derive(Debug, Clone)]
pub struct Progress {
    /// The order.
    pub order: OrderId,
    /// The step.
    pub step: SagaStep,
}

/// Where committed saga steps are published (for live views and the load tool).
/// A watcher that falls more than [`WATCH_CAPACITY`] steps behind misses some;
/// the saga log in the store stays complete.
pub type Watch = tokio::sync::broadcast::Sender<Progress>;

/// A new watch channel.
pub fn watch() -> Watch {
    tokio::sync::broadcast::channel(WATCH_CAPACITY).0
}

/// Version byte of a saga-log row holding one step (the first format, still read).
pub const STEP_VERSION: u8 = 1;
/// Version byte of a saga-log row holding the steps of one change, in
/// order: one row per change, not per step (a saga-3 order takes 11 steps
/// in about half as many changes, and each row is a B-tree insert).
pub const STEPS_VERSION: u8 = 2;

/// One aggregate's state change, ready to be written.
#[derive(Debug)]
pub struct Change {
    /// Record kind of the aggregate.
    pub kind: &'static str,
    /// The aggregate's id in text form.
    pub id: String,
    /// Its encoded snapshot.
    pub snapshot: Vec<u8>,
    /// `Some(true)` when its saga is over, `Some(false)` while it has work left, `None` for non-saga aggregates.
    pub finished: Option<bool>,
    /// The same of the aggregate before the change (`None` when it is new):
    /// the open/closed mark is written only when it changes.
    pub was_finished: Option<bool>,
    /// The order the change concerns (for the saga log).
    pub order: OrderId,
    /// Events emitted.
    pub events: Vec<EventEnvelope>,
    /// Steps taken.
    pub steps: Vec<SagaStep>,
    /// Further writes that must commit with the change (an idempotency record).
    pub extra: Option<WriteOp>,
}

impl Change {
    /// Commits the change durably (snapshot, open/closed mark, outbox events,
    /// saga steps and idempotency record in one batch), then hands its events
    /// to the dispatcher and publishes its steps to watchers. `urgency` is
    /// what the caller asks for; a change that [needs it
    /// now](Self::needs_now) is committed at once regardless.
    ///
    /// # Errors
    /// A storage failure: nothing was acknowledged and no event leaves.
    pub async fn commit(
        self,
        store: &Store,
        dispatcher: &DispatcherHandle,
        watch: &Watch,
        urgency: Urgency,
    ) -> Result<(), StoreError> {
        let urgency = if self.needs_now() { Urgency::Now } else { urgency };
        self.stage(store, urgency).await?.land(dispatcher, watch).await
    }

    /// Whether someone outside the engine may be waiting on this change
    /// (see `needs_now`).
    pub fn needs_now(&self) -> bool {
        needs_now(&self.events, self.extra.as_ref())
    }

    /// Queues the change's batch in the writer, as soon as `urgency` says,
    /// without waiting for it to be durable ([`Store::enqueue_as`]): a later
    /// write of the same store lands only if this one did. Nothing leaves
    /// until [`Staged::land`]. A change that [needs it now](Self::needs_now)
    /// may still be queued lazily when an urgent write of the same handler
    /// follows it (see [`Staged::needs_now`]).
    ///
    /// # Errors
    /// The store is closed, or a record cannot be encoded.
    pub async fn stage(self, store: &Store, urgency: Urgency) -> Result<Staged, StoreError> {
        let needs_now = self.needs_now();
        let Change { kind, id, snapshot, finished, was_finished, order, events, steps, extra } = self;
        let mut batch = WriteBatch::new();
        if let Some(finished) = finished {
            if let Some(op) = open_mark(kind, &id, was_finished, finished) {
                batch.push(op);
            }
        }
        batch.push(WriteOp::PutSnapshot { kind, id, bytes: snapshot });
        outbox_ops(&mut batch, &events)?;
        if let Some(first) = steps.first() {
            batch.push(WriteOp::AppendStep {
                order: order.as_raw(),
                step: step_key(first.at),
                bytes: codec::encode(STEPS_VERSION, &steps)?,
            });
        }
        if let Some(op) = extra {
            batch.push(op);
        }
        let pending = store.enqueue_as(batch, urgency).await?;
        Ok(Staged { pending, order, events, steps, needs_now, urgency })
    }
}

/// Whether someone outside the engine may be waiting on a change that lets
/// `events` leave (their receivers wait) and carries `extra` (an idempotency
/// record: a client waits). Applying an event is not enough: its sender is
/// the engine's dispatcher, which only deletes the outbox row once answered.
fn needs_now(events: &[EventEnvelope], extra: Option<&WriteOp>) -> bool {
    !events.is_empty() || extra.is_some()
}

/// What an aggregate actor decided since it last handed a change to the
/// writer: written as one [`Change`] (the latest snapshot, every event and
/// step) when the actor flushes — before it asks another
/// actor to act, and before it answers anyone. Consecutive decisions of one
/// handler thus cost one batch and one snapshot write, not one each.
#[derive(Debug)]
pub struct Unwritten {
    /// Whether the aggregate's saga was over before the first of them.
    pub was_finished: Option<bool>,
    /// Events emitted, in order.
    pub events: Vec<EventEnvelope>,
    /// Steps taken, in order.
    pub steps: Vec<SagaStep>,
    /// A further write to commit with them.
    pub extra: Option<WriteOp>,
}

impl Unwritten {
    /// Nothing decided yet, from an aggregate whose saga `was_finished`.
    pub fn new(was_finished: Option<bool>) -> Self {
        Self { was_finished, events: Vec::new(), steps: Vec::new(), extra: None }
    }

    /// Whether a decision that writes `extra` can join these (a batch
    /// carries one further write).
    pub fn can_take(&self, extra: Option<&WriteOp>) -> bool {
        extra.is_none() || self.extra.is_none()
    }

    /// Whether someone outside the engine may be waiting on these decisions
    /// (see `needs_now`).
    pub fn needs_now(&self) -> bool {
        needs_now(&self.events, self.extra.as_ref())
    }

    /// Adds a decision (check [`Self::can_take`] first).
    pub fn take(&mut self, events: Vec<EventEnvelope>, steps: Vec<SagaStep>, extra: Option<WriteOp>) {
        self.events.extend(events);
        self.steps.extend(steps);
        if extra.is_some() {
            self.extra = extra;
        }
    }
}

/// A change queued in the writer: its events leave and its steps are
/// published once it is durable.
#[derive(Debug)]
#[must_use = "a staged change is not durable until it lands"]
pub struct Staged {
    pending: Pending,
    order: OrderId,
    events: Vec<EventEnvelope>,
    steps: Vec<SagaStep>,
    needs_now: bool,
    urgency: Urgency,
}

impl Staged {
    /// Whether someone outside the engine may be waiting on the change
    /// ([`Change::needs_now`]).
    pub fn needs_now(&self) -> bool {
        self.needs_now
    }

    /// How it was queued.
    pub fn urgency(&self) -> Urgency {
        self.urgency
    }

    /// Waits until the change is on disk, then hands its events to the
    /// dispatcher and publishes its steps to watchers.
    ///
    /// # Errors
    /// The commit failed: nothing was acknowledged and no event leaves.
    pub async fn land(self, dispatcher: &DispatcherHandle, watch: &Watch) -> Result<(), StoreError> {
        let Staged { pending, order, events, steps, .. } = self;
        pending.durable().await?;
        dispatcher.enqueue(events);
        if watch.receiver_count() > 0 {
            for step in steps {
                // No watcher left is not an error.
                let _ = watch.send(Progress { order, step });
            }
        }
        Ok(())
    }
}

/// The write that keeps the set of open aggregates true after a change from
/// `was_finished` (`None`: a new aggregate) to `finished`, if any: an
/// aggregate is marked open once, when it is created, and closed once, when
/// its saga ends — not on every change.
pub fn open_mark(kind: &'static str, id: &str, was_finished: Option<bool>, finished: bool) -> Option<WriteOp> {
    if was_finished == Some(finished) {
        return None;
    }
    Some(if finished {
        WriteOp::MarkClosed { kind, id: id.to_owned() }
    } else {
        WriteOp::MarkOpen { kind, id: id.to_owned() }
    })
}

/// The key of a saga step taken at `at`: milliseconds in the high half, then
/// a process-wide sequence (from a random start, so keys of different runs
/// do not collide). Steps of both contexts of one process therefore sort in
/// the order they were decided, even within one millisecond — without a
/// system call per step on the commit path.
fn step_key(at: crate::events::Timestamp) -> u128 {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static SEQUENCE: OnceLock<AtomicU64> = OnceLock::new();
    let sequence = SEQUENCE.get_or_init(|| {
        let start = crate::events::ids::random_secret().map_or(0, |r| r as u64 >> 16);
        AtomicU64::new(start)
    });
    (u128::from(at.as_millis()) << 64) | u128::from(sequence.fetch_add(1, Ordering::Relaxed))
}

/// Decodes an order's saga-log rows read from its stores, in key order
/// (undecodable rows are skipped and logged).
pub fn decode_steps(mut rows: Vec<(u128, Vec<u8>)>) -> Vec<SagaStep> {
    rows.sort_by_key(|(key, _)| *key);
    let mut steps = Vec::with_capacity(rows.len() * 2);
    for (_, bytes) in rows {
        let decoded = match bytes.first() {
            Some(&STEP_VERSION) => codec::decode(STEP_VERSION, "saga step", &bytes).map(|step| vec![step]),
            _ => codec::decode(STEPS_VERSION, "saga steps", &bytes),
        };
        match decoded {
            Ok(decoded) => steps.extend(decoded),
            Err(err) => tracing::error!(cause = %err, "undecodable saga-log row skipped"),
        }
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{ContextName, SagaStep, Timestamp};

    fn step(at: u64, name: &str) -> SagaStep {
        SagaStep {
            at: Timestamp::from_millis(at),
            context: ContextName::Fulfillment,
            name: name.to_owned(),
            detail: String::new(),
            compensation: false,
        }
    }

    #[test]
    fn saga_log_rows_of_both_formats_read_back_in_key_order() {
        let (a, b, c, d) = (step(1, "a"), step(2, "b"), step(3, "c"), step(4, "d"));
        let rows = vec![
            (30, codec::encode(STEPS_VERSION, &vec![c.clone(), d.clone()]).unwrap()),
            (10, codec::encode(STEP_VERSION, &a).unwrap()),
            (25, vec![9, 9, 9]),
            (20, codec::encode(STEPS_VERSION, &vec![b.clone()]).unwrap()),
        ];
        assert_eq!(decode_steps(rows), vec![a, b, c, d], "rows by key, steps of a row in order, garbage skipped");
    }
}
