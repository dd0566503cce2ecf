//! The embedded side of a load run: its own engine on a temporary (or given)
//! data directory, durable as in production, the warehouse on autopilot (and
//! the carrier too when the run waits for shipments to leave).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use super::{sku_name, Checks, LoadConfig, LoadError, Placed, Placer, Session, Tracker, Until};
use orderdock::ecommerce::catalog::Product;
use orderdock::ecommerce::order::{OrderStatus, PlaceOrder};
use orderdock::events::{Address, BinCode, BinId, Currency, CustomerId, Money, OrderId, Quantity, Sku, WarehouseId};
use orderdock::fulfillment::warehouse::Warehouse;
use orderdock::{Config, Engine};

/// How long the end of a run waits for the outboxes to drain before checking the books.
pub(crate) const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

/// An engine started for the run.
#[derive(Debug)]
pub(crate) struct Embedded {
    /// The engine under load.
    pub(crate) engine: Arc<Engine>,
    skus: Arc<[Sku]>,
    collector: Option<tokio::task::JoinHandle<()>>,
    _temp: Option<TempDir>,
}

fn setup(err: impl std::fmt::Display) -> LoadError {
    LoadError::Setup(err.to_string())
}

impl Embedded {
    /// Starts an engine, stocks it as `config` says and feeds `tracker` with its committed steps.
    ///
    /// # Errors
    /// [`LoadError`] when the engine does not start or the setup fails.
    pub(crate) async fn start(config: &LoadConfig, tracker: Arc<Tracker>) -> Result<Embedded, LoadError> {
        let temp = match &config.data_dir {
            Some(_) => None,
            None => Some(TempDir::new()?),
        };
        let dir = config.data_dir.clone().or_else(|| temp.as_ref().map(|t| t.0.clone())).unwrap_or_default();
        let mut engine_config = Config::new(&dir);
        engine_config.fulfillment.autopilot = config.autopilot;
        // The carrier only works when the run waits for it: a saga-3 order is
        // done at shipment created, and a carrier moving earlier shipments on
        // would be work the workload does not ask for.
        engine_config.fulfillment.carrier_autopilot = config.until.needs_carrier();
        engine_config.fulfillment.carrier_step_delay = Duration::from_millis(1);
        if let Some(idle_after) = config.idle_after {
            engine_config.fulfillment.idle_after = idle_after;
        }
        let engine = Arc::new(Engine::start(engine_config).await?);
        let skus: Arc<[Sku]> =
            (0..config.skus.max(1)).map(|n| Sku::parse(&sku_name(n))).collect::<Result<_, _>>().map_err(setup)?;
        stock(&engine, &skus, config).await?;
        let collector = (config.until != Until::Placed).then(|| {
            let mut watch = engine.watch();
            let until = config.until;
            tokio::spawn(async move {
                loop {
                    match watch.recv().await {
                        Ok(progress) => tracker.step(until, progress.order, progress.step.context, &progress.step.name),
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                            tracing::warn!(missed, "load collector lagged; those orders will time out");
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    }
                }
            })
        });
        Ok(Embedded { engine, skus, collector, _temp: temp })
    }
}

async fn stock(engine: &Engine, skus: &[Sku], config: &LoadConfig) -> Result<(), LoadError> {
    let price = Money::new(1000, Currency::EUR).map_err(setup)?;
    for (n, sku) in skus.iter().enumerate() {
        let product = Product::new(sku.clone(), &format!("Product {n}"), "", price).map_err(setup)?;
        engine.ecommerce().catalog().upsert(product).await.map_err(setup)?;
    }
    let warehouses = config.warehouses.max(1);
    let bins: Vec<BinCode> =
        (0..skus.len()).map(|n| BinCode::parse(&format!("B-{n:04}"))).collect::<Result<_, _>>().map_err(setup)?;
    for (w, units) in split(config.stock, warehouses).into_iter().enumerate() {
        let id = WarehouseId::parse(&format!("wh-{w}")).map_err(setup)?;
        let codes: BTreeSet<BinCode> = bins.iter().cloned().collect();
        let priority = u32::try_from(w).unwrap_or(u32::MAX);
        let warehouse = Warehouse::new(id.clone(), &format!("Warehouse {w}"), priority, codes).map_err(setup)?;
        engine.fulfillment().create_warehouse(warehouse).await.map_err(setup)?;
        if units == 0 {
            continue;
        }
        for (sku, code) in skus.iter().zip(&bins) {
            let bin = BinId::new(id.clone(), code.clone());
            engine.fulfillment().bins().receive(&bin, sku, units).await.map_err(setup)?;
        }
    }
    Ok(())
}

/// `stock` units spread over `warehouses`, the remainder in the last one.
pub(crate) fn split(stock: u32, warehouses: usize) -> Vec<u32> {
    let warehouses = u32::try_from(warehouses.max(1)).unwrap_or(u32::MAX);
    let each = stock / warehouses;
    (0..warehouses).map(|w| if w + 1 == warehouses { stock - each * (warehouses - 1) } else { each }).collect()
}

/// Places orders through the engine's typed handle.
#[derive(Debug)]
pub(crate) struct EmbeddedPlacer {
    engine: Arc<Engine>,
    skus: Arc<[Sku]>,
    ship_to: Address,
}

impl Placer for EmbeddedPlacer {
    async fn place(&mut self, n: u64) -> Placed {
        let sku = self.skus[(n % self.skus.len() as u64) as usize].clone();
        let Ok(quantity) = Quantity::new(1) else { return Placed::Failed("quantity".to_owned()) };
        let id = OrderId::generate(self.engine.adapters().clock.now());
        let request = PlaceOrder {
            id,
            customer_id: CustomerId::from_raw(1),
            lines: vec![(sku, quantity)],
            ship_to: self.ship_to.clone(),
            payment_token: "tok_visa".to_owned(),
        };
        match self.engine.ecommerce().orders().place(request).await {
            Err(err) => Placed::Failed(err.to_string()),
            Ok(order) if matches!(order.status(), OrderStatus::Cancelled { .. }) => Placed::Cancelled,
            Ok(_) => Placed::Accepted(id),
        }
    }
}

impl Session for Embedded {
    type Placer = EmbeddedPlacer;

    async fn placer(&self) -> Result<EmbeddedPlacer, LoadError> {
        let ship_to = Address::new("Load Tester", "1 Bench St", "Benchville", "00000", "GB").map_err(setup)?;
        Ok(EmbeddedPlacer { engine: self.engine.clone(), skus: self.skus.clone(), ship_to })
    }

    fn commits(&self) -> Option<u64> {
        let stores = [self.engine.ecommerce().store(), self.engine.fulfillment().store()];
        Some(stores.iter().filter_map(|s| s.stats().ok()).map(|s| s.commits).sum())
    }

    async fn finish(mut self) -> Checks {
        if let Some(collector) = self.collector.take() {
            collector.abort();
        }
        let _ = self.engine.settle(SETTLE_TIMEOUT).await;
        let checks = match self.engine.audit().await {
            Ok(audit) => Checks {
                stock_balanced: audit.stock_balanced(),
                money_balanced: audit.money_balanced(),
                oversold_units: audit.oversold_units,
                rss_peak_bytes: super::rss_peak_bytes(),
            },
            Err(err) => {
                tracing::warn!(cause = %err, "the audit could not read the bins");
                Checks { rss_peak_bytes: super::rss_peak_bytes(), ..Checks::default() }
            }
        };
        self.engine.shutdown().await;
        checks
    }
}

/// A temporary directory removed on drop.
#[derive(Debug)]
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new() -> Result<TempDir, LoadError> {
        let suffix = orderdock::events::ids::random_secret().map_err(setup)? & 0xFFFF_FFFF;
        let dir = std::env::temp_dir().join(format!("orderdock-load-{}-{suffix:08x}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(setup)?;
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
