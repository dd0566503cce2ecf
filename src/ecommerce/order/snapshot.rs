//! How an order is stored: one snapshot row, a version byte then postcard.
//! Used by the order actor, the engine's views and audit, and `inspect`.

use super::state::Order;
use crate::actors::Aggregate;
use crate::events::OrderId;
use crate::persistence::StoreError;

/// Record kind of order snapshots.
pub const KIND: &str = "order";
/// Version byte of an order's snapshot row.
pub const VERSION: u8 = 1;

/// Decodes and checks an order snapshot.
///
/// # Errors
/// [`StoreError::Corrupt`].
pub fn decode(id: &str, bytes: &[u8]) -> Result<Order, StoreError> {
    <Order as Aggregate>::decode(id, bytes)
}

impl Aggregate for Order {
    const KIND: &'static str = KIND;
    const VERSION: u8 = VERSION;

    fn key(&self) -> String {
        self.id().to_string()
    }

    fn check_invariants(&self) -> Result<(), String> {
        Order::check_invariants(self).map_err(|err| err.to_string())
    }

    fn is_finished(&self) -> bool {
        Order::is_finished(self)
    }

    fn order_id(&self) -> Option<OrderId> {
        Some(self.id())
    }
}
