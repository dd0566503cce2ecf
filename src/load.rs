//! The load generator behind `orderdock load`, embedded: it starts its own
//! engine on a temporary store (durable, as in production), stocks it,
//! places orders with a fixed number in flight, and measures intake latency
//! (placement call) and saga latency (placement → the chosen milestone),
//! observed through [`crate::Engine::watch`]. At the end it checks that stock
//! and money balance.
//!
//! The `saga-3` workload: 100 SKUs with 1,000,000 units each in one
//! warehouse; orders of one line, quantity 1, price 10.00, SKUs round-robin;
//! done when the order's shipment is created. `saga-3-lowstock` sizes stock
//! so that about 30 % of the orders are rejected and compensate.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::sync::oneshot;

use crate::ecommerce::catalog::Product;
use crate::ecommerce::order::{OrderStatus, PlaceOrder};
use crate::ecommerce::payments::SimulatedGateway;
use crate::events::{Address, BinCode, BinId, Currency, CustomerId, Money, OrderId, Quantity, Sku, WarehouseId};
use crate::fulfillment::carriers::SimulatedCarrier;
use crate::fulfillment::warehouse::Warehouse;
use crate::{Adapters, Config, Engine};

/// How long one order may take before the run stops waiting for it.
pub const ORDER_TIMEOUT: Duration = Duration::from_secs(60);

/// When an order counts as done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Until {
    /// The placement call returned (payment authorized, order durable).
    Placed,
    /// Fulfillment reserved the stock.
    Reserved,
    /// The payment was captured.
    Paid,
    /// The order's shipment was created (packed): the saga-3 milestone.
    Packed,
    /// A shipment left the warehouse.
    Shipped,
    /// Every shipment was delivered.
    Delivered,
}

impl Until {
    /// Parses `placed|reserved|paid|packed|shipped|delivered`.
    ///
    /// # Errors
    /// The text given.
    pub fn parse(text: &str) -> Result<Until, String> {
        Ok(match text {
            "placed" => Until::Placed,
            "reserved" => Until::Reserved,
            "paid" => Until::Paid,
            "packed" => Until::Packed,
            "shipped" => Until::Shipped,
            "delivered" => Until::Delivered,
            other => {
                return Err(format!(
                    "unknown milestone {other:?}: placed, reserved, paid, packed, shipped or delivered"
                ))
            }
        })
    }

    /// The saga step that marks it, and the context that takes it.
    fn step(self) -> (&'static str, crate::events::ContextName) {
        use crate::events::ContextName::{Ecommerce, Fulfillment};
        match self {
            Until::Placed => ("order_placed", Ecommerce),
            Until::Reserved => ("stock_reserved", Fulfillment),
            Until::Paid => ("payment_captured", Ecommerce),
            Until::Packed => ("packed", Fulfillment),
            Until::Shipped => ("shipment_dispatched", Fulfillment),
            Until::Delivered => ("shipment_delivered", Ecommerce),
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Orders to place.
    pub orders: u64,
    /// Orders in flight at once.
    pub concurrency: usize,
    /// Distinct SKUs (round-robin).
    pub skus: usize,
    /// Units of each SKU.
    pub stock: u32,
    /// Warehouses; each SKU's stock is spread over them.
    pub warehouses: usize,
    /// When an order is done.
    pub until: Until,
    /// Stop placing new orders after this long.
    pub duration: Option<Duration>,
    /// Seed (recorded; the workload is deterministic round-robin).
    pub seed: u64,
    /// The data directory (a temporary one when `None`).
    pub data_dir: Option<std::path::PathBuf>,
}

impl LoadConfig {
    /// The `saga-3` workload (`lowstock`: ~30 % rejected) at `concurrency`.
    pub fn saga3(orders: u64, concurrency: usize, lowstock: bool) -> LoadConfig {
        let skus = 100;
        let stock =
            if lowstock { u32::try_from(orders * 7 / 10 / skus as u64).unwrap_or(u32::MAX).max(1) } else { 1_000_000 };
        LoadConfig {
            orders,
            concurrency,
            skus,
            stock,
            warehouses: 1,
            until: Until::Packed,
            duration: None,
            seed: 0,
            data_dir: None,
        }
    }
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Worst.
    pub max_ms: f64,
}

impl Latency {
    fn of(histogram: &Histogram<u64>) -> Latency {
        let ms = |micros: u64| micros as f64 / 1000.0;
        Latency {
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p90_ms: ms(histogram.value_at_quantile(0.90)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            max_ms: ms(histogram.max()),
        }
    }
}

/// What a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// Orders placed.
    pub orders: u64,
    /// Orders that reached the milestone.
    pub completed: u64,
    /// Orders cancelled (out of stock, declined) instead.
    pub cancelled: u64,
    /// Orders that did neither within [`ORDER_TIMEOUT`].
    pub timed_out: u64,
    /// Orders in flight.
    pub concurrency: usize,
    /// The milestone.
    pub until: Until,
    /// Finished orders (completed + cancelled) per second of the run.
    pub orders_per_sec: f64,
    /// Saga latency: placement → milestone (or cancellation). Also flattened below.
    pub saga: Latency,
    /// Intake latency: the placement call.
    pub intake: Latency,
    /// Saga median, ms.
    pub p50_ms: f64,
    /// Saga 99th percentile, ms.
    pub p99_ms: f64,
    /// Saga worst, ms.
    pub max_ms: f64,
    /// Wall time of the run, seconds.
    pub elapsed_sec: f64,
    /// Peak resident memory of the process, bytes (0 where unknown).
    pub rss_peak_bytes: u64,
    /// Durable group commits across both stores during the run.
    pub commits: u64,
    /// Stock balances per SKU: received = on hand + shipped + written off, held ≤ on hand.
    pub stock_balanced: bool,
    /// No authorization captured twice, above its amount, or refunded above its capture.
    pub money_balanced: bool,
    /// Units sold beyond stock (must be 0).
    pub oversold_units: u64,
}

/// Peak resident set size of this process, from `/proc/self/status` (0 elsewhere).
pub fn rss_peak_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Why a run failed to start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The engine did not start.
    #[error(transparent)]
    Start(#[from] crate::StartError),
    /// Setting up the catalog or stock failed.
    #[error("setup failed: {0}")]
    Setup(String),
}

fn sku_name(n: usize) -> Result<Sku, LoadError> {
    Sku::parse(&format!("SKU-{n:04}")).map_err(|err| LoadError::Setup(err.to_string()))
}

async fn stock_engine(engine: &Engine, config: &LoadConfig) -> Result<(), LoadError> {
    let setup = |err: &dyn std::fmt::Display| LoadError::Setup(err.to_string());
    let price = Money::new(1000, Currency::EUR).map_err(|e| setup(&e))?;
    for n in 0..config.skus {
        let product = Product::new(sku_name(n)?, &format!("Product {n}"), "", price).map_err(|e| setup(&e))?;
        engine.ecommerce().catalog().upsert(product).await.map_err(|e| setup(&e))?;
    }
    let warehouses = config.warehouses.max(1);
    let per_warehouse = config.stock / u32::try_from(warehouses).unwrap_or(1);
    for w in 0..warehouses {
        let id = WarehouseId::parse(&format!("wh-{w}")).map_err(|e| setup(&e))?;
        let bins: BTreeSet<BinCode> = (0..config.skus)
            .map(|n| BinCode::parse(&format!("B-{n:04}")))
            .collect::<Result<_, _>>()
            .map_err(|e| setup(&e))?;
        let warehouse = Warehouse::new(id.clone(), &format!("Warehouse {w}"), u32::try_from(w).unwrap_or(0), bins)
            .map_err(|e| setup(&e))?;
        engine.fulfillment().create_warehouse(warehouse).await.map_err(|e| setup(&e))?;
        let units = if w + 1 == warehouses {
            config.stock - per_warehouse * u32::try_from(warehouses - 1).unwrap_or(0)
        } else {
            per_warehouse
        };
        if units == 0 {
            continue;
        }
        for n in 0..config.skus {
            let bin = BinId::new(id.clone(), BinCode::parse(&format!("B-{n:04}")).map_err(|e| setup(&e))?);
            engine.fulfillment().bins().receive(&bin, &sku_name(n)?, units).await.map_err(|e| setup(&e))?;
        }
    }
    Ok(())
}

type Waiters = Arc<Mutex<HashMap<OrderId, oneshot::Sender<bool>>>>;

/// Runs the load. `progress` is called with the number of finished orders as they finish.
///
/// # Errors
/// [`LoadError`] when the engine or the setup fails.
pub async fn run(config: LoadConfig, progress: impl Fn(u64) + Send + Sync + 'static) -> Result<LoadReport, LoadError> {
    let temp = match &config.data_dir {
        Some(_) => None,
        None => Some(tempfile_dir()?),
    };
    let dir = config.data_dir.clone().or_else(|| temp.as_ref().map(|t| t.0.clone())).unwrap_or_default();
    let mut engine_config = Config::new(&dir);
    engine_config.fulfillment.autopilot = true;
    engine_config.fulfillment.carrier_step_delay = Duration::from_millis(1);
    let gateway = Arc::new(SimulatedGateway::new());
    let adapters = Adapters { gateway: gateway.clone(), carrier: Arc::new(SimulatedCarrier), ..Adapters::default() };
    let engine = Arc::new(Engine::start_with(engine_config, adapters).await?);
    stock_engine(&engine, &config).await?;
    let commits_before = commits(&engine);

    // The collector: resolves each waiting order when its milestone (or a cancellation) is committed.
    let waiters: Waiters = Arc::default();
    let (step, context) = config.until.step();
    let mut watch = engine.watch();
    let collector = {
        let waiters = waiters.clone();
        tokio::spawn(async move {
            loop {
                match watch.recv().await {
                    Ok(progress) => {
                        let done = progress.step.name == step && progress.step.context == context;
                        let cancelled = progress.step.context == crate::events::ContextName::Ecommerce
                            && matches!(
                                progress.step.name.as_str(),
                                "stock_rejected" | "payment_declined" | "capture_declined" | "reservation_expired"
                            );
                        if done || cancelled {
                            let waiter = waiters.lock().ok().and_then(|mut w| w.remove(&progress.order));
                            if let Some(waiter) = waiter {
                                let _ = waiter.send(done);
                            }
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "load collector lagged; those orders are settled by polling");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        })
    };

    let next = Arc::new(AtomicU64::new(0));
    let finished = Arc::new(AtomicU64::new(0));
    let progress = Arc::new(progress);
    let started = Instant::now();
    let deadline = config.duration.map(|d| started + d);
    let mut workers = Vec::new();
    for _ in 0..config.concurrency.max(1) {
        let (engine, waiters, next, finished, progress, config) =
            (engine.clone(), waiters.clone(), next.clone(), finished.clone(), progress.clone(), config.clone());
        workers.push(tokio::spawn(async move {
            let mut intake = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).ok();
            let mut saga = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).ok();
            let (mut completed, mut cancelled, mut timed_out) = (0u64, 0u64, 0u64);
            let ship_to = Address::new("Load Tester", "1 Bench St", "Benchville", "00000", "GB").ok();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= config.orders || deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                let (Ok(sku), Some(ship_to), Ok(quantity)) =
                    (sku_name((n % config.skus as u64) as usize), ship_to.clone(), Quantity::new(1))
                else {
                    break;
                };
                let id = OrderId::generate(engine.adapters().clock.now());
                let (done_tx, done_rx) = oneshot::channel();
                if config.until != Until::Placed {
                    if let Ok(mut w) = waiters.lock() {
                        w.insert(id, done_tx);
                    }
                }
                let placed_at = Instant::now();
                let request = PlaceOrder {
                    id,
                    customer_id: CustomerId::from_raw(1),
                    lines: vec![(sku, quantity)],
                    ship_to,
                    payment_token: "tok_visa".to_owned(),
                };
                let placed = engine.ecommerce().orders().place(request).await;
                let intake_micros = placed_at.elapsed().as_micros() as u64;
                if let Some(h) = intake.as_mut() {
                    let _ = h.record(intake_micros.max(1));
                }
                let outcome = match placed {
                    Err(err) => {
                        tracing::warn!(cause = %err, "placement failed");
                        Some(false)
                    }
                    Ok(order) if matches!(order.status(), OrderStatus::Cancelled { .. }) => Some(false),
                    Ok(_) if config.until == Until::Placed => Some(true),
                    Ok(_) => match tokio::time::timeout(ORDER_TIMEOUT, done_rx).await {
                        Ok(Ok(done)) => Some(done),
                        _ => None,
                    },
                };
                match outcome {
                    Some(true) => completed += 1,
                    Some(false) => cancelled += 1,
                    None => timed_out += 1,
                }
                if let Some(h) = saga.as_mut() {
                    let _ = h.record((placed_at.elapsed().as_micros() as u64).max(1));
                }
                progress(finished.fetch_add(1, Ordering::Relaxed) + 1);
            }
            (intake, saga, completed, cancelled, timed_out)
        }));
    }
    let mut intake =
        Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).map_err(|e| LoadError::Setup(e.to_string()))?;
    let mut saga = intake.clone();
    let (mut completed, mut cancelled, mut timed_out) = (0, 0, 0);
    for worker in workers {
        if let Ok((i, s, c, x, t)) = worker.await {
            if let Some(i) = i {
                let _ = intake.add(i);
            }
            if let Some(s) = s {
                let _ = saga.add(s);
            }
            completed += c;
            cancelled += x;
            timed_out += t;
        }
    }
    let elapsed = started.elapsed();
    let commits = commits(&engine).saturating_sub(commits_before);
    collector.abort();
    let _ = engine.settle(Duration::from_secs(30)).await;
    let (stock_balanced, oversold_units) = stock_check(&engine).await;
    let money_balanced = gateway.violations().is_empty();
    engine.shutdown().await;
    drop(temp);
    let saga_latency = Latency::of(&saga);
    Ok(LoadReport {
        orders: completed + cancelled + timed_out,
        completed,
        cancelled,
        timed_out,
        concurrency: config.concurrency,
        until: config.until,
        orders_per_sec: (completed + cancelled) as f64 / elapsed.as_secs_f64().max(1e-9),
        p50_ms: saga_latency.p50_ms,
        p99_ms: saga_latency.p99_ms,
        max_ms: saga_latency.max_ms,
        saga: saga_latency,
        intake: Latency::of(&intake),
        elapsed_sec: elapsed.as_secs_f64(),
        rss_peak_bytes: rss_peak_bytes(),
        commits,
        stock_balanced,
        money_balanced,
        oversold_units,
    })
}

fn commits(engine: &Engine) -> u64 {
    [engine.ecommerce().store(), engine.fulfillment().store()]
        .iter()
        .filter_map(|s| s.stats().ok())
        .map(|s| s.commits)
        .sum()
}

async fn stock_check(engine: &Engine) -> (bool, u64) {
    let Ok(bins) = engine.fulfillment().all_bins().await else { return (false, 0) };
    let mut balanced = true;
    let mut oversold = 0u64;
    for bin in &bins {
        balanced &= bin.check_invariants().is_ok();
        for level in bin.levels().values() {
            let sold = level.shipped + u64::from(level.picked) + u64::from(level.reserved);
            let had = level.received.saturating_sub(u64::try_from(level.adjusted_out.max(0)).unwrap_or(0));
            oversold += sold.saturating_sub(had);
        }
    }
    (balanced && oversold == 0, oversold)
}

/// A temporary directory removed on drop.
#[derive(Debug)]
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempfile_dir() -> Result<TempDir, LoadError> {
    let dir = std::env::temp_dir().join(format!(
        "orderdock-load-{}-{}",
        std::process::id(),
        crate::events::EventId::generate(crate::events::Timestamp::from_millis(0)).as_raw() & 0xFFFF_FFFF
    ));
    std::fs::create_dir_all(&dir).map_err(|err| LoadError::Setup(err.to_string()))?;
    Ok(TempDir(dir))
}
