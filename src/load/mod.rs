//! The load generator behind `orderdock load`. Embedded ([`embedded`]), it
//! starts its own engine on a temporary store (durable, as in production);
//! against a server ([`remote`]), it drives the HTTP API. Either way it
//! stocks the catalog, places orders with a fixed number in flight (or at a
//! fixed rate), and measures intake latency (the placement call) and saga
//! latency (placement → the chosen milestone), observed through the engine's
//! stream of committed saga steps. At the end it checks that stock and money
//! balance.
//!
//! The `saga-3` workload: 100 SKUs with 1,000,000 units each in one
//! warehouse; orders of one line, quantity 1, price 10.00, SKUs round-robin;
//! done when the order's shipment is created. `saga-3-lowstock` sizes stock
//! so that about 30 % of the orders are rejected and compensate.

pub(crate) mod bench;
pub(crate) mod embedded;
mod pace;
pub(crate) mod remote;
mod worker;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::sync::oneshot;

use orderdock::events::{ContextName, OrderId};
use pace::pace;
use worker::{work, Shared};

/// How long one order may take before the run stops waiting for it.
pub(crate) const ORDER_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a run goes on while orders are in flight and none of them
/// finishes (reaches the milestone, is cancelled, times out or fails) before
/// it stops: it places no more orders and counts those in flight as timed
/// out ([`LoadReport::stalled`]). A server whose warehouse waits for people
/// (`serve` without `--autopilot`) never packs an order, and a run waiting
/// for `packed` would otherwise take [`ORDER_TIMEOUT`] for every wave of
/// `--concurrency` orders.
pub(crate) const STALL_AFTER: Duration = Duration::from_secs(30);

/// When an order counts as done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Until {
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
    /// Whether an order reaches this milestone only with the carrier's help.
    pub(crate) fn needs_carrier(self) -> bool {
        matches!(self, Until::Shipped | Until::Delivered)
    }

    /// Parses `placed|reserved|paid|packed|shipped|delivered`.
    ///
    /// # Errors
    /// The text given.
    pub(crate) fn parse(text: &str) -> Result<Until, String> {
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

    /// Its name as `--until` takes it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Until::Placed => "placed",
            Until::Reserved => "reserved",
            Until::Paid => "paid",
            Until::Packed => "packed",
            Until::Shipped => "shipped",
            Until::Delivered => "delivered",
        }
    }

    /// The step the e-commerce context records for this milestone (what a
    /// split deployment's e-commerce service streams).
    pub(crate) fn ecommerce_step(self) -> &'static str {
        match self {
            Until::Placed => "order_placed",
            Until::Reserved => "stock_confirmed",
            Until::Paid => "payment_captured",
            Until::Packed => "packed",
            Until::Shipped => "shipment_dispatched",
            Until::Delivered => "shipment_delivered",
        }
    }

    /// The saga step that marks it, and the context that takes it.
    pub(crate) fn step(self) -> (&'static str, orderdock::events::ContextName) {
        use orderdock::events::ContextName::{Ecommerce, Fulfillment};
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
pub(crate) struct LoadConfig {
    /// Orders to place.
    pub(crate) orders: u64,
    /// Orders in flight at once.
    pub(crate) concurrency: usize,
    /// Distinct SKUs (round-robin).
    pub(crate) skus: usize,
    /// Units of each SKU.
    pub(crate) stock: u32,
    /// Warehouses; each SKU's stock is spread over them.
    pub(crate) warehouses: usize,
    /// When an order is done.
    pub(crate) until: Until,
    /// Stop placing new orders after this long.
    pub(crate) duration: Option<Duration>,
    /// Seed (recorded; the workload is deterministic round-robin).
    pub(crate) seed: u64,
    /// The data directory of an embedded run (a temporary one when `None`).
    pub(crate) data_dir: Option<std::path::PathBuf>,
    /// A running server to drive instead of an embedded engine.
    pub(crate) target: Option<remote::Target>,
    /// In a split deployment: the fulfillment service (stock is set up and
    /// audited there; `target` is then the e-commerce service).
    pub(crate) fulfillment_target: Option<remote::Target>,
    /// Place orders at this many per second (open loop) instead of as fast
    /// as `concurrency` allows; latency counts from each order's due time.
    pub(crate) rate: Option<f64>,
    /// Embedded: simulated warehouse and carrier advance work by themselves (default on).
    pub(crate) autopilot: bool,
    /// Embedded: passivate idle actors after this long (the engine's default when `None`).
    pub(crate) idle_after: Option<Duration>,
    /// Stop when no order in flight finishes for this long ([`STALL_AFTER`]).
    pub(crate) stall_after: Duration,
}

impl LoadConfig {
    /// The `saga-3` workload (`lowstock`: ~30 % rejected) at `concurrency`.
    pub(crate) fn saga3(orders: u64, concurrency: usize, lowstock: bool) -> LoadConfig {
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
            target: None,
            fulfillment_target: None,
            rate: None,
            autopilot: true,
            idle_after: None,
            stall_after: STALL_AFTER,
        }
    }
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Latency {
    /// Median.
    pub(crate) p50_ms: f64,
    /// 90th percentile.
    pub(crate) p90_ms: f64,
    /// 99th percentile.
    pub(crate) p99_ms: f64,
    /// Worst.
    pub(crate) max_ms: f64,
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
pub(crate) struct LoadReport {
    /// Orders placed.
    pub(crate) orders: u64,
    /// Orders that reached the milestone.
    pub(crate) completed: u64,
    /// Orders cancelled (out of stock, declined) instead.
    pub(crate) cancelled: u64,
    /// Orders that did neither within [`ORDER_TIMEOUT`], or were in flight when the run stalled.
    pub(crate) timed_out: u64,
    /// Placements that failed (transport errors, 5xx after retries).
    pub(crate) failed: u64,
    /// The run stopped early: no order in flight finished for [`LoadConfig::stall_after`].
    pub(crate) stalled: bool,
    /// `embedded` or the server's URL.
    pub(crate) target: String,
    /// Orders in flight.
    pub(crate) concurrency: usize,
    /// The milestone.
    pub(crate) until: Until,
    /// Finished orders (completed + cancelled) per second of the run.
    pub(crate) orders_per_sec: f64,
    /// Saga latency: placement → milestone (or cancellation). Also flattened below.
    pub(crate) saga: Latency,
    /// Intake latency: the placement call.
    pub(crate) intake: Latency,
    /// Saga median, ms.
    pub(crate) p50_ms: f64,
    /// Saga 99th percentile, ms.
    pub(crate) p99_ms: f64,
    /// Saga worst, ms.
    pub(crate) max_ms: f64,
    /// Wall time of the run, seconds.
    pub(crate) elapsed_sec: f64,
    /// Peak resident memory of the engine's process, bytes (0 where unknown).
    pub(crate) rss_peak_bytes: u64,
    /// Durable group commits across both stores during the run (embedded only).
    pub(crate) commits: Option<u64>,
    /// The placement rate asked for, per second (open loop), if any.
    pub(crate) rate: Option<f64>,
    /// Stock balances per SKU: received = on hand + shipped + written off, held ≤ on hand.
    pub(crate) stock_balanced: bool,
    /// No authorization captured twice, above its amount, or refunded above its capture.
    pub(crate) money_balanced: bool,
    /// Units sold beyond stock (must be 0).
    pub(crate) oversold_units: u64,
}

pub(crate) use orderdock::process::{rss_now_bytes, rss_peak_bytes};

/// Why a run failed to start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum LoadError {
    /// The engine did not start.
    #[error(transparent)]
    Start(#[from] orderdock::StartError),
    /// Setting up the catalog or stock failed.
    #[error("setup failed: {0}")]
    Setup(String),
    /// The server could not be reached or refused the load tool.
    #[error("{0}")]
    Target(String),
}

/// The result of one placement.
#[derive(Debug)]
pub(crate) enum Placed {
    /// Accepted: the saga runs.
    Accepted(OrderId),
    /// Accepted and already cancelled (e.g. the payment was declined).
    Cancelled,
    /// Not accepted.
    Failed(String),
}

/// Places orders: one per worker (an HTTP connection, or an engine handle).
pub(crate) trait Placer: Send + 'static {
    /// Places order number `n` (its SKU is `n` round-robin).
    fn place(&mut self, n: u64) -> impl Future<Output = Placed> + Send;
}

/// Balances read at the end of a run.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Checks {
    /// Stock conserved, nothing oversold.
    pub(crate) stock_balanced: bool,
    /// The payment ledger balances.
    pub(crate) money_balanced: bool,
    /// Units oversold.
    pub(crate) oversold_units: u64,
    /// Peak RSS of the engine's process.
    pub(crate) rss_peak_bytes: u64,
}

/// One side of a run: an embedded engine or a server.
pub(crate) trait Session: Send + Sync + Sized + 'static {
    /// Its placer.
    type Placer: Placer;
    /// A new placer for one worker.
    fn placer(&self) -> impl Future<Output = Result<Self::Placer, LoadError>> + Send;
    /// Durable commits so far, where known.
    fn commits(&self) -> Option<u64>;
    /// Waits for the engine to settle, checks the books and shuts down what the run started.
    fn finish(self) -> impl Future<Output = Checks> + Send;
}

/// Matches milestone steps to the workers waiting for them. A step may
/// arrive before its placement call returned: it is kept until claimed.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    inner: Mutex<TrackerInner>,
}

#[derive(Debug, Default)]
struct TrackerInner {
    waiting: HashMap<OrderId, oneshot::Sender<bool>>,
    early: HashMap<OrderId, bool>,
}

/// Steps by which the e-commerce side gives an order up.
pub(crate) const CANCELLING_STEPS: [&str; 4] =
    ["stock_rejected", "payment_declined", "capture_declined", "reservation_expired"];

impl Tracker {
    /// Notes a committed step of `order`; resolves its waiter when it is the
    /// milestone (`true`) or a cancellation (`false`).
    pub(crate) fn step(&self, until: Until, order: OrderId, context: ContextName, name: &str) {
        let (milestone, milestone_context) = until.step();
        let done = name == milestone && context == milestone_context;
        let cancelled = context == ContextName::Ecommerce && CANCELLING_STEPS.contains(&name);
        if !(done || cancelled) {
            return;
        }
        let Ok(mut inner) = self.inner.lock() else { return };
        match inner.waiting.remove(&order) {
            Some(waiter) => {
                let _ = waiter.send(done);
            }
            None => {
                inner.early.insert(order, done);
            }
        }
    }

    /// Waits for `order`'s outcome: `Some(done)`, or `None` after `timeout`
    /// or once the run has stalled.
    async fn wait(&self, order: OrderId, timeout: Duration, stall: &mut Stall) -> Option<bool> {
        let receiver = {
            let mut inner = self.inner.lock().ok()?;
            if let Some(done) = inner.early.remove(&order) {
                return Some(done);
            }
            let (sender, receiver) = oneshot::channel();
            inner.waiting.insert(order, sender);
            receiver
        };
        let outcome = tokio::select! {
            outcome = tokio::time::timeout(timeout, receiver) => outcome.ok().and_then(Result::ok),
            () = stall.stalled() => None,
        };
        if outcome.is_none() {
            if let Ok(mut inner) = self.inner.lock() {
                inner.waiting.remove(&order);
            }
        }
        outcome
    }
}

/// A latency histogram: 1 µs to 10 min, 3 significant digits.
fn histogram() -> Result<Histogram<u64>, LoadError> {
    Histogram::new_with_bounds(1, 600_000_000, 3).map_err(|err| LoadError::Setup(err.to_string()))
}

/// The latencies of every worker, in one pair of histograms (a pair per
/// worker would zero ~80 MB at concurrency 256, and the run would measure
/// its own page faults).
#[derive(Debug)]
struct Latencies {
    intake: Histogram<u64>,
    saga: Histogram<u64>,
}

#[derive(Debug, Default)]
struct WorkerResult {
    completed: u64,
    cancelled: u64,
    timed_out: u64,
    failed: u64,
}

/// Runs the load. `progress` is called with the number of finished orders as they finish.
///
/// # Errors
/// [`LoadError`] when the engine, the server or the setup fails.
pub(crate) async fn run(
    config: LoadConfig,
    progress: impl Fn(u64) + Send + Sync + 'static,
) -> Result<LoadReport, LoadError> {
    let tracker = Arc::new(Tracker::default());
    match config.target.clone() {
        None => {
            let session = embedded::Embedded::start(&config, tracker.clone()).await?;
            drive(session, config, tracker, "embedded".to_owned(), progress).await
        }
        Some(target) => {
            let name = target.url.clone();
            let session =
                remote::Remote::start(target, config.fulfillment_target.clone(), &config, tracker.clone()).await?;
            drive(session, config, tracker, name, progress).await
        }
    }
}

async fn drive<S: Session>(
    session: S,
    config: LoadConfig,
    tracker: Arc<Tracker>,
    target: String,
    progress: impl Fn(u64) + Send + Sync + 'static,
) -> Result<LoadReport, LoadError> {
    let commits_before = session.commits();
    let placed = place_all(&session, &config, &tracker, progress).await?;
    let commits = session.commits().zip(commits_before).map(|(after, before)| after.saturating_sub(before));
    let checks = session.finish().await;
    Ok(placed.report(&config, target, commits, checks))
}

/// What the workers of a run measured.
#[derive(Debug)]
pub(crate) struct Placements {
    intake: Histogram<u64>,
    saga: Histogram<u64>,
    /// Orders that reached the milestone.
    pub(crate) completed: u64,
    /// Orders cancelled instead.
    pub(crate) cancelled: u64,
    /// Orders that did neither in time.
    pub(crate) timed_out: u64,
    /// Placements that failed.
    pub(crate) failed: u64,
    /// No order in flight finished for [`LoadConfig::stall_after`]: the run stopped.
    pub(crate) stalled: bool,
    /// Wall time of the placements.
    pub(crate) elapsed: Duration,
}

impl Placements {
    fn report(&self, config: &LoadConfig, target: String, commits: Option<u64>, checks: Checks) -> LoadReport {
        let saga_latency = Latency::of(&self.saga);
        let (completed, cancelled) = (self.completed, self.cancelled);
        LoadReport {
            orders: completed + cancelled + self.timed_out + self.failed,
            completed,
            cancelled,
            timed_out: self.timed_out,
            failed: self.failed,
            stalled: self.stalled,
            target,
            concurrency: config.concurrency,
            until: config.until,
            orders_per_sec: (completed + cancelled) as f64 / self.elapsed.as_secs_f64().max(1e-9),
            p50_ms: saga_latency.p50_ms,
            p99_ms: saga_latency.p99_ms,
            max_ms: saga_latency.max_ms,
            saga: saga_latency,
            intake: Latency::of(&self.intake),
            elapsed_sec: self.elapsed.as_secs_f64(),
            rss_peak_bytes: checks.rss_peak_bytes,
            commits,
            rate: config.rate,
            stock_balanced: checks.stock_balanced,
            money_balanced: checks.money_balanced,
            oversold_units: checks.oversold_units,
        }
    }
}

/// Places `config.orders` orders through `session` with `config.concurrency`
/// workers and waits for each to reach the milestone (or be cancelled).
///
/// # Errors
/// [`LoadError`] when a worker's placer cannot be made.
pub(crate) async fn place_all<S: Session>(
    session: &S,
    config: &LoadConfig,
    tracker: &Arc<Tracker>,
    progress: impl Fn(u64) + Send + Sync + 'static,
) -> Result<Placements, LoadError> {
    let started = Instant::now();
    let (stall_signal, stall) = tokio::sync::watch::channel(false);
    let deadline = config.duration.map(|d| started + d);
    let paced = config
        .rate
        .filter(|rate| *rate > 0.0)
        .map(|rate| tokio::sync::Mutex::new(pace(rate, config.orders, started, deadline)));
    let shared = Arc::new(Shared {
        config: config.clone(),
        tracker: tracker.clone(),
        next: AtomicU64::new(0),
        flow: Arc::new(Flow::default()),
        progress: Box::new(progress),
        latencies: Mutex::new(Latencies { intake: histogram()?, saga: histogram()? }),
        paced,
        started,
        deadline,
    });
    let mut workers = Vec::new();
    for _ in 0..config.concurrency.max(1) {
        let placer = session.placer().await?;
        workers.push(tokio::spawn(work(placer, shared.clone(), Stall(stall.clone()))));
    }
    // The quiet spell a stall needs counts from here, once every worker runs.
    shared.flow.restart_quiet(started);
    let watch = tokio::spawn(watch_for_stall(shared.flow.clone(), started, config.stall_after, stall_signal));
    let (mut completed, mut cancelled, mut timed_out, mut failed) = (0, 0, 0, 0);
    for worker in workers {
        if let Ok(result) = worker.await {
            completed += result.completed;
            cancelled += result.cancelled;
            timed_out += result.timed_out;
            failed += result.failed;
        }
    }
    let elapsed = started.elapsed();
    watch.abort();
    let stalled = *stall.borrow();
    // Every worker has been awaited: the histograms are ours alone.
    let Latencies { intake, saga } = Arc::try_unwrap(shared)
        .map_err(|_| LoadError::Setup("a worker outlived the run".to_owned()))?
        .latencies
        .into_inner()
        .map_err(|_| LoadError::Setup("a worker panicked".to_owned()))?;
    Ok(Placements { intake, saga, completed, cancelled, timed_out, failed, stalled, elapsed })
}

/// How far a run has got, as the stall watch reads it.
#[derive(Debug, Default)]
struct Flow {
    /// Orders a worker has taken on.
    taken: AtomicU64,
    /// Orders done with, whatever their outcome.
    finished: AtomicU64,
    /// When the last of them finished, in milliseconds from the start.
    last_finished_ms: AtomicU64,
}

impl Flow {
    /// Counts an order out at this moment; returns how many are done with.
    fn finish(&self, started: Instant) -> u64 {
        self.restart_quiet(started);
        self.finished.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Starts a quiet spell now without counting an order out.
    fn restart_quiet(&self, started: Instant) {
        let now = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_finished_ms.fetch_max(now, Ordering::Relaxed);
    }

    /// Whether orders are in flight and none has finished for `after`, seen at `now`.
    fn stalled(&self, started: Instant, now: Instant, after: Duration) -> bool {
        let in_flight = self.taken.load(Ordering::Relaxed) > self.finished.load(Ordering::Relaxed);
        let last = started + Duration::from_millis(self.last_finished_ms.load(Ordering::Relaxed));
        in_flight && now.saturating_duration_since(last) >= after
    }
}

/// A worker's view of the run's stall signal ([`STALL_AFTER`]).
#[derive(Debug)]
struct Stall(tokio::sync::watch::Receiver<bool>);

impl Stall {
    /// Whether the run has stalled.
    fn is_stalled(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once the run stalls; never if it ends first.
    async fn stalled(&mut self) {
        if self.0.wait_for(|stalled| *stalled).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Signals a stall once orders are in flight and none has finished for
/// `after` ([`Flow::stalled`]); checks ten times per `after`, at most once a second.
async fn watch_for_stall(flow: Arc<Flow>, started: Instant, after: Duration, signal: tokio::sync::watch::Sender<bool>) {
    let tick = (after / 10).clamp(Duration::from_millis(10), Duration::from_secs(1));
    loop {
        tokio::time::sleep(tick).await;
        if flow.stalled(started, Instant::now(), after) {
            tracing::warn!(
                in_flight = flow.taken.load(Ordering::Relaxed) - flow.finished.load(Ordering::Relaxed),
                quiet_secs = after.as_secs_f64(),
                "no order in flight finished for a while: the run stops"
            );
            let _ = signal.send(true);
            return;
        }
    }
}

fn micros(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// The SKU of order `n` among `skus`: `SKU-0000`, `SKU-0001`, … round-robin.
pub(crate) fn sku_name(n: usize) -> String {
    format!("SKU-{n:04}")
}

#[cfg(test)]
mod tests;
