//! Customer accounts and API keys.
//!
//! A key is `odk_` plus 32 random hex digits, shown once when issued. Only
//! its SHA-256 is stored (a high-entropy secret needs no slow hash), in the
//! e-commerce store, and looked up from an in-memory index.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::events::{CustomerId, Timestamp};
use crate::persistence::{codec, Store, StoreError, WriteBatch, WriteOp};

/// Record kind of API keys.
pub const KEY_KIND: &str = "api_key";
/// Record kind of customers.
pub const CUSTOMER_KIND: &str = "customer";
const VERSION: u8 = 1;
/// Longest customer name or e-mail, in characters.
pub const CUSTOMER_FIELD_LEN_MAX: usize = 200;

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

/// A customer account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    /// Its id.
    pub id: CustomerId,
    /// Display name.
    pub name: String,
    /// E-mail address.
    pub email: String,
    /// When it was created.
    pub created_at: Timestamp,
}

/// Why an account operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AccountError {
    /// A field is empty, too long or malformed.
    #[error("{0} must be 1 to {CUSTOMER_FIELD_LEN_MAX} printable characters")]
    Field(&'static str),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn hash_hex(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Accounts and keys. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Accounts {
    store: Store,
    keys: Arc<RwLock<HashMap<String, Principal>>>,
    customers: Arc<RwLock<HashMap<CustomerId, Customer>>>,
}

impl Accounts {
    /// Loads keys and customers from `store`.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn load(store: Store) -> Result<Accounts, StoreError> {
        let mut keys = HashMap::new();
        for (hash, bytes) in store.snapshots(KEY_KIND)? {
            let principal: Principal = codec::decode(VERSION, "api key", &bytes)?;
            keys.insert(hash, principal);
        }
        let mut customers = HashMap::new();
        for (id, bytes) in store.snapshots(CUSTOMER_KIND)? {
            let customer: Customer = codec::decode(VERSION, &format!("customer {id}"), &bytes)?;
            customers.insert(customer.id, customer);
        }
        Ok(Accounts { store, keys: Arc::new(RwLock::new(keys)), customers: Arc::new(RwLock::new(customers)) })
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

    /// Creates a customer and its key; returns both (the secret is shown once).
    ///
    /// # Errors
    /// [`AccountError::Field`] for a bad name or e-mail; [`AccountError::Store`].
    pub async fn create_customer(
        &self,
        name: &str,
        email: &str,
        now: Timestamp,
    ) -> Result<(Customer, String), AccountError> {
        let field = |label: &'static str, value: &str| {
            let value = value.trim();
            if value.is_empty() || value.chars().count() > CUSTOMER_FIELD_LEN_MAX || value.chars().any(char::is_control)
            {
                Err(AccountError::Field(label))
            } else {
                Ok(value.to_owned())
            }
        };
        let name = field("name", name)?;
        let email = field("email", email)?;
        let well_formed = email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@') && !email.chars().any(char::is_whitespace)
        });
        if !well_formed {
            return Err(AccountError::Field("email"));
        }
        let customer = Customer { id: CustomerId::generate(now), name, email, created_at: now };
        let mut batch = WriteBatch::new();
        batch.push(WriteOp::PutSnapshot {
            kind: CUSTOMER_KIND,
            id: customer.id.to_string(),
            bytes: codec::encode(VERSION, &customer)?,
        });
        self.store.commit(batch).await?;
        if let Ok(mut customers) = self.customers.write() {
            customers.insert(customer.id, customer.clone());
        }
        let (secret, _) = self.issue_key(Role::Customer, Some(customer.id)).await?;
        Ok((customer, secret))
    }

    /// The customer `id`.
    pub fn customer(&self, id: CustomerId) -> Option<Customer> {
        self.customers.read().ok().and_then(|c| c.get(&id).cloned())
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
            let accounts = Accounts::load(store.clone()).unwrap();
            assert!(!accounts.has_admin());
            let (secret, principal) = accounts.issue_key(Role::Admin, None).await.unwrap();
            assert_eq!(accounts.authenticate(&secret), Some(principal));
            assert_eq!(accounts.authenticate("odk_00000000000000000000000000000000"), None);
            store.close();
            secret
        };
        let store = Store::open(&path).unwrap();
        let accounts = Accounts::load(store.clone()).unwrap();
        assert!(accounts.has_admin());
        assert_eq!(accounts.authenticate(&secret).map(|p| p.role), Some(Role::Admin));
        let raw = store.snapshots(KEY_KIND).unwrap();
        assert!(raw.iter().all(|(hash, _)| !hash.contains(&secret[4..])), "only hashes are stored");
        store.close();
    }

    #[tokio::test]
    async fn customers_need_a_name_and_an_email() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("e.redb")).unwrap();
        let accounts = Accounts::load(store.clone()).unwrap();
        let now = Timestamp::from_millis(1);
        assert_eq!(accounts.create_customer("", "a@b", now).await.unwrap_err(), AccountError::Field("name"));
        assert_eq!(accounts.create_customer("Ada", "nope", now).await.unwrap_err(), AccountError::Field("email"));
        let (customer, secret) = accounts.create_customer("Ada", "ada@example.com", now).await.unwrap();
        let principal = accounts.authenticate(&secret).unwrap();
        assert_eq!((principal.role, principal.customer_id), (Role::Customer, Some(customer.id)));
        store.close();
    }
}
