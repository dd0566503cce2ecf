//! Placing an order: its lines checked and priced once, its payment
//! authorized (asked again while the gateway is unavailable), then the order
//! placed with the outcome.

use super::{step, CancelReason, Order, OrderError, OrderLine, OrderStatus, Payment, PaymentStatus, Transition};
use crate::ecommerce::payments::{AuthorizationId, PaymentError};
use crate::events::{Address, CustomerId, EventLine, IntegrationEvent, Money, OrderId, Quantity, Sku, Timestamp};

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
}
