//! How a shipment is stored: one snapshot row, a version byte then postcard.
//! Used by the shipment actor, the engine's views and `inspect`.

use super::state::Shipment;
use crate::actors::Aggregate;
use crate::events::OrderId;
use crate::persistence::StoreError;

/// Record kind of shipment snapshots.
pub const KIND: &str = "shipment";
/// Version byte of a shipment's snapshot row.
pub const VERSION: u8 = 1;

/// Decodes a shipment snapshot.
///
/// # Errors
/// [`StoreError::Corrupt`].
pub fn decode(id: &str, bytes: &[u8]) -> Result<Shipment, StoreError> {
    <Shipment as Aggregate>::decode(id, bytes)
}

impl Aggregate for Shipment {
    const KIND: &'static str = KIND;
    const VERSION: u8 = VERSION;

    fn key(&self) -> String {
        self.id().to_string()
    }

    /// A shipment's stages are checked as they are reached; a snapshot has no rule of its own.
    fn check_invariants(&self) -> Result<(), String> {
        Ok(())
    }

    fn is_finished(&self) -> bool {
        Shipment::is_finished(self)
    }

    fn order_id(&self) -> Option<OrderId> {
        Some(Shipment::order_id(self))
    }
}
