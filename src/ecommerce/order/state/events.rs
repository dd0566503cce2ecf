//! How an order takes fulfillment's events: each event, in each status,
//! either moves the order on or no longer matters (a repeat after a
//! compensation, a late report) and is only recorded as applied. The
//! statuses an event concerns are named by exhaustive predicates on
//! [`OrderStatus`], so a new status is weighed for every event.

use super::*;

impl OrderStatus {
    /// Waiting for fulfillment to hold the stock.
    fn awaits_stock(self) -> bool {
        match self {
            OrderStatus::Placed => true,
            OrderStatus::StockConfirmed
            | OrderStatus::Paid
            | OrderStatus::InFulfillment
            | OrderStatus::PartiallyShipped
            | OrderStatus::Shipped
            | OrderStatus::Delivered
            | OrderStatus::Cancelled { .. }
            | OrderStatus::Refunded { .. } => false,
        }
    }

    /// Not paid yet: a reservation that runs out cancels it.
    fn is_unpaid(self) -> bool {
        match self {
            OrderStatus::Placed | OrderStatus::StockConfirmed => true,
            OrderStatus::Paid
            | OrderStatus::InFulfillment
            | OrderStatus::PartiallyShipped
            | OrderStatus::Shipped
            | OrderStatus::Delivered
            | OrderStatus::Cancelled { .. }
            | OrderStatus::Refunded { .. } => false,
        }
    }

    /// Paid and in the warehouse, nothing dispatched: picking progresses
    /// and a cancellation can still be confirmed.
    fn is_in_warehouse(self) -> bool {
        match self {
            OrderStatus::Paid | OrderStatus::InFulfillment => true,
            OrderStatus::Placed
            | OrderStatus::StockConfirmed
            | OrderStatus::PartiallyShipped
            | OrderStatus::Shipped
            | OrderStatus::Delivered
            | OrderStatus::Cancelled { .. }
            | OrderStatus::Refunded { .. } => false,
        }
    }

    /// Paid, with shipments still to leave.
    fn may_dispatch(self) -> bool {
        match self {
            OrderStatus::Paid | OrderStatus::InFulfillment | OrderStatus::PartiallyShipped => true,
            OrderStatus::Placed
            | OrderStatus::StockConfirmed
            | OrderStatus::Shipped
            | OrderStatus::Delivered
            | OrderStatus::Cancelled { .. }
            | OrderStatus::Refunded { .. } => false,
        }
    }

    /// A shipment has left and not every one has arrived.
    fn has_shipped(self) -> bool {
        match self {
            OrderStatus::PartiallyShipped | OrderStatus::Shipped => true,
            OrderStatus::Placed
            | OrderStatus::StockConfirmed
            | OrderStatus::Paid
            | OrderStatus::InFulfillment
            | OrderStatus::Delivered
            | OrderStatus::Cancelled { .. }
            | OrderStatus::Refunded { .. } => false,
        }
    }
}

impl Order {
    /// Applies an event from fulfillment. Events that no longer matter in the
    /// current status (a late progress report on a cancelled order) are
    /// recorded as applied and change nothing else.
    pub fn apply(&self, envelope: &EventEnvelope, now: Timestamp) -> Transition {
        let mut next = self.clone();
        next.applied.push(envelope.event_id);
        next.updated_at = now;
        let mut steps = Vec::new();
        if !next.take(&envelope.event, now, &mut steps) {
            let detail = format!("{} while {}", envelope.event.kind(), self.status.as_str());
            steps.push(step(now, "event_ignored", detail, false));
        }
        if next.status.is_terminal() {
            next.pending_payments.retain(|op| !matches!(op, PaymentOp::Capture));
        }
        debug_assert!(next.check_invariants().is_ok());
        Transition { next, events: Vec::new(), steps }
    }

    /// Takes in `event` if it concerns the order in its status; whether it
    /// did. Every status is named for every event: an event that no longer
    /// matters (a repeat after a compensation, a late report) is not taken.
    fn take(&mut self, event: &IntegrationEvent, now: Timestamp, steps: &mut Vec<SagaStep>) -> bool {
        let status = self.status;
        match event {
            IntegrationEvent::StockReserved { fulfillment_order_id, expires_at, shipments_planned } => {
                let placed = status.awaits_stock();
                if placed {
                    self.stock_reserved(*fulfillment_order_id, *shipments_planned);
                    let detail = format!("reserved until {}", expires_at.as_millis());
                    steps.push(step(now, "stock_confirmed", detail, false));
                }
                placed
            }
            IntegrationEvent::StockRejected { missing } => {
                let placed = status.awaits_stock();
                if placed {
                    self.stock_rejected(missing, now, steps);
                }
                placed
            }
            IntegrationEvent::ReservationExpired => {
                let unpaid = status.is_unpaid();
                if unpaid {
                    self.cancel(CancelReason::ReservationExpired);
                    steps.push(step(now, "reservation_expired", "payment not captured in time".to_owned(), true));
                }
                unpaid
            }
            IntegrationEvent::FulfillmentProgressed { stage, short } => {
                let fulfilling = status.is_in_warehouse();
                if fulfilling {
                    self.progressed(*stage, short, now, steps);
                }
                fulfilling
            }
            IntegrationEvent::ShipmentDispatched {
                shipment_id,
                tracking_number,
                shipments_total,
                shipments_dispatched,
                ..
            } => {
                let dispatching = status.may_dispatch();
                if dispatching {
                    self.dispatched(*shipments_total, *shipments_dispatched);
                    let detail = format!("{shipment_id} tracking {tracking_number}");
                    steps.push(step(now, "shipment_dispatched", detail, false));
                }
                dispatching
            }
            IntegrationEvent::ShipmentDelivered { shipment_id, shipments_total, shipments_delivered } => {
                let shipped = status.has_shipped();
                if shipped {
                    self.delivered(*shipments_total, *shipments_delivered);
                    steps.push(step(now, "shipment_delivered", shipment_id.to_string(), false));
                }
                shipped
            }
            IntegrationEvent::CancellationConfirmed { stock } => {
                let fulfilling = status.is_in_warehouse();
                if fulfilling {
                    steps.push(step(now, "cancellation_confirmed", format!("stock {stock:?}"), true));
                    self.cancellation_confirmed(now, steps);
                }
                fulfilling
            }
            IntegrationEvent::CancellationRejected => {
                self.cancel_requested = false;
                steps.push(step(now, "cancellation_rejected", "already dispatched".to_owned(), false));
                true
            }
            // E-commerce's own events never come back to it.
            IntegrationEvent::OrderPlaced { .. }
            | IntegrationEvent::PaymentCaptured { .. }
            | IntegrationEvent::OrderCancelled { .. } => false,
        }
    }

    /// Fulfillment cannot have the stock: cancelled, the authorization to void.
    fn stock_rejected(&mut self, missing: &[SkuUnits], now: Timestamp, steps: &mut Vec<SagaStep>) {
        self.cancel(CancelReason::OutOfStock);
        let detail = missing.iter().map(|m| format!("{} short by {}", m.sku, m.units)).collect::<Vec<_>>().join(", ");
        steps.push(step(now, "stock_rejected", detail, true));
        steps.push(step(now, "authorization_void_requested", "out of stock".to_owned(), true));
    }

    /// Fulfillment holds the stock: the capture is owed.
    fn stock_reserved(&mut self, id: FulfillmentOrderId, shipments_planned: u16) {
        self.status = OrderStatus::StockConfirmed;
        self.fulfillment = Some(FulfillmentLink {
            id,
            shipments_total: shipments_planned,
            shipments_dispatched: 0,
            shipments_delivered: 0,
        });
        self.pending_payments.push(PaymentOp::Capture);
    }

    /// Fulfillment reached `stage`; units it could not pick (`short`) are refunded.
    fn progressed(&mut self, stage: FulfillmentStage, short: &[SkuUnits], now: Timestamp, steps: &mut Vec<SagaStep>) {
        self.status = OrderStatus::InFulfillment;
        let name = match stage {
            FulfillmentStage::Released => "released_to_warehouse",
            FulfillmentStage::Picking => "picking",
            FulfillmentStage::Packed => "packed",
        };
        steps.push(step(now, name, String::new(), false));
        if let Some(amount) = self.short_amount(short) {
            self.refunds_issued += 1;
            self.pending_payments.push(PaymentOp::Refund { number: self.refunds_issued, amount });
            steps.push(step(now, "partial_refund_requested", format!("{amount} for units not picked"), true));
            if self.fulfillment.as_ref().is_some_and(|f| f.shipments_total == 0) && stage == FulfillmentStage::Packed {
                self.status = OrderStatus::Refunded { reason: CancelReason::OutOfStock };
            }
        }
    }

    /// A shipment arrived: `delivered` of `total`; the order is delivered
    /// once every shipment left and arrived.
    fn delivered(&mut self, total: u16, delivered: u16) {
        if let Some(link) = self.fulfillment.as_mut() {
            link.shipments_total = total;
            link.shipments_delivered = delivered;
        }
        if delivered >= total && self.status == OrderStatus::Shipped {
            self.status = OrderStatus::Delivered;
        }
    }

    /// A shipment left: `dispatched` of `total`.
    fn dispatched(&mut self, total: u16, dispatched: u16) {
        if let Some(link) = self.fulfillment.as_mut() {
            link.shipments_total = total;
            link.shipments_dispatched = dispatched;
        }
        self.status = if dispatched >= total { OrderStatus::Shipped } else { OrderStatus::PartiallyShipped };
        self.cancel_requested = false;
    }

    /// Fulfillment confirmed the customer's cancellation: what was captured is refunded.
    fn cancellation_confirmed(&mut self, now: Timestamp, steps: &mut Vec<SagaStep>) {
        let refund = self.payment.captured.checked_sub(self.payment.refunded).ok().filter(|m| m.amount() > 0);
        self.status = OrderStatus::Refunded { reason: CancelReason::CustomerRequest };
        self.cancel_requested = false;
        if let Some(amount) = refund {
            self.refunds_issued += 1;
            self.pending_payments.push(PaymentOp::Refund { number: self.refunds_issued, amount });
            steps.push(step(now, "refund_requested", amount.to_string(), true));
        }
    }
}
