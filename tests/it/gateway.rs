//! Payment gateway faults (issue 4): declines, timeouts, "succeeded but
//! reply lost", outages — every order ends consistent: captured exactly once
//! (and delivered) or not at all (cancelled, hold voided or money refunded).

use std::sync::Arc;
use std::time::Duration;

use orderdock::ecommerce::order::{Order, OrderStatus};
use orderdock::ecommerce::payments::{LedgerEntry, SimulatedGateway};
use serde_json::json;

use crate::figures;
use crate::helpers::{TestEngine, TestResult};

async fn engine(gateway: Arc<SimulatedGateway>) -> anyhow::Result<TestEngine> {
    let dir = tempfile::tempdir()?;
    let mut config = crate::helpers::config(dir.path(), true);
    // Short, so a hung gateway call is abandoned (and retried) quickly.
    config.payment_timeout = Duration::from_millis(200);
    let t = TestEngine::start_in(dir, config, gateway).await?;
    t.product("MUG", 1200).await?;
    t.warehouse("wh", 0, &["A"]).await?;
    t.receive("wh/A", "MUG", 100).await?;
    Ok(t)
}

/// The gateway's entry for `order`'s authorization, if one was made.
fn entry(gateway: &SimulatedGateway, order: &Order) -> Option<LedgerEntry> {
    let id = order.payment().authorization.as_ref()?;
    gateway.ledger().get(id).cloned()
}

/// Checks one finished order against the ledger; returns the broken rule.
fn consistent(gateway: &SimulatedGateway, order: &Order) -> Result<&'static str, String> {
    let total = order.total().amount();
    let ledger = entry(gateway, order).unwrap_or_default();
    if ledger.captures > 1 {
        return Err(format!("captured {} times", ledger.captures));
    }
    match order.status() {
        OrderStatus::Delivered if ledger.captured == total && ledger.refunded == 0 => Ok("delivered, charged once"),
        OrderStatus::Cancelled { .. } | OrderStatus::Refunded { .. } if ledger.captured == ledger.refunded => {
            Ok("cancelled, charged nothing")
        }
        status => Err(format!("{status:?} with {ledger:?} for a total of {total}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_gateway_fault_ends_captured_once_or_not_at_all() -> TestResult {
    let gateway = Arc::new(SimulatedGateway::new());
    let t = engine(gateway.clone()).await?;
    let tokens = ["tok_visa", "tok_decline", "tok_decline_capture", "tok_flaky", "tok_reply_lost", "tok_slow"];
    let mut outcomes = serde_json::Map::new();
    let mut violations = Vec::new();
    for token in tokens {
        let placed = t.place(&[("MUG", 2)], token).await?;
        let order = t.wait_for(placed.id(), |o| o.status().is_terminal()).await?;
        match consistent(&gateway, &order) {
            Ok(what) => {
                outcomes.insert(token.to_owned(), json!(what));
            }
            Err(err) => violations.push(format!("{token}: {err}")),
        }
    }
    // An outage across the capture: the capture waits and goes through once.
    gateway.set_outage(true);
    let placed = t.place(&[("MUG", 1)], "tok_visa").await;
    gateway.set_outage(false);
    if let Ok(placed) = placed {
        let order = t.wait_for(placed.id(), |o| o.status().is_terminal()).await?;
        match consistent(&gateway, &order) {
            Ok(what) => {
                outcomes.insert("outage".to_owned(), json!(what));
            }
            Err(err) => violations.push(format!("outage: {err}")),
        }
    }
    violations.extend(gateway.violations());
    let n = outcomes.len() as u64 + violations.len() as u64;
    figures::record(
        "gateway_faults",
        0,
        n,
        violations.len() as u64,
        json!({"outcomes": outcomes, "violations": violations}),
    );
    assert!(violations.is_empty(), "{violations:#?}");
    assert_eq!(outcomes["tok_visa"], json!("delivered, charged once"));
    assert_eq!(outcomes["tok_reply_lost"], json!("delivered, charged once"), "a lost reply is retried, not refused");
    assert_eq!(outcomes["tok_slow"], json!("delivered, charged once"), "a hung call times out and is retried");
    assert_eq!(outcomes["tok_decline_capture"], json!("cancelled, charged nothing"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journaled_gateway_keeps_its_ledger_across_a_restart() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("gateway.jsonl");
    let gateway = SimulatedGateway::with_journal(&path)?;
    use orderdock::ecommerce::payments::PaymentGateway;
    let eur = |n| orderdock::events::Money::new(n, orderdock::events::Currency::EUR);
    let auth = gateway.authorize("auth:1".into(), "tok_visa".into(), eur(500)?).await?;
    gateway.capture("capture:1".into(), auth.clone(), eur(500)?).await?;
    drop(gateway);
    let reopened = SimulatedGateway::with_journal(&path)?;
    // The same keys replay; nothing is applied twice; new ids do not collide.
    assert_eq!(reopened.authorize("auth:1".into(), "tok_visa".into(), eur(500)?).await?, auth);
    reopened.capture("capture:1".into(), auth.clone(), eur(500)?).await?;
    assert_eq!(reopened.ledger()[&auth].captures, 1);
    let other = reopened.authorize("auth:2".into(), "tok_visa".into(), eur(100)?).await?;
    assert_ne!(other, auth);
    // A torn last line (a crash mid-append) is skipped, not fatal.
    std::fs::OpenOptions::new().append(true).open(&path).and_then(|mut f| {
        use std::io::Write;
        f.write_all(b"{\"key\":\"capt")
    })?;
    let again = SimulatedGateway::with_journal(&path)?;
    assert_eq!(again.ledger().len(), 2);
    assert!(again.violations().is_empty());
    Ok(())
}
