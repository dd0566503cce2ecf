//! Orderdock: an actor-based order-to-delivery engine.
#![deny(clippy::unwrap_used, clippy::expect_used)]
#![warn(missing_docs)]

pub mod actors;
pub mod events;
pub mod persistence;
pub mod fulfillment;
