//! The group-committing writer: one thread owns every write to a store.
//!
//! Actors hand it [`WriteBatch`]es over a crossbeam channel. It takes every
//! batch waiting (up to [`GROUP_BATCHES_MAX`]), applies them all in one redb
//! write transaction with `Durability::Immediate`, commits (one fsync), and
//! only then answers each batch's sender. A batch is atomic: it is applied in
//! full in a transaction that commits, or the sender hears of the failure.
//! Batches commit in the order they were submitted. Inside a transaction
//! each key is written once, with the value of its last write, and the keys
//! go in key order (see `Scratch::plan`): the result is the batches applied
//! in order, at the cost of one B-tree write per key.
//!
//! **Lazy writes.** A batch queued with [`super::Urgency::Lazy`] (a write
//! nobody outside the engine waits on: a shipment's label progress, a
//! fulfillment order noting its actions done, a bin's hold that its order's
//! own write follows) does not start a commit of its own while the writer
//! has nothing urgent: it waits up to [`LAZY_AWAITED_DELAY`] (up to
//! [`LAZY_WRITE_DELAY`] for fire-and-forget ones) for an urgent batch to
//! share that commit's fsync. Order is kept: a lazy batch commits
//! with, or before, every batch queued after it.
//!
//! **Gathering.** A busy writer (its last group carried [`GATHER_SIBLINGS`]
//! urgent batches or more) lets its next group wait [`GATHER_DELAY`] for more
//! batches: under load, fewer and larger commits, each paying redb's fixed
//! price once. A lone saga never waits for it.
//!
//! **Fail-stop.** After a transaction fails, the writer commits nothing more:
//! every later batch is answered with the first failure. A batch may have been
//! decided on top of an earlier one that is still queued (a bin answers before
//! its write lands, see [`super::Store::enqueue`]); committing it after the
//! earlier one failed would store a state that never existed. The process
//! must restart, and recovery reads the store as last committed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use redb::{Database, Durability};
use tokio::sync::oneshot;

use super::{tables, StoreError, WriteBatch, WriteOp};

/// Most batches merged into one transaction. Bounds a group's latency and memory.
pub const GROUP_BATCHES_MAX: usize = 4096;
/// Most batches waiting for the writer; a full queue makes submitters wait (backpressure).
pub const WRITE_QUEUE_MAX: usize = 65_536;
/// Longest a group of fire-and-forget writes ([`super::Store::submit`]: outbox
/// deletes) waits for an urgent write to share its commit.
pub const LAZY_WRITE_DELAY: std::time::Duration = std::time::Duration::from_millis(50);
/// Longest a lazy write that someone in the engine awaits ([`super::Urgency::Lazy`])
/// waits for an urgent one: short, since a chain of such writes (a shipment's
/// stages on the simulated carrier) waits this long at each step.
pub const LAZY_AWAITED_DELAY: std::time::Duration = std::time::Duration::from_micros(500);
/// Urgent batches in a group that mark the writer as busy: the next group then
/// gathers company for [`GATHER_DELAY`] before it commits. At concurrency 1 a
/// group carries one or two urgent batches, so a lone saga never waits.
pub const GATHER_SIBLINGS: usize = 3;
/// How long a busy writer's group waits for more batches (see
/// [`GATHER_SIBLINGS`]): fewer, larger commits, each paying redb's fixed
/// price (a few pages and an fsync) once.
pub const GATHER_DELAY: std::time::Duration = std::time::Duration::from_micros(250);

/// Where a batch's outcome goes (none for fire-and-forget writes).
type Done = Option<oneshot::Sender<Result<(), StoreError>>>;

pub(super) enum Request {
    /// `lazy`: the batch may wait for an urgent one ([`Hold`]).
    Write {
        batch: WriteBatch,
        done: Done,
        lazy: bool,
    },
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
    let mut fail_stop = FailStop::default();
    let mut scratch = Scratch::default();
    // Urgent batches in the last group (see `GATHER_SIBLINGS`).
    let mut urgent_last = 0;
    loop {
        let mut stop = false;
        let first = receiver.recv();
        let arrived = Instant::now();
        // Until when the group may wait for company.
        let mut hold = Hold::after(urgent_last, arrived);
        match first {
            Ok(Request::Write { batch, done, lazy }) => take(&mut group, &mut hold, batch, done, lazy, arrived),
            Ok(Request::Stop) | Err(_) => stop = true,
        }
        while !stop && group.len() < GROUP_BATCHES_MAX {
            match receiver.try_recv() {
                Ok(Request::Write { batch, done, lazy }) => {
                    take(&mut group, &mut hold, batch, done, lazy, Instant::now());
                }
                Ok(Request::Stop) => stop = true,
                Err(TryRecvError::Empty) => {
                    // Nobody outside waits on a group of lazy writes (deletes of
                    // delivered outbox rows, label progress…): hold it until an
                    // urgent write comes to carry it, or its hold passes, so it
                    // never costs an urgent write an fsync of its own. A busy
                    // writer's group gathers a little longer (`GATHER_DELAY`).
                    if let Some(until) = hold.deadline(Instant::now()) {
                        match receiver.recv_deadline(until) {
                            Ok(Request::Write { batch, done, lazy }) => {
                                take(&mut group, &mut hold, batch, done, lazy, Instant::now());
                                continue;
                            }
                            Ok(Request::Stop) | Err(RecvTimeoutError::Disconnected) => stop = true,
                            Err(RecvTimeoutError::Timeout) => {}
                        }
                    }
                    break;
                }
                Err(TryRecvError::Disconnected) => stop = true,
            }
        }
        urgent_last = hold.urgent;
        if !group.is_empty() {
            let stopped = fail_stop.stopped();
            // A group of barriers only (`Store::settled`) writes nothing: no transaction.
            let writes = group.iter().filter(|(batch, _)| !batch.is_empty()).count();
            let result = fail_stop.run(|| if writes == 0 { Ok(()) } else { commit_group(db, &group, &mut scratch) });
            match &result {
                Ok(()) if writes == 0 => {}
                Ok(()) => {
                    stats.commits.fetch_add(1, Ordering::Relaxed);
                    stats.batches.fetch_add(writes as u64, Ordering::Relaxed);
                }
                Err(err) if !stopped => {
                    stats.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(cause = %err, batches = group.len(), "group commit failed; the store stops committing");
                }
                Err(_) => {}
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

/// Adds a batch that came at `now` to the group and counts it in its hold.
fn take(group: &mut Vec<(WriteBatch, Done)>, hold: &mut Hold, batch: WriteBatch, done: Done, lazy: bool, now: Instant) {
    hold.add(lazy, done.is_some(), now);
    group.push((batch, done));
}

/// How long a group may wait for company before it commits: a group of lazy
/// writes until its shortest hold passes, each counted from its arrival
/// (an urgent batch ends that hold); a busy writer's group for
/// [`GATHER_DELAY`] from its first batch.
#[derive(Debug, Default)]
struct Hold {
    /// The lazy writes' hold.
    until: Option<Instant>,
    /// The busy writer's gathering.
    gather: Option<Instant>,
    /// Urgent batches counted in.
    urgent: usize,
}

impl Hold {
    /// The hold of a group whose first batch came at `now`, after a group that
    /// carried `urgent_before` urgent batches.
    fn after(urgent_before: usize, now: Instant) -> Self {
        Self { gather: (urgent_before >= GATHER_SIBLINGS).then(|| now + GATHER_DELAY), ..Self::default() }
    }

    /// Counts in a batch that came at `now`: urgent (no wait), lazy with a
    /// waiter ([`LAZY_AWAITED_DELAY`]) or fire-and-forget ([`LAZY_WRITE_DELAY`]).
    fn add(&mut self, lazy: bool, awaited: bool, now: Instant) {
        let wait = match (lazy, awaited) {
            (false, _) => std::time::Duration::ZERO,
            (true, true) => LAZY_AWAITED_DELAY,
            (true, false) => LAZY_WRITE_DELAY,
        };
        if !lazy {
            self.urgent += 1;
        }
        let until = now + wait;
        self.until = Some(self.until.map_or(until, |earlier| earlier.min(until)));
    }

    /// Until when, seen at `now`, the group waits for more batches (`None`: commit now).
    fn deadline(&self, now: Instant) -> Option<Instant> {
        self.until.filter(|until| *until > now).or(self.gather.filter(|gather| *gather > now))
    }
}

/// The writer's fail-stop rule: after the first failed commit, every later
/// group is refused with that failure and never reaches the file.
#[derive(Debug, Default)]
struct FailStop {
    first: Option<StoreError>,
}

impl FailStop {
    /// Whether a commit has failed.
    fn stopped(&self) -> bool {
        self.first.is_some()
    }

    /// Runs `commit` unless an earlier one failed.
    fn run(&mut self, commit: impl FnOnce() -> Result<(), StoreError>) -> Result<(), StoreError> {
        if let Some(first) = &self.first {
            return Err(first.clone());
        }
        let result = commit();
        if let Err(err) = &result {
            self.first = Some(err.clone());
        }
        result
    }
}

fn commit_group(db: &Database, group: &[(WriteBatch, Done)], scratch: &mut Scratch) -> Result<(), StoreError> {
    scratch.plan(group);
    let mut txn = db.begin_write().map_err(StoreError::from_redb)?;
    txn.set_durability(Durability::Immediate).map_err(StoreError::from_redb)?;
    {
        let mut records = txn.open_table(tables::RECORDS).map_err(StoreError::from_redb)?;
        for (key, value) in scratch.writes(group) {
            match value {
                Some(value) => records.insert(key, value).map(|_| ()),
                None => records.remove(key).map(|_| ()),
            }
            .map_err(StoreError::from_redb)?;
        }
    }
    txn.commit().map_err(StoreError::from_redb)
}

/// The writer's buffers for planning a group's writes, kept from group to
/// group: a group of thousands of batches would otherwise allocate (and
/// the kernel zero) megabytes for each commit.
#[derive(Debug, Default)]
struct Scratch {
    /// Every write's key and where the write is (its batch, its place in
    /// the batch), in arrival order.
    keys: Vec<(Vec<u8>, usize, usize)>,
    /// The writes to make, as indexes into `keys`: the last write of each
    /// key, in key order.
    order: Vec<usize>,
}

impl Scratch {
    /// Works out, for a group's writes in arrival order, which to make. A
    /// group commits as one transaction, so a key's earlier writes in it can
    /// never be seen: an order's snapshot written three times in one
    /// handler, a bin's after each of a dozen holds, an outbox row put and
    /// deleted each cost one B-tree write. The rest go in key order, so
    /// that neighbouring keys share their walk down the tree and each leaf
    /// is visited once.
    fn plan(&mut self, group: &[(WriteBatch, Done)]) {
        self.keys.clear();
        self.order.clear();
        for (at, (batch, _)) in group.iter().enumerate() {
            self.keys.extend(batch.ops.iter().enumerate().map(|(place, op)| (key_of(op), at, place)));
        }
        self.order.extend(0..self.keys.len());
        let keys = &self.keys;
        // Latest first among equal keys, so that `dedup` keeps it.
        self.order.sort_unstable_by(|a, b| keys[*a].0.cmp(&keys[*b].0).then(b.cmp(a)));
        self.order.dedup_by(|later, kept| keys[*later].0 == keys[*kept].0);
    }

    /// The writes to make, as (key, value to put or `None` to remove): the
    /// last write of each key, in key order. `group` is the one given to
    /// [`Self::plan`].
    fn writes<'a>(&'a self, group: &'a [(WriteBatch, Done)]) -> impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)> {
        self.order.iter().map(|at| {
            let (key, batch, place) = &self.keys[*at];
            (key.as_slice(), value_of(&group[*batch].0.ops[*place]))
        })
    }
}

/// A write's key.
fn key_of(op: &WriteOp) -> Vec<u8> {
    use super::keys;
    match op {
        WriteOp::PutSnapshot { kind, id, .. } => keys::named(keys::SNAPSHOT, kind, id),
        WriteOp::MarkOpen { kind, id } | WriteOp::MarkClosed { kind, id } => keys::named(keys::OPEN, kind, id),
        WriteOp::PutPart { kind, id, part, .. } | WriteOp::DeletePart { kind, id, part } => keys::part(kind, id, *part),
        WriteOp::PutOutbox { key, .. } | WriteOp::DeleteOutbox { key } => keys::number(keys::OUTBOX, *key).to_vec(),
        WriteOp::AppendStep { order, step, .. } => keys::step(*order, *step).to_vec(),
        WriteOp::PutIdempotency { key, .. } | WriteOp::DeleteIdempotency { key } => keys::text(keys::IDEMPOTENCY, key),
    }
}

/// A write's value: what to put, or `None` to remove the key.
fn value_of(op: &WriteOp) -> Option<&[u8]> {
    match op {
        WriteOp::PutSnapshot { bytes, .. }
        | WriteOp::PutPart { bytes, .. }
        | WriteOp::PutOutbox { bytes, .. }
        | WriteOp::AppendStep { bytes, .. }
        | WriteOp::PutIdempotency { bytes, .. } => Some(bytes),
        WriteOp::MarkOpen { .. } => Some(&[]),
        WriteOp::MarkClosed { .. }
        | WriteOp::DeletePart { .. }
        | WriteOp::DeleteOutbox { .. }
        | WriteOp::DeleteIdempotency { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_writes_each_key_once_with_its_last_value() {
        let mut first = WriteBatch::new();
        first.push(WriteOp::PutSnapshot { kind: "bin", id: "b1".to_owned(), bytes: vec![1] });
        first.push(WriteOp::MarkOpen { kind: "order", id: "o1".to_owned() });
        first.push(WriteOp::PutOutbox { key: 7, bytes: vec![7] });
        let mut second = WriteBatch::new();
        second.push(WriteOp::PutSnapshot { kind: "bin", id: "b2".to_owned(), bytes: vec![2] });
        second.push(WriteOp::PutSnapshot { kind: "bin", id: "b1".to_owned(), bytes: vec![3] });
        second.push(WriteOp::MarkClosed { kind: "order", id: "o1".to_owned() });
        second.push(WriteOp::DeleteOutbox { key: 7 });
        second.push(WriteOp::PutOutbox { key: 8, bytes: vec![8] });
        let mut scratch = Scratch::default();
        let group = [(first, None), (second, None)];
        scratch.plan(&group);
        let view: Vec<(Vec<u8>, Option<Vec<u8>>)> =
            scratch.writes(&group).map(|(key, value)| (key.to_vec(), value.map(<[u8]>::to_vec))).collect();
        use super::super::keys;
        assert_eq!(
            view,
            vec![
                (keys::named(keys::SNAPSHOT, "bin", "b1"), Some(vec![3])),
                (keys::named(keys::SNAPSHOT, "bin", "b2"), Some(vec![2])),
                (keys::named(keys::OPEN, "order", "o1"), None),
                (keys::number(keys::OUTBOX, 7).to_vec(), None),
                (keys::number(keys::OUTBOX, 8).to_vec(), Some(vec![8])),
            ],
            "one write per key, the last, in key order"
        );
    }

    #[test]
    fn only_a_busy_writer_gathers_and_only_for_its_delay() {
        let start = Instant::now();
        // After a group of fewer urgent batches than GATHER_SIBLINGS (a lone saga):
        // an urgent batch commits at once.
        let mut quiet = Hold::after(GATHER_SIBLINGS - 1, start);
        quiet.add(false, true, start);
        assert_eq!(quiet.deadline(start), None, "a quiet writer commits an urgent batch at once");
        // After a busy group: the next one gathers for GATHER_DELAY from its first batch, no longer.
        let mut busy = Hold::after(GATHER_SIBLINGS, start);
        busy.add(false, true, start);
        assert_eq!(busy.deadline(start), Some(start + GATHER_DELAY));
        assert_eq!(busy.deadline(start + GATHER_DELAY), None, "the gathering ends");
        // Urgent batches are counted for the next group; lazy ones are not.
        busy.add(true, true, start);
        busy.add(false, true, start);
        assert_eq!(busy.urgent, 2);
    }

    #[test]
    fn lazy_writes_wait_for_an_urgent_one_until_their_hold_passes() {
        let start = Instant::now();
        let mut hold = Hold::after(0, start);
        hold.add(true, false, start);
        assert_eq!(hold.deadline(start), Some(start + LAZY_WRITE_DELAY), "fire-and-forget: the long hold");
        hold.add(true, true, start);
        assert_eq!(hold.deadline(start), Some(start + LAZY_AWAITED_DELAY), "an awaited lazy write shortens it");
        hold.add(false, true, start);
        assert_eq!(hold.deadline(start), None, "an urgent batch carries them now");
    }

    #[test]
    fn a_failed_commit_stops_every_later_one() {
        let mut gate = FailStop::default();
        assert_eq!(gate.run(|| Ok(())), Ok(()));
        let failure = StoreError::Io("disk full".to_owned());
        assert_eq!(gate.run(|| Err(failure.clone())), Err(failure.clone()));
        assert!(gate.stopped());
        let mut attempted = false;
        let later = gate.run(|| {
            attempted = true;
            Ok(())
        });
        assert_eq!(later, Err(failure), "a later group is refused with the first failure");
        assert!(!attempted, "a later group never reaches the file");
    }
}
