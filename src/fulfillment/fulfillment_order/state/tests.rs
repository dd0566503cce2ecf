use super::*;
use crate::events::{Quantity, Sku};

const NOW: Timestamp = Timestamp::from_millis(1_000);
const LATER: Timestamp = Timestamp::from_millis(10_000_000);

fn sku() -> Sku {
    Sku::parse("MUG").unwrap()
}

fn received() -> FulfillmentOrder {
    let new = NewFulfillmentOrder {
        id: FulfillmentOrderId::from_raw(7),
        order_id: OrderId::from_raw(7),
        channel: Channel::Web,
        lines: vec![EventLine { sku: sku(), quantity: Quantity::new(3).unwrap() }],
        ship_to: Address::new("A", "B", "C", "D", "FR").unwrap(),
    };
    FulfillmentOrder::receive(new, None, NOW).next
}

fn plan(order: &FulfillmentOrder) -> Vec<PlannedItem> {
    vec![
        PlannedItem {
            line: 0,
            sku: sku(),
            bin: "east/A".parse().unwrap(),
            units: 2,
            reservation: order.next_reservation_id(0),
        },
        PlannedItem {
            line: 0,
            sku: sku(),
            bin: "west/B".parse().unwrap(),
            units: 1,
            reservation: order.next_reservation_id(1),
        },
    ]
}

fn event(n: u32, event: IntegrationEvent) -> EventEnvelope {
    EventEnvelope {
        event_id: EventId::from_raw(500 + u128::from(n)),
        order_id: OrderId::from_raw(7),
        sequence: n,
        occurred_at: NOW,
        source: ContextName::Ecommerce,
        schema_version: EVENT_SCHEMA_VERSION,
        event,
    }
}

fn captured() -> EventEnvelope {
    event(2, IntegrationEvent::PaymentCaptured { amount: crate::events::Money::zero(crate::events::Currency::EUR) })
}

fn cancelled() -> EventEnvelope {
    event(3, IntegrationEvent::OrderCancelled { reason: CancelReason::CustomerRequest })
}

fn planned() -> FulfillmentOrder {
    let order = received();
    order.planned(plan(&order), NOW).unwrap().next
}
fn reserved() -> FulfillmentOrder {
    planned().reserved(LATER, NOW).unwrap().next
}
fn rejected() -> FulfillmentOrder {
    planned().rejected(vec![SkuUnits { sku: sku(), units: 1 }], NOW).unwrap().next
}
fn released() -> FulfillmentOrder {
    reserved().apply(&captured(), NOW).next
}
fn picking() -> FulfillmentOrder {
    released().confirm_pick(0, 2, ShortPickPolicy::ShipPartial, NOW).unwrap().next
}
fn packed() -> FulfillmentOrder {
    picking().confirm_pick(1, 1, ShortPickPolicy::ShipPartial, NOW).unwrap().next.pack(NOW).unwrap().next
}
fn shipped() -> FulfillmentOrder {
    let mut order = packed();
    for id in order.shipments().iter().map(|s| s.id).collect::<Vec<_>>() {
        order = order.shipment_update(id, ShipmentStage::InTransit, Some("T".into()), NOW).unwrap().next;
    }
    order
}
fn delivered() -> FulfillmentOrder {
    let mut order = shipped();
    for id in order.shipments().iter().map(|s| s.id).collect::<Vec<_>>() {
        order = order.shipment_update(id, ShipmentStage::Delivered, None, NOW).unwrap().next;
    }
    order
}
fn cancelled_order() -> FulfillmentOrder {
    released().apply(&cancelled(), NOW).next
}

#[test]
fn an_order_is_ready_to_pack_once_every_pick_is_confirmed() {
    assert!(!released().ready_to_pack());
    assert!(!picking().ready_to_pack(), "one of two picks confirmed");
    let picked = picking().confirm_pick(1, 1, ShortPickPolicy::ShipPartial, NOW).unwrap().next;
    assert!(picked.ready_to_pack());
    assert!(!picked.pack(NOW).unwrap().next.ready_to_pack(), "packed orders are done with");
    assert!(!cancelled_order().ready_to_pack());
}

fn every_status() -> Vec<(&'static str, FulfillmentOrder)> {
    vec![
        ("received", planned()),
        ("reserved", reserved()),
        ("rejected", rejected()),
        ("released", released()),
        ("picking", picking()),
        ("packed", packed()),
        ("shipped", shipped()),
        ("delivered", delivered()),
        ("cancelled", cancelled_order()),
    ]
}

#[test]
fn the_builders_reach_every_status() {
    for (name, order) in every_status() {
        assert_eq!(order.status().as_str(), name);
        assert!(order.check_invariants().is_ok(), "{name}");
    }
}

// Goal: every (status, command) pair, valid and invalid, has the outcome the
// state machine promises — a change, an unchanged no-op, or a named error.
#[test]
fn every_command_in_every_status() {
    for (name, order) in every_status() {
        let plan_ok = order.planned(plan(&order), NOW).is_ok();
        assert_eq!(plan_ok, name == "received", "plan while {name}");
        let reserve_ok = order.reserved(LATER, NOW).is_ok();
        assert_eq!(reserve_ok, name == "received", "reserve while {name}");
        let reject_ok = order.rejected(vec![], NOW).is_ok();
        assert_eq!(reject_ok, name == "received", "reject while {name}");
        let expire_ok = order.expire(LATER).is_ok();
        assert_eq!(expire_ok, name == "reserved", "expire while {name}");
        assert!(order.expire(NOW).is_err(), "never before the expiry ({name})");

        let paid = order.apply(&captured(), NOW);
        let released_now =
            paid.next.status() == FulfillmentStatus::Released && order.status() != FulfillmentStatus::Released;
        assert_eq!(released_now, name == "reserved", "payment captured while {name}");
        assert!(paid.next.has_applied(captured().event_id));

        let cancel = order.apply(&cancelled(), NOW);
        let expected = match name {
            "received" | "reserved" | "released" => Some("cancellation_confirmed"),
            "picking" | "packed" => Some("cancellation_confirmed"),
            "shipped" | "delivered" => Some("cancellation_rejected"),
            "cancelled" => Some("cancellation_confirmed"),
            _ => None,
        };
        assert_eq!(cancel.events.first().map(|e| e.event.kind()), expected, "cancel while {name}");

        let pick = order.confirm_pick(0, 2, ShortPickPolicy::ShipPartial, NOW);
        match name {
            "released" => assert!(pick.is_ok()),
            "picking" | "packed" | "shipped" | "delivered" => {
                assert_eq!(pick.map(|t| t.next), Ok(order.clone()), "repeat pick ({name})")
            }
            "cancelled" => assert!(pick.is_err() || pick.is_ok_and(|t| t.next == order)),
            _ => assert!(matches!(pick, Err(FulfillmentOrderError::UnknownTask(0))), "pick while {name}"),
        }

        let pack = order.pack(NOW);
        match name {
            "released" => assert_eq!(pack.unwrap_err(), FulfillmentOrderError::PicksOpen(2)),
            "picking" => assert_eq!(pack.unwrap_err(), FulfillmentOrderError::PicksOpen(1)),
            "packed" | "shipped" | "delivered" => assert_eq!(pack.map(|t| t.next), Ok(order.clone())),
            _ => assert!(matches!(pack, Err(FulfillmentOrderError::WrongStatus { .. })), "pack while {name}"),
        }

        let shipment = order.shipments().first().map(|s| s.id).unwrap_or(ShipmentId::from_raw(99));
        let dispatch = order.shipment_update(shipment, ShipmentStage::InTransit, None, NOW);
        match name {
            "packed" => assert_eq!(dispatch.unwrap().events[0].event.kind(), "shipment_dispatched"),
            "shipped" | "delivered" => assert!(dispatch.unwrap().events.is_empty(), "repeat dispatch ({name})"),
            _ => assert!(dispatch.is_err(), "dispatch while {name}"),
        }
    }
}

#[test]
fn a_cancelled_order_refuses_to_let_its_shipment_leave() {
    let order = packed().apply(&cancelled(), NOW).next;
    assert_eq!(order.status(), FulfillmentStatus::Cancelled { stock: StockOutcome::ReturnedToStock });
    let shipment = order.shipments()[0].id;
    assert_eq!(
        order.shipment_update(shipment, ShipmentStage::InTransit, None, NOW).unwrap_err(),
        FulfillmentOrderError::Cancelled
    );
    assert!(order.pending().iter().any(|a| matches!(a, Action::CancelShipment { .. })));
    assert!(order.pending().iter().any(|a| matches!(a, Action::Bin { op: BinOp::Restock, .. })));
}

#[test]
fn expiry_releases_every_reservation_and_tells_ecommerce() {
    let transition = reserved().expire(LATER).unwrap();
    assert_eq!(transition.events[0].event.kind(), "reservation_expired");
    let expiring =
        transition.next.pending().iter().filter(|a| matches!(a, Action::Bin { op: BinOp::Expire, .. })).count();
    assert_eq!(expiring, 2);
}

#[test]
fn a_short_pick_is_recorded_and_reported_at_pack() {
    let order = released()
        .confirm_pick(0, 1, ShortPickPolicy::ShipPartial, NOW)
        .unwrap()
        .next
        .confirm_pick(1, 1, ShortPickPolicy::ShipPartial, NOW)
        .unwrap()
        .next;
    assert_eq!(order.short(), &[SkuUnits { sku: sku(), units: 1 }]);
    let packed = order.pack(NOW).unwrap();
    match &packed.events[0].event {
        IntegrationEvent::FulfillmentProgressed { stage: FulfillmentStage::Packed, short } => {
            assert_eq!(short.len(), 1)
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_short_pick_under_reallocate_waits_for_a_new_reservation() {
    let order = released().confirm_pick(0, 1, ShortPickPolicy::Reallocate, NOW).unwrap().next;
    assert_eq!(order.unplaced(), &[SkuUnits { sku: sku(), units: 1 }]);
    assert!(order.short().is_empty());
    let order = order.confirm_pick(1, 1, ShortPickPolicy::Reallocate, NOW).unwrap().next;
    assert_eq!(order.pack(NOW).unwrap_err(), FulfillmentOrderError::PicksOpen(1), "the unplaced unit keeps it open");
    let item = PlannedItem {
        line: 0,
        sku: sku(),
        bin: "west/C".parse().unwrap(),
        units: 1,
        reservation: order.reallocation_id(0),
    };
    let order = order.reallocated(vec![item], NOW).unwrap().next;
    assert_eq!(order.tasks().len(), 3);
    assert_eq!(
        order.confirm_pick(2, 1, ShortPickPolicy::Reallocate, NOW).unwrap_err(),
        FulfillmentOrderError::TaskNotHeld(2)
    );
    let order = order.hold_result(2, true, NOW).unwrap().next;
    let order = order.confirm_pick(2, 1, ShortPickPolicy::Reallocate, NOW).unwrap().next;
    let packed = order.pack(NOW).unwrap().next;
    assert!(packed.short().is_empty());
    let shipped: u32 = packed
        .pending()
        .iter()
        .filter_map(|a| match a {
            Action::CreateShipment { items, .. } => Some(items.iter().map(|i| i.units).sum::<u32>()),
            _ => None,
        })
        .sum();
    assert_eq!(shipped, 3, "every ordered unit ships");
}

#[test]
fn units_that_cannot_be_reallocated_ship_short() {
    let order = released().confirm_pick(0, 0, ShortPickPolicy::Reallocate, NOW).unwrap().next;
    let order = order.reallocated(vec![], NOW).unwrap().next;
    assert_eq!(order.short(), &[SkuUnits { sku: sku(), units: 2 }]);
    assert!(order.unplaced().is_empty());
    let item = PlannedItem {
        line: 0,
        sku: sku(),
        bin: "west/C".parse().unwrap(),
        units: 2,
        reservation: order.reallocation_id(0),
    };
    let again = released().confirm_pick(0, 0, ShortPickPolicy::Reallocate, NOW).unwrap().next;
    let lost = again.reallocated(vec![item], NOW).unwrap().next.hold_result(2, false, NOW).unwrap().next;
    assert_eq!(lost.short(), &[SkuUnits { sku: sku(), units: 2 }]);
}

#[test]
fn over_picks_and_conflicting_repeats_are_refused() {
    assert_eq!(
        released().confirm_pick(0, 3, ShortPickPolicy::ShipPartial, NOW).unwrap_err(),
        FulfillmentOrderError::OverPick { units: 2, picked: 3 }
    );
    assert_eq!(
        picking().confirm_pick(0, 1, ShortPickPolicy::ShipPartial, NOW).unwrap_err(),
        FulfillmentOrderError::AlreadyPicked(0)
    );
}

#[test]
fn split_plans_pack_into_one_shipment_per_warehouse() {
    assert_eq!(packed().shipments().len(), 2);
    let delivered = delivered();
    assert!(delivered.is_finished() || !delivered.pending().is_empty());
    assert_eq!(delivered.status(), FulfillmentStatus::Delivered);
}

#[test]
fn channel_orders_emit_no_ecommerce_events() {
    let mut order = planned();
    order.channel = Channel::B2b;
    assert!(order.reserved(LATER, NOW).unwrap().events.is_empty());
}

#[test]
fn which_open_orders_need_an_actor_at_start() {
    let expected = [
        ("received", true, true),
        ("reserved", true, true),
        ("released", false, true),
        ("picking", false, true),
        ("packed", false, false),
        ("shipped", false, false),
        ("delivered", false, false),
    ];
    let statuses = every_status();
    for (name, manual, autopilot) in expected {
        let (_, order) = statuses.iter().find(|(n, _)| *n == name).unwrap();
        assert_eq!(order.owes_work(false), manual || !order.pending().is_empty(), "{name}, manual");
        assert_eq!(order.owes_work(true), autopilot || !order.pending().is_empty(), "{name}, autopilot");
    }
}

#[test]
fn autopilot_picks_and_packs_announcing_only_packed() {
    let released = released();
    let by_hand = released
        .confirm_pick(0, 2, ShortPickPolicy::ShipPartial, NOW)
        .unwrap()
        .next
        .confirm_pick(1, 1, ShortPickPolicy::ShipPartial, NOW)
        .unwrap()
        .next
        .pack(NOW)
        .unwrap()
        .next;
    let at_once =
        crate::fulfillment::autopilot::pick_all_and_pack(&released, ShortPickPolicy::ShipPartial, NOW).unwrap();
    assert_eq!(at_once.next.status(), FulfillmentStatus::Packed);
    assert_eq!(at_once.next.shipments(), by_hand.shipments());
    assert_eq!(at_once.next.pending(), by_hand.pending());
    let kinds: Vec<_> = at_once.events.iter().map(|e| e.event.kind()).collect();
    assert_eq!(kinds, ["fulfillment_progressed"]);
    assert!(matches!(
        at_once.events[0].event,
        IntegrationEvent::FulfillmentProgressed { stage: FulfillmentStage::Packed, .. }
    ));
    // One event fewer, so no gap in the sequence e-commerce sees.
    assert_eq!(at_once.events[0].sequence, released.sequence + 1);
    let names: Vec<_> = at_once.steps.iter().map(|s| s.name.as_str()).collect();
    let pack_steps = by_hand.shipments().len();
    assert_eq!(names.len(), 2 + pack_steps, "{names:?}");
    assert!(names[..2].iter().all(|n| *n == "picked") && names[2..].iter().all(|n| *n == "packed"), "{names:?}");
}

#[test]
fn on_autopilot_a_capture_releases_picks_and_packs_announcing_only_packed() {
    let reserved = reserved();
    let manual = crate::fulfillment::autopilot::pick_all_and_pack(
        &reserved.apply(&captured(), NOW).next,
        ShortPickPolicy::ShipPartial,
        NOW,
    )
    .unwrap();
    let auto = crate::fulfillment::autopilot::apply(&reserved, &captured(), ShortPickPolicy::ShipPartial, NOW);
    assert_eq!(auto.next.status(), FulfillmentStatus::Packed);
    assert_eq!(auto.next.shipments(), manual.next.shipments());
    assert_eq!(auto.next.pending(), manual.next.pending());
    assert!(auto.next.has_applied(captured().event_id));
    assert_eq!(auto.events.len(), 1);
    assert!(matches!(
        auto.events[0].event,
        IntegrationEvent::FulfillmentProgressed { stage: FulfillmentStage::Packed, .. }
    ));
    assert_eq!(auto.events[0].sequence, reserved.sequence + 1, "no gap in what e-commerce sees");
    let names: Vec<_> = auto.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names.first(), Some(&"released_to_warehouse"), "{names:?}");
    assert_eq!(names.last(), Some(&"packed"), "{names:?}");
    // Any other event applies as without autopilot.
    let cancel = crate::fulfillment::autopilot::apply(&reserved, &cancelled(), ShortPickPolicy::ShipPartial, NOW);
    assert_eq!(cancel.next, reserved.apply(&cancelled(), NOW).next);
}
