//! API keys and roles: who may call, for both contexts' edges.
//!
//! A key is `odk_` plus 32 random hex digits, shown once when issued. Only
//! its SHA-256 is stored (a high-entropy secret needs no slow hash), in the
//! store of the process that issued it, and looked up from an in-memory index.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::events::CustomerId;
use crate::persistence::{codec, Store, StoreError, WriteBatch, WriteOp};

/// Record kind of API keys.
pub const KEY_KIND: &str = "api_key";
const VERSION: u8 = 1;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything.
    Admin,
    /// Warehouse work and stock.
    Operator,
    /// Fulfillment intake from other channels.
    Channel,
    /// Its own orders only.
    Customer,
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// A short, non-secret id of the key (`key_` + 12 hex digits of its hash).
    pub key_id: String,
    /// What it may do.
    pub role: Role,
    /// The customer, for customer keys.
    pub customer_id: Option<CustomerId>,
}

fn hash_hex(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The API keys a process accepts. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ApiKeys {
    store: Store,
    keys: Arc<RwLock<HashMap<String, Principal>>>,
}

impl ApiKeys {
    /// Loads the keys stored in `store`.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn load(store: Store) -> Result<ApiKeys, StoreError> {
        let mut keys = HashMap::new();
        for (hash, bytes) in store.snapshots(KEY_KIND)? {
            let principal: Principal = codec::decode(VERSION, "api key", &bytes)?;
            keys.insert(hash, principal);
        }
        Ok(ApiKeys { store, keys: Arc::new(RwLock::new(keys)) })
    }

    /// Issues a key; returns the secret (shown once) and its principal.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn issue_key(
        &self,
        role: Role,
        customer_id: Option<CustomerId>,
    ) -> Result<(String, Principal), StoreError> {
        let random = crate::events::ids::random_secret()
            .map_err(|err| StoreError::Io(format!("no randomness for a key: {err}")))?;
        let secret = format!("odk_{random:032x}");
        let hash = hash_hex(&secret);
        let principal = Principal { key_id: format!("key_{}", &hash[..12]), role, customer_id };
        let mut batch = WriteBatch::new();
        batch.push(WriteOp::PutSnapshot {
            kind: KEY_KIND,
            id: hash.clone(),
            bytes: codec::encode(VERSION, &principal)?,
        });
        self.store.commit(batch).await?;
        if let Ok(mut keys) = self.keys.write() {
            keys.insert(hash, principal.clone());
        }
        Ok((secret, principal))
    }

    /// The principal of `secret`, if it is a known key.
    pub fn authenticate(&self, secret: &str) -> Option<Principal> {
        if !secret.starts_with("odk_") || secret.len() != 36 {
            return None;
        }
        self.keys.read().ok().and_then(|keys| keys.get(&hash_hex(secret)).cloned())
    }

    /// Whether any admin key exists.
    pub fn has_admin(&self) -> bool {
        self.keys.read().is_ok_and(|keys| keys.values().any(|p| p.role == Role::Admin))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keys_authenticate_by_hash_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.redb");
        let secret = {
            let store = Store::open(&path).unwrap();
            let keys = ApiKeys::load(store.clone()).unwrap();
            assert!(!keys.has_admin());
            let (secret, principal) = keys.issue_key(Role::Admin, None).await.unwrap();
            assert_eq!(keys.authenticate(&secret), Some(principal));
            assert_eq!(keys.authenticate("odk_00000000000000000000000000000000"), None);
            store.close();
            secret
        };
        let store = Store::open(&path).unwrap();
        let keys = ApiKeys::load(store.clone()).unwrap();
        assert!(keys.has_admin());
        assert_eq!(keys.authenticate(&secret).map(|p| p.role), Some(Role::Admin));
        let raw = store.snapshots(KEY_KIND).unwrap();
        assert!(raw.iter().all(|(hash, _)| !hash.contains(&secret[4..])), "only hashes are stored");
        store.close();
    }
}
