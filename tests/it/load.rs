//! The load driver: a small saga-3 run completes every order and balances.

use orderdock::load::{self, LoadConfig};

use crate::helpers::TestResult;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_saga3_run_completes_every_order_and_balances() -> TestResult {
    let report = load::run(LoadConfig::saga3(200, 16, false), |_| {}).await?;
    assert_eq!((report.orders, report.completed, report.cancelled, report.timed_out), (200, 200, 0, 0));
    assert!(report.stock_balanced && report.money_balanced);
    assert_eq!(report.oversold_units, 0);
    assert!(report.p50_ms <= report.p99_ms && report.p99_ms <= report.max_ms);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lowstock_variant_rejects_about_thirty_percent_and_compensates() -> TestResult {
    let report = load::run(LoadConfig::saga3(1000, 32, true), |_| {}).await?;
    assert_eq!(report.orders, 1000);
    assert_eq!(report.timed_out, 0);
    // Stock is sized to 70 % of the orders: exactly 700 can be served.
    assert_eq!(report.completed, 700, "{report:?}");
    assert_eq!(report.cancelled, 300);
    assert!(report.stock_balanced && report.money_balanced, "{report:?}");
    Ok(())
}
