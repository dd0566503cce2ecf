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
    Order::place(new_order(vec![line("A", 2, 1000), line("B", 1, 500)]), Authorization::Approved("auth_1".into()), NOW)
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
                &from_fulfillment(&paid, 5, IntegrationEvent::CancellationConfirmed { stock: StockOutcome::Released }),
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
    let transition =
        Order::place(new_order(vec![line("A", 2, 1000), line("B", 1, 500)]), Authorization::Approved("a".into()), NOW);
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
