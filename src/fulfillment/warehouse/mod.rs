//! Warehouses and the SKU index: which bins of which warehouses hold a SKU.
//!
//! The [`Directory`] is a read-optimised index kept in memory: warehouse
//! definitions are persisted as snapshots (written before the index changes)
//! and the SKU index is rebuilt from the bins' snapshots at start.

pub mod state;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};

pub use state::{allocate, demand, BinStock, PlannedItem, Warehouse, WarehouseError};

use crate::events::{BinId, Sku, WarehouseId};
use crate::persistence::{codec, Store, StoreError, WriteBatch, WriteOp};

/// Record kind of warehouse snapshots.
pub const WAREHOUSE_KIND: &str = "warehouse";
const WAREHOUSE_VERSION: u8 = 1;

#[derive(Debug, Default)]
struct Index {
    warehouses: BTreeMap<WarehouseId, Warehouse>,
    sku_bins: BTreeMap<Sku, BTreeSet<BinId>>,
}

/// The warehouses and the SKU index. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    index: Arc<RwLock<Index>>,
}

impl Directory {
    /// Loads the warehouses from `store`; `sku_bins` gives the SKUs each stocked bin holds.
    ///
    /// # Errors
    /// [`StoreError`] on a read failure or a corrupt snapshot.
    pub fn load(store: &Store, sku_bins: Vec<(BinId, Vec<Sku>)>) -> Result<Directory, StoreError> {
        let mut index = Index::default();
        for (id, bytes) in store.snapshots(WAREHOUSE_KIND)? {
            let warehouse: Warehouse = codec::decode(WAREHOUSE_VERSION, &format!("warehouse {id}"), &bytes)?;
            index.warehouses.insert(warehouse.id.clone(), warehouse);
        }
        for (bin, skus) in sku_bins {
            for sku in skus {
                index.sku_bins.entry(sku).or_default().insert(bin.clone());
            }
        }
        Ok(Directory { index: Arc::new(RwLock::new(index)) })
    }

    /// Creates or updates a warehouse. Bins are only ever added: a bin that
    /// may hold stock is never dropped.
    ///
    /// # Errors
    /// [`StoreError`] if the write fails (the index is then unchanged).
    pub async fn upsert(&self, store: &Store, warehouse: Warehouse) -> Result<Warehouse, StoreError> {
        let merged = {
            let index = self.index.read().map_err(|_| StoreError::Io("directory lock poisoned".to_owned()))?;
            let mut merged = warehouse;
            if let Some(existing) = index.warehouses.get(&merged.id) {
                merged.bins.extend(existing.bins.iter().cloned());
            }
            merged
        };
        let mut batch = WriteBatch::new();
        batch.push(WriteOp::PutSnapshot {
            kind: WAREHOUSE_KIND,
            id: merged.id.to_string(),
            bytes: codec::encode(WAREHOUSE_VERSION, &merged)?,
        });
        store.commit(batch).await?;
        if let Ok(mut index) = self.index.write() {
            index.warehouses.insert(merged.id.clone(), merged.clone());
        }
        Ok(merged)
    }

    /// Every warehouse's id, preferred first (see [`state::ranked`]): what
    /// an allocation needs, without a copy of each warehouse and its bins.
    pub fn ranked(&self) -> Vec<WarehouseId> {
        self.index.read().map(|i| state::ranked(i.warehouses.values())).unwrap_or_default()
    }

    /// Every warehouse.
    pub fn warehouses(&self) -> Vec<Warehouse> {
        self.index.read().map(|i| i.warehouses.values().cloned().collect()).unwrap_or_default()
    }

    /// The warehouse `id`.
    pub fn warehouse(&self, id: &WarehouseId) -> Option<Warehouse> {
        self.index.read().ok().and_then(|i| i.warehouses.get(id).cloned())
    }

    /// Whether `bin` is a bin of a known warehouse.
    pub fn has_bin(&self, bin: &BinId) -> bool {
        self.index.read().is_ok_and(|i| i.warehouses.get(&bin.warehouse).is_some_and(|w| w.bins.contains(&bin.code)))
    }

    /// The bins that hold (or held) `sku`.
    pub fn bins_for(&self, sku: &Sku) -> Vec<BinId> {
        self.index
            .read()
            .map(|i| i.sku_bins.get(sku).map(|b| b.iter().cloned().collect()).unwrap_or_default())
            .unwrap_or_default()
    }

    /// Every SKU with at least one bin.
    pub fn skus(&self) -> Vec<Sku> {
        self.index.read().map(|i| i.sku_bins.keys().cloned().collect()).unwrap_or_default()
    }

    /// Records that `bin` holds `sku` (after a receipt).
    pub fn note_stock(&self, bin: &BinId, sku: &Sku) {
        if let Ok(mut index) = self.index.write() {
            index.sku_bins.entry(sku.clone()).or_default().insert(bin.clone());
        }
    }
}
