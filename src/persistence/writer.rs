//! The group-committing writer: one thread owns every write to a store.
//!
//! Actors hand it [`WriteBatch`]es over a crossbeam channel. It takes every
//! batch waiting (up to [`GROUP_BATCHES_MAX`]), applies them all in one redb
//! write transaction with `Durability::Immediate`, commits (one fsync), and
//! only then answers each batch's sender. A batch is atomic: it is applied in
//! full in a transaction that commits, or the sender hears of the failure.
//! Batches commit in the order they were submitted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use redb::{Database, Durability};
use tokio::sync::oneshot;

use super::{tables, StoreError, WriteBatch, WriteOp};

/// Most batches merged into one transaction. Bounds a group's latency and memory.
pub const GROUP_BATCHES_MAX: usize = 4096;
/// Most batches waiting for the writer; a full queue makes submitters wait (backpressure).
pub const WRITE_QUEUE_MAX: usize = 65_536;

/// Where a batch's outcome goes (none for fire-and-forget writes).
type Done = Option<oneshot::Sender<Result<(), StoreError>>>;

pub(super) enum Request {
    Write { batch: WriteBatch, done: Done },
    Stop,
}

/// Counters of the writer's work, readable while it runs.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Transactions committed.
    pub commits: AtomicU64,
    /// Batches applied in those transactions.
    pub batches: AtomicU64,
    /// Transactions that failed to commit.
    pub failures: AtomicU64,
}

pub(super) fn start(
    db: Arc<Database>,
    stats: Arc<WriterStats>,
) -> Result<(Sender<Request>, JoinHandle<()>), StoreError> {
    let (sender, receiver) = crossbeam_channel::bounded(WRITE_QUEUE_MAX);
    let handle = std::thread::Builder::new()
        .name("orderdock-writer".to_owned())
        .spawn(move || run(&db, &receiver, &stats))
        .map_err(|err| StoreError::Io(format!("cannot start the writer thread: {err}")))?;
    Ok((sender, handle))
}

fn run(db: &Database, receiver: &Receiver<Request>, stats: &WriterStats) {
    let mut group: Vec<(WriteBatch, Done)> = Vec::new();
    loop {
        let mut stop = false;
        match receiver.recv() {
            Ok(Request::Write { batch, done }) => group.push((batch, done)),
            Ok(Request::Stop) | Err(_) => stop = true,
        }
        while !stop && group.len() < GROUP_BATCHES_MAX {
            match receiver.try_recv() {
                Ok(Request::Write { batch, done }) => group.push((batch, done)),
                Ok(Request::Stop) => stop = true,
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => stop = true,
            }
        }
        if !group.is_empty() {
            let result = commit_group(db, &group);
            match &result {
                Ok(()) => {
                    stats.commits.fetch_add(1, Ordering::Relaxed);
                    stats.batches.fetch_add(group.len() as u64, Ordering::Relaxed);
                }
                Err(err) => {
                    stats.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(cause = %err, batches = group.len(), "group commit failed");
                }
            }
            for (_, done) in group.drain(..) {
                if let Some(done) = done {
                    // The submitter may have stopped waiting; that is its choice.
                    let _ = done.send(result.clone());
                }
            }
        }
        if stop {
            // Answer anything still queued: the store is closed.
            while let Ok(request) = receiver.try_recv() {
                if let Request::Write { done: Some(done), .. } = request {
                    let _ = done.send(Err(StoreError::Closed));
                }
            }
            return;
        }
    }
}

fn commit_group(db: &Database, group: &[(WriteBatch, Done)]) -> Result<(), StoreError> {
    let mut txn = db.begin_write().map_err(StoreError::from_redb)?;
    txn.set_durability(Durability::Immediate).map_err(StoreError::from_redb)?;
    {
        let mut snapshots = txn.open_table(tables::SNAPSHOTS).map_err(StoreError::from_redb)?;
        let mut open = txn.open_table(tables::OPEN).map_err(StoreError::from_redb)?;
        let mut outbox = txn.open_table(tables::OUTBOX).map_err(StoreError::from_redb)?;
        let mut inbox = txn.open_table(tables::INBOX).map_err(StoreError::from_redb)?;
        let mut steps = txn.open_table(tables::SAGA_STEPS).map_err(StoreError::from_redb)?;
        let mut idempotency = txn.open_table(tables::IDEMPOTENCY).map_err(StoreError::from_redb)?;
        for (batch, _) in group {
            for op in &batch.ops {
                match op {
                    WriteOp::PutSnapshot { kind, id, bytes } => {
                        snapshots.insert((*kind, id.as_str()), bytes.as_slice()).map_err(StoreError::from_redb)?;
                    }
                    WriteOp::MarkOpen { kind, id } => {
                        open.insert((*kind, id.as_str()), ()).map_err(StoreError::from_redb)?;
                    }
                    WriteOp::MarkClosed { kind, id } => {
                        open.remove((*kind, id.as_str())).map_err(StoreError::from_redb)?;
                    }
                    WriteOp::PutOutbox { key, bytes } => {
                        outbox.insert(*key, bytes.as_slice()).map_err(StoreError::from_redb)?;
                    }
                    WriteOp::DeleteOutbox { key } => {
                        outbox.remove(*key).map_err(StoreError::from_redb)?;
                    }
                    WriteOp::RecordInbox { key, at } => {
                        inbox.insert(*key, *at).map_err(StoreError::from_redb)?;
                    }
                    WriteOp::AppendStep { order, step, bytes } => {
                        steps.insert((*order, *step), bytes.as_slice()).map_err(StoreError::from_redb)?;
                    }
                    WriteOp::PutIdempotency { key, bytes } => {
                        idempotency.insert(key.as_str(), bytes.as_slice()).map_err(StoreError::from_redb)?;
                    }
                    WriteOp::DeleteIdempotency { key } => {
                        idempotency.remove(key.as_str()).map_err(StoreError::from_redb)?;
                    }
                }
            }
        }
    }
    txn.commit().map_err(StoreError::from_redb)
}
