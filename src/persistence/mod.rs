//! Durable storage on redb: the only module that names redb.
//!
//! One [`Store`] per context (one redb file). Its surface is small and knows
//! no domain: snapshots by (kind, id), a set of open (non-terminal)
//! aggregates, an outbox of encoded events, a per-order saga step log and
//! idempotency records. (The inbox — the ids of the events an aggregate
//! applied — is part of the aggregate's snapshot, written in the same batch.) Contexts encode their own
//! records with [`codec`] (postcard behind a version byte).
//!
//! Writes go through [`Store::commit`]: the batch is handed to the store's
//! single writer thread ([`writer`]), which merges every waiting batch into one
//! `Durability::Immediate` transaction. **When `commit` returns `Ok`, the batch
//! is on disk.** Reads are synchronous and cheap (MVCC read transactions that
//! never wait for the writer); async callers run them on a blocking thread.

pub mod codec;
pub mod idempotency;
pub mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crossbeam_channel::Sender;
use redb::{Database, ReadableDatabase, TableDefinition, TableHandle};
use tokio::sync::oneshot;

pub use idempotency::{IdempotencyRecord, KeyedRecord};
pub use writer::{WriterStats, LAZY_AWAITED_DELAY, LAZY_WRITE_DELAY};

/// Bytes of page cache redb may use per store. The stores are written far
/// more than read (a snapshot is read when its actor respawns), so a small
/// cache costs no throughput and saves memory.
pub const CACHE_BYTES: usize = 16 * 1024 * 1024;

pub(crate) mod tables {
    use super::TableDefinition;

    /// Every record of a store, each kind under its own key prefix ([`super::keys`]).
    /// One table, so that a commit rewrites one B-tree's path and not one per
    /// kind of record it touches.
    pub(crate) const RECORDS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("records_v2");

    /// Tables of the first layout (one per kind of record); a store that has
    /// them is refused rather than read as empty.
    pub(crate) const LAYOUT_V1: [&str; 6] =
        ["snapshots_v1", "open_v1", "outbox_v1", "inbox_v1", "saga_steps_v1", "idempotency_v1"];
}

/// Keys of [`tables::RECORDS`]: a tag byte for the kind of record, then the
/// record's own key, encoded so that byte order is the order reads need.
pub(crate) mod keys;
mod reads;

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
    /// Store one part of a snapshot ([`Store::record`]).
    PutPart {
        /// Record kind.
        kind: &'static str,
        /// The aggregate's id.
        id: String,
        /// The part's number within the aggregate.
        part: u128,
        /// Versioned bytes.
        bytes: Vec<u8>,
    },
    /// Drop one part of a snapshot.
    DeletePart {
        /// Record kind.
        kind: &'static str,
        /// The aggregate's id.
        id: String,
        /// The part's number within the aggregate.
        part: u128,
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

/// A snapshot with its parts ([`WriteOp::PutPart`]), as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The aggregate's id.
    pub id: String,
    /// The snapshot's bytes.
    pub snapshot: Vec<u8>,
    /// Each part's number and bytes, in number order.
    pub parts: Vec<(u128, Vec<u8>)>,
}

/// How soon a queued batch must reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Urgency {
    /// Commit as soon as the writer is free: someone outside the engine (a
    /// caller, a receiver of events) waits on it.
    Now,
    /// May wait up to [`writer::LAZY_AWAITED_DELAY`] for an urgent batch to
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
        let old = txn.list_tables().map_err(StoreError::from_redb)?.any(|t| tables::LAYOUT_V1.contains(&t.name()));
        if old {
            return Err(StoreError::Corrupt {
                what: path.display().to_string(),
                detail: "written by an older Orderdock (one table per kind of record); \
                         this version reads the one-table layout only: drain it with the version that wrote it"
                    .to_owned(),
            });
        }
        {
            let mut table = txn.open_table(tables::RECORDS).map_err(StoreError::from_redb)?;
            let moved = rekey_parts(&mut table)?;
            if moved > 0 {
                tracing::info!(path = %path.display(), parts = moved, "parts rewritten in the part-number-first layout");
            }
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
    /// [`Urgency::Lazy`] batch waits up to [`writer::LAZY_AWAITED_DELAY`] for an
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
}

/// [`Store::scan`] in an open read transaction.
fn scan_table(
    table: &redb::ReadOnlyTable<&'static [u8], &'static [u8]>,
    prefix: &[u8],
    from: &[u8],
    mut each: impl FnMut(&[u8], &[u8]) -> Result<bool>,
) -> Result<()> {
    let rows = match keys::after_prefix(prefix) {
        Some(end) => table.range(from..end.as_slice()),
        None => table.range(from..),
    }
    .map_err(StoreError::from_redb)?;
    for row in rows {
        let (key, value) = row.map_err(StoreError::from_redb)?;
        let key = key.value();
        let Some(rest) = key.strip_prefix(prefix) else { break };
        if !each(rest, value.value())? {
            break;
        }
    }
    Ok(())
}

/// A part key after its kind's prefix, as (number, id).
fn split_part<'k>(kind: &str, rest: &'k [u8]) -> Result<(u128, &'k [u8])> {
    keys::split_part(rest)
        .ok_or_else(|| StoreError::Corrupt { what: format!("a {kind} part key"), detail: "malformed".to_owned() })
}

/// Rewrites every part stored in the [`keys::PART_BY_ID`] layout in the
/// [`keys::PART`] one, inside the caller's transaction; returns how many.
/// A store written before the change holds its bins' holds that way.
fn rekey_parts(table: &mut redb::Table<&'static [u8], &'static [u8]>) -> Result<usize> {
    let start = [keys::PART_BY_ID];
    let end = [keys::PART_BY_ID + 1];
    let mut old = Vec::new();
    for row in redb::ReadableTable::range(table, start.as_slice()..end.as_slice()).map_err(StoreError::from_redb)? {
        let (key, value) = row.map_err(StoreError::from_redb)?;
        old.push((key.value().to_vec(), value.value().to_vec()));
    }
    for (key, value) in &old {
        let (kind, id, part) = keys::split_part_by_id(key).ok_or_else(|| StoreError::Corrupt {
            what: "a part key of the first layout".to_owned(),
            detail: "malformed".to_owned(),
        })?;
        table.insert(keys::part(kind, id, part).as_slice(), value.as_slice()).map_err(StoreError::from_redb)?;
        table.remove(key.as_slice()).map_err(StoreError::from_redb)?;
    }
    Ok(old.len())
}

/// A text key read back.
fn text(bytes: &[u8]) -> Result<String> {
    text_ref(bytes).map(str::to_owned)
}

/// A key's text, borrowed.
fn text_ref(bytes: &[u8]) -> Result<&str> {
    std::str::from_utf8(bytes)
        .map_err(|_| StoreError::Corrupt { what: "a record key".to_owned(), detail: "not UTF-8".to_owned() })
}

/// The last 16 bytes of a key, as the big-endian number they encode.
fn number(bytes: &[u8]) -> Result<u128> {
    let tail: [u8; 16] = bytes
        .get(bytes.len().saturating_sub(16)..)
        .and_then(|tail| tail.try_into().ok())
        .ok_or_else(|| StoreError::Corrupt { what: "a record key".to_owned(), detail: "too short".to_owned() })?;
    Ok(u128::from_be_bytes(tail))
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
mod tests;
