//! Customer accounts. Each customer gets a customer key
//! ([`crate::access::ApiKeys`]) when the account is created.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use crate::access::{ApiKeys, Role};
use crate::events::{CustomerId, Timestamp};
use crate::persistence::{codec, Store, StoreError, WriteBatch, WriteOp};

/// Record kind of customers.
pub const CUSTOMER_KIND: &str = "customer";
const VERSION: u8 = 1;
/// Longest customer name or e-mail, in characters.
pub const CUSTOMER_FIELD_LEN_MAX: usize = 200;

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

/// Customer accounts, with the API keys of the e-commerce store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Accounts {
    store: Store,
    keys: ApiKeys,
    customers: Arc<RwLock<HashMap<CustomerId, Customer>>>,
}

impl Accounts {
    /// Loads keys and customers from `store`.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn load(store: Store) -> Result<Accounts, StoreError> {
        let keys = ApiKeys::load(store.clone())?;
        let mut customers = HashMap::new();
        for (id, bytes) in store.snapshots(CUSTOMER_KIND)? {
            let customer: Customer = codec::decode(VERSION, &format!("customer {id}"), &bytes)?;
            customers.insert(customer.id, customer);
        }
        Ok(Accounts { store, keys, customers: Arc::new(RwLock::new(customers)) })
    }

    /// The API keys of the e-commerce store.
    pub fn keys(&self) -> &ApiKeys {
        &self.keys
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
        let (secret, _) = self.keys.issue_key(Role::Customer, Some(customer.id)).await?;
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
    async fn customers_need_a_name_and_an_email() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("e.redb")).unwrap();
        let accounts = Accounts::load(store.clone()).unwrap();
        let now = Timestamp::from_millis(1);
        assert_eq!(accounts.create_customer("", "a@b", now).await.unwrap_err(), AccountError::Field("name"));
        assert_eq!(accounts.create_customer("Ada", "nope", now).await.unwrap_err(), AccountError::Field("email"));
        let (customer, secret) = accounts.create_customer("Ada", "ada@example.com", now).await.unwrap();
        let principal = accounts.keys().authenticate(&secret).unwrap();
        assert_eq!((principal.role, principal.customer_id), (Role::Customer, Some(customer.id)));
        store.close();
    }
}
