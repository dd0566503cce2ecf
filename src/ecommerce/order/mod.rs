//! E-commerce orders: the customer's side of the saga, one actor per order.

pub mod actor;
pub mod handle;
pub mod state;

pub use handle::{OrderFilter, OrderHandle, OrderPage, PlaceError, PlaceOrder, PAGE_SIZE_MAX};
pub use state::{CancelOutcome, Order, OrderError, OrderLine, OrderStatus, Payment, PaymentOp, PaymentStatus};
