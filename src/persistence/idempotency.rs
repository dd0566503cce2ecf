//! Idempotency records: what a request sent under one key did, stored in a
//! context's store beside the change it guards, read back as plain data.
//! The HTTP edge keeps the contract (headers, scoping, fingerprints); the
//! format, the reads, the writes and the pruning are here.

use serde::{Deserialize, Serialize};

use super::{codec, Result, Store, StoreError, WriteBatch, WriteOp};

/// Version byte of an idempotency record.
const RECORD_VERSION: u8 = 1;
/// Most records one pruning commit deletes.
pub const PRUNE_BATCH_MAX: usize = 10_000;

/// What a request sent under one key did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// The request body's fingerprint: a repeat must send the same body.
    pub fingerprint: String,
    /// When the request came, in ms since the epoch (for pruning).
    pub created_at: u64,
    /// The resource the request created (an order id, …), once known.
    pub resource: Option<String>,
    /// The response (status and body), once sent.
    pub response: Option<(u16, Vec<u8>)>,
}

/// A record under its key, to write with the change it guards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyedRecord {
    /// The scoped key.
    pub key: String,
    /// The record.
    pub record: IdempotencyRecord,
}

impl IdempotencyRecord {
    /// Decodes a stored record.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`].
    pub fn decode(bytes: &[u8]) -> Result<IdempotencyRecord> {
        codec::decode(RECORD_VERSION, "idempotency record", bytes)
    }
}

impl KeyedRecord {
    /// The write that stores it.
    ///
    /// # Errors
    /// [`StoreError::Encode`].
    pub fn write(&self) -> Result<WriteOp> {
        Ok(WriteOp::PutIdempotency { key: self.key.clone(), bytes: codec::encode(RECORD_VERSION, &self.record)? })
    }
}

impl Store {
    /// The record stored under `key`. Read inline by callers on the
    /// runtime: one key is a short MVCC read that never waits for the writer.
    ///
    /// # Errors
    /// [`StoreError::Io`] or [`StoreError::Corrupt`].
    pub fn idempotency_record(&self, key: &str) -> Result<Option<IdempotencyRecord>> {
        self.idempotency(key)?.map(|bytes| IdempotencyRecord::decode(&bytes)).transpose()
    }

    /// Writes `record` on its own and returns once it is durable.
    ///
    /// # Errors
    /// A storage failure (the outcome is then unknown).
    pub async fn put_idempotency(&self, record: &KeyedRecord) -> Result<()> {
        let mut batch = WriteBatch::new();
        batch.push(record.write()?);
        self.commit(batch).await
    }

    /// Deletes the records created before `cutoff` (ms since the epoch), and
    /// undecodable ones, [`PRUNE_BATCH_MAX`] per commit; returns how many.
    /// The records are read and decoded on a blocking thread, and only the
    /// keys of the expired ones are kept.
    ///
    /// # Errors
    /// A storage failure.
    pub async fn prune_idempotency(&self, cutoff: u64) -> Result<usize> {
        let reader = self.clone();
        let expired = tokio::task::spawn_blocking(move || {
            let mut expired = Vec::new();
            reader.each_idempotency_record(|key, bytes| {
                if IdempotencyRecord::decode(bytes).map_or(true, |record| record.created_at < cutoff) {
                    expired.push(key.to_owned());
                }
            })?;
            Ok::<_, StoreError>(expired)
        })
        .await
        .map_err(|err| StoreError::Io(err.to_string()))??;
        let pruned = expired.len();
        let mut keys = expired.into_iter().peekable();
        while keys.peek().is_some() {
            let mut batch = WriteBatch::new();
            for key in keys.by_ref().take(PRUNE_BATCH_MAX) {
                batch.push(WriteOp::DeleteIdempotency { key });
            }
            self.commit(batch).await?;
        }
        Ok(pruned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pruning_deletes_the_expired_records_and_keeps_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("prune.redb")).unwrap();
        let day = 24 * 60 * 60 * 1000;
        let now = 10 * day;
        let record = |created_at| {
            let record = IdempotencyRecord { fingerprint: String::new(), created_at, resource: None, response: None };
            codec::encode(RECORD_VERSION, &record).unwrap()
        };
        let mut batch = WriteBatch::new();
        for (key, bytes) in [
            ("old", record(now - day - 1)),
            ("older", record(1)),
            ("fresh", record(now - day + 1)),
            ("garbage", vec![9, 9]),
        ] {
            batch.push(WriteOp::PutIdempotency { key: key.to_owned(), bytes });
        }
        store.commit(batch).await.unwrap();
        assert_eq!(store.prune_idempotency(now - day).await.unwrap(), 3, "two expired, one undecodable");
        let left: Vec<String> = store.idempotency_records().unwrap().into_iter().map(|(key, _)| key).collect();
        assert_eq!(left, ["fresh"]);
        assert_eq!(store.prune_idempotency(now - day).await.unwrap(), 0, "nothing more to prune");
        store.close();
    }
}
