//! Two benchmarks that are commands rather than criterion benches, because
//! they measure a whole process: memory per open order, and recovery time
//! after a `SIGKILL`.
//!
//! - [`memory`]: an embedded engine in manual warehouse mode (orders stop at
//!   `paid`, their fulfillment orders wait for a picker, so every saga stays
//!   open), N orders placed, then the growth of the process's resident
//!   memory divided by N — with every actor kept live, or after the idle ones
//!   passivated.
//! - [`recovery`]: a child `orderdock serve` in manual mode takes N orders
//!   over HTTP and is killed with `SIGKILL` while its sagas are still moving;
//!   then the engine is reopened on its data directory in this process and
//!   timed until every unfinished saga is back in memory and every
//!   undelivered event is delivered.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::embedded::{Embedded, SETTLE_TIMEOUT};
use super::{place_all, remote, rss_now_bytes, LoadConfig, LoadError, Session, Tracker, Until};
use orderdock::{Config, Engine};

/// What [`memory`] measured.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct MemoryReport {
    /// Orders placed (all open: paid, waiting for a picker).
    pub(crate) orders: u64,
    /// Whether idle actors were allowed to passivate before measuring.
    pub(crate) passivated: bool,
    /// Order actors live when measured.
    pub(crate) live_orders: usize,
    /// Fulfillment-order actors live when measured.
    pub(crate) live_fulfillment_orders: usize,
    /// Bin actors live when measured.
    pub(crate) live_bins: usize,
    /// Resident memory after setup, before the orders, bytes.
    pub(crate) rss_before_bytes: u64,
    /// Resident memory with the orders open, bytes.
    pub(crate) rss_after_bytes: u64,
    /// (after − before) / orders.
    pub(crate) rss_per_order_bytes: f64,
    /// (after − before) / live order and fulfillment-order actors (0 when none are live).
    pub(crate) rss_per_live_actor_bytes: f64,
    /// Unfinished sagas in the stores (orders + fulfillment orders).
    pub(crate) open_sagas: usize,
}

/// Places `orders` orders that stay open and measures resident memory per
/// order. `passivate`: idle actors passivate after 1 s and the measurement
/// waits for them to; otherwise every actor is kept live.
///
/// # Errors
/// [`LoadError`] when the engine or the setup fails.
pub(crate) async fn memory(
    orders: u64,
    concurrency: usize,
    passivate: bool,
    progress: impl Fn(u64) + Send + Sync + 'static,
) -> Result<MemoryReport, LoadError> {
    let idle_after = if passivate { Duration::from_secs(1) } else { Duration::from_secs(24 * 3600) };
    let mut config = LoadConfig::saga3(orders, concurrency, false);
    config.until = Until::Paid;
    config.autopilot = false;
    config.idle_after = Some(idle_after);
    let tracker = Arc::new(Tracker::default());
    let session = Embedded::start(&config, tracker.clone()).await?;
    let engine = session.engine.clone();
    let _ = engine.settle(SETTLE_TIMEOUT).await;
    if passivate {
        wait_for_passivation(&engine, idle_after).await;
    }
    let rss_before_bytes = rss_now_bytes();
    let placed = place_all(&session, &config, &tracker, progress).await?;
    if placed.completed != orders {
        return Err(LoadError::Setup(format!("only {} of {orders} orders reached paid", placed.completed)));
    }
    let _ = engine.settle(SETTLE_TIMEOUT).await;
    if passivate {
        wait_for_passivation(&engine, idle_after).await;
    }
    let rss_after_bytes = rss_now_bytes();
    let live_orders = engine.ecommerce().live_actors().await;
    let (live_bins, live_fulfillment_orders, _) = engine.fulfillment().live_actors().await;
    let (open_orders, open_fulfillment_orders, _) =
        engine.open_sagas().await.map_err(|e| LoadError::Setup(e.to_string()))?;
    let open_sagas = open_orders + open_fulfillment_orders;
    let grown = rss_after_bytes.saturating_sub(rss_before_bytes) as f64;
    let live = live_orders + live_fulfillment_orders;
    session.finish().await;
    Ok(MemoryReport {
        orders,
        passivated: passivate,
        live_orders,
        live_fulfillment_orders,
        live_bins,
        rss_before_bytes,
        rss_after_bytes,
        rss_per_order_bytes: grown / orders.max(1) as f64,
        rss_per_live_actor_bytes: if live == 0 { 0.0 } else { grown / live as f64 },
        open_sagas,
    })
}

/// Waits (bounded) until no order or fulfillment-order actor is live.
async fn wait_for_passivation(engine: &Engine, idle_after: Duration) {
    let deadline = Instant::now() + idle_after * 10 + Duration::from_secs(10);
    while Instant::now() < deadline {
        let (_, fulfillment_orders, _) = engine.fulfillment().live_actors().await;
        if engine.ecommerce().live_actors().await + fulfillment_orders == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What [`recovery`] measured.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RecoveryReport {
    /// Orders the killed server acknowledged.
    pub(crate) orders_acknowledged: u64,
    /// Unfinished sagas found on reopening (orders + fulfillment orders + shipments).
    pub(crate) open_sagas: usize,
    /// Events found undelivered in the outboxes on reopening.
    pub(crate) outbox_pending: usize,
    /// Opening the stores and respawning every unfinished saga, ms.
    pub(crate) start_ms: f64,
    /// From the start until both outboxes were delivered, ms.
    pub(crate) resumed_ms: f64,
    /// Every acknowledged order is in the reopened store.
    pub(crate) lost_orders: u64,
    /// Stock and money balance after recovery.
    pub(crate) stock_balanced: bool,
    /// The payment ledger of the reopened engine balances (it is a fresh simulated gateway).
    pub(crate) money_balanced: bool,
    /// Peak resident memory of this process (the reopened engine), bytes.
    pub(crate) rss_peak_bytes: u64,
}

/// Kills `orderdock serve` with `SIGKILL` mid-load and times the recovery.
///
/// `exe` is the `orderdock` binary; `data_dir` must be empty or absent.
/// The child takes `orders` orders (`concurrency` in flight, placement
/// acknowledged = counted) and is killed right after the last
/// acknowledgement, while fulfillment is still reserving and capturing.
///
/// # Errors
/// [`LoadError`] when the child or the reopened engine fails.
pub(crate) async fn recovery(
    exe: &Path,
    data_dir: &Path,
    orders: u64,
    concurrency: usize,
    progress: impl Fn(u64) + Send + Sync + 'static,
) -> Result<RecoveryReport, LoadError> {
    let setup = |e: &dyn std::fmt::Display| LoadError::Setup(e.to_string());
    if data_dir.exists() && std::fs::read_dir(data_dir).map_err(|e| setup(&e))?.next().is_some() {
        return Err(LoadError::Setup(format!("{} is not empty", data_dir.display())));
    }
    let (mut child, address) =
        orderdock::process::spawn_server(exe, data_dir, &[]).map_err(|err| LoadError::Target(err.to_string()))?;
    let key = wait_for_key(&data_dir.join("admin.key")).await?;
    let mut config = LoadConfig::saga3(orders, concurrency, false);
    config.until = Until::Placed;
    let target = remote::Target::new(&format!("http://{address}"), &key)?;
    let tracker = Arc::new(Tracker::default());
    let session = remote::Remote::start(target, None, &config, tracker.clone()).await?;
    let placed = place_all(&session, &config, &tracker, progress).await?;
    child.0.kill().map_err(|e| setup(&e))?;
    let _ = child.0.wait();
    drop(session);
    let acknowledged = placed.completed + placed.cancelled;

    let started = Instant::now();
    let engine = Engine::start(Config::new(data_dir)).await?;
    let start_ms = started.elapsed().as_secs_f64() * 1e3;
    let (orders, fulfillment_orders, shipments) = engine.open_sagas().await.map_err(|e| setup(&e))?;
    let open_sagas = orders + fulfillment_orders + shipments;
    let stores = [engine.ecommerce().store().clone(), engine.fulfillment().store().clone()];
    let (outbox_pending, stored_orders) = tokio::task::spawn_blocking(move || {
        let pending = stores.iter().map(|s| s.outbox().map(|v| v.len()).unwrap_or(0)).sum::<usize>();
        let orders =
            stores[0].snapshots(orderdock::ecommerce::order::snapshot::KIND).map(|v| v.len() as u64).unwrap_or(0);
        (pending, orders)
    })
    .await
    .map_err(|e| setup(&e))?;
    let _ = engine.settle(Duration::from_secs(120)).await;
    let resumed_ms = started.elapsed().as_secs_f64() * 1e3;
    let audit = engine.audit().await.map_err(|e| setup(&e))?;
    engine.shutdown().await;
    Ok(RecoveryReport {
        orders_acknowledged: acknowledged,
        open_sagas,
        outbox_pending,
        start_ms,
        resumed_ms,
        lost_orders: acknowledged.saturating_sub(stored_orders),
        stock_balanced: audit.stock_balanced(),
        money_balanced: audit.money_balanced(),
        rss_peak_bytes: super::rss_peak_bytes(),
    })
}

async fn wait_for_key(path: &PathBuf) -> Result<String, LoadError> {
    for _ in 0..100 {
        if let Ok(key) = std::fs::read_to_string(path) {
            if !key.trim().is_empty() {
                return Ok(key.trim().to_owned());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(LoadError::Target(format!("no admin key appeared at {}", path.display())))
}
