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
    for expected in ["order_placed", "stock_reserved", "payment_captured", "released_to_warehouse", "packed", "shipment_dispatched", "shipment_delivered"] {
        assert!(names.contains(&expected), "timeline lacks {expected}: {names:?}");
    }
    assert!(t.gateway.violations().is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_stock_cancels_and_voids_the_authorization() -> TestResult {
    let t = stocked(true).await?;
    let order = t.place(&[("MUG", 25)], "tok_visa").await?;
    let done = t.wait_status(order.id(), OrderStatus::Cancelled { reason: CancelReason::OutOfStock }).await?;
    assert_eq!(done.payment().status, PaymentStatus::Voided);
    assert_eq!(t.gateway.ledger().values().map(|e| e.captured).sum::<i64>(), 0);
    Ok(())
}
