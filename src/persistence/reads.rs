//! Reading a store: snapshots and their parts, open marks, the outbox, saga
//! steps, idempotency records and figures. Reads never wait for the writer
//! (redb's MVCC read transactions).

use super::*;

impl Store {
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
