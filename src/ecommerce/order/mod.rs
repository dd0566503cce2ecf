//! E-commerce orders: the customer's side of the saga, one actor per order.

pub mod actor;
pub mod handle;
pub mod state;

pub use handle::{
    Census, OrderFilter, OrderHandle, OrderPage, PlaceError, PlaceOrder, PlacedRecord, StuckOrder, CENSUS_SCAN_MAX,
    PAGE_SIZE_MAX,
};
pub use state::{CancelOutcome, Order, OrderError, OrderLine, OrderStatus, Payment, PaymentOp, PaymentStatus};
