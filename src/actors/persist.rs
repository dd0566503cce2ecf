//! Building the write batch of one aggregate's state change: its snapshot,
//! whether its saga is still open, its outbox events, its saga steps and the
//! event it applied — all in one atomic batch (the outbox rule).

use crate::events::{EventEnvelope, EventId, OrderId, SagaStep, Timestamp};
use crate::persistence::{codec, Store, StoreError, WriteBatch, WriteOp};

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

/// Version byte of an encoded saga step.
pub const STEP_VERSION: u8 = 1;

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
    /// The order the change concerns (for the saga log).
    pub order: OrderId,
    /// Events emitted.
    pub events: Vec<EventEnvelope>,
    /// Steps taken.
    pub steps: Vec<SagaStep>,
    /// The event applied, if the change came from one.
    pub applied: Option<EventId>,
    /// When.
    pub now: Timestamp,
    /// Further writes that must commit with the change (an idempotency record).
    pub extra: Option<WriteOp>,
}

impl Change {
    /// Commits the change durably, then hands its events to the dispatcher
    /// and publishes its steps to watchers.
    ///
    /// # Errors
    /// A storage failure: nothing was acknowledged and no event leaves.
    pub async fn commit(self, store: &Store, dispatcher: &DispatcherHandle, watch: &Watch) -> Result<(), StoreError> {
        let write = batch(&self)?;
        store.commit(write).await?;
        dispatcher.enqueue(self.events);
        if watch.receiver_count() > 0 {
            for step in self.steps {
                // No watcher left is not an error.
                let _ = watch.send(Progress { order: self.order, step });
            }
        }
        Ok(())
    }
}

/// The atomic batch for `change`.
///
/// # Errors
/// [`StoreError::Encode`] (a programming error).
pub fn batch(change: &Change) -> Result<WriteBatch, StoreError> {
    let mut batch = WriteBatch::new();
    match change.finished {
        Some(true) => {
            batch.push(WriteOp::MarkClosed { kind: change.kind, id: change.id.clone() });
        }
        Some(false) => {
            batch.push(WriteOp::MarkOpen { kind: change.kind, id: change.id.clone() });
        }
        None => {}
    }
    batch.push(WriteOp::PutSnapshot { kind: change.kind, id: change.id.clone(), bytes: change.snapshot.clone() });
    outbox_ops(&mut batch, &change.events)?;
    for (n, step) in change.steps.iter().enumerate() {
        // Step ids sort by time, then by position within the change; the low
        // bits keep steps of both contexts and of repeated changes apart.
        let step_id = (u128::from(step.at.as_millis()) << 64)
            | (u128::from(n as u64) << 48)
            | (crate::events::ids::fresh_raw(step.at) & 0xFFFF_FFFF_FFFF);
        batch.push(WriteOp::AppendStep {
            order: change.order.as_raw(),
            step: step_id,
            bytes: codec::encode(STEP_VERSION, step)?,
        });
    }
    if let Some(op) = &change.extra {
        batch.push(op.clone());
    }
    if let Some(event) = change.applied {
        batch.push(WriteOp::RecordInbox { key: event.as_raw(), at: change.now.as_millis() });
    }
    Ok(batch)
}

/// Decodes an order's saga steps as read from a store (undecodable rows are skipped and logged).
pub fn decode_steps(rows: Vec<Vec<u8>>) -> Vec<SagaStep> {
    rows.into_iter()
        .filter_map(|bytes| match codec::decode(STEP_VERSION, "saga step", &bytes) {
            Ok(step) => Some(step),
            Err(err) => {
                tracing::error!(cause = %err, "undecodable saga step skipped");
                None
            }
        })
        .collect()
}
