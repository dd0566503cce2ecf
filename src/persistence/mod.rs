//! Durable storage on redb: the only module that names redb.
//!
//! One [`Store`] per context (one redb file). Its surface is small and knows
//! no domain: snapshots by (kind, id), a set of open (non-terminal)
//! aggregates, an outbox of encoded events, an inbox of applied event ids, a
//! per-order saga step log and idempotency records. Contexts encode their own
//! records with [`codec`] (postcard behind a version byte).
//!
//! Writes go through [`Store::commit`]: the batch is handed to the store's
//! single writer thread ([`writer`]), which merges every waiting batch into one
//! `Durability::Immediate` transaction. **When `commit` returns `Ok`, the batch
//! is on disk.** Reads are synchronous and cheap (MVCC read transactions that
//! never wait for the writer); async callers run them on a blocking thread.

pub mod codec;
pub mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crossbeam_channel::Sender;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use tokio::sync::oneshot;

pub use writer::{WriterStats, LAZY_WRITE_DELAY};

/// Bytes of page cache redb may use per store.
pub const CACHE_BYTES: usize = 64 * 1024 * 1024;

pub(crate) mod tables {
    use super::TableDefinition;

    /// (kind, id) -> versioned snapshot bytes.
    pub(crate) const SNAPSHOTS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("snapshots_v1");
    /// (kind, id) of every aggregate whose saga is not terminal: what recovery resumes.
    pub(crate) const OPEN: TableDefinition<(&str, &str), ()> = TableDefinition::new("open_v1");
    /// event id -> encoded envelope, until the receiver has acknowledged it.
    pub(crate) const OUTBOX: TableDefinition<u128, &[u8]> = TableDefinition::new("outbox_v1");
    /// event id -> when it was applied (ms since the epoch).
    pub(crate) const INBOX: TableDefinition<u128, u64> = TableDefinition::new("inbox_v1");
    /// (order id, step id) -> encoded saga step.
    pub(crate) const SAGA_STEPS: TableDefinition<(u128, u128), &[u8]> = TableDefinition::new("saga_steps_v1");
    /// idempotency key -> encoded record.
    pub(crate) const IDEMPOTENCY: TableDefinition<&str, &[u8]> = TableDefinition::new("idempotency_v1");
}

/// A storage failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The file or a record in it is not what was written: the store fails stop.
    #[error("corrupt store ({what}): {detail}")]
    Corrupt {
        /// Which file, table or record.
        what: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The store file is already open in another process or engine.
    #[error("the store is already open elsewhere")]
    AlreadyOpen,
    /// An I/O or transaction failure. A commit that fails this way may or may
    /// not have reached the disk: callers treat the outcome as unknown.
    #[error("storage failure: {0}")]
    Io(String),
    /// A value could not be encoded (a programming error).
    #[error("cannot encode a record: {0}")]
    Encode(String),
    /// The store has been closed.
    #[error("the store is closed")]
    Closed,
}

impl StoreError {
    fn from_redb(err: impl Into<redb::Error>) -> Self {
        match err.into() {
            redb::Error::Corrupted(detail) => StoreError::Corrupt { what: "redb file".to_owned(), detail },
            redb::Error::DatabaseAlreadyOpen => StoreError::AlreadyOpen,
            // A file that is not a redb database (wrong magic number) is damaged or foreign, not an I/O fault.
            redb::Error::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => {
                StoreError::Corrupt { what: "redb file".to_owned(), detail: io.to_string() }
            }
            other => StoreError::Io(other.to_string()),
        }
    }
}

/// Result alias for this module.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// One write inside a [`WriteBatch`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum WriteOp {
    /// Store a snapshot.
    PutSnapshot {
        /// Record kind (`order`, `bin`, …).
        kind: &'static str,
        /// The aggregate's id in text form.
        id: String,
        /// Versioned bytes.
        bytes: Vec<u8>,
    },
    /// Mark an aggregate as having work left (recovery resumes it).
    MarkOpen {
        /// Record kind.
        kind: &'static str,
        /// The aggregate's id.
        id: String,
    },
    /// Mark an aggregate as terminal.
    MarkClosed {
        /// Record kind.
        kind: &'static str,
        /// The aggregate's id.
        id: String,
    },
    /// Append an event to the outbox.
    PutOutbox {
        /// The event id.
        key: u128,
        /// The encoded envelope.
        bytes: Vec<u8>,
    },
    /// Drop a delivered event from the outbox.
    DeleteOutbox {
        /// The event id.
        key: u128,
    },
    /// Record an applied event id.
    RecordInbox {
        /// The event id.
        key: u128,
        /// When it was applied, in ms since the epoch.
        at: u64,
    },
    /// Append a step to an order's saga log.
    AppendStep {
        /// The order id.
        order: u128,
        /// The step id (time-ordered).
        step: u128,
        /// The encoded step.
        bytes: Vec<u8>,
    },
    /// Store an idempotency record.
    PutIdempotency {
        /// The scoped key.
        key: String,
        /// The encoded record.
        bytes: Vec<u8>,
    },
    /// Remove an idempotency record.
    DeleteIdempotency {
        /// The scoped key.
        key: String,
    },
}

/// How soon a queued batch must reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Urgency {
    /// Commit as soon as the writer is free: someone outside the engine (a
    /// caller, a receiver of events) waits on it.
    Now,
    /// May wait up to [`writer::LAZY_WRITE_DELAY`] for an urgent batch to
    /// share its commit: only the engine's own bookkeeping waits on it.
    Lazy,
}

/// A batch queued in the writer ([`Store::enqueue`]), not yet known durable.
#[derive(Debug)]
#[must_use = "a queued batch is not durable until `durable` says so"]
pub struct Pending(oneshot::Receiver<Result<()>>);

impl Pending {
    /// Waits until the batch is on disk.
    ///
    /// # Errors
    /// The commit failed (the outcome is unknown), or the store closed first.
    pub async fn durable(self) -> Result<()> {
        self.0.await.map_err(|_| StoreError::Closed)?
    }
}

/// Writes that commit together or not at all.
#[derive(Debug, Clone, Default)]
pub struct WriteBatch {
    ops: Vec<WriteOp>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a write.
    pub fn push(&mut self, op: WriteOp) -> &mut Self {
        self.ops.push(op);
        self
    }

    /// Whether the batch writes nothing.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The writes in order.
    pub fn ops(&self) -> &[WriteOp] {
        &self.ops
    }
}

/// Figures about a store, for `inspect`, metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreStats {
    /// Events written to the outbox and not yet acknowledged by their receiver.
    pub outbox_len: u64,
    /// Applied event ids in the inbox.
    pub inbox_len: u64,
    /// Aggregates with work left.
    pub open_len: u64,
    /// Transactions committed by the writer since the store was opened.
    pub commits: u64,
    /// Batches applied in those transactions.
    pub batches: u64,
}

struct Inner {
    /// `None` once closed: dropping the last handle releases the file lock.
    db: std::sync::RwLock<Option<Arc<Database>>>,
    path: PathBuf,
    sender: Sender<writer::Request>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    stats: Arc<WriterStats>,
}

/// A context's durable store. Cheap to clone; every clone shares one writer.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.inner.path).finish()
    }
}

impl Store {
    /// Opens (or creates) the store at `path`, checks its integrity, creates
    /// missing tables and starts its writer thread.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for a damaged or foreign file (never a panic, never
    /// a silently empty store), [`StoreError::AlreadyOpen`], or [`StoreError::Io`].
    pub fn open(path: &Path) -> Result<Store> {
        let existed = path.exists();
        if existed {
            let len = std::fs::metadata(path).map_err(|err| StoreError::Io(err.to_string()))?.len();
            if len == 0 {
                return Err(StoreError::Corrupt {
                    what: path.display().to_string(),
                    detail: "the file is empty".to_owned(),
                });
            }
        }
        let built = std::panic::catch_unwind(|| Database::builder().set_cache_size(CACHE_BYTES).create(path));
        let mut db = match built {
            Ok(result) => result.map_err(|err| StoreError::from_redb(err).in_file(path))?,
            Err(_) => {
                return Err(StoreError::Corrupt {
                    what: path.display().to_string(),
                    detail: "redb could not read the file".to_owned(),
                })
            }
        };
        if existed {
            let intact = db.check_integrity().map_err(|err| StoreError::from_redb(err).in_file(path))?;
            if !intact {
                tracing::warn!(path = %path.display(), "store was repaired on open");
            }
        }
        let txn = db.begin_write().map_err(StoreError::from_redb)?;
        {
            txn.open_table(tables::SNAPSHOTS).map_err(StoreError::from_redb)?;
            txn.open_table(tables::OPEN).map_err(StoreError::from_redb)?;
            txn.open_table(tables::OUTBOX).map_err(StoreError::from_redb)?;
            txn.open_table(tables::INBOX).map_err(StoreError::from_redb)?;
            txn.open_table(tables::SAGA_STEPS).map_err(StoreError::from_redb)?;
            txn.open_table(tables::IDEMPOTENCY).map_err(StoreError::from_redb)?;
        }
        txn.commit().map_err(StoreError::from_redb)?;
        let db = Arc::new(db);
        let stats = Arc::new(WriterStats::default());
        let (sender, thread) = writer::start(db.clone(), stats.clone())?;
        Ok(Store {
            inner: Arc::new(Inner {
                db: std::sync::RwLock::new(Some(db)),
                path: path.to_owned(),
                sender,
                thread: Mutex::new(Some(thread)),
                stats,
            }),
        })
    }

    /// The file behind this store.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Commits `batch` and returns once it is durable.
    ///
    /// # Errors
    /// [`StoreError::Closed`] after [`Store::close`]; [`StoreError::Io`] when the
    /// transaction failed (the outcome is then unknown to the caller).
    pub async fn commit(&self, batch: WriteBatch) -> Result<()> {
        self.enqueue(batch).await?.durable().await
    }

    /// Queues `batch` behind every batch queued before it and returns once
    /// it is queued, not once it is durable. The writer commits batches in
    /// queue order and stops at the first failure, so a batch queued after
    /// this one — by anyone — is durable only if this one is: a bin can answer
    /// a reservation before its write lands, because the fulfillment order
    /// acts on the answer only through a later write of its own. Whoever
    /// acknowledges anything outside the store awaits [`Pending::durable`].
    ///
    /// # Errors
    /// [`StoreError::Closed`].
    pub async fn enqueue(&self, batch: WriteBatch) -> Result<Pending> {
        self.enqueue_as(batch, Urgency::Now).await
    }

    /// [`Store::enqueue`] with a say in when the commit happens: a
    /// [`Urgency::Lazy`] batch waits up to [`writer::LAZY_WRITE_DELAY`] for an
    /// urgent one to share its fsync.
    ///
    /// # Errors
    /// [`StoreError::Closed`].
    pub async fn enqueue_as(&self, batch: WriteBatch, urgency: Urgency) -> Result<Pending> {
        let (done, wait) = oneshot::channel();
        if batch.is_empty() {
            let _ = done.send(Ok(()));
            return Ok(Pending(wait));
        }
        self.send(writer::Request::Write { batch, done: Some(done), lazy: urgency == Urgency::Lazy }).await?;
        Ok(Pending(wait))
    }

    /// Waits until every batch queued before the call has landed (or failed):
    /// what a reader of the store does before it trusts a snapshot whose
    /// writer may have answered ahead of its write.
    ///
    /// # Errors
    /// The writer's failure, or [`StoreError::Closed`].
    pub async fn settled(&self) -> Result<()> {
        let (done, wait) = oneshot::channel();
        self.send(writer::Request::Write { batch: WriteBatch::new(), done: Some(done), lazy: false }).await?;
        wait.await.map_err(|_| StoreError::Closed)?
    }

    /// Queues `batch` without waiting for it: for writes whose loss is
    /// harmless (deleting delivered outbox rows, which would only be delivered
    /// again and deduplicated).
    pub fn submit(&self, batch: WriteBatch) {
        if batch.is_empty() {
            return;
        }
        let request = writer::Request::Write { batch, done: None, lazy: true };
        if let Err(err) = self.inner.sender.try_send(request) {
            // Full or closed: hand it over from a blocking thread rather than stall an async one.
            let sender = self.inner.sender.clone();
            let request = err.into_inner();
            std::thread::spawn(move || {
                let _ = sender.send(request);
            });
        }
    }

    async fn send(&self, request: writer::Request) -> Result<()> {
        match self.inner.sender.try_send(request) {
            Ok(()) => Ok(()),
            Err(crossbeam_channel::TrySendError::Disconnected(_)) => Err(StoreError::Closed),
            Err(crossbeam_channel::TrySendError::Full(request)) => {
                let sender = self.inner.sender.clone();
                tokio::task::spawn_blocking(move || sender.send(request).map_err(|_| StoreError::Closed))
                    .await
                    .map_err(|_| StoreError::Closed)?
            }
        }
    }

    /// Stops the writer after the batches already queued, waits for it and
    /// releases the file (reads fail with [`StoreError::Closed`] afterwards).
    pub fn close(&self) {
        let _ = self.inner.sender.send(writer::Request::Stop);
        let thread = self.inner.thread.lock().ok().and_then(|mut guard| guard.take());
        if let Some(thread) = thread {
            let _ = thread.join();
        }
        if let Ok(mut db) = self.inner.db.write() {
            db.take();
        }
    }

    fn db(&self) -> Result<Arc<Database>> {
        self.inner.db.read().ok().and_then(|db| db.clone()).ok_or(StoreError::Closed)
    }

    /// The snapshot of `(kind, id)`, if any.
    ///
    /// # Errors
    /// [`StoreError::Io`] or [`StoreError::Corrupt`].
    pub fn snapshot(&self, kind: &str, id: &str) -> Result<Option<Vec<u8>>> {
        let txn = self.db()?.begin_read().map_err(StoreError::from_redb)?;
        let table = txn.open_table(tables::SNAPSHOTS).map_err(StoreError::from_redb)?;
        let value = table.get((kind, id)).map_err(StoreError::from_redb)?;
        Ok(value.map(|guard| guard.value().to_vec()))
    }

    /// Every snapshot of `kind`, in id order.
    ///
    /// # Errors
    /// [`StoreError::Io`] or [`StoreError::Corrupt`].
    pub fn snapshots(&self, kind: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let txn = self.db()?.begin_read().map_err(StoreError::from_redb)?;
        let table = txn.open_table(tables::SNAPSHOTS).map_err(StoreError::from_redb)?;
        let mut found = Vec::new();
        for row in table.range((kind, "")..).map_err(StoreError::from_redb)? {
            let (key, value) = row.map_err(StoreError::from_redb)?;
            let (row_kind, id) = key.value();
            if row_kind != kind {
                break;
            }
            found.push((id.to_owned(), value.value().to_vec()));
        }
        Ok(found)
    }

    /// Up to `max` snapshots of `kind` with ids after `after` (exclusive), in id order.
    ///
    /// # Errors
    /// [`StoreError::Io`] or [`StoreError::Corrupt`].
    pub fn snapshots_after(&self, kind: &str, after: Option<&str>, max: usize) -> Result<Vec<(String, Vec<u8>)>> {
        let txn = self.db()?.begin_read().map_err(StoreError::from_redb)?;
        let table = txn.open_table(tables::SNAPSHOTS).map_err(StoreError::from_redb)?;
        let mut found = Vec::new();
        for row in table.range((kind, after.unwrap_or(""))..).map_err(StoreError::from_redb)? {
            let (key, value) = row.map_err(StoreError::from_redb)?;
            let (row_kind, id) = key.value();
            if row_kind != kind || found.len() >= max {
                break;
            }
            if Some(id) == after {
                continue;
            }
            found.push((id.to_owned(), value.value().to_vec()));
        }
        Ok(found)
    }

    /// Every idempotency record, by key.
    ///
    /// # Errors
    /// [`StoreError::Io`] or [`StoreError::Corrupt`].
    pub fn idempotency_records(&self) -> Result<Vec<(String, Vec<u8>)>> {
        let txn = self.db()?.begin_read().map_err(StoreError::from_redb)?;
        let table = txn.open_table(tables::IDEMPOTENCY).map_err(StoreError::from_redb)?;
        let mut found = Vec::new();
        for row in table.iter().map_err(StoreError::from_redb)? {
            let (key, value) = row.map_err(StoreError::from_redb)?;
            found.push((key.value().to_owned(), value.value().to_vec()));
        }
        Ok(found)
    }

    /// The ids of aggregates of `kind` marked open (work left).
    ///
    /// # Errors
    /// [`StoreError::Io`] or [`StoreError::Corrupt`].
    pub fn open_ids(&self, kind: &str) -> Result<Vec<String>> {
        let txn = self.db()?.begin_read().map_err(StoreError::from_redb)?;
        let table = txn.open_table(tables::OPEN).map_err(StoreError::from_redb)?;
        let mut found = Vec::new();
        for row in table.range((kind, "")..).map_err(StoreError::from_redb)? {
            let (key, _) = row.map_err(StoreError::from_redb)?;
            let (row_kind, id) = key.value();
            if row_kind != kind {
                break;
            }
            found.push(id.to_owned());
        }
        Ok(found)
    }

    /// The snapshot of every aggregate of `kind` marked open, read in one
    /// transaction (what recovery looks at).
    ///
    /// # Errors
    /// [`StoreError::Io`] or [`StoreError::Corrupt`].
    pub fn open_snapshots(&self, kind: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let txn = self.db()?.begin_read().map_err(StoreError::from_redb)?;
        let open = txn.open_table(tables::OPEN).map_err(StoreError::from_redb)?;
        let snapshots = txn.open_table(tables::SNAPSHOTS).map_err(StoreError::from_redb)?;
        let mut found = Vec::new();
        for row in open.range((kind, "")..).map_err(StoreError::from_redb)? {
            let (key, _) = row.map_err(StoreError::from_redb)?;
            let (row_kind, id) = key.value();
            if row_kind != kind {
                break;
            }
            if let Some(bytes) = snapshots.get((kind, id)).map_err(StoreError::from_redb)? {
                found.push((id.to_owned(), bytes.value().to_vec()));
            }
        }
        Ok(found)
    }

    /// Every undelivered outbox entry, by event id.
    ///
    /// # Errors
    /// [`StoreError::Io`] or [`StoreError::Corrupt`].
    pub fn outbox(&self) -> Result<Vec<(u128, Vec<u8>)>> {
        let txn = self.db()?.begin_read().map_err(StoreError::from_redb)?;
        let table = txn.open_table(tables::OUTBOX).map_err(StoreError::from_redb)?;
        let mut found = Vec::new();
        for row in table.iter().map_err(StoreError::from_redb)? {
            let (key, value) = row.map_err(StoreError::from_redb)?;
            found.push((key.value(), value.value().to_vec()));
        }
        Ok(found)
    }

    /// The saga steps of `order` with their keys, in key (time) order.
    ///
    /// # Errors
    /// [`StoreError::Io`] or [`StoreError::Corrupt`].
    pub fn steps(&self, order: u128) -> Result<Vec<(u128, Vec<u8>)>> {
        let txn = self.db()?.begin_read().map_err(StoreError::from_redb)?;
        let table = txn.open_table(tables::SAGA_STEPS).map_err(StoreError::from_redb)?;
        let mut found = Vec::new();
        for row in table.range((order, 0u128)..=(order, u128::MAX)).map_err(StoreError::from_redb)? {
            let (key, value) = row.map_err(StoreError::from_redb)?;
            found.push((key.value().1, value.value().to_vec()));
        }
        Ok(found)
    }

    /// The idempotency record under `key`, if any.
    ///
    /// # Errors
    /// [`StoreError::Io`] or [`StoreError::Corrupt`].
    pub fn idempotency(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let txn = self.db()?.begin_read().map_err(StoreError::from_redb)?;
        let table = txn.open_table(tables::IDEMPOTENCY).map_err(StoreError::from_redb)?;
        let value = table.get(key).map_err(StoreError::from_redb)?;
        Ok(value.map(|guard| guard.value().to_vec()))
    }

    /// Counts of the store's tables and writer.
    ///
    /// # Errors
    /// [`StoreError::Io`] or [`StoreError::Corrupt`].
    pub fn stats(&self) -> Result<StoreStats> {
        use std::sync::atomic::Ordering;
        let txn = self.db()?.begin_read().map_err(StoreError::from_redb)?;
        let outbox = txn.open_table(tables::OUTBOX).map_err(StoreError::from_redb)?;
        let inbox = txn.open_table(tables::INBOX).map_err(StoreError::from_redb)?;
        let open = txn.open_table(tables::OPEN).map_err(StoreError::from_redb)?;
        Ok(StoreStats {
            outbox_len: outbox.len().map_err(StoreError::from_redb)?,
            inbox_len: inbox.len().map_err(StoreError::from_redb)?,
            open_len: open.len().map_err(StoreError::from_redb)?,
            commits: self.inner.stats.commits.load(Ordering::Relaxed),
            batches: self.inner.stats.batches.load(Ordering::Relaxed),
        })
    }
}

impl StoreError {
    fn in_file(self, path: &Path) -> Self {
        match self {
            StoreError::Corrupt { detail, .. } => StoreError::Corrupt { what: path.display().to_string(), detail },
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(kind: &'static str, id: &str, bytes: &[u8]) -> WriteOp {
        WriteOp::PutSnapshot { kind, id: id.to_owned(), bytes: bytes.to_vec() }
    }

    #[tokio::test]
    async fn committed_batches_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        {
            let store = Store::open(&path).unwrap();
            let mut batch = WriteBatch::new();
            batch.push(put("order", "a", b"1")).push(WriteOp::PutOutbox { key: 7, bytes: vec![9] });
            batch.push(WriteOp::MarkOpen { kind: "order", id: "a".to_owned() });
            store.commit(batch).await.unwrap();
            store.close();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.snapshot("order", "a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(store.outbox().unwrap(), vec![(7, vec![9])]);
        assert_eq!(store.open_ids("order").unwrap(), vec!["a".to_owned()]);
        assert!(store.open_ids("bin").unwrap().is_empty());
        store.close();
    }

    #[tokio::test]
    async fn many_concurrent_commits_are_grouped_and_all_durable() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        let mut tasks = Vec::new();
        for i in 0..500u32 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut batch = WriteBatch::new();
                batch.push(put("bin", &format!("{i:04}"), &i.to_le_bytes()));
                store.commit(batch).await
            }));
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(store.snapshots("bin").unwrap().len(), 500);
        let stats = store.stats().unwrap();
        assert_eq!(stats.batches, 500);
        assert!(stats.commits <= stats.batches);
        store.close();
    }

    #[tokio::test]
    async fn a_commit_lands_every_batch_queued_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        let mut queued = Vec::new();
        for i in 0..50u32 {
            let mut batch = WriteBatch::new();
            batch.push(put("bin", &format!("{i:04}"), &i.to_le_bytes()));
            queued.push(store.enqueue(batch).await.unwrap());
        }
        let mut last = WriteBatch::new();
        last.push(put("order", "after", b"x"));
        store.commit(last).await.unwrap();
        // Durable after the later commit, without waiting on any of them.
        assert_eq!(store.snapshots("bin").unwrap().len(), 50);
        for pending in queued {
            pending.durable().await.unwrap();
        }
        store.close();
    }

    #[tokio::test]
    async fn settled_waits_for_queued_and_fire_and_forget_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        let mut batch = WriteBatch::new();
        batch.push(put("bin", "queued", b"1"));
        let pending = store.enqueue(batch).await.unwrap();
        let mut batch = WriteBatch::new();
        batch.push(WriteOp::PutOutbox { key: 1, bytes: vec![1] });
        store.submit(batch);
        store.settled().await.unwrap();
        assert_eq!(store.snapshot("bin", "queued").unwrap(), Some(b"1".to_vec()));
        assert_eq!(store.outbox().unwrap(), vec![(1, vec![1])]);
        pending.durable().await.unwrap();
        // A lone fire-and-forget write still lands, without anyone to carry it.
        let mut batch = WriteBatch::new();
        batch.push(WriteOp::DeleteOutbox { key: 1 });
        store.submit(batch);
        let mut polls = 0;
        while !store.outbox().unwrap().is_empty() {
            polls += 1;
            assert!(polls < 1_000, "a fire-and-forget write never landed");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        store.close();
    }

    #[tokio::test]
    async fn lazy_writes_ride_with_the_next_urgent_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        let mut lazy = Vec::new();
        for i in 0..3u32 {
            let mut batch = WriteBatch::new();
            batch.push(put("shipment", &format!("{i}"), b"lazy"));
            lazy.push(store.enqueue_as(batch, Urgency::Lazy).await.unwrap());
        }
        let mut urgent = WriteBatch::new();
        urgent.push(put("order", "now", b"urgent"));
        store.commit(urgent).await.unwrap();
        // Queued before it, the lazy batches are on disk when the urgent one is.
        assert_eq!(store.snapshots("shipment").unwrap().len(), 3);
        for pending in lazy {
            pending.durable().await.unwrap();
        }
        // Alone, a lazy write still lands (after LAZY_WRITE_DELAY).
        let mut batch = WriteBatch::new();
        batch.push(put("shipment", "alone", b"lazy"));
        store.enqueue_as(batch, Urgency::Lazy).await.unwrap().durable().await.unwrap();
        assert_eq!(store.snapshot("shipment", "alone").unwrap(), Some(b"lazy".to_vec()));
        store.close();
    }

    #[tokio::test]
    async fn commits_after_close_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        store.close();
        let mut batch = WriteBatch::new();
        batch.push(put("order", "a", b"1"));
        assert_eq!(store.commit(batch).await, Err(StoreError::Closed));
    }

    #[test]
    fn garbage_and_empty_files_fail_stop() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.redb");
        std::fs::write(&empty, b"").unwrap();
        assert!(matches!(Store::open(&empty), Err(StoreError::Corrupt { .. })));
        let garbage = dir.path().join("garbage.redb");
        std::fs::write(&garbage, vec![0xA5; 8192]).unwrap();
        assert!(Store::open(&garbage).is_err());
    }
}
