//! The saga log and its watchers: each change's saga steps are appended to
//! their order's log in the change's batch, and published to watchers (live
//! views, the load tool) once durable.

use crate::events::{OrderId, SagaStep, Timestamp};
use crate::persistence::{codec, StoreError, WriteOp};

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
/// order: one row per change, not per step (each row is a B-tree insert).
pub const STEPS_VERSION: u8 = 2;

/// The row that appends the steps of one change, taken from `at` on, to
/// `order`'s saga log.
///
/// # Errors
/// [`StoreError::Encode`].
pub fn append(order: OrderId, at: Timestamp, steps: &[SagaStep]) -> Result<WriteOp, StoreError> {
    Ok(WriteOp::AppendStep { order: order.as_raw(), step: step_key(at), bytes: codec::encode(STEPS_VERSION, &steps)? })
}

/// The key of a saga step taken at `at`: milliseconds in the high half, then
/// a process-wide sequence (from a random start, so keys of different runs
/// do not collide). Steps of both contexts of one process therefore sort in
/// the order they were decided, even within one millisecond — without a
/// system call per step on the commit path.
fn step_key(at: Timestamp) -> u128 {
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
    use crate::events::ContextName;

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
