//! Snapshot and row encoding: one version byte, then postcard.
//!
//! A context picks the version of each record kind; a decoder refuses any
//! other version with [`StoreError::Corrupt`], never a panic. A schema change
//! means a new version number plus a migration where the old one is read.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::StoreError;

/// Encodes `value` behind the version byte `version`.
///
/// # Errors
/// [`StoreError::Encode`] if serde refuses the value (a programming error).
pub fn encode<T: Serialize>(version: u8, value: &T) -> Result<Vec<u8>, StoreError> {
    let mut bytes = Vec::with_capacity(128);
    bytes.push(version);
    postcard::to_extend(value, bytes).map_err(|err| StoreError::Encode(err.to_string()))
}

/// Decodes bytes written by [`encode`] with the same `version`.
///
/// `what` names the record for the error (table and key).
///
/// # Errors
/// [`StoreError::Corrupt`] for an empty buffer, another version or bad bytes.
pub fn decode<T: DeserializeOwned>(version: u8, what: &str, bytes: &[u8]) -> Result<T, StoreError> {
    let (found, body) = bytes
        .split_first()
        .ok_or_else(|| StoreError::Corrupt { what: what.to_owned(), detail: "empty record".to_owned() })?;
    if *found != version {
        return Err(StoreError::Corrupt {
            what: what.to_owned(),
            detail: format!("schema version {found}, expected {version}"),
        });
    }
    postcard::from_bytes(body).map_err(|err| StoreError::Corrupt { what: what.to_owned(), detail: err.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_refuses_other_versions_and_garbage() {
        let bytes = encode(1, &(7u32, "x".to_owned())).unwrap();
        assert_eq!(decode::<(u32, String)>(1, "t", &bytes).unwrap(), (7, "x".to_owned()));
        assert!(matches!(decode::<(u32, String)>(2, "t", &bytes), Err(StoreError::Corrupt { .. })));
        assert!(matches!(decode::<(u32, String)>(1, "t", &[]), Err(StoreError::Corrupt { .. })));
        assert!(matches!(decode::<(u32, String)>(1, "t", &[1, 0xff, 0xff]), Err(StoreError::Corrupt { .. })));
    }
}
