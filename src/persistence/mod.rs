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
pub mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crossbeam_channel::Sender;
use redb::{Database, ReadableDatabase, TableDefinition, TableHandle};
use tokio::sync::oneshot;

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
pub(crate) mod keys {
    /// (kind, id) -> versioned snapshot bytes.
    pub(crate) const SNAPSHOT: u8 = 1;
    /// (kind, id) of every aggregate whose saga is not terminal (empty value): what recovery resumes.
    pub(crate) const OPEN: u8 = 2;
    /// event id -> encoded envelope, until the receiver has acknowledged it.
    pub(crate) const OUTBOX: u8 = 3;
    // 4 was an inbox of applied event ids: they are kept in each aggregate's snapshot.
    /// (order id, step id) -> encoded saga step.
    pub(crate) const STEP: u8 = 5;
    /// idempotency key -> encoded record.
    pub(crate) const IDEMPOTENCY: u8 = 6;
    /// Parts keyed (kind, id, part number), the layout before [`PART`]:
    /// [`super::Store::open`] rewrites them.
    pub(crate) const PART_BY_ID: u8 = 7;
    /// (kind, part number, id) -> encoded part of a snapshot kept in rows of
    /// its own, so that a change to one part writes that row only (a bin's
    /// holds). The number comes first: part numbers are time-ordered ids (a
    /// hold's is its order's), so the parts written in one commit — holds in
    /// a hundred bins — share a few leaves of the tree instead of one leaf per
    /// aggregate. Reading one aggregate's parts reads its whole kind's
    /// ([`super::Store::record`]); bins are all read at start.
    pub(crate) const PART: u8 = 8;

    /// `tag`, `kind`, a zero byte, `id`: a kind's records sort together, by id.
    pub(crate) fn named(tag: u8, kind: &str, id: &str) -> Vec<u8> {
        let mut key = kind_prefix(tag, kind);
        key.extend_from_slice(id.as_bytes());
        key
    }

    /// The prefix of every [`named`] key of `kind`.
    pub(crate) fn kind_prefix(tag: u8, kind: &str) -> Vec<u8> {
        debug_assert!(!kind.as_bytes().contains(&0), "a record kind has no zero byte");
        let mut key = Vec::with_capacity(2 + kind.len() + 32);
        key.push(tag);
        key.extend_from_slice(kind.as_bytes());
        key.push(0);
        key
    }

    /// The key of part `part` of `(kind, id)`: [`kind_prefix`], the number
    /// big-endian, the id.
    pub(crate) fn part(kind: &str, id: &str, part: u128) -> Vec<u8> {
        let mut key = kind_prefix(PART, kind);
        key.extend_from_slice(&part.to_be_bytes());
        key.extend_from_slice(id.as_bytes());
        key
    }

    /// A [`part`] key after its [`kind_prefix`], read back as (number, id);
    /// `None` when it is too short to be one.
    pub(crate) fn split_part(rest: &[u8]) -> Option<(u128, &[u8])> {
        let (number, id) = rest.split_first_chunk::<16>()?;
        Some((u128::from_be_bytes(*number), id))
    }

    /// A [`PART_BY_ID`] key read back as (kind, id, number); `None` when malformed.
    pub(crate) fn split_part_by_id(key: &[u8]) -> Option<(&str, &str, u128)> {
        let rest = key.strip_prefix(&[PART_BY_ID])?;
        let zero = rest.iter().position(|byte| *byte == 0)?;
        let (kind, rest) = (&rest[..zero], &rest[zero + 1..]);
        let (rest, number) = rest.split_last_chunk::<16>()?;
        let id = rest.strip_suffix(&[0])?;
        Some((std::str::from_utf8(kind).ok()?, std::str::from_utf8(id).ok()?, u128::from_be_bytes(*number)))
    }

    /// `tag` and a number, big-endian so that numbers sort as bytes do.
    pub(crate) fn number(tag: u8, n: u128) -> [u8; 17] {
        let mut key = [0; 17];
        key[0] = tag;
        key[1..].copy_from_slice(&n.to_be_bytes());
        key
    }

    /// An order's saga step.
    pub(crate) fn step(order: u128, step: u128) -> [u8; 33] {
        let mut key = [0; 33];
        key[0] = STEP;
        key[1..17].copy_from_slice(&order.to_be_bytes());
        key[17..].copy_from_slice(&step.to_be_bytes());
        key
    }

    /// `tag` and a text key.
    pub(crate) fn text(tag: u8, text: &str) -> Vec<u8> {
        let mut key = Vec::with_capacity(1 + text.len());
        key.push(tag);
        key.extend_from_slice(text.as_bytes());
        key
    }

    /// The first key after every key that starts with `prefix` (`None`: no such key).
    pub(crate) fn after_prefix(prefix: &[u8]) -> Option<Vec<u8>> {
        let mut end = prefix.to_vec();
        while let Some(last) = end.pop() {
            if last < u8::MAX {
                end.push(last + 1);
                return Some(end);
            }
        }
        None
    }
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

    /// The snapshot of `(kind, id)`, if any.
    ///
    /// # Errors
    /// [`StoreError::Io`] or [`StoreError::Corrupt`].
    pub fn snapshot(&self, kind: &str, id: &str) -> Result<Option<Vec<u8>>> {
        self.get(&keys::named(keys::SNAPSHOT, kind, id))
    }

    /// Every snapshot of `kind`, in id order.
    ///
    /// # Errors
    /// [`StoreError::Io`] or [`StoreError::Corrupt`].
    pub fn snapshots(&self, kind: &str) -> Result<Vec<(String, Vec<u8>)>> {
        self.snapshots_after(kind, None, usize::MAX)
    }

    /// Up to `max` snapshots of `kind` with ids after `after` (exclusive), in id order.
    ///
    /// # Errors
    /// [`StoreError::Io`] or [`StoreError::Corrupt`].
    pub fn snapshots_after(&self, kind: &str, after: Option<&str>, max: usize) -> Result<Vec<(String, Vec<u8>)>> {
        let prefix = keys::kind_prefix(keys::SNAPSHOT, kind);
        let from = keys::named(keys::SNAPSHOT, kind, after.unwrap_or(""));
        let mut found = Vec::new();
        self.scan(&prefix, &from, |id, value| {
            let id = text(id)?;
            if Some(id.as_str()) != after {
                found.push((id, value.to_vec()));
            }
            Ok(found.len() < max)
        })?;
        Ok(found)
    }

    /// The snapshot of `(kind, id)` with its parts, read in one transaction.
    /// Parts are keyed by number first ([`keys::PART`]), so this reads every
    /// part of `kind`: for one aggregate now and then (a bin restarted after
    /// a failure), not for every one ([`Store::records`] reads them all at once).
    ///
    /// # Errors
    /// [`StoreError::Io`] or [`StoreError::Corrupt`].
    pub fn record(&self, kind: &str, id: &str) -> Result<Option<Record>> {
        let txn = self.db()?.begin_read().map_err(StoreError::from_redb)?;
        let table = txn.open_table(tables::RECORDS).map_err(StoreError::from_redb)?;
        let Some(snapshot) =
            table.get(keys::named(keys::SNAPSHOT, kind, id).as_slice()).map_err(StoreError::from_redb)?
        else {
            return Ok(None);
        };
        let mut parts = Vec::new();
        let prefix = keys::kind_prefix(keys::PART, kind);
        scan_table(&table, &prefix, &prefix, |rest, value| {
            let (part, owner) = split_part(kind, rest)?;
            if owner == id.as_bytes() {
                parts.push((part, value.to_vec()));
            }
            Ok(true)
        })?;
        Ok(Some(Record { id: id.to_owned(), snapshot: snapshot.value().to_vec(), parts }))
    }

    /// Every snapshot of `kind` with its parts, in id order, read in one transaction.
    ///
    /// # Errors
    /// [`StoreError::Io`] or [`StoreError::Corrupt`].
    pub fn records(&self, kind: &str) -> Result<Vec<Record>> {
        let txn = self.db()?.begin_read().map_err(StoreError::from_redb)?;
        let table = txn.open_table(tables::RECORDS).map_err(StoreError::from_redb)?;
        let mut records = Vec::new();
        let prefix = keys::kind_prefix(keys::SNAPSHOT, kind);
        scan_table(&table, &prefix, &prefix, |id, value| {
            records.push(Record { id: text(id)?, snapshot: value.to_vec(), parts: Vec::new() });
            Ok(true)
        })?;
        // Parts come by number: each goes to its record, found by id (the
        // records are in id order), and each record's parts stay in number order.
        let prefix = keys::kind_prefix(keys::PART, kind);
        scan_table(&table, &prefix, &prefix, |rest, value| {
            let (part, id) = split_part(kind, rest)?;
            let at =
                records.binary_search_by(|record| record.id.as_bytes().cmp(id)).map_err(|_| StoreError::Corrupt {
                    what: format!("{kind} {}", String::from_utf8_lossy(id)),
                    detail: "a part without its snapshot".to_owned(),
                })?;
            records[at].parts.push((part, value.to_vec()));
            Ok(true)
        })?;
        Ok(records)
    }

    /// Every idempotency record, by key.
    ///
    /// # Errors
    /// [`StoreError::Io`] or [`StoreError::Corrupt`].
    pub fn idempotency_records(&self) -> Result<Vec<(String, Vec<u8>)>> {
        let mut found = Vec::new();
        self.each_idempotency_record(|key, value| found.push((key.to_owned(), value.to_vec())))?;
        Ok(found)
    }

    /// Runs `visit` on every idempotency record (key, bytes) in key order,
    /// in one read, without collecting them.
    ///
    /// # Errors
    /// [`StoreError::Io`] or [`StoreError::Corrupt`].
    pub fn each_idempotency_record(&self, mut visit: impl FnMut(&str, &[u8])) -> Result<()> {
        let prefix = [keys::IDEMPOTENCY];
        self.scan(&prefix, &prefix, |key, value| {
            visit(text_ref(key)?, value);
            Ok(true)
        })
    }

    /// The ids of aggregates of `kind` marked open (work left).
    ///
    /// # Errors
    /// [`StoreError::Io`] or [`StoreError::Corrupt`].
    pub fn open_ids(&self, kind: &str) -> Result<Vec<String>> {
        let prefix = keys::kind_prefix(keys::OPEN, kind);
        let mut found = Vec::new();
        self.scan(&prefix, &prefix, |id, _| {
            found.push(text(id)?);
            Ok(true)
        })?;
        Ok(found)
    }

    /// The snapshot of every aggregate of `kind` marked open, read in one
    /// transaction (what recovery looks at).
    ///
    /// # Errors
    /// [`StoreError::Io`] or [`StoreError::Corrupt`].
    pub fn open_snapshots(&self, kind: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let txn = self.db()?.begin_read().map_err(StoreError::from_redb)?;
        let table = txn.open_table(tables::RECORDS).map_err(StoreError::from_redb)?;
        let prefix = keys::kind_prefix(keys::OPEN, kind);
        let mut ids = Vec::new();
        scan_table(&table, &prefix, &prefix, |id, _| {
            ids.push(text(id)?);
            Ok(true)
        })?;
        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(bytes) =
                table.get(keys::named(keys::SNAPSHOT, kind, &id).as_slice()).map_err(StoreError::from_redb)?
            {
                found.push((id, bytes.value().to_vec()));
            }
        }
        Ok(found)
    }

    /// Every undelivered outbox entry, by event id.
    ///
    /// # Errors
    /// [`StoreError::Io`] or [`StoreError::Corrupt`].
    pub fn outbox(&self) -> Result<Vec<(u128, Vec<u8>)>> {
        let prefix = [keys::OUTBOX];
        let mut found = Vec::new();
        self.scan(&prefix, &prefix, |key, value| {
            found.push((number(key)?, value.to_vec()));
            Ok(true)
        })?;
        Ok(found)
    }

    /// The saga steps of `order` with their keys, in key (time) order.
    ///
    /// # Errors
    /// [`StoreError::Io`] or [`StoreError::Corrupt`].
    pub fn steps(&self, order: u128) -> Result<Vec<(u128, Vec<u8>)>> {
        let from = keys::step(order, 0);
        let prefix = &from[..17];
        let mut found = Vec::new();
        self.scan(prefix, &from, |key, value| {
            found.push((number(key)?, value.to_vec()));
            Ok(true)
        })?;
        Ok(found)
    }

    /// The idempotency record under `key`, if any.
    ///
    /// # Errors
    /// [`StoreError::Io`] or [`StoreError::Corrupt`].
    pub fn idempotency(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.get(&keys::text(keys::IDEMPOTENCY, key))
    }

    /// Counts of the store's records and writer. Counting reads every key
    /// of the counted kinds: this is for inspection and metrics, not a hot path.
    ///
    /// # Errors
    /// [`StoreError::Io`] or [`StoreError::Corrupt`].
    pub fn stats(&self) -> Result<StoreStats> {
        use std::sync::atomic::Ordering;
        let txn = self.db()?.begin_read().map_err(StoreError::from_redb)?;
        let table = txn.open_table(tables::RECORDS).map_err(StoreError::from_redb)?;
        let count = |tag: u8| -> Result<u64> {
            let mut n = 0;
            scan_table(&table, &[tag], &[tag], |_, _| {
                n += 1;
                Ok(true)
            })?;
            Ok(n)
        };
        Ok(StoreStats {
            outbox_len: count(keys::OUTBOX)?,
            open_len: count(keys::OPEN)?,
            commits: self.inner.stats.commits.load(Ordering::Relaxed),
            batches: self.inner.stats.batches.load(Ordering::Relaxed),
        })
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let txn = self.db()?.begin_read().map_err(StoreError::from_redb)?;
        let table = txn.open_table(tables::RECORDS).map_err(StoreError::from_redb)?;
        let value = table.get(key).map_err(StoreError::from_redb)?;
        Ok(value.map(|guard| guard.value().to_vec()))
    }

    /// Calls `each` with the rest of the key (after `prefix`) and the value
    /// of every record whose key starts with `prefix`, from `from` on, in key
    /// order, until it returns `false`.
    fn scan(&self, prefix: &[u8], from: &[u8], each: impl FnMut(&[u8], &[u8]) -> Result<bool>) -> Result<()> {
        let txn = self.db()?.begin_read().map_err(StoreError::from_redb)?;
        let table = txn.open_table(tables::RECORDS).map_err(StoreError::from_redb)?;
        scan_table(&table, prefix, from, each)
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
    async fn parts_read_back_with_their_own_snapshot_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        let part = |id: &str, part: u128, byte: u8| WriteOp::PutPart {
            kind: "bin",
            id: id.to_owned(),
            part,
            bytes: vec![byte],
        };
        let mut batch = WriteBatch::new();
        // "a" and "a-1": one id is a prefix of the other, their parts stay apart.
        batch.push(put("bin", "a", b"A")).push(put("bin", "a-1", b"A1")).push(put("bin", "b", b"B"));
        batch.push(part("a", 2, 12)).push(part("a", 1, 11)).push(part("a-1", 1, 21)).push(part("a", 3, 13));
        batch.push(put("order", "a", b"O"));
        store.commit(batch).await.unwrap();
        let mut batch = WriteBatch::new();
        batch.push(WriteOp::DeletePart { kind: "bin", id: "a".to_owned(), part: 3 });
        store.commit(batch).await.unwrap();

        let a = Record { id: "a".to_owned(), snapshot: b"A".to_vec(), parts: vec![(1, vec![11]), (2, vec![12])] };
        let a1 = Record { id: "a-1".to_owned(), snapshot: b"A1".to_vec(), parts: vec![(1, vec![21])] };
        let b = Record { id: "b".to_owned(), snapshot: b"B".to_vec(), parts: vec![] };
        assert_eq!(store.record("bin", "a").unwrap(), Some(a.clone()));
        assert_eq!(store.record("bin", "a-1").unwrap(), Some(a1.clone()));
        assert_eq!(store.record("bin", "c").unwrap(), None);
        assert_eq!(store.records("bin").unwrap(), vec![a, a1, b]);
        assert_eq!(store.records("order").unwrap().len(), 1);

        let mut batch = WriteBatch::new();
        batch.push(part("ghost", 1, 1));
        store.commit(batch).await.unwrap();
        assert!(
            matches!(store.records("bin"), Err(StoreError::Corrupt { .. })),
            "a part without its snapshot is damage, not data"
        );
        store.close();
    }

    #[test]
    fn part_keys_sort_by_number_across_aggregates() {
        // Holds written together carry neighbouring numbers: their keys sit
        // together whatever bin they are in.
        let mut written = vec![keys::part("bin", "b-2", 7), keys::part("bin", "a", 8), keys::part("bin", "b-10", 6)];
        written.sort();
        assert_eq!(written, vec![keys::part("bin", "b-10", 6), keys::part("bin", "b-2", 7), keys::part("bin", "a", 8)]);
        let prefix = keys::kind_prefix(keys::PART, "bin");
        let key = keys::part("bin", "b-2", 7);
        assert_eq!(keys::split_part(&key[prefix.len()..]), Some((7, b"b-2".as_slice())));
    }

    #[tokio::test]
    async fn parts_of_the_first_layout_are_rekeyed_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        // A store as the earlier layout wrote it: parts keyed (kind, id, number).
        let old_key = |id: &str, part: u128| {
            let mut key = vec![keys::PART_BY_ID];
            key.extend_from_slice(b"bin\0");
            key.extend_from_slice(id.as_bytes());
            key.push(0);
            key.extend_from_slice(&part.to_be_bytes());
            key
        };
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut table = txn.open_table(tables::RECORDS).unwrap();
                for (id, snapshot) in [("a", b"A"), ("b", b"B")] {
                    table.insert(keys::named(keys::SNAPSHOT, "bin", id).as_slice(), snapshot.as_slice()).unwrap();
                }
                table.insert(old_key("a", 2).as_slice(), [12].as_slice()).unwrap();
                table.insert(old_key("a", 1).as_slice(), [11].as_slice()).unwrap();
                table.insert(old_key("b", 1).as_slice(), [21].as_slice()).unwrap();
            }
            txn.commit().unwrap();
        }
        let store = Store::open(&path).unwrap();
        let a = Record { id: "a".to_owned(), snapshot: b"A".to_vec(), parts: vec![(1, vec![11]), (2, vec![12])] };
        let b = Record { id: "b".to_owned(), snapshot: b"B".to_vec(), parts: vec![(1, vec![21])] };
        assert_eq!(store.records("bin").unwrap(), vec![a.clone(), b]);
        // A part deleted in the new layout is gone: no old row brings it back.
        let mut batch = WriteBatch::new();
        batch.push(WriteOp::DeletePart { kind: "bin", id: "a".to_owned(), part: 2 });
        store.commit(batch).await.unwrap();
        store.close();
        let store = Store::open(&path).unwrap();
        assert_eq!(store.record("bin", "a").unwrap(), Some(Record { parts: vec![(1, vec![11])], ..a }));
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
        // Alone, a lazy write still lands (after LAZY_AWAITED_DELAY).
        let mut batch = WriteBatch::new();
        batch.push(put("shipment", "alone", b"lazy"));
        store.enqueue_as(batch, Urgency::Lazy).await.unwrap().durable().await.unwrap();
        assert_eq!(store.snapshot("shipment", "alone").unwrap(), Some(b"lazy".to_vec()));
        store.close();
    }

    #[tokio::test]
    async fn each_kind_of_record_reads_back_alone_and_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        let mut batch = WriteBatch::new();
        // Kinds that prefix one another, and ids that sort differently as numbers.
        for (kind, id) in [("order", "b"), ("order", "a"), ("order_x", "a"), ("orde", "z"), ("order", "a\u{0}b")] {
            batch.push(put(kind, id, id.as_bytes()));
            batch.push(WriteOp::MarkOpen { kind, id: id.to_owned() });
        }
        for (order, step) in [(2u128, 5u128), (1, 9), (2, 1), (3, 0), (2, u128::MAX)] {
            batch.push(WriteOp::AppendStep { order, step, bytes: vec![order as u8, step as u8] });
        }
        for event in [300u128, 2, u128::MAX] {
            batch.push(WriteOp::PutOutbox { key: event, bytes: vec![1] });
        }
        batch.push(WriteOp::PutIdempotency { key: "k2".to_owned(), bytes: vec![2] });
        batch.push(WriteOp::PutIdempotency { key: "k1".to_owned(), bytes: vec![1] });
        store.commit(batch).await.unwrap();

        let ids = |rows: Vec<(String, Vec<u8>)>| rows.into_iter().map(|(id, _)| id).collect::<Vec<_>>();
        assert_eq!(ids(store.snapshots("order").unwrap()), ["a", "a\u{0}b", "b"]);
        assert_eq!(ids(store.snapshots("order_x").unwrap()), ["a"]);
        assert_eq!(ids(store.snapshots("orde").unwrap()), ["z"]);
        assert_eq!(ids(store.snapshots_after("order", Some("a"), 1).unwrap()), ["a\u{0}b"]);
        assert_eq!(ids(store.snapshots_after("order", Some("a\u{0}b"), 10).unwrap()), ["b"]);
        assert_eq!(store.open_ids("order").unwrap(), ["a", "a\u{0}b", "b"]);
        assert_eq!(ids(store.open_snapshots("order_x").unwrap()), ["a"]);
        assert_eq!(store.snapshot("order", "b").unwrap(), Some(b"b".to_vec()));
        assert_eq!(store.snapshot("order", "c").unwrap(), None);
        let steps: Vec<u128> = store.steps(2).unwrap().into_iter().map(|(step, _)| step).collect();
        assert_eq!(steps, [1, 5, u128::MAX]);
        assert_eq!(store.steps(4).unwrap(), vec![]);
        let outbox: Vec<u128> = store.outbox().unwrap().into_iter().map(|(event, _)| event).collect();
        assert_eq!(outbox, [2, 300, u128::MAX]);
        assert_eq!(ids(store.idempotency_records().unwrap()), ["k1", "k2"]);
        assert_eq!(store.idempotency("k2").unwrap(), Some(vec![2]));
        let stats = store.stats().unwrap();
        assert_eq!((stats.outbox_len, stats.open_len), (3, 5));

        let mut batch = WriteBatch::new();
        batch.push(WriteOp::MarkClosed { kind: "order", id: "a".to_owned() });
        batch.push(WriteOp::DeleteOutbox { key: 300 });
        batch.push(WriteOp::DeleteIdempotency { key: "k1".to_owned() });
        store.commit(batch).await.unwrap();
        assert_eq!(store.open_ids("order").unwrap(), ["a\u{0}b", "b"]);
        assert_eq!(store.outbox().unwrap().len(), 2);
        assert_eq!(store.idempotency("k1").unwrap(), None);
        store.close();
    }

    #[test]
    fn a_store_of_the_first_layout_is_refused_and_left_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.redb");
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let old: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("snapshots_v1");
                txn.open_table(old).unwrap().insert(("order", "1"), b"x".as_slice()).unwrap();
            }
            txn.commit().unwrap();
        }
        match Store::open(&path) {
            Err(StoreError::Corrupt { detail, .. }) => assert!(detail.contains("older Orderdock"), "{detail}"),
            other => panic!("an old layout must be refused, got {other:?}"),
        }
        // Refusing changed nothing: the old records are there, and no new table was made.
        let db = Database::create(&path).unwrap();
        let txn = db.begin_read().unwrap();
        let names: Vec<String> = txn.list_tables().unwrap().map(|t| t.name().to_owned()).collect();
        assert_eq!(names, ["snapshots_v1"]);
        let old: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("snapshots_v1");
        let table = txn.open_table(old).unwrap();
        assert_eq!(table.get(("order", "1")).unwrap().map(|v| v.value().to_vec()), Some(b"x".to_vec()));
    }

    #[test]
    fn the_first_key_after_a_prefix() {
        assert_eq!(keys::after_prefix(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(keys::after_prefix(&[1, 255]), Some(vec![2]));
        assert_eq!(keys::after_prefix(&[255, 255]), None);
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
