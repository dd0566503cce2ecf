//! Warehouse bins: stock per SKU with two-phase reservations.
//!
//! [`state`] holds the rules, [`actor`] the bin actor (the only writer of a
//! bin), [`handle`] the typed client.

pub mod actor;
pub mod handle;
pub mod snapshot;
pub mod state;

pub use handle::BinHandle;
pub use state::{Bin, BinError, Hold, HoldChange, Level, StockBook, RECEIPT_UNITS_MAX};
