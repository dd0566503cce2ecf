//! The e-commerce order: a pure state machine.
//!
//! ```text
//! Placed -> StockConfirmed -> Paid -> InFulfillment -> PartiallyShipped -> Shipped -> Delivered
//!    \            \             \_________ (cancel confirmed by fulfillment) ____> Refunded{reason}
//!     \____________\__ (stock rejected, capture declined, expiry, customer) ____> Cancelled{reason}
//! ```
//!
//! Payment operations the order still owes (capture, void, refund) are kept
//! in [`Order::pending_payments`] and persisted before the actor performs
//! them, so a crash never loses one; each carries an idempotency key derived
//! from the order. The saga is finished when the status is terminal and
//! nothing is owed.

use serde::{Deserialize, Serialize};

use crate::ecommerce::payments::{AuthorizationId, PaymentError};
use crate::events::{
    Address, CancelReason, ContextName, CustomerId, EventEnvelope, EventId, EventLine, FulfillmentOrderId,
    FulfillmentStage, IntegrationEvent, Money, OrderId, Quantity, SagaStep, Sku, SkuUnits, Timestamp, ValueError,
    EVENT_SCHEMA_VERSION,
};

/// Most lines in one order.
pub const ORDER_LINES_MAX: usize = 100;

/// A priced order line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    /// What.
    pub sku: Sku,
    /// How many.
    pub quantity: Quantity,
    /// Price of one unit, from the catalog at placement.
    pub unit_price: Money,
}

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Payment authorized; waiting for fulfillment to reserve stock.
    Placed,
    /// Stock reserved; capturing the payment.
    StockConfirmed,
    /// Payment captured; fulfillment is releasing it to the warehouse.
    Paid,
    /// The warehouse is working on it.
    InFulfillment,
    /// Some shipments have left.
    PartiallyShipped,
    /// Every shipment has left.
    Shipped,
    /// Every shipment arrived. Terminal.
    Delivered,
    /// Cancelled before any capture. Terminal.
    Cancelled {
        /// Why.
        reason: CancelReason,
    },
    /// Cancelled after capture; the payment is refunded. Terminal.
    Refunded {
        /// Why.
        reason: CancelReason,
    },
}

impl OrderStatus {
    /// Every status code, in lifecycle order.
    pub const CODES: [&'static str; 9] = [
        "placed",
        "stock_confirmed",
        "paid",
        "in_fulfillment",
        "partially_shipped",
        "shipped",
        "delivered",
        "cancelled",
        "refunded",
    ];

    /// The status as a stable snake_case code.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Placed => "placed",
            OrderStatus::StockConfirmed => "stock_confirmed",
            OrderStatus::Paid => "paid",
            OrderStatus::InFulfillment => "in_fulfillment",
            OrderStatus::PartiallyShipped => "partially_shipped",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Delivered => "delivered",
            OrderStatus::Cancelled { .. } => "cancelled",
            OrderStatus::Refunded { .. } => "refunded",
        }
    }

    /// Whether no further status change can happen.
    pub fn is_terminal(self) -> bool {
        match self {
            OrderStatus::Delivered | OrderStatus::Cancelled { .. } | OrderStatus::Refunded { .. } => true,
            OrderStatus::Placed
            | OrderStatus::StockConfirmed
            | OrderStatus::Paid
            | OrderStatus::InFulfillment
            | OrderStatus::PartiallyShipped
            | OrderStatus::Shipped => false,
        }
    }
}

/// Where the money stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Held, not taken.
    Authorized,
    /// Refused at authorization or capture.
    Declined,
    /// Taken.
    Captured,
    /// The hold was released.
    Voided,
    /// Everything taken was given back.
    Refunded,
    /// The gateway refused a refund that is owed: money the customer should
    /// get back was not given back. Explicit, for a person to settle; the
    /// order never silently ends charged.
    ManualReview,
}

/// A payment operation the order owes, performed by the actor after it is persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentOp {
    /// Take the authorized amount.
    Capture,
    /// Release the hold.
    Void,
    /// Give back `amount`; `number` makes the idempotency key unique per refund.
    Refund {
        /// Which refund of this order, from 1.
        number: u32,
        /// How much.
        amount: Money,
    },
}

impl PaymentOp {
    /// `capture`, `void` or `refund`.
    pub fn kind(&self) -> &'static str {
        match self {
            PaymentOp::Capture => "capture",
            PaymentOp::Void => "void",
            PaymentOp::Refund { .. } => "refund",
        }
    }

    /// The idempotency key sent to the gateway for this operation of `order`.
    pub fn key(&self, order: OrderId) -> String {
        match self {
            PaymentOp::Capture => format!("capture:{order}"),
            PaymentOp::Void => format!("void:{order}"),
            PaymentOp::Refund { number, .. } => format!("refund:{order}:{number}"),
        }
    }
}

/// The payment of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// The gateway's authorization (absent when authorization was declined).
    pub authorization: Option<AuthorizationId>,
    /// Where it stands.
    pub status: PaymentStatus,
    /// Amount captured.
    pub captured: Money,
    /// Amount refunded.
    pub refunded: Money,
}

/// An order's view of its fulfillment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FulfillmentLink {
    /// The fulfillment order.
    pub id: FulfillmentOrderId,
    /// Shipments planned or created.
    pub shipments_total: u16,
    /// Shipments that left.
    pub shipments_dispatched: u16,
    /// Shipments that arrived.
    pub shipments_delivered: u16,
}

/// What the caller asked to create: its lines checked and priced, and its
/// total taken, once ([`NewOrder::price`], [`NewOrder::priced`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    id: OrderId,
    customer_id: CustomerId,
    lines: Vec<OrderLine>,
    ship_to: Address,
    total: Money,
}

impl NewOrder {
    /// Prices `requested` with `price_of` (the catalog) after checking the
    /// line rules, then totals it. `id` is chosen by the caller, so that a
    /// retry names the same order.
    ///
    /// # Errors
    /// The line rules ([`Order::check_lines`]), a bad total
    /// ([`OrderError::Amount`]), or what `price_of` says of a SKU.
    pub fn price<E: From<OrderError>>(
        id: OrderId,
        customer_id: CustomerId,
        requested: &[(Sku, Quantity)],
        ship_to: Address,
        price_of: impl Fn(&Sku) -> Result<Money, E>,
    ) -> Result<NewOrder, E> {
        Order::check_lines(requested.iter().map(|(sku, _)| sku))?;
        let mut lines = Vec::with_capacity(requested.len());
        for (sku, quantity) in requested {
            lines.push(OrderLine { sku: sku.clone(), quantity: *quantity, unit_price: price_of(sku)? });
        }
        Ok(Self::totalled(id, customer_id, lines, ship_to)?)
    }

    /// An order of lines priced already, after checking the line rules.
    ///
    /// # Errors
    /// The line rules ([`Order::check_lines`]) or a bad total ([`OrderError::Amount`]).
    pub fn priced(
        id: OrderId,
        customer_id: CustomerId,
        lines: Vec<OrderLine>,
        ship_to: Address,
    ) -> Result<NewOrder, OrderError> {
        Order::check_lines(lines.iter().map(|line| &line.sku))?;
        Self::totalled(id, customer_id, lines, ship_to)
    }

    fn totalled(
        id: OrderId,
        customer_id: CustomerId,
        lines: Vec<OrderLine>,
        ship_to: Address,
    ) -> Result<NewOrder, OrderError> {
        let currency = lines.first().map(|line| line.unit_price.currency()).ok_or(OrderError::NoLines)?;
        let mut total = Money::zero(currency);
        for line in &lines {
            total = total.checked_add(line.unit_price.times(line.quantity.get())?)?;
        }
        Ok(NewOrder { id, customer_id, lines, ship_to, total })
    }

    /// The order's id.
    pub fn id(&self) -> OrderId {
        self.id
    }

    /// The sum of its lines.
    pub fn total(&self) -> Money {
        self.total
    }
}

/// Most calls to an unavailable gateway for one authorization before the
/// order is placed as declined.
pub const AUTHORIZATION_ATTEMPTS_MAX: u32 = 4;

/// An order being placed while its payment is authorized: what its actor
/// keeps until the gateway's answer (nothing of it is stored).
#[derive(Debug)]
pub struct Placement {
    new: NewOrder,
    attempts: u32,
}

/// What the gateway's answer to an authorization leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authorized {
    /// Unavailable: ask again after retry number `attempt` (0-based) of the backoff.
    Retry {
        /// Retries so far, before this one.
        attempt: u32,
    },
    /// Answered: place the order with it.
    Decided(Authorization),
}

impl Placement {
    /// A placement of `new`, its authorization not yet asked.
    pub fn new(new: NewOrder) -> Self {
        Self { new, attempts: 0 }
    }

    /// The order being placed.
    pub fn order(&self) -> &NewOrder {
        &self.new
    }

    /// The idempotency key of its authorization at the gateway: every
    /// attempt is the same authorization.
    pub fn gateway_key(&self) -> String {
        format!("auth:{}", self.new.id)
    }

    /// Takes the gateway's answer to one attempt: an unavailable gateway is
    /// asked again, up to [`AUTHORIZATION_ATTEMPTS_MAX`] calls in all, then
    /// the order is declined.
    pub fn answered(&mut self, result: Result<AuthorizationId, PaymentError>) -> Authorized {
        self.attempts += 1;
        match result {
            Ok(id) => Authorized::Decided(Authorization::Approved(id)),
            Err(PaymentError::Unavailable(_)) if self.attempts < AUTHORIZATION_ATTEMPTS_MAX => {
                Authorized::Retry { attempt: self.attempts - 1 }
            }
            Err(err) => Authorized::Decided(Authorization::Declined(err.to_string())),
        }
    }

    /// Places the order with the authorization's outcome.
    pub fn place(self, authorization: Authorization, now: Timestamp) -> Transition {
        Order::place(self.new, authorization, now)
    }
}

/// The gateway's answer to the authorization made before placement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authorization {
    /// Held.
    Approved(AuthorizationId),
    /// Refused.
    Declined(String),
}

/// A customer's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    id: OrderId,
    customer_id: CustomerId,
    lines: Vec<OrderLine>,
    total: Money,
    ship_to: Address,
    status: OrderStatus,
    payment: Payment,
    pending_payments: Vec<PaymentOp>,
    fulfillment: Option<FulfillmentLink>,
    cancel_requested: bool,
    refunds_issued: u32,
    applied: Vec<EventId>,
    sequence: u32,
    placed_at: Timestamp,
    updated_at: Timestamp,
}

/// A rule the order refused to break.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OrderError {
    /// An order needs at least one line.
    #[error("an order needs at least one line")]
    NoLines,
    /// More than [`ORDER_LINES_MAX`] lines.
    #[error("an order has at most {ORDER_LINES_MAX} lines")]
    TooManyLines,
    /// The same SKU on two lines.
    #[error("SKU {0} appears on more than one line")]
    DuplicateSku(Sku),
    /// A price or total is invalid (currencies mixed, overflow).
    #[error("invalid amount: {0}")]
    Amount(#[from] ValueError),
    /// The order has shipped (or is past the point of cancelling).
    #[error("the order can no longer be cancelled (status {status})")]
    NotCancellable {
        /// The status it is in.
        status: &'static str,
    },
    /// A snapshot broke an invariant.
    #[error("invariant violated: {0}")]
    Invariant(&'static str),
}

/// The result of a decision about an order.
pub type Transition = crate::actors::aggregate::Transition<Order>;

/// What a cancellation request led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The order is cancelled.
    Cancelled,
    /// Fulfillment was asked to stop; the outcome arrives as an event.
    Requested,
}

fn step(now: Timestamp, name: &str, detail: String, compensation: bool) -> SagaStep {
    SagaStep { at: now, context: ContextName::Ecommerce, name: name.to_owned(), detail, compensation }
}

impl Order {
    /// Places an order whose payment authorization has been answered.
    pub fn place(new: NewOrder, authorization: Authorization, now: Timestamp) -> Transition {
        let total = new.total;
        let currency = total.currency();
        let (status, payment_status, authorization_id, detail) = match authorization {
            Authorization::Approved(id) => {
                (OrderStatus::Placed, PaymentStatus::Authorized, Some(id), format!("total {total}, payment authorized"))
            }
            Authorization::Declined(why) => (
                OrderStatus::Cancelled { reason: CancelReason::PaymentDeclined },
                PaymentStatus::Declined,
                None,
                format!("payment declined: {why}"),
            ),
        };
        let mut order = Order {
            id: new.id,
            customer_id: new.customer_id,
            lines: new.lines,
            total,
            ship_to: new.ship_to,
            status,
            payment: Payment {
                authorization: authorization_id,
                status: payment_status,
                captured: Money::zero(currency),
                refunded: Money::zero(currency),
            },
            pending_payments: Vec::new(),
            fulfillment: None,
            cancel_requested: false,
            refunds_issued: 0,
            applied: Vec::new(),
            sequence: 0,
            placed_at: now,
            updated_at: now,
        };
        let name = if status == OrderStatus::Placed { "order_placed" } else { "payment_declined" };
        let mut events = Vec::new();
        if status == OrderStatus::Placed {
            events.push(order.emit(
                now,
                IntegrationEvent::OrderPlaced {
                    customer_id: order.customer_id,
                    lines: order.lines.iter().map(|l| EventLine { sku: l.sku.clone(), quantity: l.quantity }).collect(),
                    ship_to: order.ship_to.clone(),
                },
            ));
        }
        debug_assert!(order.check_invariants().is_ok());
        Transition { next: order, events, steps: vec![step(now, name, detail, false)] }
    }

    /// Checks the shape of an order's lines: at least one, at most
    /// [`ORDER_LINES_MAX`], each SKU once.
    ///
    /// # Errors
    /// [`OrderError::NoLines`], [`OrderError::TooManyLines`], [`OrderError::DuplicateSku`].
    pub fn check_lines<'a>(skus: impl ExactSizeIterator<Item = &'a Sku>) -> Result<(), OrderError> {
        match skus.len() {
            0 => return Err(OrderError::NoLines),
            n if n > ORDER_LINES_MAX => return Err(OrderError::TooManyLines),
            _ => {}
        }
        let mut seen = std::collections::BTreeSet::new();
        for sku in skus {
            if !seen.insert(sku) {
                return Err(OrderError::DuplicateSku(sku.clone()));
            }
        }
        Ok(())
    }

    fn emit(&mut self, now: Timestamp, event: IntegrationEvent) -> EventEnvelope {
        self.sequence += 1;
        EventEnvelope {
            event_id: EventId::derived(self.id.as_raw(), self.sequence),
            order_id: self.id,
            sequence: self.sequence,
            occurred_at: now,
            source: ContextName::Ecommerce,
            schema_version: EVENT_SCHEMA_VERSION,
            event,
        }
    }

    /// Whether event `id` has been applied to this order.
    pub fn has_applied(&self, id: EventId) -> bool {
        self.applied.contains(&id)
    }

    /// Applies an event from fulfillment. Events that no longer matter in the
    /// current status (a late progress report on a cancelled order) are
    /// recorded as applied and change nothing else.
    pub fn apply(&self, envelope: &EventEnvelope, now: Timestamp) -> Transition {
        let mut next = self.clone();
        next.applied.push(envelope.event_id);
        next.updated_at = now;
        let events = Vec::new();
        let mut steps = Vec::new();
        let status = self.status;
        match (&envelope.event, status) {
            (
                IntegrationEvent::StockReserved { fulfillment_order_id, expires_at, shipments_planned },
                OrderStatus::Placed,
            ) => {
                next.status = OrderStatus::StockConfirmed;
                next.fulfillment = Some(FulfillmentLink {
                    id: *fulfillment_order_id,
                    shipments_total: *shipments_planned,
                    shipments_dispatched: 0,
                    shipments_delivered: 0,
                });
                next.pending_payments.push(PaymentOp::Capture);
                steps.push(step(now, "stock_confirmed", format!("reserved until {}", expires_at.as_millis()), false));
            }
            (IntegrationEvent::StockRejected { missing }, OrderStatus::Placed) => {
                next.cancel(CancelReason::OutOfStock);
                let detail =
                    missing.iter().map(|m| format!("{} short by {}", m.sku, m.units)).collect::<Vec<_>>().join(", ");
                steps.push(step(now, "stock_rejected", detail, true));
                steps.push(step(now, "authorization_void_requested", "out of stock".to_owned(), true));
            }
            (IntegrationEvent::ReservationExpired, OrderStatus::Placed | OrderStatus::StockConfirmed) => {
                next.cancel(CancelReason::ReservationExpired);
                steps.push(step(now, "reservation_expired", "payment not captured in time".to_owned(), true));
            }
            (
                IntegrationEvent::FulfillmentProgressed { stage, short },
                OrderStatus::Paid | OrderStatus::InFulfillment,
            ) => {
                next.status = OrderStatus::InFulfillment;
                let name = match stage {
                    FulfillmentStage::Released => "released_to_warehouse",
                    FulfillmentStage::Picking => "picking",
                    FulfillmentStage::Packed => "packed",
                };
                steps.push(step(now, name, String::new(), false));
                if let Some(amount) = next.short_amount(short) {
                    next.refunds_issued += 1;
                    next.pending_payments.push(PaymentOp::Refund { number: next.refunds_issued, amount });
                    steps.push(step(now, "partial_refund_requested", format!("{amount} for units not picked"), true));
                    if next.fulfillment.as_ref().is_some_and(|f| f.shipments_total == 0)
                        && *stage == FulfillmentStage::Packed
                    {
                        next.status = OrderStatus::Refunded { reason: CancelReason::OutOfStock };
                    }
                }
            }
            (
                IntegrationEvent::ShipmentDispatched {
                    shipment_id,
                    tracking_number,
                    shipments_total,
                    shipments_dispatched,
                    ..
                },
                OrderStatus::Paid | OrderStatus::InFulfillment | OrderStatus::PartiallyShipped,
            ) => {
                if let Some(link) = next.fulfillment.as_mut() {
                    link.shipments_total = *shipments_total;
                    link.shipments_dispatched = *shipments_dispatched;
                }
                next.status = if shipments_dispatched >= shipments_total {
                    OrderStatus::Shipped
                } else {
                    OrderStatus::PartiallyShipped
                };
                next.cancel_requested = false;
                steps.push(step(
                    now,
                    "shipment_dispatched",
                    format!("{shipment_id} tracking {tracking_number}"),
                    false,
                ));
            }
            (
                IntegrationEvent::ShipmentDelivered { shipment_id, shipments_total, shipments_delivered },
                OrderStatus::PartiallyShipped | OrderStatus::Shipped,
            ) => {
                if let Some(link) = next.fulfillment.as_mut() {
                    link.shipments_total = *shipments_total;
                    link.shipments_delivered = *shipments_delivered;
                }
                if shipments_delivered >= shipments_total && status == OrderStatus::Shipped {
                    next.status = OrderStatus::Delivered;
                }
                steps.push(step(now, "shipment_delivered", shipment_id.to_string(), false));
            }
            (IntegrationEvent::CancellationConfirmed { stock }, OrderStatus::Paid | OrderStatus::InFulfillment) => {
                let refund = next.payment.captured.checked_sub(next.payment.refunded).ok().filter(|m| m.amount() > 0);
                next.status = OrderStatus::Refunded { reason: CancelReason::CustomerRequest };
                next.cancel_requested = false;
                steps.push(step(now, "cancellation_confirmed", format!("stock {stock:?}"), true));
                if let Some(amount) = refund {
                    next.refunds_issued += 1;
                    next.pending_payments.push(PaymentOp::Refund { number: next.refunds_issued, amount });
                    steps.push(step(now, "refund_requested", amount.to_string(), true));
                }
            }
            (IntegrationEvent::CancellationRejected, _) => {
                next.cancel_requested = false;
                steps.push(step(now, "cancellation_rejected", "already dispatched".to_owned(), false));
            }
            (event, _) => {
                steps.push(step(now, "event_ignored", format!("{} while {}", event.kind(), status.as_str()), false));
            }
        }
        if next.status.is_terminal() {
            next.pending_payments.retain(|op| !matches!(op, PaymentOp::Capture));
        }
        debug_assert!(next.check_invariants().is_ok());
        Transition { next, events, steps }
    }

    /// Moves to `Cancelled{reason}` and settles the payment: a hold is voided.
    fn cancel(&mut self, reason: CancelReason) {
        self.status = OrderStatus::Cancelled { reason };
        self.pending_payments.retain(|op| !matches!(op, PaymentOp::Capture));
        if self.payment.status == PaymentStatus::Authorized && !self.pending_payments.contains(&PaymentOp::Void) {
            self.pending_payments.push(PaymentOp::Void);
        }
    }

    fn short_amount(&self, short: &[SkuUnits]) -> Option<Money> {
        let mut amount = Money::zero(self.total.currency());
        for item in short {
            let line = self.lines.iter().find(|l| l.sku == item.sku)?;
            amount = amount.checked_add(line.unit_price.times(item.units).ok()?).ok()?;
        }
        (amount.amount() > 0).then_some(amount)
    }

    /// The customer (or an operator) asks to cancel.
    ///
    /// # Errors
    /// [`OrderError::NotCancellable`] once a shipment has left.
    pub fn request_cancel(&self, now: Timestamp) -> Result<(CancelOutcome, Transition), OrderError> {
        let mut next = self.clone();
        next.updated_at = now;
        let mut events = Vec::new();
        let mut steps = Vec::new();
        let outcome = match self.status {
            OrderStatus::Placed | OrderStatus::StockConfirmed => {
                next.cancel(CancelReason::CustomerRequest);
                events.push(next.emit(now, IntegrationEvent::OrderCancelled { reason: CancelReason::CustomerRequest }));
                steps.push(step(now, "cancelled", "customer request before payment".to_owned(), true));
                CancelOutcome::Cancelled
            }
            OrderStatus::Paid | OrderStatus::InFulfillment => {
                if !self.cancel_requested {
                    next.cancel_requested = true;
                    events.push(
                        next.emit(now, IntegrationEvent::OrderCancelled { reason: CancelReason::CustomerRequest }),
                    );
                    steps.push(step(now, "cancellation_requested", "asked fulfillment to stop".to_owned(), true));
                }
                CancelOutcome::Requested
            }
            OrderStatus::Cancelled { .. } | OrderStatus::Refunded { .. } => CancelOutcome::Cancelled,
            OrderStatus::PartiallyShipped | OrderStatus::Shipped | OrderStatus::Delivered => {
                return Err(OrderError::NotCancellable { status: self.status.as_str() })
            }
        };
        Ok((outcome, Transition { next, events, steps }))
    }

    /// The gateway answered payment operation `op` (the first pending one).
    pub fn payment_result(&self, op: &PaymentOp, result: Result<(), PaymentError>, now: Timestamp) -> Transition {
        if let Err(PaymentError::Unavailable(_)) = result {
            // No answer is not a refusal: the operation may or may not have
            // happened, so it stays owed and is retried under the same key.
            return Transition { next: self.clone(), events: Vec::new(), steps: Vec::new() };
        }
        let mut next = self.clone();
        next.updated_at = now;
        let mut events = Vec::new();
        let mut steps = Vec::new();
        match next.pending_payments.iter().position(|pending| pending == op) {
            Some(position) => {
                next.pending_payments.remove(position);
            }
            // A capture answered after a cancel dropped it still took money: handle it below.
            None if *op == PaymentOp::Capture && result.is_ok() && next.payment.status != PaymentStatus::Captured => {}
            None => return Transition { next: self.clone(), events, steps },
        }
        match (op, result) {
            (PaymentOp::Capture, Ok(())) => {
                next.payment.status = PaymentStatus::Captured;
                next.payment.captured = next.total;
                if next.status == OrderStatus::StockConfirmed {
                    next.status = OrderStatus::Paid;
                    events.push(next.emit(now, IntegrationEvent::PaymentCaptured { amount: next.total }));
                    steps.push(step(now, "payment_captured", next.total.to_string(), false));
                } else {
                    // Captured after the order was cancelled (a capture that raced a cancel): give it back.
                    next.pending_payments.retain(|pending| *pending != PaymentOp::Void);
                    next.refunds_issued += 1;
                    next.pending_payments.push(PaymentOp::Refund { number: next.refunds_issued, amount: next.total });
                    steps.push(step(now, "late_capture_refund_requested", next.total.to_string(), true));
                }
            }
            (PaymentOp::Capture, Err(err)) => {
                next.payment.status = PaymentStatus::Declined;
                if next.status == OrderStatus::StockConfirmed {
                    next.status = OrderStatus::Cancelled { reason: CancelReason::PaymentDeclined };
                    events.push(
                        next.emit(now, IntegrationEvent::OrderCancelled { reason: CancelReason::PaymentDeclined }),
                    );
                }
                next.pending_payments.push(PaymentOp::Void);
                steps.push(step(now, "capture_declined", err.to_string(), true));
            }
            (PaymentOp::Void, Ok(())) => {
                if next.payment.status != PaymentStatus::Captured {
                    next.payment.status = PaymentStatus::Voided;
                }
                steps.push(step(now, "authorization_voided", String::new(), true));
            }
            (PaymentOp::Void, Err(PaymentError::AlreadyCaptured)) => {
                let refund_owed = !next.pending_payments.iter().any(|p| matches!(p, PaymentOp::Refund { .. }))
                    && next.payment.refunded.amount() == 0;
                next.payment.status = PaymentStatus::Captured;
                next.payment.captured = next.total;
                if refund_owed {
                    next.refunds_issued += 1;
                    next.pending_payments.push(PaymentOp::Refund { number: next.refunds_issued, amount: next.total });
                    steps.push(step(now, "refund_requested", "authorization was already captured".to_owned(), true));
                }
            }
            (PaymentOp::Void, Err(err)) => {
                // A declined void leaves nothing held that we could release.
                steps.push(step(now, "void_failed", err.to_string(), true));
            }
            (PaymentOp::Refund { amount, .. }, Ok(())) => {
                if let Ok(refunded) = next.payment.refunded.checked_add(*amount) {
                    next.payment.refunded = refunded;
                }
                if next.payment.refunded == next.payment.captured {
                    next.payment.status = PaymentStatus::Refunded;
                }
                steps.push(step(now, "refunded", amount.to_string(), true));
            }
            (PaymentOp::Refund { amount, .. }, Err(err)) => {
                next.payment.status = PaymentStatus::ManualReview;
                steps.push(step(now, "refund_failed", format!("{amount}: {err}; needs manual review"), true));
            }
        }
        debug_assert!(next.check_invariants().is_ok());
        Transition { next, events, steps }
    }

    /// Checks the order's invariants (before a write and after a read).
    ///
    /// # Errors
    /// [`OrderError::Invariant`] naming the broken rule.
    pub fn check_invariants(&self) -> Result<(), OrderError> {
        if self.lines.is_empty() {
            return Err(OrderError::Invariant("an order has lines"));
        }
        if self.payment.captured.amount() > self.total.amount() {
            return Err(OrderError::Invariant("captured <= total"));
        }
        if self.payment.refunded.amount() > self.payment.captured.amount() {
            return Err(OrderError::Invariant("refunded <= captured"));
        }
        if self.pending_payments.iter().filter(|op| matches!(op, PaymentOp::Capture)).count() > 1 {
            return Err(OrderError::Invariant("at most one capture pending"));
        }
        Ok(())
    }

    /// Whether the saga is over: terminal status and no payment owed.
    pub fn is_finished(&self) -> bool {
        self.status.is_terminal() && self.pending_payments.is_empty()
    }

    /// Whether it has work of its own to do — a payment operation owed. Only
    /// then must an actor run for it when the engine starts; an open order
    /// with nothing owed is waiting for an event, and the event wakes it.
    pub fn owes_work(&self) -> bool {
        !self.pending_payments.is_empty()
    }

    /// The order's id.
    pub fn id(&self) -> OrderId {
        self.id
    }
    /// Who ordered.
    pub fn customer_id(&self) -> CustomerId {
        self.customer_id
    }
    /// The priced lines.
    pub fn lines(&self) -> &[OrderLine] {
        &self.lines
    }
    /// The total.
    pub fn total(&self) -> Money {
        self.total
    }
    /// Where to ship.
    pub fn ship_to(&self) -> &Address {
        &self.ship_to
    }
    /// Where it stands.
    pub fn status(&self) -> OrderStatus {
        self.status
    }
    /// The payment.
    pub fn payment(&self) -> &Payment {
        &self.payment
    }
    /// Payment operations owed, in order.
    pub fn pending_payments(&self) -> &[PaymentOp] {
        &self.pending_payments
    }
    /// The fulfillment link, once stock is reserved.
    pub fn fulfillment(&self) -> Option<&FulfillmentLink> {
        self.fulfillment.as_ref()
    }
    /// Whether a cancellation is waiting for fulfillment's answer.
    pub fn cancel_requested(&self) -> bool {
        self.cancel_requested
    }
    /// When it was placed.
    pub fn placed_at(&self) -> Timestamp {
        self.placed_at
    }
    /// When it last changed.
    pub fn updated_at(&self) -> Timestamp {
        self.updated_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Currency, ShipmentId, StockOutcome, WarehouseId};

    const NOW: Timestamp = Timestamp::from_millis(1_000);

    fn line(sku: &str, quantity: u32, cents: i64) -> OrderLine {
        OrderLine {
            sku: Sku::parse(sku).unwrap(),
            quantity: Quantity::new(quantity).unwrap(),
            unit_price: Money::new(cents, Currency::EUR).unwrap(),
        }
    }

    fn new_order(lines: Vec<OrderLine>) -> NewOrder {
        try_new_order(lines).unwrap()
    }

    fn try_new_order(lines: Vec<OrderLine>) -> Result<NewOrder, OrderError> {
        let ship_to = Address::new("Ada", "1 Main St", "Paris", "75001", "FR").unwrap();
        NewOrder::priced(OrderId::from_raw(7), CustomerId::from_raw(9), lines, ship_to)
    }

    fn placed() -> Order {
        Order::place(
            new_order(vec![line("A", 2, 1000), line("B", 1, 500)]),
            Authorization::Approved("auth_1".into()),
            NOW,
        )
        .next
    }

    fn from_fulfillment(order: &Order, n: u32, event: IntegrationEvent) -> EventEnvelope {
        EventEnvelope {
            event_id: EventId::from_raw(1000 + u128::from(n)),
            order_id: order.id(),
            sequence: n,
            occurred_at: NOW,
            source: ContextName::Fulfillment,
            schema_version: EVENT_SCHEMA_VERSION,
            event,
        }
    }

    fn reserved(order: &Order) -> Order {
        order
            .apply(
                &from_fulfillment(
                    order,
                    1,
                    IntegrationEvent::StockReserved {
                        fulfillment_order_id: FulfillmentOrderId::from_raw(7),
                        expires_at: NOW,
                        shipments_planned: 1,
                    },
                ),
                NOW,
            )
            .next
    }

    fn paid() -> Order {
        let order = reserved(&placed());
        order.payment_result(&PaymentOp::Capture, Ok(()), NOW).next
    }

    #[test]
    fn a_receipt_and_the_capture_it_owes_make_one_transition() {
        let order = placed();
        let event = from_fulfillment(
            &order,
            1,
            IntegrationEvent::StockReserved {
                fulfillment_order_id: FulfillmentOrderId::from_raw(7),
                expires_at: NOW,
                shipments_planned: 1,
            },
        );
        let receipt = order.apply(&event, NOW);
        assert_eq!(receipt.next.pending_payments(), &[PaymentOp::Capture]);
        let both = receipt.clone().then(|next| next.payment_result(&PaymentOp::Capture, Ok(()), NOW));
        let captured = receipt.next.payment_result(&PaymentOp::Capture, Ok(()), NOW);
        assert_eq!(both.next, captured.next, "the same order as the two decisions one after the other");
        assert_eq!(both.next, paid());
        assert!(both.next.pending_payments().is_empty());
        let expected: Vec<_> = receipt.events.iter().chain(&captured.events).cloned().collect();
        assert_eq!(both.events, expected, "every event of both, in order");
        assert!(!both.events.is_empty());
        let steps: Vec<_> = receipt.steps.iter().chain(&captured.steps).cloned().collect();
        assert_eq!(both.steps, steps, "every step of both, in order");
        assert!(both.next.has_applied(event.event_id));
    }

    fn dispatched(order: &Order) -> Order {
        order
            .apply(
                &from_fulfillment(
                    order,
                    3,
                    IntegrationEvent::ShipmentDispatched {
                        shipment_id: ShipmentId::from_raw(1),
                        warehouse_id: WarehouseId::parse("wh").unwrap(),
                        tracking_number: "T1".into(),
                        shipments_total: 1,
                        shipments_dispatched: 1,
                    },
                ),
                NOW,
            )
            .next
    }

    fn every_status() -> Vec<Order> {
        let paid = paid();
        let in_fulfillment = paid
            .apply(
                &from_fulfillment(
                    &paid,
                    2,
                    IntegrationEvent::FulfillmentProgressed { stage: FulfillmentStage::Released, short: vec![] },
                ),
                NOW,
            )
            .next;
        let shipped = dispatched(&in_fulfillment);
        let delivered = shipped
            .apply(
                &from_fulfillment(
                    &shipped,
                    4,
                    IntegrationEvent::ShipmentDelivered {
                        shipment_id: ShipmentId::from_raw(1),
                        shipments_total: 1,
                        shipments_delivered: 1,
                    },
                ),
                NOW,
            )
            .next;
        let mut partially = paid.clone();
        partially.status = OrderStatus::PartiallyShipped;
        let refunded = {
            let requested = paid.request_cancel(NOW).unwrap().1.next;
            requested
                .apply(
                    &from_fulfillment(
                        &paid,
                        5,
                        IntegrationEvent::CancellationConfirmed { stock: StockOutcome::Released },
                    ),
                    NOW,
                )
                .next
        };
        vec![
            placed(),
            reserved(&placed()),
            paid,
            in_fulfillment,
            partially,
            shipped,
            delivered,
            placed().request_cancel(NOW).unwrap().1.next,
            refunded,
        ]
    }

    // Goal: every (status, event or command) pair has the outcome the state
    // machine promises. Events that do not apply only mark themselves applied.
    #[test]
    fn every_event_and_command_in_every_status() {
        let events = [
            IntegrationEvent::StockReserved {
                fulfillment_order_id: FulfillmentOrderId::from_raw(7),
                expires_at: NOW,
                shipments_planned: 1,
            },
            IntegrationEvent::StockRejected { missing: vec![] },
            IntegrationEvent::ReservationExpired,
            IntegrationEvent::FulfillmentProgressed { stage: FulfillmentStage::Packed, short: vec![] },
            IntegrationEvent::ShipmentDispatched {
                shipment_id: ShipmentId::from_raw(1),
                warehouse_id: WarehouseId::parse("wh").unwrap(),
                tracking_number: "T".into(),
                shipments_total: 1,
                shipments_dispatched: 1,
            },
            IntegrationEvent::ShipmentDelivered {
                shipment_id: ShipmentId::from_raw(1),
                shipments_total: 1,
                shipments_delivered: 1,
            },
            IntegrationEvent::CancellationConfirmed { stock: StockOutcome::Released },
            IntegrationEvent::CancellationRejected,
        ];
        let statuses: Vec<&str> = every_status().iter().map(|o| o.status().as_str()).collect();
        assert_eq!(statuses, OrderStatus::CODES, "one status of each code, in lifecycle order");
        for order in every_status() {
            let status = order.status().as_str();
            for (n, event) in events.iter().enumerate() {
                let envelope = from_fulfillment(&order, 20 + n as u32, event.clone());
                let next = order.apply(&envelope, NOW).next;
                assert!(next.has_applied(envelope.event_id));
                assert!(next.check_invariants().is_ok());
                let expected = match (event.kind(), status) {
                    ("stock_reserved", "placed") => "stock_confirmed",
                    ("stock_rejected", "placed") => "cancelled",
                    ("reservation_expired", "placed" | "stock_confirmed") => "cancelled",
                    ("fulfillment_progressed", "paid" | "in_fulfillment") => "in_fulfillment",
                    ("shipment_dispatched", "paid" | "in_fulfillment" | "partially_shipped") => "shipped",
                    ("shipment_delivered", "shipped") => "delivered",
                    ("shipment_delivered", "partially_shipped") => "partially_shipped",
                    ("cancellation_confirmed", "paid" | "in_fulfillment") => "refunded",
                    (_, unchanged) => unchanged,
                };
                assert_eq!(next.status().as_str(), expected, "{} while {status}", event.kind());
                if order.status().is_terminal() {
                    assert_eq!(next.status(), order.status(), "terminal states absorb {}", event.kind());
                }
            }
            let cancel = order.request_cancel(NOW);
            match status {
                "placed" | "stock_confirmed" => assert_eq!(cancel.unwrap().0, CancelOutcome::Cancelled),
                "paid" | "in_fulfillment" => assert_eq!(cancel.unwrap().0, CancelOutcome::Requested),
                "cancelled" | "refunded" => {
                    let (outcome, transition) = cancel.unwrap();
                    assert_eq!(outcome, CancelOutcome::Cancelled);
                    assert!(transition.events.is_empty(), "repeat cancel emits nothing");
                }
                _ => assert!(matches!(cancel, Err(OrderError::NotCancellable { .. })), "cancel while {status}"),
            }
        }
    }

    #[test]
    fn placing_prices_the_lines_and_emits_order_placed() {
        let transition = Order::place(
            new_order(vec![line("A", 2, 1000), line("B", 1, 500)]),
            Authorization::Approved("a".into()),
            NOW,
        );
        assert_eq!(transition.next.total().amount(), 2500);
        assert_eq!(transition.next.status(), OrderStatus::Placed);
        assert!(matches!(transition.events[0].event, IntegrationEvent::OrderPlaced { .. }));
        assert_eq!(transition.events[0].sequence, 1);
    }

    #[test]
    fn a_declined_authorization_cancels_without_events() {
        let transition = Order::place(new_order(vec![line("A", 1, 100)]), Authorization::Declined("no".into()), NOW);
        assert_eq!(transition.next.status(), OrderStatus::Cancelled { reason: CancelReason::PaymentDeclined });
        assert!(transition.events.is_empty());
        assert!(transition.next.is_finished());
    }

    #[test]
    fn placing_refuses_bad_line_sets() {
        // The line rules are checked once, when the order is priced, before anything is authorized.
        assert_eq!(try_new_order(vec![]).unwrap_err(), OrderError::NoLines);
        assert!(matches!(try_new_order(vec![line("A", 1, 1), line("A", 2, 1)]), Err(OrderError::DuplicateSku(_))));
        let many = (0..=ORDER_LINES_MAX).map(|i| line(&format!("S{i}"), 1, 1)).collect();
        assert_eq!(try_new_order(many).unwrap_err(), OrderError::TooManyLines);
    }

    #[test]
    fn an_unavailable_gateway_is_asked_again_then_the_order_is_declined() {
        let mut placement = Placement::new(new_order(vec![line("A", 1, 100)]));
        let unavailable = || Err(PaymentError::Unavailable("down".into()));
        for attempt in 0..AUTHORIZATION_ATTEMPTS_MAX - 1 {
            assert_eq!(placement.answered(unavailable()), Authorized::Retry { attempt });
        }
        assert!(matches!(placement.answered(unavailable()), Authorized::Decided(Authorization::Declined(_))));
        let mut placement = Placement::new(new_order(vec![line("A", 1, 100)]));
        assert_eq!(placement.answered(unavailable()), Authorized::Retry { attempt: 0 });
        assert_eq!(placement.answered(Ok("a".into())), Authorized::Decided(Authorization::Approved("a".into())));
        assert_eq!(placement.gateway_key(), format!("auth:{}", OrderId::from_raw(7)));
    }

    #[test]
    fn stock_reserved_confirms_and_owes_a_capture() {
        let order = reserved(&placed());
        assert_eq!(order.status(), OrderStatus::StockConfirmed);
        assert_eq!(order.pending_payments(), &[PaymentOp::Capture]);
    }

    #[test]
    fn capture_success_pays_and_emits_payment_captured() {
        let order = reserved(&placed());
        let transition = order.payment_result(&PaymentOp::Capture, Ok(()), NOW);
        assert_eq!(transition.next.status(), OrderStatus::Paid);
        assert_eq!(transition.next.payment().captured.amount(), 2500);
        assert!(matches!(transition.events[0].event, IntegrationEvent::PaymentCaptured { .. }));
    }

    #[test]
    fn capture_decline_cancels_voids_and_tells_fulfillment() {
        let order = reserved(&placed());
        let transition = order.payment_result(&PaymentOp::Capture, Err(PaymentError::Declined("x".into())), NOW);
        assert_eq!(transition.next.status(), OrderStatus::Cancelled { reason: CancelReason::PaymentDeclined });
        assert_eq!(transition.next.pending_payments(), &[PaymentOp::Void]);
        assert!(matches!(transition.events[0].event, IntegrationEvent::OrderCancelled { .. }));
    }

    #[test]
    fn stock_rejected_cancels_out_of_stock_and_voids() {
        let order = placed();
        let event = from_fulfillment(&order, 1, IntegrationEvent::StockRejected { missing: vec![] });
        let next = order.apply(&event, NOW).next;
        assert_eq!(next.status(), OrderStatus::Cancelled { reason: CancelReason::OutOfStock });
        assert_eq!(next.pending_payments(), &[PaymentOp::Void]);
        assert!(next.has_applied(event.event_id));
        let voided = next.payment_result(&PaymentOp::Void, Ok(()), NOW).next;
        assert_eq!(voided.payment().status, PaymentStatus::Voided);
        assert!(voided.is_finished());
    }

    #[test]
    fn reservation_expiry_cancels_and_drops_the_pending_capture() {
        let order = reserved(&placed());
        let next = order.apply(&from_fulfillment(&order, 2, IntegrationEvent::ReservationExpired), NOW).next;
        assert_eq!(next.status(), OrderStatus::Cancelled { reason: CancelReason::ReservationExpired });
        assert_eq!(next.pending_payments(), &[PaymentOp::Void]);
    }

    #[test]
    fn a_capture_that_lands_after_cancel_is_refunded() {
        let order = reserved(&placed());
        let (_, cancelled) = order.request_cancel(NOW).unwrap();
        // The capture was in flight: put it back as pending to model the race.
        let mut racing = cancelled.next.clone();
        racing.pending_payments.insert(0, PaymentOp::Capture);
        let next = racing.payment_result(&PaymentOp::Capture, Ok(()), NOW).next;
        assert!(matches!(next.pending_payments().last(), Some(PaymentOp::Refund { .. })));
        assert_eq!(next.status(), OrderStatus::Cancelled { reason: CancelReason::CustomerRequest });
    }

    #[test]
    fn a_late_capture_after_the_cancel_dropped_it_is_refunded_once() {
        let cancelled = reserved(&placed()).request_cancel(NOW).unwrap().1.next;
        assert_eq!(cancelled.pending_payments(), &[PaymentOp::Void]);
        let next = cancelled.payment_result(&PaymentOp::Capture, Ok(()), NOW).next;
        assert!(matches!(next.pending_payments(), [PaymentOp::Refund { number: 1, .. }]));
        let again = next.payment_result(&PaymentOp::Void, Err(PaymentError::AlreadyCaptured), NOW).next;
        assert_eq!(again.pending_payments().len(), 1, "no second refund");
    }

    #[test]
    fn void_of_a_captured_authorization_becomes_a_refund() {
        let order = reserved(&placed());
        let cancelled = order.request_cancel(NOW).unwrap().1.next;
        let next = cancelled.payment_result(&PaymentOp::Void, Err(PaymentError::AlreadyCaptured), NOW).next;
        assert!(matches!(next.pending_payments(), [PaymentOp::Refund { number: 1, .. }]));
    }

    #[test]
    fn cancelling_before_payment_cancels_at_once() {
        let (outcome, transition) = placed().request_cancel(NOW).unwrap();
        assert_eq!(outcome, CancelOutcome::Cancelled);
        assert_eq!(transition.next.status(), OrderStatus::Cancelled { reason: CancelReason::CustomerRequest });
        assert!(matches!(transition.events[0].event, IntegrationEvent::OrderCancelled { .. }));
    }

    #[test]
    fn cancelling_a_paid_order_asks_fulfillment_then_refunds_on_confirmation() {
        let order = paid();
        let (outcome, transition) = order.request_cancel(NOW).unwrap();
        assert_eq!(outcome, CancelOutcome::Requested);
        assert!(transition.next.cancel_requested());
        let again = transition.next.request_cancel(NOW).unwrap().1;
        assert!(again.events.is_empty(), "a repeated request emits nothing");
        let confirmed = transition.next.apply(
            &from_fulfillment(&order, 5, IntegrationEvent::CancellationConfirmed { stock: StockOutcome::Released }),
            NOW,
        );
        assert_eq!(confirmed.next.status(), OrderStatus::Refunded { reason: CancelReason::CustomerRequest });
        assert!(matches!(confirmed.next.pending_payments(), [PaymentOp::Refund { number: 1, .. }]));
        let refunded = confirmed.next.payment_result(&confirmed.next.pending_payments()[0].clone(), Ok(()), NOW).next;
        assert_eq!(refunded.payment().status, PaymentStatus::Refunded);
        assert!(refunded.is_finished());
    }

    #[test]
    fn cancelling_a_shipped_order_is_rejected() {
        let order = dispatched(&paid());
        assert_eq!(order.status(), OrderStatus::Shipped);
        assert_eq!(order.request_cancel(NOW).unwrap_err(), OrderError::NotCancellable { status: "shipped" });
    }

    #[test]
    fn delivery_of_every_shipment_completes_the_order() {
        let order = dispatched(&paid());
        let next = order
            .apply(
                &from_fulfillment(
                    &order,
                    4,
                    IntegrationEvent::ShipmentDelivered {
                        shipment_id: ShipmentId::from_raw(1),
                        shipments_total: 1,
                        shipments_delivered: 1,
                    },
                ),
                NOW,
            )
            .next;
        assert_eq!(next.status(), OrderStatus::Delivered);
        assert!(next.is_finished());
    }

    #[test]
    fn partial_dispatch_is_partially_shipped() {
        let order = paid();
        let next = order
            .apply(
                &from_fulfillment(
                    &order,
                    3,
                    IntegrationEvent::ShipmentDispatched {
                        shipment_id: ShipmentId::from_raw(1),
                        warehouse_id: WarehouseId::parse("wh").unwrap(),
                        tracking_number: "T".into(),
                        shipments_total: 2,
                        shipments_dispatched: 1,
                    },
                ),
                NOW,
            )
            .next;
        assert_eq!(next.status(), OrderStatus::PartiallyShipped);
    }

    #[test]
    fn short_picks_are_refunded_for_the_missing_units() {
        let order = paid();
        let event = from_fulfillment(
            &order,
            3,
            IntegrationEvent::FulfillmentProgressed {
                stage: FulfillmentStage::Packed,
                short: vec![SkuUnits { sku: Sku::parse("A").unwrap(), units: 1 }],
            },
        );
        let next = order.apply(&event, NOW).next;
        assert_eq!(next.status(), OrderStatus::InFulfillment);
        match next.pending_payments() {
            [PaymentOp::Refund { amount, .. }] => assert_eq!(amount.amount(), 1000),
            other => panic!("expected one refund, got {other:?}"),
        }
    }

    #[test]
    fn terminal_orders_absorb_late_events() {
        let order = placed().request_cancel(NOW).unwrap().1.next;
        let late = from_fulfillment(
            &order,
            9,
            IntegrationEvent::StockReserved {
                fulfillment_order_id: FulfillmentOrderId::from_raw(7),
                expires_at: NOW,
                shipments_planned: 1,
            },
        );
        let next = order.apply(&late, NOW).next;
        assert_eq!(next.status(), order.status());
        assert_eq!(next.pending_payments(), order.pending_payments());
        assert!(next.has_applied(late.event_id));
    }

    #[test]
    fn only_an_order_owing_a_payment_operation_needs_an_actor_at_start() {
        let placed = placed();
        assert!(!placed.owes_work(), "placed: waits for fulfillment's answer");
        let reserved = reserved(&placed);
        assert!(reserved.owes_work(), "reserved: a capture is owed");
        assert!(!paid().owes_work(), "paid: waits for fulfillment");
        for order in every_status() {
            assert_eq!(order.owes_work(), !order.pending_payments().is_empty(), "{:?}", order.status());
        }
    }
}
