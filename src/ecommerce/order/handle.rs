//! The typed client of order actors.

use std::sync::Arc;

use super::actor::{OrderMsg, OrderSpec, PlacedRecord};
use super::state::{CancelOutcome, NewOrder, Order, OrderError, PaymentOp};
use crate::actors::{call, CallError, CALL_TIMEOUT};
use crate::ecommerce::Deps;
use crate::events::bus::{Delivery, DeliveryError};
use crate::events::{Address, CustomerId, EventEnvelope, OrderId, Quantity, Sku};

/// Longest payment token, in bytes.
pub const PAYMENT_TOKEN_LEN_MAX: usize = 255;

/// What a customer orders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceOrder {
    /// The order's id; a retry with the same id names the same order.
    pub id: OrderId,
    /// Who orders.
    pub customer_id: CustomerId,
    /// SKUs and quantities; prices come from the catalog.
    pub lines: Vec<(Sku, Quantity)>,
    /// Where to ship.
    pub ship_to: Address,
    /// The payment method's token.
    pub payment_token: String,
}

/// Why an order could not be placed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlaceError {
    /// A SKU is not in the catalog.
    #[error("unknown SKU {0}")]
    UnknownSku(Sku),
    /// The payment token is empty or too long.
    #[error("the payment token must be 1 to {PAYMENT_TOKEN_LEN_MAX} printable characters")]
    PaymentToken,
    /// The order broke a rule.
    #[error(transparent)]
    Order(#[from] OrderError),
    /// The order actor could not be reached; the outcome is unknown: retry with the same id.
    #[error(transparent)]
    Call(#[from] CallError),
}

/// Most orders one page of [`OrderHandle::list`] returns.
pub const PAGE_SIZE_MAX: usize = 100;
/// Most stored orders one page looks at before it returns what it found (with a cursor to go on).
pub const PAGE_SCAN_MAX: usize = 10_000;

/// Which orders to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderFilter {
    /// Only this customer's.
    pub customer_id: Option<CustomerId>,
    /// Only orders with this status code (`placed`, `delivered`, …).
    pub status: Option<String>,
}

/// One page of orders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderPage {
    /// The orders, oldest first.
    pub orders: Vec<Order>,
    /// Where the next page starts, if there may be more.
    pub next: Option<OrderId>,
}

/// Most stored orders one [`OrderHandle::census`] reads; beyond it the census says it is partial.
pub const CENSUS_SCAN_MAX: usize = 200_000;
/// Most stuck or retrying orders one census lists.
pub const CENSUS_STUCK_MAX: usize = 50;

/// Orders counted by status, and the unfinished ones that look stuck or are retrying.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Census {
    /// Orders per status code.
    pub by_status: std::collections::BTreeMap<&'static str, usize>,
    /// Orders read.
    pub scanned: usize,
    /// Whether the store holds more than [`CENSUS_SCAN_MAX`] orders (the counts are then partial).
    pub truncated: bool,
    /// Unfinished orders that owe a payment operation or have not moved for
    /// the census's `stuck_after`, oldest change first, at most [`CENSUS_STUCK_MAX`].
    pub stuck: Vec<StuckOrder>,
}

/// An unfinished order that looks stuck or is retrying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StuckOrder {
    /// The order.
    pub id: OrderId,
    /// Its status code.
    pub status: &'static str,
    /// When it last changed.
    pub updated_at: crate::events::Timestamp,
    /// Payment operations still owed (retried under their keys), by kind.
    pub owed_payments: Vec<&'static str>,
}

impl Census {
    /// Counts `order`; an unfinished one owing a payment or unchanged since
    /// before `now - stuck_after` (milliseconds) is noted as stuck.
    pub fn tally(&mut self, order: &Order, now: crate::events::Timestamp, stuck_after_ms: u64) {
        self.scanned += 1;
        *self.by_status.entry(order.status().as_str()).or_default() += 1;
        if order.is_finished() {
            return;
        }
        let idle = now.as_millis().saturating_sub(order.updated_at().as_millis());
        if order.pending_payments().is_empty() && idle < stuck_after_ms {
            return;
        }
        // Kept sorted, oldest change first, and no longer than the limit.
        let at = self.stuck.partition_point(|s| s.updated_at <= order.updated_at());
        if at >= CENSUS_STUCK_MAX {
            return;
        }
        let owed_payments = order.pending_payments().iter().map(PaymentOp::kind).collect();
        let stuck = StuckOrder {
            id: order.id(),
            status: order.status().as_str(),
            updated_at: order.updated_at(),
            owed_payments,
        };
        self.stuck.insert(at, stuck);
        self.stuck.truncate(CENSUS_STUCK_MAX);
    }
}

/// Talks to order actors.
#[derive(Debug, Clone)]
pub struct OrderHandle {
    deps: Arc<Deps>,
}

impl OrderHandle {
    pub(crate) fn new(deps: Arc<Deps>) -> Self {
        Self { deps }
    }

    async fn ask<T: Send + 'static>(
        &self,
        id: OrderId,
        vacant_ok: bool,
        build: impl Fn(ractor::RpcReplyPort<T>) -> OrderMsg,
    ) -> Result<T, CallError> {
        let spec = OrderSpec { deps: self.deps.clone() };
        call(&spec, self.deps.orders()?, &id, vacant_ok, CALL_TIMEOUT, build).await
    }

    /// Prices the lines from the catalog, authorizes the payment and places
    /// the order. Returns once the order is durable. A declined payment gives
    /// an order cancelled with reason `payment_declined`.
    ///
    /// # Errors
    /// [`PlaceError`].
    pub async fn place(&self, request: PlaceOrder) -> Result<Order, PlaceError> {
        Ok(self.place_recorded(request, None).await?.0)
    }

    /// As [`OrderHandle::place`], committing the write `record` makes from
    /// the placed order in the same transaction as the order (the HTTP edge's
    /// idempotency record, with its response). A repeat that finds the order
    /// placed writes nothing. Returns the order and whether this call placed
    /// it (`false`: it was there already, `record` was not written).
    ///
    /// # Errors
    /// [`PlaceError`].
    pub async fn place_recorded(
        &self,
        request: PlaceOrder,
        record: Option<PlacedRecord>,
    ) -> Result<(Order, bool), PlaceError> {
        let token = request.payment_token.trim();
        if token.is_empty() || token.len() > PAYMENT_TOKEN_LEN_MAX || token.chars().any(char::is_control) {
            return Err(PlaceError::PaymentToken);
        }
        let catalog = &self.deps.catalog;
        let new = NewOrder::price(request.id, request.customer_id, &request.lines, request.ship_to, |sku| {
            catalog.get(sku).map(|product| product.price).ok_or_else(|| PlaceError::UnknownSku(sku.clone()))
        })?;
        let token = token.to_owned();
        Ok(self
            .ask(request.id, true, |reply| OrderMsg::Place {
                new: new.clone(),
                token: token.clone(),
                record: record.clone(),
                reply,
            })
            .await??)
    }

    /// The order `id`, if it exists.
    ///
    /// # Errors
    /// [`CallError`].
    pub async fn get(&self, id: OrderId) -> Result<Option<Order>, CallError> {
        match self.ask(id, false, OrderMsg::Get).await {
            Err(CallError::NotFound) => Ok(None),
            other => other,
        }
    }

    /// A page of orders after `after` (exclusive), oldest first, at most `limit`
    /// (capped at [`PAGE_SIZE_MAX`]). Reads the stored snapshots, which every
    /// acknowledged change has reached.
    ///
    /// # Errors
    /// [`CallError::Store`].
    pub async fn list(
        &self,
        filter: OrderFilter,
        after: Option<OrderId>,
        limit: usize,
    ) -> Result<OrderPage, CallError> {
        let limit = limit.clamp(1, PAGE_SIZE_MAX);
        let store = self.deps.store.clone();
        let rows = tokio::task::spawn_blocking(move || {
            store.snapshots_after(super::snapshot::KIND, after.map(|id| id.to_string()).as_deref(), PAGE_SCAN_MAX)
        })
        .await
        .map_err(|err| CallError::Store(err.to_string()))?
        .map_err(|err| CallError::Store(err.to_string()))?;
        let scanned_all = rows.len() < PAGE_SCAN_MAX;
        let mut orders = Vec::new();
        let mut last = None;
        for (id, bytes) in rows {
            let order = super::snapshot::decode(&id, &bytes).map_err(|err| CallError::Store(err.to_string()))?;
            last = Some(order.id());
            let matches = filter.customer_id.is_none_or(|c| c == order.customer_id())
                && filter.status.as_deref().is_none_or(|s| s == order.status().as_str());
            if matches {
                orders.push(order);
                if orders.len() == limit {
                    return Ok(OrderPage { next: last, orders });
                }
            }
        }
        Ok(OrderPage { orders, next: if scanned_all { None } else { last } })
    }

    /// Counts the stored orders by status (up to [`CENSUS_SCAN_MAX`]) and
    /// lists the unfinished ones that owe a payment or have not moved for
    /// `stuck_after`. Reads the stored snapshots off the async threads.
    ///
    /// # Errors
    /// [`CallError::Store`] when the store cannot be read.
    pub async fn census(
        &self,
        now: crate::events::Timestamp,
        stuck_after: std::time::Duration,
    ) -> Result<Census, CallError> {
        let store = self.deps.store.clone();
        let stuck_after_ms = u64::try_from(stuck_after.as_millis()).unwrap_or(u64::MAX);
        tokio::task::spawn_blocking(move || {
            let mut census = Census::default();
            let mut after: Option<String> = None;
            loop {
                let rows = store
                    .snapshots_after(super::snapshot::KIND, after.as_deref(), PAGE_SCAN_MAX)
                    .map_err(|err| CallError::Store(err.to_string()))?;
                let full = rows.len() == PAGE_SCAN_MAX;
                for (id, bytes) in &rows {
                    let order = super::snapshot::decode(id, bytes).map_err(|err| CallError::Store(err.to_string()))?;
                    census.tally(&order, now, stuck_after_ms);
                }
                after = rows.last().map(|(id, _)| id.clone());
                if !full {
                    return Ok(census);
                }
                if census.scanned >= CENSUS_SCAN_MAX {
                    census.truncated = true;
                    return Ok(census);
                }
            }
        })
        .await
        .map_err(|err| CallError::Store(err.to_string()))?
    }

    /// Asks to cancel order `id`.
    ///
    /// # Errors
    /// [`PlaceError::Order`] with [`OrderError::NotCancellable`] once shipped; [`PlaceError::Call`].
    pub async fn cancel(&self, id: OrderId) -> Result<(CancelOutcome, Order), PlaceError> {
        Ok(self.ask(id, false, OrderMsg::Cancel).await??)
    }

    /// Delivers an integration event to the order it concerns.
    ///
    /// # Errors
    /// [`DeliveryError`].
    pub async fn deliver(&self, envelope: EventEnvelope) -> Result<Delivery, DeliveryError> {
        let id = envelope.order_id;
        match self.ask(id, false, |reply| OrderMsg::Deliver(envelope.clone(), reply)).await {
            Ok(result) => result,
            Err(CallError::NotFound) => Err(DeliveryError::Rejected(format!("no order {id}"))),
            Err(err) => Err(DeliveryError::Unavailable(err.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecommerce::order::state::{Authorization, OrderLine};
    use crate::events::{Currency, Money, Timestamp};

    fn order(id: u128, at: u64, authorization: Authorization) -> Order {
        let new = NewOrder::priced(
            OrderId::from_raw(id),
            CustomerId::from_raw(1),
            vec![OrderLine {
                sku: Sku::parse("MUG").unwrap(),
                quantity: Quantity::new(1).unwrap(),
                unit_price: Money::new(1000, Currency::EUR).unwrap(),
            }],
            Address::new("Ada", "1 Main St", "Paris", "75001", "FR").unwrap(),
        )
        .unwrap();
        Order::place(new, authorization, Timestamp::from_millis(at)).next
    }

    #[test]
    fn the_census_counts_by_status_and_lists_only_quiet_unfinished_orders() {
        let mut census = Census::default();
        let now = Timestamp::from_millis(100_000);
        census.tally(&order(1, 99_000, Authorization::Approved("a1".into())), now, 30_000);
        census.tally(&order(2, 10_000, Authorization::Approved("a2".into())), now, 30_000);
        census.tally(&order(3, 10_000, Authorization::Declined("no".into())), now, 30_000);
        assert_eq!(census.scanned, 3);
        assert_eq!(census.by_status.get("placed"), Some(&2));
        assert_eq!(census.by_status.values().sum::<usize>(), 3);
        let stuck: Vec<OrderId> = census.stuck.iter().map(|s| s.id).collect();
        assert_eq!(stuck, vec![OrderId::from_raw(2)], "recent and finished orders are not stuck");
    }
}
