//! Orderdock: an actor-based order-to-delivery engine.
//!
//! Two bounded contexts — [`ecommerce`] (catalog, orders, payments) and
//! [`fulfillment`] (inventory per bin, allocation, picking, packing,
//! shipments) — that talk only through the integration [`events`] of the
//! published language. The workflow that spans them is a saga: each
//! context's aggregates are supervised ractor actors ([`actors`]) that
//! persist every step in their context's redb store ([`persistence`])
//! before acting on it, with the events they emit written to an outbox in
//! the same transaction and delivered at least once, applied at most once.
//!
//! # Layout
//! - [`events`]: ids, values, integration events, the bus traits.
//! - [`persistence`]: the redb store, its group-commit writer (the only module naming redb).
//! - [`access`]: API keys and roles, for both contexts' edges.
//! - [`actors`]: the aggregate runtime, supervision, typed calls, the saga log, the outbox dispatcher, the clock.
//! - [`ecommerce`]: `order/` (state, actor, handle), catalog, payments.
//! - [`fulfillment`]: `bin/`, `fulfillment_order/`, `shipment/`, `warehouse/`, carriers.
//! - [`engine`]: the embedded engine joining both contexts.
//! - [`http`]: the axum API at the edge; [`web`]: the storefront and operations console pages;
//!   [`config`]: the `serve` configuration file; [`demo`]: the stocked demo shop.
//! - [`client`]: an HTTP client of an Orderdock server's API; [`process`]: figures about this process.
//! - The load generator behind `orderdock load` and `orderdock bench` is part of the binary, not the library.
//!
//! # Example
//! ```no_run
//! # async fn run() -> Result<(), orderdock::StartError> {
//! let engine = orderdock::Engine::start(orderdock::Config::new("./data")).await?;
//! // engine.ecommerce().orders().place(..).await
//! engine.shutdown().await;
//! # Ok(()) }
//! ```
#![deny(clippy::unwrap_used, clippy::expect_used)]
#![warn(missing_docs)]

pub mod access;
pub mod actors;
pub mod broker;
pub mod client;
pub mod config;
pub mod demo;
pub mod ecommerce;
pub mod engine;
pub mod events;
pub mod fulfillment;
pub mod http;
pub mod node;
pub mod persistence;
pub mod process;
pub mod web;

pub use engine::{Adapters, Audit, Config, Engine, FulfillmentView, OrderView, StartError};
