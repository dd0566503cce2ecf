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
    Address, CancelReason, ContextName, CustomerId, EventEnvelope, EventId, FulfillmentOrderId, FulfillmentStage,
    IntegrationEvent, Money, OrderId, Quantity, SagaStep, Sku, SkuUnits, Timestamp, ValueError, EVENT_SCHEMA_VERSION,
};

mod events;
mod placement;
pub use placement::{Authorization, Authorized, NewOrder, Placement, AUTHORIZATION_ATTEMPTS_MAX};

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
            (PaymentOp::Capture, Ok(())) => next.captured(now, &mut events, &mut steps),
            (PaymentOp::Capture, Err(err)) => {
                next.payment.status = PaymentStatus::Declined;
                if next.status == OrderStatus::StockConfirmed {
                    next.status = OrderStatus::Cancelled { reason: CancelReason::PaymentDeclined };
                    let event = IntegrationEvent::OrderCancelled { reason: CancelReason::PaymentDeclined };
                    events.push(next.emit(now, event));
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

    /// The capture took the money: the order is paid, or (a capture that
    /// raced a cancel) the money is given back.
    fn captured(&mut self, now: Timestamp, events: &mut Vec<EventEnvelope>, steps: &mut Vec<SagaStep>) {
        self.payment.status = PaymentStatus::Captured;
        self.payment.captured = self.total;
        if self.status == OrderStatus::StockConfirmed {
            self.status = OrderStatus::Paid;
            events.push(self.emit(now, IntegrationEvent::PaymentCaptured { amount: self.total }));
            steps.push(step(now, "payment_captured", self.total.to_string(), false));
        } else {
            self.pending_payments.retain(|pending| *pending != PaymentOp::Void);
            self.refunds_issued += 1;
            self.pending_payments.push(PaymentOp::Refund { number: self.refunds_issued, amount: self.total });
            steps.push(step(now, "late_capture_refund_requested", self.total.to_string(), true));
        }
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
mod tests;
