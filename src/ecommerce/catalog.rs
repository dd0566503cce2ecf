//! The product catalog: a read-optimised index in memory, persisted as
//! snapshots (written before the index changes). Prices for orders come
//! from here, never from the client.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use crate::events::{Money, Sku};
use crate::persistence::{codec, Store, StoreError, WriteBatch, WriteOp};

/// Record kind of product snapshots.
pub const PRODUCT_KIND: &str = "product";
const PRODUCT_VERSION: u8 = 1;
/// Longest product name, in characters.
pub const PRODUCT_NAME_LEN_MAX: usize = 200;
/// Longest product description, in characters.
pub const PRODUCT_DESCRIPTION_LEN_MAX: usize = 4_000;
/// Most products a search returns.
pub const SEARCH_RESULTS_MAX: usize = 100;

/// A sellable product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    /// Its SKU.
    pub sku: Sku,
    /// Display name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Price of one unit.
    pub price: Money,
}

/// Why a product was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// Name empty or too long.
    #[error("a product name has 1 to {PRODUCT_NAME_LEN_MAX} characters")]
    Name,
    /// Description too long.
    #[error("a product description has at most {PRODUCT_DESCRIPTION_LEN_MAX} characters")]
    Description,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Product {
    /// Validates a product.
    ///
    /// # Errors
    /// [`CatalogError::Name`] or [`CatalogError::Description`].
    pub fn new(sku: Sku, name: &str, description: &str, price: Money) -> Result<Product, CatalogError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > PRODUCT_NAME_LEN_MAX || name.chars().any(char::is_control) {
            return Err(CatalogError::Name);
        }
        if description.chars().count() > PRODUCT_DESCRIPTION_LEN_MAX {
            return Err(CatalogError::Description);
        }
        Ok(Product { sku, name: name.to_owned(), description: description.to_owned(), price })
    }
}

/// The catalog. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Catalog {
    store: Store,
    products: Arc<RwLock<BTreeMap<Sku, Product>>>,
}

impl Catalog {
    /// Loads the catalog from `store`.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn load(store: Store) -> Result<Catalog, StoreError> {
        let mut products = BTreeMap::new();
        for (id, bytes) in store.snapshots(PRODUCT_KIND)? {
            let product: Product = codec::decode(PRODUCT_VERSION, &format!("product {id}"), &bytes)?;
            products.insert(product.sku.clone(), product);
        }
        Ok(Catalog { store, products: Arc::new(RwLock::new(products)) })
    }

    /// Creates or replaces a product, durably.
    ///
    /// # Errors
    /// [`CatalogError::Store`].
    pub async fn upsert(&self, product: Product) -> Result<Product, CatalogError> {
        let mut batch = WriteBatch::new();
        batch.push(WriteOp::PutSnapshot {
            kind: PRODUCT_KIND,
            id: product.sku.to_string(),
            bytes: codec::encode(PRODUCT_VERSION, &product)?,
        });
        self.store.commit(batch).await?;
        if let Ok(mut products) = self.products.write() {
            products.insert(product.sku.clone(), product.clone());
        }
        Ok(product)
    }

    /// The product `sku`.
    pub fn get(&self, sku: &Sku) -> Option<Product> {
        self.products.read().ok().and_then(|p| p.get(sku).cloned())
    }

    /// Products whose SKU, name or description contains every word of `query`
    /// (case-insensitive), at most [`SEARCH_RESULTS_MAX`], in SKU order.
    pub fn search(&self, query: &str) -> Vec<Product> {
        let words: Vec<String> = query.split_whitespace().map(str::to_lowercase).collect();
        let Ok(products) = self.products.read() else { return Vec::new() };
        products
            .values()
            .filter(|p| {
                let text = format!("{} {} {}", p.sku, p.name, p.description).to_lowercase();
                words.iter().all(|w| text.contains(w.as_str()))
            })
            .take(SEARCH_RESULTS_MAX)
            .cloned()
            .collect()
    }
}
