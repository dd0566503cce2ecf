//! The order-to-delivery saga end to end, with its compensations.

use orderdock::ecommerce::order::{OrderStatus, PaymentStatus};
use orderdock::events::CancelReason;

use crate::helpers::{TestEngine, TestResult};

async fn stocked(autopilot: bool) -> anyhow::Result<TestEngine> {
    let t = TestEngine::start(autopilot).await?;
    t.product("MUG", 1200).await?;
    t.product("TEE", 2500).await?;
    t.warehouse("east", 1, &["A-01", "A-02"]).await?;
    t.warehouse("west", 2, &["B-01"]).await?;
    t.receive("east/A-01", "MUG", 10).await?;
    t.receive("west/B-01", "TEE", 10).await?;
    t.receive("west/B-01", "MUG", 10).await?;
    Ok(t)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn happy_path_reaches_delivered_on_autopilot() -> TestResult {
    let t = stocked(true).await?;
    let order = t.place(&[("MUG", 2)], "tok_visa").await?;
    assert_eq!(order.status(), OrderStatus::Placed);
    let done = t.wait_status(order.id(), OrderStatus::Delivered).await?;
    assert_eq!(done.payment().status, PaymentStatus::Captured);
    assert_eq!(done.payment().captured.amount(), 2400);
    let view = t.engine().order_view(order.id()).await?.expect("view");
    let names: Vec<&str> = view.timeline.iter().map(|s| s.name.as_str()).collect();
    for expected in [
        "order_placed",
        "stock_reserved",
        "payment_captured",
        "released_to_warehouse",
        "packed",
        "shipment_dispatched",
        "shipment_delivered",
    ] {
        assert!(names.contains(&expected), "timeline lacks {expected}: {names:?}");
    }
    assert!(t.gateway.violations().is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_stock_cancels_and_voids_the_authorization() -> TestResult {
    let t = stocked(true).await?;
    refused_out_of_stock(&t, &[("MUG", 25)]).await?;
    assert_eq!(t.gateway.ledger().values().map(|e| e.captured).sum::<i64>(), 0);
    Ok(())
}

/// Places `lines`, which the stock cannot cover, and waits for the
/// order's cancellation with its authorization voided.
async fn refused_out_of_stock(t: &TestEngine, lines: &[(&str, u32)]) -> TestResult {
    let order = t.place(lines, "tok_visa").await?;
    let done = t.wait_status(order.id(), OrderStatus::Cancelled { reason: CancelReason::OutOfStock }).await?;
    assert_eq!(done.payment().status, PaymentStatus::Voided);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sku_one_bin_stocks_is_held_there_or_refused_with_nothing_held() -> TestResult {
    // TEE is in one bin only: it is planned there without asking the bin first.
    let t = stocked(false).await?;
    refused_out_of_stock(&t, &[("TEE", 11)]).await?;
    assert_eq!(level(&t, "TEE").await?, (10, 0, 10), "the refused order holds nothing");
    let fits = t.place(&[("TEE", 10)], "tok_visa").await?;
    let paid = crate::helpers::wait_until(crate::helpers::SETTLE, || async {
        t.order(fits.id()).await.is_ok_and(|o| o.payment().captured.amount() == 25_000)
    })
    .await;
    assert!(paid, "the order that fits is paid: {:?}", t.order(fits.id()).await?);
    let held = crate::helpers::wait_until(crate::helpers::SETTLE, || async {
        level(&t, "TEE").await.ok() == Some((10, 10, 0))
    })
    .await;
    assert!(held, "all ten held: {:?}", level(&t, "TEE").await?);
    Ok(())
}

async fn level(t: &TestEngine, sku: &str) -> anyhow::Result<(u32, u32, u32)> {
    let levels = t.engine().fulfillment().stock(&orderdock::events::Sku::parse(sku)?).await?;
    Ok(levels.iter().fold((0, 0, 0), |(h, r, a), l| (h + l.on_hand, r + l.reserved + l.picked, a + l.available)))
}

async fn fulfillment_order(
    t: &TestEngine,
    id: orderdock::events::OrderId,
) -> anyhow::Result<orderdock::fulfillment::FulfillmentOrder> {
    let fo = orderdock::events::FulfillmentOrderId::for_order(id);
    t.engine().fulfillment().orders().get(fo).await?.ok_or_else(|| anyhow::anyhow!("no fulfillment order"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_no_warehouse_can_take_alone_ships_in_two_parcels() -> TestResult {
    let t = stocked(true).await?;
    let order = t.place(&[("MUG", 15)], "tok_visa").await?;
    let done = t.wait_status(order.id(), OrderStatus::Delivered).await?;
    assert_eq!(done.fulfillment().map(|f| f.shipments_total), Some(2));
    let fo = fulfillment_order(&t, order.id()).await?;
    let warehouses: std::collections::BTreeSet<_> = fo.shipments().iter().map(|s| s.warehouse.to_string()).collect();
    assert_eq!(warehouses.len(), 2);
    assert_eq!(level(&t, "MUG").await?, (5, 0, 5), "15 of 20 shipped");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_one_warehouse_can_take_whole_ships_once_from_it() -> TestResult {
    let t = stocked(true).await?;
    let order = t.place(&[("MUG", 1), ("TEE", 1)], "tok_visa").await?;
    let done = t.wait_status(order.id(), OrderStatus::Delivered).await?;
    assert_eq!(done.fulfillment().map(|f| f.shipments_total), Some(1));
    let fo = fulfillment_order(&t, order.id()).await?;
    assert_eq!(fo.shipments()[0].warehouse.as_str(), "west", "only west holds both");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_authorization_cancels_at_once() -> TestResult {
    let t = stocked(true).await?;
    let order = t.place(&[("MUG", 1)], "tok_decline").await?;
    assert_eq!(order.status(), OrderStatus::Cancelled { reason: CancelReason::PaymentDeclined });
    assert!(order.is_finished());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_capture_cancels_and_releases_the_reservation() -> TestResult {
    let t = stocked(true).await?;
    let order = t.place(&[("MUG", 3)], "tok_decline_capture").await?;
    let done = t.wait_status(order.id(), OrderStatus::Cancelled { reason: CancelReason::PaymentDeclined }).await?;
    assert_eq!(done.payment().captured.amount(), 0);
    let released = crate::helpers::wait_until(crate::helpers::SETTLE, || async {
        level(&t, "MUG").await.ok() == Some((20, 0, 20))
    })
    .await;
    assert!(released, "stock back: {:?}", level(&t, "MUG").await?);
    assert!(matches!(
        fulfillment_order(&t, order.id()).await?.status(),
        orderdock::fulfillment::fulfillment_order::FulfillmentStatus::Cancelled { .. }
    ));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flaky_gateway_is_retried_and_charges_once() -> TestResult {
    let t = stocked(true).await?;
    let order = t.place(&[("MUG", 1)], "tok_flaky").await?;
    t.wait_status(order.id(), OrderStatus::Delivered).await?;
    let ledger = t.gateway.ledger();
    assert_eq!(ledger.values().map(|e| e.captures).sum::<u32>(), 1);
    assert!(t.gateway.violations().is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_reservation_cancels_the_order_and_returns_the_stock() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut config = crate::helpers::config(dir.path(), true);
    config.fulfillment.reservation_ttl = std::time::Duration::from_millis(300);
    let t =
        TestEngine::start_in(dir, config, std::sync::Arc::new(orderdock::ecommerce::payments::SimulatedGateway::new()))
            .await?;
    t.product("MUG", 1200).await?;
    t.warehouse("east", 1, &["A-01"]).await?;
    t.receive("east/A-01", "MUG", 5).await?;
    // The gateway never answers captures, so the hold runs out first.
    let order = t.place(&[("MUG", 2)], "tok_capture_unavailable").await?;
    let done = t.wait_status(order.id(), OrderStatus::Cancelled { reason: CancelReason::ReservationExpired }).await?;
    assert_eq!(done.payment().captured.amount(), 0);
    assert_eq!(done.payment().status, PaymentStatus::Voided);
    let bins = t.engine().fulfillment().all_bins().await?;
    assert_eq!(bins[0].expired(), 1);
    assert_eq!(level(&t, "MUG").await?, (5, 0, 5));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_see_every_committed_step_of_an_order() -> TestResult {
    let t = stocked(true).await?;
    let mut watch = t.engine().watch();
    let order = t.place(&[("MUG", 1)], "tok_visa").await?;
    t.wait_status(order.id(), OrderStatus::Delivered).await?;
    let mut seen = Vec::new();
    while let Ok(progress) = watch.try_recv() {
        if progress.order == order.id() {
            seen.push(progress.step.name);
        }
    }
    let stored: Vec<String> = t.engine().timeline(order.id()).await.into_iter().map(|s| s.name).collect();
    let mut sorted_seen = seen.clone();
    sorted_seen.sort();
    let mut sorted_stored = stored.clone();
    sorted_stored.sort();
    assert_eq!(sorted_seen, sorted_stored, "the watch carries exactly the stored steps");
    assert!(seen.contains(&"packed".to_owned()) && seen.contains(&"shipment_delivered".to_owned()));
    Ok(())
}
