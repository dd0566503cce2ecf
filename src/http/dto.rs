//! Request and response bodies. Requests refuse unknown fields and never
//! carry server-owned values (prices, totals, status); responses are built
//! field by field from the domain, never serialized from it directly.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::events::Money;

mod from_domain;
pub use from_domain::{fulfillment, fulfillment_status, order, order_view, shipment, steps};

/// An amount in minor units (cents) of a currency.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoneyDto {
    /// Minor units, 0 to 10^15.
    #[schema(minimum = 0, maximum = 1_000_000_000_000_000_i64)]
    pub amount: i64,
    /// ISO 4217 code, e.g. `EUR`.
    #[schema(pattern = r"^[A-Z]{3}$")]
    pub currency: String,
}

impl From<Money> for MoneyDto {
    fn from(money: Money) -> Self {
        MoneyDto { amount: money.amount(), currency: money.currency().to_string() }
    }
}

/// The schema of a warehouse's bin codes: 1 to 10,000 names of 1–64 `[A-Za-z0-9._-]`.
fn bin_codes_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    let code = ObjectBuilder::new().schema_type(Type::String).pattern(Some(r"^[A-Za-z0-9._-]{1,64}$")).build();
    ArrayBuilder::new()
        .items(code)
        .min_items(Some(1))
        .max_items(Some(crate::fulfillment::warehouse::state::WAREHOUSE_BINS_MAX))
        .build()
}

/// The schema of a stock adjustment: a non-zero count within a bin's capacity.
fn delta_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
    let limit = i64::from(crate::fulfillment::bin::RECEIPT_UNITS_MAX);
    let side = |low: i64, high: i64| {
        ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(low)).maximum(Some(high)).build()
    };
    Schema::OneOf(OneOfBuilder::new().item(side(-limit, -1)).item(side(1, limit)).build())
}

/// A product to create or replace.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductRequest {
    /// SKU: 1–64 of `[A-Za-z0-9._-]`.
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,64}$")]
    pub sku: String,
    /// Display name, 1 to 200 characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x1f\x7f-\x9f\s][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: String,
    /// Description, up to 4,000 characters.
    #[serde(default)]
    #[schema(max_length = 4000)]
    pub description: String,
    /// Unit price.
    pub price: MoneyDto,
}

/// A product.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductResponse {
    /// SKU.
    pub sku: String,
    /// Display name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Unit price.
    pub price: MoneyDto,
}

/// How many units of a product can be ordered now.
#[derive(Debug, Serialize, ToSchema)]
pub struct AvailabilityResponse {
    /// SKU.
    pub sku: String,
    /// Units free to reserve, summed over every warehouse.
    pub available: u64,
}

/// Products found.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductList {
    /// At most 100, in SKU order.
    pub items: Vec<ProductResponse>,
}

/// A customer to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerRequest {
    /// Display name, 1 to 200 characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x1f\x7f-\x9f\s][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: String,
    /// E-mail address, up to 200 characters.
    #[schema(min_length = 3, max_length = 200, pattern = r"^[^\x00-\x1f\x7f-\x9f\s@]+@[^\x00-\x1f\x7f-\x9f\s@]+$")]
    pub email: String,
}

/// A created customer with its API key (shown once).
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerCreated {
    /// Customer id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// E-mail.
    pub email: String,
    /// The customer's API key. Store it: it is not shown again.
    pub api_key: String,
}

/// A warehouse to create or extend.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WarehouseRequest {
    /// Id, e.g. `wh-east`: 1–64 of `[A-Za-z0-9._-]`.
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,64}$")]
    pub id: String,
    /// Display name, 1 to 200 characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x1f\x7f-\x9f\s][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: String,
    /// Lower is preferred when allocating.
    #[schema(minimum = 0, maximum = 4_294_967_295_u64)]
    pub priority: u32,
    /// Bin codes, e.g. `A-01`: 1 to 10,000 of them.
    #[schema(schema_with = bin_codes_schema)]
    pub bins: Vec<String>,
}

/// A warehouse.
#[derive(Debug, Serialize, ToSchema)]
pub struct WarehouseResponse {
    /// Id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Allocation priority.
    pub priority: u32,
    /// Bin codes.
    pub bins: Vec<String>,
}

/// Units received into a bin.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiptRequest {
    /// Warehouse id.
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,64}$")]
    pub warehouse_id: String,
    /// Bin code.
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,64}$")]
    pub bin: String,
    /// SKU.
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,64}$")]
    pub sku: String,
    /// Units, 1 to 1,000,000.
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub quantity: u32,
}

/// A stock count correction.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustmentRequest {
    /// Warehouse id.
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,64}$")]
    pub warehouse_id: String,
    /// Bin code.
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,64}$")]
    pub bin: String,
    /// SKU.
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,64}$")]
    pub sku: String,
    /// Units found (positive) or missing (negative), not zero.
    #[schema(schema_with = delta_schema)]
    pub delta: i32,
    /// Why.
    #[serde(default)]
    pub reason: String,
}

/// Stock of one SKU in one bin.
#[derive(Debug, Serialize, ToSchema)]
pub struct LocationLevel {
    /// Warehouse id.
    pub warehouse_id: String,
    /// Bin code.
    pub bin: String,
    /// Units in the bin (picked units included until they ship).
    pub on_hand: u32,
    /// Units held by reservations or picked.
    pub reserved: u32,
    /// Units free to sell.
    pub available: u32,
}

/// Stock of one SKU everywhere.
#[derive(Debug, Serialize, ToSchema)]
pub struct InventoryResponse {
    /// SKU.
    pub sku: String,
    /// Units on hand.
    pub on_hand: u32,
    /// Units reserved or picked.
    pub reserved: u32,
    /// Units free to sell.
    pub available: u32,
    /// Per bin.
    pub locations: Vec<LocationLevel>,
}

/// One line of an order request.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineRequest {
    /// SKU.
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,64}$")]
    pub sku: String,
    /// Units, 1 to 10,000.
    #[schema(minimum = 1, maximum = 10_000)]
    pub quantity: u32,
}

/// A delivery address.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressDto {
    /// Recipient, 1 to 200 characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x1f\x7f-\x9f\s][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: String,
    /// Street line, 1 to 200 characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x1f\x7f-\x9f\s][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub line1: String,
    /// City, 1 to 200 characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x1f\x7f-\x9f\s][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub city: String,
    /// Postal code, 1 to 200 characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x1f\x7f-\x9f\s][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub postal_code: String,
    /// ISO 3166-1 alpha-2 country code.
    #[schema(pattern = r"^[A-Z]{2}$")]
    pub country: String,
}

/// How the customer pays.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentRequest {
    /// The payment method's token (simulated gateway: `tok_visa`, `tok_decline`, …), 1 to 255 characters.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x1f\x7f-\x9f\s][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub token: String,
}

/// An order to place. Prices and totals come from the catalog.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrderRequest {
    /// The customer (admins only; a customer key orders for itself).
    #[serde(default)]
    #[schema(pattern = r"^cus_[0-9a-f]{32}$")]
    pub customer_id: Option<String>,
    /// 1 to 100 lines, one per SKU.
    #[schema(min_items = 1, max_items = 100)]
    pub lines: Vec<LineRequest>,
    /// Where to ship.
    pub ship_to: AddressDto,
    /// How to pay.
    pub payment: PaymentRequest,
}

/// A priced order line.
#[derive(Debug, Serialize, ToSchema)]
pub struct LineResponse {
    /// SKU.
    pub sku: String,
    /// Units.
    pub quantity: u32,
    /// Price per unit.
    pub unit_price: MoneyDto,
}

/// The payment of an order.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentResponse {
    /// `authorized`, `declined`, `captured`, `voided` or `refunded`.
    pub status: String,
    /// Amount captured.
    pub captured: MoneyDto,
    /// Amount refunded.
    pub refunded: MoneyDto,
}

/// One tracking event.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TrackingEventResponse {
    /// Milliseconds since the epoch.
    pub at: u64,
    /// Stage reached.
    pub status: String,
    /// The carrier's words.
    pub detail: String,
}

/// A shipment.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ShipmentResponse {
    /// Shipment id.
    pub id: String,
    /// Warehouse it leaves from.
    pub warehouse_id: String,
    /// Carrier.
    pub carrier: String,
    /// Tracking number, once labelled.
    pub tracking_number: Option<String>,
    /// Stage.
    pub status: String,
    /// Tracking events, oldest first.
    pub events: Vec<TrackingEventResponse>,
}

/// A pick task.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PickTaskResponse {
    /// Task id (`pck_…`).
    pub id: String,
    /// Fulfillment order.
    pub fulfillment_order_id: String,
    /// Warehouse.
    pub warehouse_id: String,
    /// Bin.
    pub bin: String,
    /// SKU.
    pub sku: String,
    /// Units to pick.
    pub quantity: u32,
    /// `open`, `waiting` (reservation pending) or `picked`.
    pub status: String,
    /// Units found, once picked.
    pub picked: Option<u32>,
}

/// Pick tasks.
#[derive(Debug, Serialize, ToSchema)]
pub struct PickTaskList {
    /// Oldest order first.
    pub items: Vec<PickTaskResponse>,
}

/// A fulfillment order waiting to be packed.
#[derive(Debug, Serialize, ToSchema)]
pub struct PackQueueItem {
    /// Fulfillment order (`ful_…`), to pack with `POST /v1/fulfillment-orders/{id}/pack`.
    pub fulfillment_order_id: String,
    /// The order it fulfils.
    pub order_id: String,
    /// Units picked.
    pub units: u32,
}

/// Fulfillment orders waiting to be packed.
#[derive(Debug, Serialize, ToSchema)]
pub struct PackQueue {
    /// Oldest first.
    pub items: Vec<PackQueueItem>,
}

/// A picker's confirmation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmPickRequest {
    /// Units found: the task's quantity, or fewer (a short pick).
    #[schema(minimum = 0, maximum = 10_000)]
    pub picked: u32,
}

/// The fulfillment side of an order.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FulfillmentResponse {
    /// `pending` (not received yet), `unavailable` (did not answer in time) or the fulfillment status.
    pub status: String,
    /// Fulfillment order id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Channel (`web`, `mobile`, `b2b`, `marketplace`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Shipments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shipments: Vec<ShipmentResponse>,
    /// Pick tasks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pick_tasks: Vec<PickTaskResponse>,
    /// Units that will not ship, per SKU.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub short: Vec<LineRequest>,
}

/// One step of the saga.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StepResponse {
    /// Milliseconds since the epoch.
    pub at: u64,
    /// `ecommerce` or `fulfillment`.
    pub context: String,
    /// Step name.
    pub step: String,
    /// Detail.
    pub detail: String,
    /// Whether it undoes an earlier step.
    pub compensation: bool,
}

/// An order, composed from both contexts.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderResponse {
    /// Order id.
    pub id: String,
    /// Customer id.
    pub customer_id: String,
    /// `placed`, `stock_confirmed`, `paid`, `in_fulfillment`, `partially_shipped`, `shipped`, `delivered`, `cancelled` or `refunded`.
    pub status: String,
    /// `out_of_stock`, `payment_declined`, `customer_request` or `reservation_expired`.
    pub cancel_reason: Option<String>,
    /// Lines.
    pub lines: Vec<LineResponse>,
    /// Total.
    pub total: MoneyDto,
    /// Payment.
    pub payment: PaymentResponse,
    /// Milliseconds since the epoch.
    pub placed_at: u64,
    /// The fulfillment side.
    pub fulfillment: FulfillmentResponse,
    /// The saga's steps, oldest first.
    pub timeline: Vec<StepResponse>,
}

/// A page of orders.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderList {
    /// Orders, oldest first (without fulfillment detail or timeline).
    pub items: Vec<OrderResponse>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// What a cancellation did.
#[derive(Debug, Serialize, ToSchema)]
pub struct CancelResponse {
    /// `cancelled` (done) or `requested` (fulfillment is stopping; the order becomes `refunded`).
    pub outcome: String,
    /// The order.
    pub order: OrderResponse,
}

/// An order from another channel, straight into fulfillment.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelOrderRequest {
    /// `mobile`, `b2b` or `marketplace`.
    #[schema(pattern = r"^(mobile|b2b|marketplace)$")]
    pub channel: String,
    /// The channel's own reference, 1 to 128 characters.
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x1f\x7f-\x9f\s][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub external_id: String,
    /// 1 to 100 lines.
    #[schema(min_items = 1, max_items = 100)]
    pub lines: Vec<LineRequest>,
    /// Where to ship.
    pub ship_to: AddressDto,
}

/// A fulfillment order.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FulfillmentOrderResponse {
    /// Fulfillment order id.
    pub id: String,
    /// The order it serves.
    pub order_id: String,
    /// Its fulfillment.
    pub fulfillment: FulfillmentResponse,
    /// Its saga steps in the fulfillment context, oldest first.
    #[serde(default)]
    pub steps: Vec<StepResponse>,
}

/// A carrier tracking event (webhook).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CarrierEventRequest {
    /// The shipment.
    pub shipment_id: String,
    /// `in_transit`, `out_for_delivery`, `delivered` or `exception`.
    pub status: String,
    /// The carrier's words.
    #[serde(default)]
    pub detail: String,
}

/// The error body (RFC 9457).
#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemResponse {
    /// Always `about:blank`.
    pub r#type: String,
    /// The status's reason phrase.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// Stable machine code.
    pub code: String,
    /// Human-readable detail.
    pub detail: String,
}
