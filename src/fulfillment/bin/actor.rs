//! The bin actor: one per warehouse bin, the only writer of its stock.
//!
//! Each command is decided by [`Bin`]'s pure functions, persisted (one
//! snapshot write through the group-commit writer), swapped in and then
//! answered. Receipts and adjustments (asked by people) are answered once
//! durable. Reservations and their resolutions (asked by fulfillment
//! orders) are answered once *queued*: the writer commits in queue order and
//! stops at its first failure, and the fulfillment order acts on the answer
//! only through a write of its own, queued later — so a hot bin serves its
//! orders at memory speed, not one fsync each. A bin is loaded only after
//! the writer has settled ([`ChildSpec::RETURNS_BEFORE_DURABLE`]), so a
//! respawned bin never reads a snapshot older than its last answer.

use std::collections::BTreeMap;
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::{Deserialize, Serialize};

use super::state::{Bin, BinError, Hold, Level};
use crate::actors::{idle_check_interval, ChildSpec, Children, Live};
use crate::events::{BinId, ReservationId, Sku};
use crate::fulfillment::fulfillment_order::state::BinOp;
use crate::fulfillment::Deps;
use crate::persistence::{codec, Record, Store, StoreError, Urgency, WriteBatch, WriteOp};

/// Record kind of bin snapshots.
pub const BIN_KIND: &str = "bin";
/// Version of a bin's snapshot row: its counters. Each hold has a row of
/// its own ([`WriteOp::PutPart`], numbered by reservation id), so that a hold
/// or pick writes two small rows, not the whole bin: a saga-3 bin keeps
/// hundreds of picked holds until their shipments leave.
const BIN_VERSION: u8 = 2;
/// Version 1 of the snapshot row held the whole bin, holds included; it is
/// still read, and [`stored_whole`] tells the start-up to rewrite it.
const BIN_VERSION_WHOLE: u8 = 1;
/// Version of a hold's row.
const HOLD_VERSION: u8 = 1;

/// A bin's snapshot row, as written.
#[derive(Serialize)]
struct CountersRef<'a> {
    id: &'a BinId,
    levels: &'a BTreeMap<Sku, Level>,
    expired: u64,
}

/// A bin's snapshot row, as read.
#[derive(Deserialize)]
struct Counters {
    id: BinId,
    levels: BTreeMap<Sku, Level>,
    expired: u64,
}

/// Puts into `batch` the writes that store `bin`'s counters and, for each
/// of `holds`, that hold as it now is (its row, or its row's removal).
///
/// # Errors
/// [`StoreError::Encode`].
pub fn write_changes(
    bin: &Bin,
    holds: impl IntoIterator<Item = ReservationId>,
    batch: &mut WriteBatch,
) -> Result<(), StoreError> {
    let id = bin.id().to_string();
    let counters = CountersRef { id: bin.id(), levels: bin.levels(), expired: bin.expired() };
    for hold in holds {
        batch.push(match bin.holds().get(&hold) {
            Some(held) => WriteOp::PutPart {
                kind: BIN_KIND,
                id: id.clone(),
                part: hold.as_raw(),
                bytes: codec::encode(HOLD_VERSION, held)?,
            },
            None => WriteOp::DeletePart { kind: BIN_KIND, id: id.clone(), part: hold.as_raw() },
        });
    }
    batch.push(WriteOp::PutSnapshot { kind: BIN_KIND, id, bytes: codec::encode(BIN_VERSION, &counters)? });
    Ok(())
}

/// The writes that store `bin` whole: its counters and every hold (a
/// snapshot row of version 1 rewritten).
///
/// # Errors
/// [`StoreError::Encode`].
pub fn write_whole(bin: &Bin, batch: &mut WriteBatch) -> Result<(), StoreError> {
    write_changes(bin, bin.holds().keys().copied(), batch)
}

/// Whether `record` is a bin of the first format, holds inside its snapshot
/// row, which [`write_whole`] should rewrite.
pub fn stored_whole(record: &Record) -> bool {
    record.snapshot.first() == Some(&BIN_VERSION_WHOLE)
}

/// Decodes a bin's snapshot row alone, with no hold rows.
///
/// # Errors
/// [`StoreError::Corrupt`] for bad bytes or a broken invariant.
pub fn decode(id: &str, bytes: &[u8]) -> Result<Bin, StoreError> {
    decode_record(&Record { id: id.to_owned(), snapshot: bytes.to_vec(), parts: Vec::new() })
}

/// Decodes and checks a bin: its snapshot row and its hold rows.
///
/// # Errors
/// [`StoreError::Corrupt`] for bad bytes or a broken invariant.
pub fn decode_record(record: &Record) -> Result<Bin, StoreError> {
    let what = format!("bin {}", record.id);
    let bin = if stored_whole(record) {
        if !record.parts.is_empty() {
            return Err(StoreError::Corrupt { what, detail: "hold rows beside a whole bin".to_owned() });
        }
        codec::decode::<Bin>(BIN_VERSION_WHOLE, &what, &record.snapshot)?
    } else {
        let counters: Counters = codec::decode(BIN_VERSION, &what, &record.snapshot)?;
        let mut holds = BTreeMap::new();
        for (part, bytes) in &record.parts {
            let hold: Hold = codec::decode(HOLD_VERSION, &format!("{what} hold {part:032x}"), bytes)?;
            holds.insert(ReservationId::from_raw(*part), hold);
        }
        Bin::from_parts(counters.id, counters.levels, holds, counters.expired)
    };
    bin.check_invariants().map_err(|err| StoreError::Corrupt { what, detail: err.to_string() })?;
    Ok(bin)
}

/// Every bin in `store`, with whether each is stored whole ([`stored_whole`]).
///
/// # Errors
/// [`StoreError::Io`] or [`StoreError::Corrupt`].
pub fn load_all(store: &Store) -> Result<Vec<(Bin, bool)>, StoreError> {
    store.records(BIN_KIND)?.iter().map(|record| Ok((decode_record(record)?, stored_whole(record)))).collect()
}

/// Messages to a bin.
#[derive(Debug)]
pub enum BinMsg {
    /// Put units in.
    Receive {
        /// SKU.
        sku: Sku,
        /// Units.
        units: u32,
        /// A write to commit with the change (an idempotency record).
        record: Option<WriteOp>,
        /// The bin after the receipt.
        reply: RpcReplyPort<Result<Bin, BinError>>,
    },
    /// Count units in or out.
    Adjust {
        /// SKU.
        sku: Sku,
        /// Signed units.
        delta: i32,
        /// A write to commit with the change (an idempotency record).
        record: Option<WriteOp>,
        /// The bin after the adjustment.
        reply: RpcReplyPort<Result<Bin, BinError>>,
    },
    /// Hold units.
    Reserve {
        /// The reservation.
        id: ReservationId,
        /// SKU.
        sku: Sku,
        /// Units.
        units: u32,
        /// Whether it is held.
        reply: RpcReplyPort<Result<(), BinError>>,
    },
    /// Resolve a reservation.
    Resolve {
        /// The reservation.
        id: ReservationId,
        /// How.
        op: BinOp,
        /// Whether it is done.
        reply: RpcReplyPort<Result<(), BinError>>,
    },
    /// Units of a SKU free to reserve (what allocation needs, without copying the bin).
    Available {
        /// SKU.
        sku: Sku,
        /// Units free.
        reply: RpcReplyPort<u32>,
    },
    /// The bin as it is.
    Get(RpcReplyPort<Option<Bin>>),
    /// Passivate if idle.
    Idle,
}

/// How long a bin waits for its write before it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// Until it is on disk (people's commands).
    Durable,
    /// Until it is queued in the writer, lazily (a fulfillment order's
    /// holds: the order's own write follows and decides when they commit).
    Queued,
}

/// The bin actor.
#[derive(Debug)]
pub struct BinActor {
    deps: Arc<Deps>,
}

/// The bin supervisor's view of its children.
#[derive(Debug)]
pub struct BinSpec {
    pub(crate) deps: Arc<Deps>,
}

impl ChildSpec for BinSpec {
    type Id = BinId;
    type Actor = BinActor;
    type Args = Option<Bin>;
    const KIND: &'static str = BIN_KIND;

    fn children(&self) -> &Children<Self> {
        &self.deps.live_bins
    }

    fn actor(&self) -> BinActor {
        BinActor { deps: self.deps.clone() }
    }

    fn load(&self, id: &BinId) -> Result<Option<Option<Bin>>, StoreError> {
        let loaded = self.deps.loaded_bins.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(id);
        if let Some(bin) = loaded {
            return Ok(Some(Some(bin)));
        }
        Ok(self
            .deps
            .store
            .record(BIN_KIND, &id.to_string())?
            .map(|record| decode_record(&record))
            .transpose()?
            .map(Some))
    }

    fn vacant(&self, id: &BinId) -> Option<Bin> {
        Some(Bin::new(id.clone()))
    }

    fn store(&self) -> &crate::persistence::Store {
        &self.deps.store
    }

    const RETURNS_BEFORE_DURABLE: bool = true;
}

impl BinActor {
    /// Queues the write of `next`'s counters and of `hold` as it now is,
    /// with `record`; waits as `wait` says.
    async fn save(
        &self,
        next: &Bin,
        hold: Option<ReservationId>,
        record: Option<WriteOp>,
        wait: Wait,
    ) -> Result<(), ActorProcessingErr> {
        match wait {
            // A person's command, rare: check everything.
            Wait::Durable => next.check_invariants()?,
            // A hold or pick, one per order step: `Bin::*_in_place` keeps the
            // holds and the counters in step; check the counters.
            Wait::Queued => next.check_levels()?,
        }
        let mut batch = WriteBatch::new();
        write_changes(next, hold, &mut batch)?;
        if let Some(record) = record {
            batch.push(record);
        }
        // A hold or pick is followed by its order's own write, which decides how soon they commit.
        let urgency = if wait == Wait::Durable { Urgency::Now } else { Urgency::Lazy };
        let pending = self.deps.store.enqueue_as(batch, urgency).await?;
        if wait == Wait::Durable {
            pending.durable().await?;
        }
        Ok(())
    }

    /// After a fulfillment order's hold or pick was decided in place
    /// (`Bin::*_in_place`: a bin keeps every picked hold until its shipment
    /// leaves, so copying it per command costs as much as it is large):
    /// queue the write if it changed, reply. Should the write fail, the
    /// handler fails and the bin restarts from its last snapshot.
    async fn changed_in_place(
        &self,
        state: &mut Live<Bin>,
        hold: ReservationId,
        outcome: Result<bool, BinError>,
        reply: RpcReplyPort<Result<(), BinError>>,
    ) -> Result<(), ActorProcessingErr> {
        match outcome {
            Ok(changed) => {
                if changed {
                    let bin = state.aggregate.as_ref().ok_or("bin actor without a bin")?;
                    self.save(bin, Some(hold), None, Wait::Queued).await?;
                }
                let _ = reply.send(Ok(()));
            }
            Err(err) => {
                let _ = reply.send(Err(err));
            }
        }
        Ok(())
    }

    /// A person's command (stock received or adjusted): decide, persist
    /// durably (if changed, or to keep `record`), swap, reply with the bin.
    async fn change(
        &self,
        state: &mut Live<Bin>,
        decided: Result<Bin, BinError>,
        record: Option<WriteOp>,
        reply: RpcReplyPort<Result<Bin, BinError>>,
    ) -> Result<(), ActorProcessingErr> {
        let Some(current) = state.aggregate.as_ref() else {
            return Err("bin actor without a bin".into());
        };
        match decided {
            Ok(next) => {
                if &next != current || record.is_some() {
                    self.save(&next, None, record, Wait::Durable).await?;
                }
                state.aggregate = Some(next.clone());
                let _ = reply.send(Ok(next));
            }
            Err(err) => {
                let _ = reply.send(Err(err));
            }
        }
        Ok(())
    }
}

impl Actor for BinActor {
    type Msg = BinMsg;
    type State = Live<Bin>;
    type Arguments = Option<Bin>;

    async fn pre_start(&self, myself: ActorRef<BinMsg>, bin: Option<Bin>) -> Result<Live<Bin>, ActorProcessingErr> {
        ractor::time::send_interval(idle_check_interval(self.deps.config.idle_after), myself.get_cell(), || {
            BinMsg::Idle
        });
        Ok(Live::new(bin))
    }

    async fn handle(
        &self,
        myself: ActorRef<BinMsg>,
        message: BinMsg,
        state: &mut Live<Bin>,
    ) -> Result<(), ActorProcessingErr> {
        // Boxed: an idle actor's task then holds a pointer, not the
        // largest state of this future (see BENCHMARKS.md, memory).
        crate::actors::boxed(async move {
            if !matches!(message, BinMsg::Idle) {
                state.touched = std::time::Instant::now();
            }
            let Some(bin) = state.aggregate.as_ref() else {
                return Err("bin actor without a bin".into());
            };
            match message {
                BinMsg::Receive { sku, units, record, reply } => {
                    let decided = bin.receive(&sku, units);
                    let id = bin.id().clone();
                    self.change(state, decided, record, reply).await?;
                    self.deps.directory.note_stock(&id, &sku);
                }
                BinMsg::Adjust { sku, delta, record, reply } => {
                    let decided = bin.adjust(&sku, delta);
                    self.change(state, decided, record, reply).await?;
                }
                BinMsg::Reserve { id, sku, units, reply } => {
                    let bin = state.aggregate.as_mut().ok_or("bin actor without a bin")?;
                    let outcome = bin.reserve_in_place(id, &sku, units);
                    self.changed_in_place(state, id, outcome, reply).await?;
                }
                BinMsg::Resolve { id, op, reply } => {
                    let bin = state.aggregate.as_mut().ok_or("bin actor without a bin")?;
                    let outcome = match op {
                        BinOp::Release => Ok(bin.release_in_place(id)),
                        BinOp::Expire => Ok(bin.expire_in_place(id)),
                        BinOp::Pick { units } => bin.pick_in_place(id, units),
                        BinOp::Restock => Ok(bin.restock_in_place(id)),
                        BinOp::Ship => Ok(bin.ship_in_place(id)),
                    };
                    self.changed_in_place(state, id, outcome, reply).await?;
                }
                BinMsg::Available { sku, reply } => {
                    let _ = reply.send(bin.level(&sku).available());
                }
                BinMsg::Get(reply) => {
                    let _ = reply.send(Some(bin.clone()));
                }
                BinMsg::Idle => {
                    if state.idle_for(self.deps.config.idle_after) {
                        myself.stop(Some("passivated".to_owned()));
                    }
                }
            }
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sku(n: u32) -> Sku {
        Sku::parse(&format!("SKU-{n}")).unwrap()
    }

    fn rid(n: u128) -> ReservationId {
        ReservationId::from_raw(n)
    }

    /// A bin with two SKUs, three reservations, one of them picked.
    fn busy_bin() -> Bin {
        let mut bin = Bin::new("wh/A-01".parse().unwrap()).receive(&sku(1), 10).unwrap().receive(&sku(2), 5).unwrap();
        bin.reserve_in_place(rid(1), &sku(1), 3).unwrap();
        bin.reserve_in_place(rid(2), &sku(2), 2).unwrap();
        bin.reserve_in_place(rid(3), &sku(1), 1).unwrap();
        bin.pick_in_place(rid(2), 2).unwrap();
        bin
    }

    async fn apply(store: &Store, batch: WriteBatch) {
        store.commit(batch).await.unwrap();
    }

    #[tokio::test]
    async fn a_bin_reads_back_as_written_change_by_change() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("f.redb")).unwrap();
        let mut bin = busy_bin();
        let mut batch = WriteBatch::new();
        write_whole(&bin, &mut batch).unwrap();
        apply(&store, batch).await;
        let id = bin.id().to_string();
        let read = || decode_record(&store.record(BIN_KIND, &id).unwrap().unwrap()).unwrap();
        assert_eq!(read(), bin);

        // Each change writes the counters and the one hold it touched.
        type Change = (ReservationId, fn(&mut Bin));
        let changes: [Change; 4] = [
            (rid(1), |b| assert!(b.pick_in_place(rid(1), 2).unwrap())),
            (rid(3), |b| assert!(b.release_in_place(rid(3)))),
            (rid(2), |b| assert!(b.ship_in_place(rid(2)))),
            (rid(4), |b| assert!(b.reserve_in_place(rid(4), &sku(2), 3).unwrap())),
        ];
        for (hold, change) in changes {
            change(&mut bin);
            let mut batch = WriteBatch::new();
            write_changes(&bin, [hold], &mut batch).unwrap();
            assert_eq!(batch.ops().len(), 2, "one hold row and the counters");
            apply(&store, batch).await;
            assert_eq!(read(), bin);
        }
        assert_eq!(store.record(BIN_KIND, &id).unwrap().unwrap().parts.len(), bin.holds().len());
        store.close();
    }

    #[tokio::test]
    async fn a_bin_stored_whole_reads_back_and_is_rewritten_in_rows() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("f.redb")).unwrap();
        let bin = busy_bin();
        let mut batch = WriteBatch::new();
        let whole = codec::encode(BIN_VERSION_WHOLE, &bin).unwrap();
        batch.push(WriteOp::PutSnapshot { kind: BIN_KIND, id: bin.id().to_string(), bytes: whole });
        apply(&store, batch).await;
        assert_eq!(load_all(&store).unwrap(), vec![(bin.clone(), true)], "the first format still reads");

        let mut batch = WriteBatch::new();
        write_whole(&bin, &mut batch).unwrap();
        apply(&store, batch).await;
        assert_eq!(load_all(&store).unwrap(), vec![(bin.clone(), false)], "rewritten: a row per hold");
        assert_eq!(store.record(BIN_KIND, &bin.id().to_string()).unwrap().unwrap().parts.len(), 3);
        store.close();
    }

    #[test]
    fn counters_that_disagree_with_the_holds_are_refused_on_read() {
        let bin = busy_bin();
        let mut batch = WriteBatch::new();
        write_whole(&bin, &mut batch).unwrap();
        let mut record = Record { id: bin.id().to_string(), snapshot: Vec::new(), parts: Vec::new() };
        for op in batch.ops() {
            match op {
                WriteOp::PutSnapshot { bytes, .. } => record.snapshot = bytes.clone(),
                WriteOp::PutPart { part, bytes, .. } => record.parts.push((*part, bytes.clone())),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(decode_record(&record).unwrap(), bin);
        record.parts.pop();
        assert!(matches!(decode_record(&record), Err(StoreError::Corrupt { .. })), "a lost hold row is caught");
    }
}
