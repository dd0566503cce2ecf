//! E-commerce orders: the customer's side of the saga, one actor per order.

pub mod actor;
pub mod handle;
pub mod snapshot;
pub mod state;

pub use actor::PlacedRecord;
pub use handle::{
    Census, OrderFilter, OrderHandle, OrderPage, PlaceError, PlaceOrder, StuckOrder, CENSUS_SCAN_MAX, PAGE_SIZE_MAX,
};
pub use state::{CancelOutcome, Order, OrderError, OrderLine, OrderStatus, Payment, PaymentOp, PaymentStatus};
