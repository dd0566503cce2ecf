//! The `Idempotency-Key` contract.
//!
//! - Required on every POST that creates or changes an order, a receipt or an
//!   adjustment: missing → 400 `idempotency_key_missing`; not 1–255 printable
//!   ASCII characters → 400 `idempotency_key_invalid`.
//! - Keys are scoped by the caller's key id and the route.
//! - The record is written in the same transaction as the change it guards
//!   (it names the resource created), then completed with the response.
//! - Same key, same body (compared as canonical JSON) → the saved response,
//!   byte for byte. Same key, other body → 422 `idempotency_key_reused`.
//!   Same key while the first request is still running → 409 `idempotency_in_flight`.
//! - Validation failures are not saved: the client may fix the body and retry with the key.
//! - Records are kept for [`RETENTION`] and then pruned.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::ApiError;
use crate::persistence::{IdempotencyRecord as Record, KeyedRecord, Store, StoreError};

/// How long idempotency records are kept.
pub const RETENTION: Duration = Duration::from_secs(24 * 60 * 60);
/// Longest key, in bytes.
pub const KEY_LEN_MAX: usize = 255;
/// The header carrying the key (as documented; header names match without regard to case).
pub const HEADER: &str = "Idempotency-Key";

/// Keys being executed in this process.
#[derive(Debug, Default, Clone)]
pub struct InFlight {
    keys: Arc<Mutex<HashSet<String>>>,
}

/// A claimed key: the request may run. Dropping it frees the key.
#[derive(Debug)]
pub struct Claim {
    key: String,
    fingerprint: String,
    store: Store,
    resource: Option<String>,
    now: u64,
    in_flight: InFlight,
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Ok(mut keys) = self.in_flight.keys.lock() {
            keys.remove(&self.key);
        }
    }
}

/// Writes one request's idempotency record ([`Claim::recorder`]).
#[derive(Debug, Clone)]
pub struct Recorder {
    key: String,
    fingerprint: String,
    now: u64,
}

impl Recorder {
    /// The response the stored record of this request holds, if any.
    ///
    /// # Errors
    /// [`ApiError::Internal`] when the store cannot be read or the record decoded.
    pub fn saved_response(&self, store: &Store) -> Result<Option<(StatusCode, Vec<u8>)>, ApiError> {
        let response = read_record(store, &self.key)?.and_then(|record| record.response);
        Ok(response.map(|(status, body)| (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), body)))
    }

    /// The record naming `resource` and, when the change commits with its
    /// answer, the `response` (status and body) a repeat is sent back.
    pub fn write(&self, resource: &str, response: Option<(StatusCode, Vec<u8>)>) -> KeyedRecord {
        let record = Record {
            fingerprint: self.fingerprint.clone(),
            created_at: self.now,
            resource: Some(resource.to_owned()),
            response: response.map(|(status, body)| (status.as_u16(), body)),
        };
        KeyedRecord { key: self.key.clone(), record }
    }
}

/// What to do with a request.
#[derive(Debug)]
pub enum Admission {
    /// Run it.
    Run(Claim),
    /// Send this saved response again.
    Replay(Response),
}

fn canonical_fingerprint(body: &[u8]) -> String {
    let canonical = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|value| serde_json::to_vec(&value).ok())
        .unwrap_or_else(|| body.to_vec());
    let mut hex = String::with_capacity(64);
    for byte in Sha256::digest(&canonical) {
        use std::fmt::Write;
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

impl InFlight {
    /// Checks the key of a request to `route` by `key_id` with `body`.
    ///
    /// # Errors
    /// 400 for a missing or malformed key, 409 while in flight, 422 for a reused key.
    pub fn admit(
        &self,
        store: &Store,
        key_id: &str,
        route: &str,
        headers: &HeaderMap,
        body: &[u8],
        now: u64,
    ) -> Result<Admission, ApiError> {
        let raw = headers
            .get("idempotency-key")
            .ok_or_else(|| ApiError::bad("idempotency_key_missing", "this request needs an Idempotency-Key header"))?;
        let raw = raw
            .to_str()
            .map_err(|_| ApiError::bad("idempotency_key_invalid", "Idempotency-Key must be printable ASCII"))?;
        if raw.is_empty() || raw.len() > KEY_LEN_MAX || !raw.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            return Err(ApiError::bad(
                "idempotency_key_invalid",
                format!("Idempotency-Key must be 1 to {KEY_LEN_MAX} printable characters"),
            ));
        }
        let key = format!("{key_id}|{route}|{raw}");
        let fingerprint = canonical_fingerprint(body);
        {
            let mut keys = self.keys.lock().map_err(|_| ApiError::Internal("idempotency lock poisoned".to_owned()))?;
            if !keys.insert(key.clone()) {
                return Err(ApiError::conflict(
                    "idempotency_in_flight",
                    "a request with this Idempotency-Key is still running",
                ));
            }
        }
        let mut claim = Claim {
            key: key.clone(),
            fingerprint: fingerprint.clone(),
            store: store.clone(),
            resource: None,
            now,
            in_flight: self.clone(),
        };
        let Some(record) = read_record(store, &key)? else { return Ok(Admission::Run(claim)) };
        if record.fingerprint != fingerprint {
            return Err(ApiError::invalid(
                "idempotency_key_reused",
                "this Idempotency-Key was used with a different body",
            ));
        }
        match record.response {
            Some((status, body)) => {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
                Ok(Admission::Replay((status, [(header::CONTENT_TYPE, "application/json")], body).into_response()))
            }
            // Committed with its change but never answered (a crash): run again on the same resource.
            None => {
                claim.resource = record.resource;
                Ok(Admission::Run(claim))
            }
        }
    }
}

/// The record stored under `key`. Read inline, not on a blocking thread:
/// one key is a short MVCC read that never waits for the writer, cheaper
/// than the hop to a blocking thread and back.
fn read_record(store: &Store, key: &str) -> Result<Option<Record>, ApiError> {
    store.idempotency_record(key).map_err(|err| ApiError::Internal(err.to_string()))
}

/// The resource (an order id, …) a stored idempotency record names, if its
/// request got that far: for offline checkers of the one-resource-per-key rule.
///
/// # Errors
/// The bytes are not a record.
pub fn stored_resource(bytes: &[u8]) -> Result<Option<String>, StoreError> {
    Ok(Record::decode(bytes)?.resource)
}

/// The response a stored idempotency record holds (status and body), if its
/// request was answered: for checkers of the replay rule.
///
/// # Errors
/// The bytes are not a record.
pub fn stored_response(bytes: &[u8]) -> Result<Option<(u16, Vec<u8>)>, StoreError> {
    Ok(Record::decode(bytes)?.response)
}

impl Claim {
    /// The resource an earlier, interrupted run of this request created.
    pub fn resource(&self) -> Option<&str> {
        self.resource.as_deref()
    }

    /// The record to commit with the change that creates `resource`.
    pub fn record(&self, resource: &str) -> KeyedRecord {
        self.recorder().write(resource, None)
    }

    /// What writes this request's record, for a change that can name its
    /// resource and its response in its own transaction (a new order).
    pub fn recorder(&self) -> Recorder {
        Recorder { key: self.key.clone(), fingerprint: self.fingerprint.clone(), now: self.now }
    }

    /// Saves the response durably, then returns it.
    ///
    /// # Errors
    /// [`ApiError::Unavailable`] if the record cannot be written (the change is
    /// done; a retry with the key finds it and answers again).
    pub async fn complete(self, resource: &str, status: StatusCode, body: Vec<u8>) -> Result<Response, ApiError> {
        let record = self.recorder().write(resource, Some((status, body.clone())));
        self.store
            .put_idempotency(&record)
            .await
            .map_err(|_| ApiError::Unavailable("could not save the response; retry with the same Idempotency-Key"))?;
        Ok((status, [(header::CONTENT_TYPE, "application/json")], body).into_response())
    }
}

/// Deletes the records older than [`RETENTION`] from `store` (and
/// undecodable ones); returns how many.
///
/// # Errors
/// A storage failure.
pub async fn prune(store: &Store, now: u64) -> Result<usize, StoreError> {
    let cutoff = now.saturating_sub(u64::try_from(RETENTION.as_millis()).unwrap_or(u64::MAX));
    store.prune_idempotency(cutoff).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_ignore_key_order_and_whitespace() {
        assert_eq!(canonical_fingerprint(br#"{"a":1,"b":[2]}"#), canonical_fingerprint(b"{ \"b\": [2], \"a\": 1 }"));
        assert_ne!(canonical_fingerprint(br#"{"a":1}"#), canonical_fingerprint(br#"{"a":2}"#));
    }
}
