//! Shipments: one actor per parcel, from label to delivery.

pub mod actor;
pub mod handle;
pub mod snapshot;
pub mod state;

pub use handle::ShipmentHandle;
pub use state::{Shipment, ShipmentError, ShipmentStage, TrackingEvent};
