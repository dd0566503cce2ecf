//! How a bin is stored: a snapshot row with its counters, and a row per
//! hold ([`WriteOp::PutPart`], numbered by reservation id), so that a hold or
//! pick writes two small rows, not the whole bin. Used by the bin actor, the
//! context's start-up, the engine's audit and `inspect`.

use std::collections::BTreeMap;

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

use super::state::{Bin, Hold, HoldChange, Level};
use crate::actors::Aggregate;
use crate::events::{BinId, OrderId, ReservationId, Sku};
use crate::persistence::{codec, Record, Store, StoreError, WriteBatch, WriteOp};

/// Record kind of bin snapshots.
pub const KIND: &str = "bin";
/// Version of a bin's snapshot row: its counters (each hold has a row of its own).
pub const VERSION: u8 = 2;
/// Version 1 of the snapshot row held the whole bin, holds included; it is
/// still read, and [`stored_whole`] tells the start-up to rewrite it.
const VERSION_WHOLE: u8 = 1;
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
        batch.push(hold_row(&id, hold, bin.holds().get(&hold))?);
    }
    batch.push(WriteOp::PutSnapshot { kind: KIND, id, bytes: codec::encode(VERSION, &counters)? });
    Ok(())
}

/// The write that stores reservation `hold` of bin `id` as it now is: its
/// row, or its row's removal.
fn hold_row(id: &str, hold: ReservationId, held: Option<&Hold>) -> Result<WriteOp, StoreError> {
    let (id, part) = (id.to_owned(), hold.as_raw());
    Ok(match held {
        Some(held) => WriteOp::PutPart { kind: KIND, id, part, bytes: codec::encode(HOLD_VERSION, held)? },
        None => WriteOp::DeletePart { kind: KIND, id, part },
    })
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
    record.snapshot.first() == Some(&VERSION_WHOLE)
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
        codec::decode::<Bin>(VERSION_WHOLE, &what, &record.snapshot)?
    } else {
        let counters: Counters = codec::decode(VERSION, &what, &record.snapshot)?;
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
    store.records(KIND)?.iter().map(|record| Ok((decode_record(record)?, stored_whole(record)))).collect()
}

/// A bin's counters after a [`HoldChange`], as written: the same bytes as
/// [`CountersRef`] of the bin with the change applied.
#[derive(Serialize)]
struct CountersAfter<'a> {
    id: &'a BinId,
    levels: LevelsAfter<'a>,
    expired: u64,
}

/// A bin's levels with one SKU's replaced.
struct LevelsAfter<'a> {
    levels: &'a BTreeMap<Sku, Level>,
    sku: &'a Sku,
    level: &'a Level,
}

impl Serialize for LevelsAfter<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let known = self.levels.contains_key(self.sku);
        let mut map = serializer.serialize_map(Some(self.levels.len() + usize::from(!known)))?;
        let mut placed = known;
        for (sku, level) in self.levels {
            if !placed && sku > self.sku {
                map.serialize_entry(self.sku, self.level)?;
                placed = true;
            }
            map.serialize_entry(sku, if sku == self.sku { self.level } else { level })?;
        }
        if !placed {
            map.serialize_entry(self.sku, self.level)?;
        }
        map.end()
    }
}

/// Adds to `batch` the writes that store `change` made to `bin` (its
/// counters after it, and its hold as it then is), before it is applied.
///
/// # Errors
/// [`StoreError::Encode`].
pub fn change_rows(bin: &Bin, change: &HoldChange, batch: &mut WriteBatch) -> Result<(), StoreError> {
    let id = bin.id().to_string();
    batch.push(hold_row(&id, change.id, change.hold.as_ref())?);
    let levels = LevelsAfter { levels: bin.levels(), sku: &change.sku, level: &change.level };
    let counters = CountersAfter { id: bin.id(), levels, expired: change.expired };
    batch.push(WriteOp::PutSnapshot { kind: KIND, id, bytes: codec::encode(VERSION, &counters)? });
    Ok(())
}

/// A bin as a whole aggregate: its counters. A person's command (stock
/// received or adjusted) changes no hold; holds are written by
/// [`change_rows`].
impl Aggregate for Bin {
    const KIND: &'static str = KIND;
    const VERSION: u8 = VERSION;
    const RESUMES: bool = false;

    fn key(&self) -> String {
        self.id().to_string()
    }

    fn encode(&self, batch: &mut WriteBatch) -> Result<(), StoreError> {
        let counters = CountersRef { id: self.id(), levels: self.levels(), expired: self.expired() };
        batch.push(WriteOp::PutSnapshot { kind: KIND, id: self.key(), bytes: codec::encode(VERSION, &counters)? });
        Ok(())
    }

    fn decode(key: &str, bytes: &[u8]) -> Result<Self, StoreError> {
        decode(key, bytes)
    }

    fn check_invariants(&self) -> Result<(), String> {
        Bin::check_invariants(self).map_err(|err| err.to_string())
    }

    fn is_finished(&self) -> bool {
        false
    }

    fn order_id(&self) -> Option<OrderId> {
        None
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
        let read = || decode_record(&store.record(KIND, &id).unwrap().unwrap()).unwrap();
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
        assert_eq!(store.record(KIND, &id).unwrap().unwrap().parts.len(), bin.holds().len());
        store.close();
    }

    #[tokio::test]
    async fn a_bin_stored_whole_reads_back_and_is_rewritten_in_rows() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("f.redb")).unwrap();
        let bin = busy_bin();
        let mut batch = WriteBatch::new();
        let whole = codec::encode(VERSION_WHOLE, &bin).unwrap();
        batch.push(WriteOp::PutSnapshot { kind: KIND, id: bin.id().to_string(), bytes: whole });
        apply(&store, batch).await;
        assert_eq!(load_all(&store).unwrap(), vec![(bin.clone(), true)], "the first format still reads");

        let mut batch = WriteBatch::new();
        write_whole(&bin, &mut batch).unwrap();
        apply(&store, batch).await;
        assert_eq!(load_all(&store).unwrap(), vec![(bin.clone(), false)], "rewritten: a row per hold");
        assert_eq!(store.record(KIND, &bin.id().to_string()).unwrap().unwrap().parts.len(), 3);
        store.close();
    }

    #[test]
    fn a_change_writes_the_rows_of_the_bin_it_leads_to() {
        let bin = busy_bin();
        let changes = [
            bin.reserve_change(rid(5), &sku(1), 2).unwrap().unwrap(),
            bin.pick_change(rid(1), 2).unwrap().unwrap(),
            bin.expire_change(rid(3)).unwrap(),
            bin.ship_change(rid(2)).unwrap(),
        ];
        for change in changes {
            let mut rows = WriteBatch::new();
            change_rows(&bin, &change, &mut rows).unwrap();
            let mut after = bin.clone();
            after.apply(change.clone());
            let mut batch = WriteBatch::new();
            write_changes(&after, [change.id], &mut batch).unwrap();
            assert_eq!(format!("{:?}", rows.ops()), format!("{:?}", batch.ops()), "{change:?}");
        }
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
