//! Contention, restarts mid-saga, duplicate deliveries and crashed actors.

use std::collections::BTreeMap;

use orderdock::ecommerce::order::{Order, OrderStatus};
use orderdock::events::bus::Delivery;
use orderdock::events::{CancelReason, FulfillmentOrderId, PickTaskId};
use orderdock::fulfillment::fulfillment_order::FulfillmentStatus;

use crate::helpers::{wait_until, TestEngine, TestResult, SETTLE};

/// Checks the invariants over the whole engine: no oversell in any bin, per
/// SKU received = on hand + shipped + written off, no double charge, and
/// money captured only for orders that were not cancelled before capture.
async fn check_invariants(t: &TestEngine, orders: &[Order]) -> TestResult {
    for bin in t.engine().fulfillment().all_bins().await? {
        bin.check_invariants().map_err(|e| anyhow::anyhow!("bin {}: {e}", bin.id()))?;
    }
    assert!(t.gateway.violations().is_empty(), "{:?}", t.gateway.violations());
    for order in orders {
        let order = t.order(order.id()).await?;
        match order.status() {
            OrderStatus::Cancelled { .. } => assert_eq!(order.payment().captured.amount(), 0, "{order:?}"),
            OrderStatus::Refunded { .. } => assert_eq!(order.payment().captured, order.payment().refunded),
            _ => {}
        }
    }
    Ok(())
}

// Goal: 1,000 orders race for 100 units of one SKU in one bin. Exactly 100 win,
// the rest are cancelled out of stock with nothing captured, and the bin's
// counters agree with the outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_orders_for_a_hundred_units_sell_exactly_a_hundred() -> TestResult {
    let t = TestEngine::start(true).await?;
    t.product("HOT", 1000).await?;
    t.warehouse("east", 1, &["A-01"]).await?;
    t.receive("east/A-01", "HOT", 100).await?;
    let mut tasks = Vec::new();
    for _ in 0..1000 {
        let engine = t.engine().ecommerce().orders();
        tasks.push(tokio::spawn(async move {
            let request = orderdock::ecommerce::order::PlaceOrder {
                id: orderdock::events::OrderId::generate(orderdock::events::Timestamp::from_millis(1_700_000_000_000)),
                customer_id: orderdock::events::CustomerId::from_raw(2),
                lines: vec![(
                    orderdock::events::Sku::parse("HOT").unwrap(),
                    orderdock::events::Quantity::new(1).unwrap(),
                )],
                ship_to: orderdock::events::Address::new("A", "B", "C", "D", "FR").unwrap(),
                payment_token: "tok_visa".to_owned(),
            };
            engine.place(request).await
        }));
    }
    let mut placed = Vec::new();
    for task in tasks {
        placed.push(task.await??);
    }
    let mut outcomes: BTreeMap<&'static str, usize> = BTreeMap::new();
    for order in &placed {
        let done = t.wait_for(order.id(), |o| o.status().is_terminal()).await?;
        *outcomes.entry(done.status().as_str()).or_default() += 1;
        if let OrderStatus::Cancelled { reason } = done.status() {
            assert_eq!(reason, CancelReason::OutOfStock);
            assert_eq!(done.payment().captured.amount(), 0, "no capture for a cancelled order");
        }
    }
    assert_eq!(outcomes.get("delivered"), Some(&100), "{outcomes:?}");
    assert_eq!(outcomes.get("cancelled"), Some(&900), "{outcomes:?}");
    let bins = t.engine().fulfillment().all_bins().await?;
    let level = bins[0].level(&orderdock::events::Sku::parse("HOT")?);
    assert_eq!((level.on_hand, level.reserved, level.picked, level.shipped), (0, 0, 0, 100));
    let captures: u32 = t.gateway.ledger().values().map(|e| e.captures).sum();
    assert_eq!(captures, 100);
    check_invariants(&t, &placed).await
}

async fn stocked(autopilot: bool) -> anyhow::Result<TestEngine> {
    let t = TestEngine::start(autopilot).await?;
    t.product("MUG", 1000).await?;
    t.warehouse("east", 1, &["A-01"]).await?;
    t.receive("east/A-01", "MUG", 50).await?;
    Ok(t)
}

// Goal: a crash right after placement (the OrderPlaced event may still sit in
// the outbox) loses nothing: after restart every order is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_after_placement_finishes_every_saga() -> TestResult {
    let t = stocked(true).await?;
    let mut orders = Vec::new();
    for _ in 0..20 {
        orders.push(t.place(&[("MUG", 1)], "tok_visa").await?);
    }
    let t = t.crash_and_restart().await?;
    for order in &orders {
        t.wait_status(order.id(), OrderStatus::Delivered).await?;
    }
    check_invariants(&t, &orders).await?;
    let captures: u32 = t.gateway.ledger().values().map(|e| e.captures).sum();
    assert_eq!(captures, 20, "one capture per order, even across the restart");
    Ok(())
}

// Goal: restarts at each manual stop of the saga — reserved-and-paid (released),
// during pick, after pack — resume where the saga stood.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_during_warehouse_work_resume_where_the_saga_stood() -> TestResult {
    let t = stocked(false).await?;
    let first = t.place(&[("MUG", 2)], "tok_visa").await?;
    let second = t.place(&[("MUG", 3)], "tok_visa").await?;
    let fo1 = FulfillmentOrderId::for_order(first.id());
    let fo2 = FulfillmentOrderId::for_order(second.id());
    for fo in [fo1, fo2] {
        t.wait_fulfillment(fo, FulfillmentStatus::Released).await?;
    }
    // Crash after capture and release.
    let t = t.crash_and_restart().await?;
    t.engine().fulfillment().orders().confirm_pick(PickTaskId { fulfillment_order: fo1, index: 0 }, 2).await?;
    // Crash during pick.
    let t = t.crash_and_restart().await?;
    let found = t.engine().fulfillment().orders().get(fo1).await?.expect("fo1");
    assert_eq!(found.status(), FulfillmentStatus::Picking);
    t.engine().fulfillment().orders().pack(fo1).await?;
    // Crash after pack; the restarted engine runs on autopilot and finishes both.
    let TestEngine { engine, gateway, mut config, dir } = t;
    if let Some(engine) = engine {
        engine.abandon().await;
    }
    config.fulfillment.autopilot = true;
    let t = TestEngine::start_in(dir, config, gateway).await?;
    t.wait_status(first.id(), OrderStatus::Delivered).await?;
    t.wait_status(second.id(), OrderStatus::Delivered).await?;
    let bins = t.engine().fulfillment().all_bins().await?;
    assert_eq!(bins[0].level(&orderdock::events::Sku::parse("MUG")?).shipped, 5);
    check_invariants(&t, &[first, second]).await
}

// Goal: restarting while many sagas are in every stage loses no order, oversells
// nothing and charges nobody twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_restarts_under_load_lose_nothing() -> TestResult {
    let mut t = stocked(true).await?;
    let mut orders = Vec::new();
    for _round in 0..4 {
        for _ in 0..12 {
            orders.push(t.place(&[("MUG", 1)], "tok_visa").await?);
        }
        // Crash at once: sagas are mid-flight at every stage.
        t = t.crash_and_restart().await?;
    }
    for order in &orders {
        t.wait_status(order.id(), OrderStatus::Delivered).await?;
    }
    let bins = t.engine().fulfillment().all_bins().await?;
    let level = bins[0].level(&orderdock::events::Sku::parse("MUG")?);
    assert_eq!((level.shipped, level.on_hand, level.reserved, level.picked), (48, 2, 0, 0));
    check_invariants(&t, &orders).await
}

// Goal: delivering the same event twice has no effect the second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_event_is_recognised_and_ignored() -> TestResult {
    let t = stocked(false).await?;
    let order = t.place(&[("MUG", 2)], "tok_visa").await?;
    let fo = FulfillmentOrderId::for_order(order.id());
    t.wait_fulfillment(fo, FulfillmentStatus::Released).await?;
    // Re-deliver the OrderPlaced and PaymentCaptured events the order emitted.
    let replay = orderdock::events::EventEnvelope {
        event_id: orderdock::events::EventId::derived(order.id().as_raw(), 1),
        order_id: order.id(),
        sequence: 1,
        occurred_at: order.placed_at(),
        source: orderdock::events::ContextName::Ecommerce,
        schema_version: orderdock::events::EVENT_SCHEMA_VERSION,
        event: orderdock::events::IntegrationEvent::OrderPlaced {
            customer_id: order.customer_id(),
            lines: vec![orderdock::events::EventLine {
                sku: orderdock::events::Sku::parse("MUG")?,
                quantity: orderdock::events::Quantity::new(2)?,
            }],
            ship_to: order.ship_to().clone(),
        },
    };
    let before = t.engine().fulfillment().orders().get(fo).await?;
    let answer = t.engine().fulfillment().orders().deliver(replay).await?;
    assert_eq!(answer, Delivery::Duplicate);
    assert_eq!(t.engine().fulfillment().orders().get(fo).await?, before);
    let levels = t.engine().fulfillment().stock(&orderdock::events::Sku::parse("MUG")?).await?;
    assert_eq!(levels[0].reserved, 2, "still one reservation of 2");
    Ok(())
}

// Goal: an actor that crashes is restarted by its supervisor from its last
// snapshot, and the saga goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_actor_is_restarted_from_its_snapshot() -> TestResult {
    let t = stocked(false).await?;
    let order = t.place(&[("MUG", 2)], "tok_visa").await?;
    let fo = FulfillmentOrderId::for_order(order.id());
    t.wait_fulfillment(fo, FulfillmentStatus::Released).await?;
    // Kill the fulfillment order's actor as a panic would.
    let orders = t.engine().fulfillment().orders();
    let cell = orders.running_actor(fo).expect("alive");
    cell.kill();
    let restarted = wait_until(SETTLE, || async {
        orders.running_actor(fo).is_some_and(|c| c.get_id() != cell.get_id())
            || orders.get(fo).await.ok().flatten().is_some()
    })
    .await;
    assert!(restarted);
    assert!(orders.running_actor(fo).is_some_and(|c| c.get_id() != cell.get_id()), "a new actor");
    let found = t.engine().fulfillment().orders().get(fo).await?.expect("fo");
    assert_eq!(found.status(), FulfillmentStatus::Released, "state from the snapshot");
    t.engine().fulfillment().orders().confirm_pick(PickTaskId { fulfillment_order: fo, index: 0 }, 2).await?;
    t.engine().fulfillment().orders().pack(fo).await?;
    Ok(())
}

// Goal: a bin whose actor dies comes back with every hold it had. Hold rows
// are keyed by reservation before bin, so a bin spawned after start reads
// them out of every bin's: with two bins holding stock for the same orders,
// each gets its own and no other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_bin_comes_back_with_its_own_holds() -> TestResult {
    let t = TestEngine::start(false).await?;
    t.product("MUG", 1000).await?;
    t.product("CUP", 500).await?;
    t.warehouse("east", 1, &["A-01", "A-02"]).await?;
    t.receive("east/A-01", "MUG", 50).await?;
    t.receive("east/A-02", "CUP", 50).await?;
    let mut orders = Vec::new();
    for _ in 0..5 {
        orders.push(t.place(&[("MUG", 1), ("CUP", 2)], "tok_visa").await?);
    }
    for order in &orders {
        t.wait_fulfillment(FulfillmentOrderId::for_order(order.id()), FulfillmentStatus::Released).await?;
    }
    let bins = t.engine().fulfillment().bins();
    let (mugs, cups): (orderdock::events::BinId, orderdock::events::BinId) =
        ("east/A-01".parse()?, "east/A-02".parse()?);
    let before = (bins.get(&mugs).await?.expect("mugs"), bins.get(&cups).await?.expect("cups"));
    assert_eq!((before.0.holds().len(), before.1.holds().len()), (5, 5));
    for bin in [&mugs, &cups] {
        let cell = bins.running_actor(bin).expect("alive");
        cell.kill();
        let gone =
            wait_until(SETTLE, || async { bins.running_actor(bin).is_none_or(|c| c.get_id() != cell.get_id()) }).await;
        assert!(gone, "{bin} still runs");
    }
    let after = (bins.get(&mugs).await?.expect("mugs"), bins.get(&cups).await?.expect("cups"));
    assert_eq!(after, before, "each bin back with its own holds and counters");
    for order in &orders {
        let fo = FulfillmentOrderId::for_order(order.id());
        for index in 0..2 {
            let units = if index == 0 { 1 } else { 2 };
            let task = PickTaskId { fulfillment_order: fo, index };
            t.engine().fulfillment().orders().confirm_pick(task, units).await?;
        }
        t.engine().fulfillment().orders().pack(fo).await?;
    }
    check_invariants(&t, &orders).await
}

// Goal: idle actors passivate, so memory follows the active set; a passivated
// aggregate comes back from its snapshot on its next message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_actors_passivate_and_come_back_from_their_snapshot() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut config = crate::helpers::config(dir.path(), true);
    config.fulfillment.idle_after = std::time::Duration::from_millis(100);
    let t =
        TestEngine::start_in(dir, config, std::sync::Arc::new(orderdock::ecommerce::payments::SimulatedGateway::new()))
            .await?;
    t.product("MUG", 1000).await?;
    t.warehouse("east", 1, &["A-01"]).await?;
    t.receive("east/A-01", "MUG", 50).await?;
    let mut orders = Vec::new();
    for _ in 0..20 {
        orders.push(t.place(&[("MUG", 1)], "tok_visa").await?);
    }
    for order in &orders {
        t.wait_status(order.id(), OrderStatus::Delivered).await?;
    }
    let all_idle = wait_until(SETTLE, || async {
        t.engine().ecommerce().live_actors().await == 0 && t.engine().fulfillment().live_actors().await == (0, 0, 0)
    })
    .await;
    assert!(
        all_idle,
        "still live: {} orders, {:?}",
        t.engine().ecommerce().live_actors().await,
        t.engine().fulfillment().live_actors().await
    );
    let back = t.order(orders[0].id()).await?;
    assert_eq!(back.status(), OrderStatus::Delivered);
    assert_eq!(t.engine().ecommerce().live_actors().await, 1, "respawned on demand");
    // A shipment does not wait for its own write of a carrier stage (its
    // fulfillment order recorded the stage first), but it lands that write
    // before it passivates: each comes back from its own row as delivered.
    for order in &orders {
        let fo = t.engine().fulfillment().orders().get(FulfillmentOrderId::for_order(order.id())).await?.expect("fo");
        for record in fo.shipments() {
            let shipment = t.engine().fulfillment().shipments().get(record.id).await?.expect("shipment");
            assert_eq!(shipment.stage(), orderdock::fulfillment::shipment::ShipmentStage::Delivered, "{}", record.id);
        }
    }
    Ok(())
}

// Goal: a crash after the reservation but before the capture went through
// (the gateway is failing its first attempts) resumes the capture under the
// same idempotency key: the order completes and is charged exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_after_reservation_captures_exactly_once() -> TestResult {
    let t = stocked(true).await?;
    let order = t.place(&[("MUG", 1)], "tok_visa").await?;
    // The gateway goes down after the authorization: the capture waits.
    t.gateway.set_outage(true);
    let confirmed = wait_until(SETTLE, || async {
        t.order(order.id()).await.ok().is_some_and(|o| o.status() == OrderStatus::StockConfirmed)
    })
    .await;
    assert!(confirmed, "{:?}", t.order(order.id()).await?);
    let t = t.crash_and_restart().await?;
    t.gateway.set_outage(false);
    let done = t.wait_status(order.id(), OrderStatus::Delivered).await?;
    assert_eq!(done.payment().captured.amount(), 1000);
    assert_eq!(t.gateway.ledger().values().map(|e| e.captures).sum::<u32>(), 1);
    check_invariants(&t, &[order]).await
}
