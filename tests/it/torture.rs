//! Crash torture (RELIABILITY.md T7): the `orderdock` binary on a temporary
//! data directory and a free loopback port, concurrent HTTP clients placing
//! orders and recording every call as ok / fail / info, `SIGKILL` at random
//! moments, restart, again; then a heal phase; then an offline checker reads
//! the stores, the gateway's journal and the client history.
//!
//! PR tier: 30 cycles (`ORDERDOCK_TORTURE_CYCLES` for the soak, e.g. 1000;
//! `ORDERDOCK_SEED` to replay a run).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use orderdock::client::Connection;
use orderdock::ecommerce::order::{Order, OrderStatus, PaymentStatus};
use orderdock::ecommerce::payments::SimulatedGateway;
use orderdock::persistence::Store;
use orderdock::process::{spawn_server, ServerChild as Child};
use serde_json::{json, Value};

use crate::figures::{self, Rng};
use crate::helpers::TestResult;

const SKUS: usize = 4;
const UNITS_PER_SKU: u32 = 60;
const CLIENTS: usize = 6;
const HEAL_TIMEOUT: Duration = Duration::from_secs(90);

/// What the client saw of one placement (Jepsen's ok / fail / info).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// 201 with this order id.
    Ok(String),
    /// A definite refusal (4xx).
    Fail(u16),
    /// Unknown: a timeout, a dropped connection, a 5xx. Applied or not — never twice.
    Info,
}

#[derive(Debug, Clone)]
struct Call {
    key: String,
    body: Value,
    outcomes: Vec<Outcome>,
}

type History = Arc<Mutex<Vec<Call>>>;

fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_orderdock"))
}

fn start(dir: &Path) -> anyhow::Result<(Child, String)> {
    let journal = dir.join("gateway.jsonl");
    let journal = journal.to_str().ok_or_else(|| anyhow::anyhow!("path"))?.to_owned();
    Ok(spawn_server(&exe(), &dir.join("data"), &["--autopilot", "--gateway-journal", &journal])?)
}

fn classify(reply: &Result<(StatusCode, axum::body::Bytes), String>) -> Outcome {
    match reply {
        Ok((StatusCode::CREATED, body)) => serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v["id"].as_str().map(str::to_owned))
            .map_or(Outcome::Info, Outcome::Ok),
        Ok((status, _)) if status.is_client_error() && *status != StatusCode::REQUEST_TIMEOUT => {
            Outcome::Fail(status.as_u16())
        }
        _ => Outcome::Info,
    }
}

async fn setup(address: &str, admin: &str) -> anyhow::Result<String> {
    let mut c = Connection::new(address);
    let bins: Vec<String> = (0..SKUS).map(|n| format!("B{n}")).collect();
    let ok = |r: &Result<(StatusCode, axum::body::Bytes), String>| matches!(r, Ok((s, _)) if s.is_success());
    let reply = c
        .call(Method::POST, "/v1/warehouses", admin, &[], Some(&json!({"id":"wh","name":"W","priority":0,"bins":bins})))
        .await;
    anyhow::ensure!(ok(&reply), "warehouse: {reply:?}");
    for n in 0..SKUS {
        let product =
            json!({"sku": format!("S{n}"), "name": "P", "price": {"amount": 700 + n as i64, "currency": "EUR"}});
        let reply = c.call(Method::POST, "/v1/products", admin, &[], Some(&product)).await;
        anyhow::ensure!(ok(&reply), "product: {reply:?}");
        let receipt = json!({"warehouse_id":"wh","bin":format!("B{n}"),"sku":format!("S{n}"),"quantity":UNITS_PER_SKU});
        let key = format!("stock-{n}");
        let reply =
            c.call(Method::POST, "/v1/inventory/receipts", admin, &[("Idempotency-Key", &key)], Some(&receipt)).await;
        anyhow::ensure!(ok(&reply), "receipt: {reply:?}");
    }
    let reply =
        c.call(Method::POST, "/v1/customers", admin, &[], Some(&json!({"name":"T","email":"t@example.com"}))).await;
    let customer: Value = match reply {
        Ok((StatusCode::CREATED, body)) => serde_json::from_slice(&body)?,
        other => anyhow::bail!("customer: {other:?}"),
    };
    Ok(customer["api_key"].as_str().unwrap_or_default().to_owned())
}

fn order_body(rng: &mut Rng) -> Value {
    let token = match rng.below(10) {
        0 => "tok_decline_capture",
        1 => "tok_reply_lost",
        2 => "tok_flaky",
        _ => "tok_visa",
    };
    json!({
        "lines": [{"sku": format!("S{}", rng.below(SKUS as u64)), "quantity": 1 + rng.below(2)}],
        "ship_to": {"name":"A","line1":"B","city":"C","postal_code":"D","country":"GB"},
        "payment": {"token": token},
    })
}

/// Tells the clients to stop: the flag for those between calls, the wake-up for those waiting on one.
#[derive(Debug, Default)]
struct Stop {
    flag: std::sync::atomic::AtomicBool,
    wake: tokio::sync::Notify,
}

/// Places orders until `stop`, recording each call.
async fn client(address: String, key: String, seed: u64, prefix: String, history: History, stop: Arc<Stop>) {
    let mut rng = Rng::new(seed);
    let mut c = Connection::new(&address);
    let mut n = 0u64;
    while !stop.flag.load(std::sync::atomic::Ordering::SeqCst) {
        let idempotency = format!("{prefix}-{n}");
        n += 1;
        let body = order_body(&mut rng);
        let headers = [("Idempotency-Key", idempotency.as_str())];
        let call = c.call(Method::POST, "/v1/orders", &key, &headers, Some(&body));
        let reply = tokio::select! {
            reply = call => reply,
            () = stop.wake.notified() => {
                history.lock().unwrap().push(Call { key: idempotency, body, outcomes: vec![Outcome::Info] });
                return;
            }
        };
        let outcome = classify(&reply);
        let refused = reply.is_err();
        history.lock().unwrap().push(Call { key: idempotency, body, outcomes: vec![outcome] });
        if refused {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Sends every info call again with the same key and body; records the answer.
async fn retry_unknown(address: &str, key: &str, history: &History) {
    let mut c = Connection::new(address);
    let pending: Vec<(usize, Call)> = history
        .lock()
        .unwrap()
        .iter()
        .enumerate()
        .filter(|(_, call)| call.outcomes.last() == Some(&Outcome::Info))
        .map(|(i, call)| (i, call.clone()))
        .collect();
    for (i, call) in pending {
        let reply = c.call(Method::POST, "/v1/orders", key, &[("Idempotency-Key", &call.key)], Some(&call.body)).await;
        history.lock().unwrap()[i].outcomes.push(classify(&reply));
    }
}

/// Waits until no saga is open and no event is undelivered.
async fn heal(address: &str, admin: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut c = Connection::new(address);
    loop {
        if let Ok((StatusCode::OK, body)) = c.call(Method::GET, "/v1/audit", admin, &[], None).await {
            let audit: Value = serde_json::from_slice(&body)?;
            if audit["open_sagas"] == 0 && audit["outbox_pending"] == 0 {
                return Ok(started.elapsed());
            }
        }
        anyhow::ensure!(started.elapsed() < HEAL_TIMEOUT, "sagas still open after {HEAL_TIMEOUT:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[derive(Debug, Default)]
struct Check {
    violations: Vec<String>,
    orders: usize,
    delivered: usize,
    compensated: usize,
    manual_review: usize,
}

/// The offline checker: the stores and the journal after the last kill.
fn check(dir: &Path, history: &[Call]) -> anyhow::Result<Check> {
    let mut out = Check::default();
    let ecommerce = Store::open(&dir.join("data/ecommerce.redb"))?;
    let fulfillment = Store::open(&dir.join("data/fulfillment.redb"))?;
    let mut orders: HashMap<String, Order> = HashMap::new();
    for (id, bytes) in ecommerce.snapshots("order")? {
        orders.insert(id.clone(), orderdock::ecommerce::order::snapshot::decode(&id, &bytes)?);
    }
    out.orders = orders.len();
    // One resource per key: every order is named by exactly one idempotency record.
    let mut named: HashMap<String, Vec<String>> = HashMap::new();
    let mut by_key: HashMap<String, String> = HashMap::new();
    for (key, bytes) in ecommerce.idempotency_records()? {
        if let Some(resource) = orderdock::http::idempotency::stored_resource(&bytes)? {
            let raw = key.rsplit('|').next().unwrap_or_default().to_owned();
            named.entry(resource.clone()).or_default().push(raw.clone());
            by_key.insert(raw, resource);
        }
    }
    for id in orders.keys() {
        match named.get(id).map(Vec::len) {
            Some(1) => {}
            n => out.violations.push(format!("order {id} is named by {n:?} idempotency records")),
        }
    }
    // I2: no lost acknowledged order; retries of a key answer the same order.
    for call in history {
        let acked: Vec<&String> =
            call.outcomes.iter().filter_map(|o| if let Outcome::Ok(id) = o { Some(id) } else { None }).collect();
        if let Some(first) = acked.first() {
            if !orders.contains_key(*first) {
                out.violations.push(format!("lost acknowledged order {first} (key {})", call.key));
            }
            if acked.iter().any(|id| id != first) {
                out.violations.push(format!("key {} answered two orders: {acked:?}", call.key));
            }
            if by_key.get(&call.key) != Some(*first) {
                out.violations.push(format!("key {} is not recorded with its order {first}", call.key));
            }
        }
    }
    // I4: every saga finished; I5: nothing undelivered.
    for (store, kind) in [(&ecommerce, "order"), (&fulfillment, "fulfillment_order"), (&fulfillment, "shipment")] {
        let open = store.open_ids(kind)?;
        if !open.is_empty() {
            out.violations.push(format!("{} {kind} sagas not finished after heal", open.len()));
        }
    }
    for (name, store) in [("ecommerce", &ecommerce), ("fulfillment", &fulfillment)] {
        let pending = store.outbox()?.len();
        if pending > 0 {
            out.violations.push(format!("{pending} {name} outbox rows undelivered after heal"));
        }
    }
    // I1 + I7: no oversell; stock conserved per SKU.
    let mut shipped_per_sku: BTreeMap<String, u64> = BTreeMap::new();
    for (bin, _) in orderdock::fulfillment::bin::snapshot::load_all(&fulfillment)? {
        let id = bin.id();
        if let Err(err) = bin.check_invariants() {
            out.violations.push(format!("bin {id}: {err}"));
        }
        for (sku, level) in bin.levels() {
            let written_off = i128::from(level.adjusted_out);
            if i128::from(level.received) != i128::from(level.on_hand) + i128::from(level.shipped) + written_off {
                out.violations.push(format!("bin {id} {sku}: stock not conserved: {level:?}"));
            }
            if level.shipped > level.received {
                out.violations.push(format!("bin {id} {sku}: oversold"));
            }
            *shipped_per_sku.entry(sku.to_string()).or_default() += level.shipped;
        }
    }
    // I3: no double charge; the charge matches the outcome.
    let gateway = SimulatedGateway::with_journal(&dir.join("gateway.jsonl"))?;
    out.violations.extend(gateway.violations());
    let ledger = gateway.ledger();
    let mut delivered_units: BTreeMap<String, u64> = BTreeMap::new();
    for (id, order) in &orders {
        let entry = order.payment().authorization.as_ref().and_then(|a| ledger.get(a)).cloned().unwrap_or_default();
        let total = order.total().amount();
        if order.payment().status == PaymentStatus::ManualReview {
            out.manual_review += 1;
            continue;
        }
        match order.status() {
            OrderStatus::Delivered => {
                out.delivered += 1;
                if entry.captured - entry.refunded > total || entry.captured != total {
                    out.violations.push(format!("order {id} delivered but charged {entry:?} of {total}"));
                }
                for line in order.lines() {
                    *delivered_units.entry(line.sku.to_string()).or_default() += u64::from(line.quantity.get());
                }
            }
            OrderStatus::Cancelled { .. } | OrderStatus::Refunded { .. } => {
                out.compensated += 1;
                if entry.captured != entry.refunded {
                    out.violations.push(format!("order {id} {:?} but charged {entry:?}", order.status()));
                }
            }
            status => out.violations.push(format!("order {id} not terminal: {status:?}")),
        }
    }
    for (sku, units) in &delivered_units {
        if shipped_per_sku.get(sku).copied().unwrap_or(0) < *units {
            out.violations.push(format!("{sku}: {units} units delivered but fewer shipped"));
        }
    }
    ecommerce.close();
    fulfillment.close();
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_torture() -> TestResult {
    let cycles: u64 = std::env::var("ORDERDOCK_TORTURE_CYCLES").ok().and_then(|s| s.parse().ok()).unwrap_or(30);
    let seed = figures::seed();
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir()?;
    let history: History = Arc::default();
    let mut customer = String::new();
    let mut admin = String::new();
    let mut restarts = Vec::new();
    for cycle in 0..cycles {
        let started = Instant::now();
        let (mut server, address) = start(dir.path())?;
        restarts.push(started.elapsed());
        if cycle == 0 {
            admin = std::fs::read_to_string(dir.path().join("data/admin.key"))?.trim().to_owned();
            customer = setup(&address, &admin).await?;
        } else {
            retry_unknown(&address, &customer, &history).await;
        }
        let stop = Arc::new(Stop::default());
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let prefix = format!("c{cycle}-{c}");
                tokio::spawn(client(
                    address.clone(),
                    customer.clone(),
                    rng.next(),
                    prefix,
                    history.clone(),
                    stop.clone(),
                ))
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(30 + rng.below(300))).await;
        // SIGKILL while the clients are mid-request and the sagas mid-commit.
        server.0.kill()?;
        let _ = server.0.wait();
        stop.flag.store(true, std::sync::atomic::Ordering::SeqCst);
        stop.wake.notify_waiters();
        for task in clients {
            let _ = task.await;
        }
    }
    // Heal: one more start, every unknown call retried, everything left to finish.
    let (mut server, address) = start(dir.path())?;
    retry_unknown(&address, &customer, &history).await;
    let healed = heal(&address, &admin).await;
    // Stopped as an operator would, not killed: the outbox rows of the last
    // deliveries are deleted by lazy writes (up to `LAZY_WRITE_DELAY` after
    // the audit stops counting them), and a SIGKILL here would leave them
    // for the next start to deliver again rather than show them delivered.
    let pid = i32::try_from(server.0.id())?;
    // SAFETY: kill(2) takes integers only; `pid` is our own child, not yet reaped.
    let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
    anyhow::ensure!(sent == 0, "SIGTERM not sent: {}", std::io::Error::last_os_error());
    let _ = server.0.wait();
    let history = history.lock().unwrap().clone();
    let mut result = check(dir.path(), &history)?;
    if let Err(err) = &healed {
        result.violations.push(format!("heal: {err}"));
    }
    restarts.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let count = |f: &dyn Fn(&Outcome) -> bool| history.iter().filter(|c| c.outcomes.first().is_some_and(f)).count();
    let figures = json!({
        "cycles": cycles,
        "calls": history.len(),
        "acknowledged": count(&|o| matches!(o, Outcome::Ok(_))),
        "failed": count(&|o| matches!(o, Outcome::Fail(_))),
        "unknown": count(&|o| *o == Outcome::Info),
        "orders_stored": result.orders,
        "delivered": result.delivered,
        "compensated": result.compensated,
        "manual_review": result.manual_review,
        "restart_to_listening_ms_p50": restarts.get(restarts.len() / 2).map_or(0.0, |d| ms(*d)),
        "restart_to_listening_ms_p99": restarts.get(restarts.len() * 99 / 100).map_or(0.0, |d| ms(*d)),
        "heal_ms": healed.as_ref().map_or(-1.0, |d| ms(*d)),
        "lost_acked_orders": result.violations.iter().filter(|v| v.starts_with("lost")).count(),
        "violations": result.violations,
    });
    let n = result.violations.len() as u64;
    figures::record("kill9_torture", seed, cycles, n, figures);
    assert!(result.violations.is_empty(), "{:#?}", result.violations);
    assert!(result.orders > 0 && result.delivered > 0, "the run must have done something: {result:?}");
    Ok(())
}
