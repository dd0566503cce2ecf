//! The published language between the two contexts.
//!
//! Everything that crosses from e-commerce to fulfillment or back is an
//! [`EventEnvelope`]: a versioned [`IntegrationEvent`] with a unique
//! [`EventId`], the [`OrderId`] it concerns, a per-order sequence number (per
//! sending context) and a timestamp. Inside one process envelopes travel as
//! values over the in-process [`bus`]; between processes as JSON.
//!
//! Both contexts may use this module; it uses neither of them.

pub mod bus;
pub mod ids;
pub mod values;

use serde::{Deserialize, Serialize};

pub use ids::{
    BinCode, BinId, CustomerId, EventId, FulfillmentOrderId, IdError, OrderId, PickTaskId, ReservationId, ShipmentId,
    Sku, WarehouseId,
};
pub use values::{Address, Currency, Money, Quantity, Timestamp, ValueError};

/// The schema version of [`IntegrationEvent`] written into every envelope.
pub const EVENT_SCHEMA_VERSION: u16 = 1;

/// Which context sent an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContextName {
    /// Catalog, customers, checkout, payments.
    Ecommerce,
    /// Inventory, warehouses, shipping.
    Fulfillment,
}

impl ContextName {
    /// The context's name as text.
    pub fn as_str(self) -> &'static str {
        match self {
            ContextName::Ecommerce => "ecommerce",
            ContextName::Fulfillment => "fulfillment",
        }
    }
}

/// Where an order came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// The e-commerce context's own checkout.
    Web,
    /// A mobile app.
    Mobile,
    /// A business buyer.
    B2b,
    /// A marketplace.
    Marketplace,
}

/// Why an order was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelReason {
    /// Fulfillment could not reserve the stock.
    OutOfStock,
    /// The payment was declined at authorization or capture.
    PaymentDeclined,
    /// The customer asked.
    CustomerRequest,
    /// The stock reservation expired before the payment was captured.
    ReservationExpired,
}

impl CancelReason {
    /// The reason as a stable snake_case code.
    pub fn as_str(self) -> &'static str {
        match self {
            CancelReason::OutOfStock => "out_of_stock",
            CancelReason::PaymentDeclined => "payment_declined",
            CancelReason::CustomerRequest => "customer_request",
            CancelReason::ReservationExpired => "reservation_expired",
        }
    }
}

/// One line of an order as fulfillment sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventLine {
    /// What to ship.
    pub sku: Sku,
    /// How many.
    pub quantity: Quantity,
}

/// Units of a SKU, used where a count may be zero (shortfalls, shipped units).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkuUnits {
    /// The SKU.
    pub sku: Sku,
    /// How many units.
    pub units: u32,
}

/// Warehouse progress reported to e-commerce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FulfillmentStage {
    /// Handed to the warehouse: pick tasks exist.
    Released,
    /// Picking has started.
    Picking,
    /// Everything is packed into shipments.
    Packed,
}

/// What happened to the stock of a cancelled fulfillment order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StockOutcome {
    /// Reservations were released before anything was picked.
    Released,
    /// Picked units were put back into their bins.
    ReturnedToStock,
}

/// An integration event. Adding a variant is a schema change: bump
/// [`EVENT_SCHEMA_VERSION`] when an existing variant changes shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum IntegrationEvent {
    /// E-commerce → fulfillment: an order was placed and its payment authorized.
    OrderPlaced {
        /// Who ordered.
        customer_id: CustomerId,
        /// What to ship.
        lines: Vec<EventLine>,
        /// Where to.
        ship_to: Address,
    },
    /// E-commerce → fulfillment: the payment was captured; release to the warehouse.
    PaymentCaptured {
        /// The captured amount.
        amount: Money,
    },
    /// E-commerce → fulfillment: the order is cancelled (compensation or customer request).
    OrderCancelled {
        /// Why.
        reason: CancelReason,
    },
    /// Fulfillment → e-commerce: every line is reserved.
    StockReserved {
        /// The fulfillment order holding the reservations.
        fulfillment_order_id: FulfillmentOrderId,
        /// When the reservations expire unless the payment is captured.
        expires_at: Timestamp,
        /// How many shipments the order will need (one per warehouse).
        shipments_planned: u16,
    },
    /// Fulfillment → e-commerce: the stock could not be reserved.
    StockRejected {
        /// Units missing per SKU.
        missing: Vec<SkuUnits>,
    },
    /// Fulfillment → e-commerce: the reservations expired before payment.
    ReservationExpired,
    /// Fulfillment → e-commerce: warehouse progress.
    FulfillmentProgressed {
        /// The stage reached.
        stage: FulfillmentStage,
        /// Units that will not ship (short picks), per SKU; to be refunded.
        short: Vec<SkuUnits>,
    },
    /// Fulfillment → e-commerce: a shipment left the warehouse.
    ShipmentDispatched {
        /// The shipment.
        shipment_id: ShipmentId,
        /// The warehouse it left.
        warehouse_id: WarehouseId,
        /// The carrier's tracking number.
        tracking_number: String,
        /// How many shipments the order has in all.
        shipments_total: u16,
        /// How many of them have been dispatched, this one included.
        shipments_dispatched: u16,
    },
    /// Fulfillment → e-commerce: a shipment was delivered.
    ShipmentDelivered {
        /// The shipment.
        shipment_id: ShipmentId,
        /// How many shipments the order has in all.
        shipments_total: u16,
        /// How many of them have been delivered, this one included.
        shipments_delivered: u16,
    },
    /// Fulfillment → e-commerce: a requested cancellation was carried out.
    CancellationConfirmed {
        /// What happened to the stock.
        stock: StockOutcome,
    },
    /// Fulfillment → e-commerce: too late to cancel (already dispatched).
    CancellationRejected,
}

impl IntegrationEvent {
    /// The event's type as a stable snake_case name (CloudEvents `type` suffix).
    pub fn kind(&self) -> &'static str {
        match self {
            IntegrationEvent::OrderPlaced { .. } => "order_placed",
            IntegrationEvent::PaymentCaptured { .. } => "payment_captured",
            IntegrationEvent::OrderCancelled { .. } => "order_cancelled",
            IntegrationEvent::StockReserved { .. } => "stock_reserved",
            IntegrationEvent::StockRejected { .. } => "stock_rejected",
            IntegrationEvent::ReservationExpired => "reservation_expired",
            IntegrationEvent::FulfillmentProgressed { .. } => "fulfillment_progressed",
            IntegrationEvent::ShipmentDispatched { .. } => "shipment_dispatched",
            IntegrationEvent::ShipmentDelivered { .. } => "shipment_delivered",
            IntegrationEvent::CancellationConfirmed { .. } => "cancellation_confirmed",
            IntegrationEvent::CancellationRejected => "cancellation_rejected",
        }
    }
}

/// An event with its delivery metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventEnvelope {
    /// Unique per event; receivers dedupe on it.
    pub event_id: EventId,
    /// The order the event concerns.
    pub order_id: OrderId,
    /// Position among the events the sending context emitted for this order, from 1.
    pub sequence: u32,
    /// When the sender decided it.
    pub occurred_at: Timestamp,
    /// The sending context.
    pub source: ContextName,
    /// Schema version of `event`.
    pub schema_version: u16,
    /// The event itself.
    pub event: IntegrationEvent,
}

/// One step of an order's saga, as shown on its timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SagaStep {
    /// When the step was persisted.
    pub at: Timestamp,
    /// Which context took it.
    pub context: ContextName,
    /// A stable snake_case name (`payment_captured`, `stock_released`, …).
    pub name: String,
    /// Human-readable detail.
    pub detail: String,
    /// Whether the step undoes an earlier one.
    pub compensation: bool,
}
