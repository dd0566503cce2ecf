//! How a fulfillment order is stored: one snapshot row, a version byte then
//! postcard. Used by the fulfillment order actor, the engine's views and `inspect`.

use super::state::FulfillmentOrder;
use crate::actors::Aggregate;
use crate::events::OrderId;
use crate::persistence::StoreError;

/// Record kind of fulfillment order snapshots.
pub const KIND: &str = "fulfillment_order";
/// Version byte of a fulfillment order's snapshot row.
pub const VERSION: u8 = 1;

/// Decodes and checks a fulfillment order snapshot.
///
/// # Errors
/// [`StoreError::Corrupt`].
pub fn decode(id: &str, bytes: &[u8]) -> Result<FulfillmentOrder, StoreError> {
    <FulfillmentOrder as Aggregate>::decode(id, bytes)
}

impl Aggregate for FulfillmentOrder {
    const KIND: &'static str = KIND;
    const VERSION: u8 = VERSION;

    fn key(&self) -> String {
        self.id().to_string()
    }

    fn check_invariants(&self) -> Result<(), String> {
        FulfillmentOrder::check_invariants(self).map_err(|err| err.to_string())
    }

    fn is_finished(&self) -> bool {
        FulfillmentOrder::is_finished(self)
    }

    fn order_id(&self) -> Option<OrderId> {
        Some(FulfillmentOrder::order_id(self))
    }
}
