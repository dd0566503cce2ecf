//! Customer cancellation at each stage, with warehouse work done by hand (manual mode).

use orderdock::ecommerce::order::PlaceError;
use orderdock::ecommerce::order::{CancelOutcome, OrderError, OrderStatus, PaymentStatus};
use orderdock::events::{CancelReason, FulfillmentOrderId, PickTaskId, StockOutcome};
use orderdock::fulfillment::fulfillment_order::{FulfillmentStatus, ShortPickPolicy};
use orderdock::fulfillment::shipment::ShipmentStage;

use crate::helpers::{wait_until, TestEngine, TestResult, SETTLE};

async fn manual_paid_order() -> anyhow::Result<(TestEngine, orderdock::events::OrderId)> {
    manual_paid_order_with(ShortPickPolicy::ShipPartial).await
}

async fn manual_paid_order_with(policy: ShortPickPolicy) -> anyhow::Result<(TestEngine, orderdock::events::OrderId)> {
    let dir = tempfile::tempdir()?;
    let mut config = crate::helpers::config(dir.path(), false);
    config.fulfillment.short_pick = policy;
    let t =
        TestEngine::start_in(dir, config, std::sync::Arc::new(orderdock::ecommerce::payments::SimulatedGateway::new()))
            .await?;
    t.product("MUG", 1000).await?;
    t.warehouse("east", 1, &["A-01"]).await?;
    t.receive("east/A-01", "MUG", 10).await?;
    let order = t.place(&[("MUG", 3)], "tok_visa").await?;
    let fo = FulfillmentOrderId::for_order(order.id());
    t.wait_fulfillment(fo, FulfillmentStatus::Released).await?;
    Ok((t, order.id()))
}

async fn available(t: &TestEngine) -> anyhow::Result<(u32, u32)> {
    let levels = t.engine().fulfillment().stock(&orderdock::events::Sku::parse("MUG")?).await?;
    Ok((levels[0].on_hand, levels[0].available))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_before_pick_releases_stock_and_refunds() -> TestResult {
    let (t, id) = manual_paid_order().await?;
    let (outcome, _) = t.engine().ecommerce().orders().cancel(id).await?;
    assert_eq!(outcome, CancelOutcome::Requested);
    let done = t.wait_status(id, OrderStatus::Refunded { reason: CancelReason::CustomerRequest }).await?;
    assert_eq!(done.payment().status, PaymentStatus::Refunded);
    let fo = t.engine().fulfillment().orders().get(FulfillmentOrderId::for_order(id)).await?.expect("fo");
    assert_eq!(fo.status(), FulfillmentStatus::Cancelled { stock: StockOutcome::Released });
    assert!(wait_until(SETTLE, || async { available(&t).await.ok() == Some((10, 10)) }).await);
    assert!(t.gateway.violations().is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_after_pick_returns_picked_units_to_stock() -> TestResult {
    let (t, id) = manual_paid_order().await?;
    let fo = FulfillmentOrderId::for_order(id);
    t.engine().fulfillment().orders().confirm_pick(PickTaskId { fulfillment_order: fo, index: 0 }, 3).await?;
    t.engine().ecommerce().orders().cancel(id).await?;
    t.wait_status(id, OrderStatus::Refunded { reason: CancelReason::CustomerRequest }).await?;
    let found = t.engine().fulfillment().orders().get(fo).await?.expect("fo");
    assert_eq!(found.status(), FulfillmentStatus::Cancelled { stock: StockOutcome::ReturnedToStock });
    assert!(
        wait_until(SETTLE, || async { available(&t).await.ok() == Some((10, 10)) }).await,
        "{:?}",
        available(&t).await?
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_after_dispatch_is_rejected() -> TestResult {
    let (t, id) = manual_paid_order().await?;
    let fo = FulfillmentOrderId::for_order(id);
    let orders = t.engine().fulfillment().orders();
    orders.confirm_pick(PickTaskId { fulfillment_order: fo, index: 0 }, 3).await?;
    let packed = orders.pack(fo).await?;
    let shipment = packed.shipments()[0].id;
    let labelled = wait_until(SETTLE, || async {
        t.engine()
            .fulfillment()
            .shipments()
            .get(shipment)
            .await
            .ok()
            .flatten()
            .is_some_and(|s| s.stage() == ShipmentStage::LabelPurchased)
    })
    .await;
    assert!(labelled);
    t.engine().fulfillment().shipments().track(shipment, ShipmentStage::InTransit, "picked up").await?;
    let shipped =
        wait_until(SETTLE, || async { t.order(id).await.ok().is_some_and(|o| o.status() == OrderStatus::Shipped) })
            .await;
    assert!(shipped);
    let refused = t.engine().ecommerce().orders().cancel(id).await;
    assert!(matches!(refused, Err(PlaceError::Order(OrderError::NotCancellable { .. }))), "{refused:?}");
    assert_eq!(available(&t).await?, (7, 7), "3 units left with the parcel");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_pick_ships_what_was_found_and_refunds_the_rest() -> TestResult {
    let (t, id) = manual_paid_order().await?;
    let fo = FulfillmentOrderId::for_order(id);
    let orders = t.engine().fulfillment().orders();
    orders.confirm_pick(PickTaskId { fulfillment_order: fo, index: 0 }, 1).await?;
    orders.pack(fo).await?;
    let refunded = wait_until(SETTLE, || async {
        t.order(id).await.ok().is_some_and(|o| o.payment().refunded.amount() == 2000 && o.pending_payments().is_empty())
    })
    .await;
    assert!(refunded, "{:?}", t.order(id).await?);
    // Two units were not in the bin: written off, not available.
    assert_eq!(available(&t).await?, (8, 7));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_placed_order_cancels_at_once_and_voids() -> TestResult {
    let t = TestEngine::start(false).await?;
    t.product("MUG", 1000).await?;
    // No stock at all and no warehouse: the order waits in Placed until rejected; cancel first.
    let order = t.place(&[("MUG", 1)], "tok_visa").await?;
    let (outcome, cancelled) = t.engine().ecommerce().orders().cancel(order.id()).await?;
    assert!(
        outcome == CancelOutcome::Cancelled
            || cancelled.status() == OrderStatus::Cancelled { reason: CancelReason::OutOfStock },
        "{outcome:?} {cancelled:?}"
    );
    let done = t.wait_for(order.id(), |o| matches!(o.status(), OrderStatus::Cancelled { .. })).await?;
    assert_eq!(done.payment().status, PaymentStatus::Voided);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_pick_is_reallocated_and_ships_in_full() -> TestResult {
    let (t, id) = manual_paid_order_with(ShortPickPolicy::Reallocate).await?;
    let fo = FulfillmentOrderId::for_order(id);
    let orders = t.engine().fulfillment().orders();
    // The only bin holds 10; the picker finds 1 of 3: 2 are written off and
    // re-reserved from what the bin still shows.
    let after = orders.confirm_pick(PickTaskId { fulfillment_order: fo, index: 0 }, 1).await?;
    assert_eq!(after.tasks().len(), 2, "a new pick task for the missing units");
    assert!(after.tasks()[1].held);
    orders.confirm_pick(PickTaskId { fulfillment_order: fo, index: 1 }, 2).await?;
    let packed = orders.pack(fo).await?;
    assert!(packed.short().is_empty());
    let order = t.order(id).await?;
    assert_eq!(order.payment().refunded.amount(), 0, "nothing to refund: every unit ships");
    assert_eq!(available(&t).await?, (8, 5), "2 written off, 3 picked");
    Ok(())
}
