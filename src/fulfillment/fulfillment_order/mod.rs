//! Fulfillment orders: fulfillment's side of the saga, one actor per order.

pub mod actor;
pub mod handle;
pub mod snapshot;
pub mod state;

pub use handle::FulfillmentOrderHandle;
pub use state::{
    Action, BinOp, FulfillmentOrder, FulfillmentOrderError, FulfillmentStatus, PickTask, ShipmentRecord,
    ShortPickPolicy,
};
