//! Test harness: an engine on a temp data dir with typed helpers.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use orderdock::ecommerce::catalog::Product;
use orderdock::ecommerce::order::{Order, OrderStatus, PlaceOrder};
use orderdock::ecommerce::payments::SimulatedGateway;
use orderdock::events::{Address, BinCode, BinId, CustomerId, Money, OrderId, Quantity, Sku, Timestamp, WarehouseId};
use orderdock::fulfillment::carriers::SimulatedCarrier;
use orderdock::fulfillment::warehouse::Warehouse;
use orderdock::{Adapters, Config, Engine};

pub(crate) type TestResult = anyhow::Result<()>;

/// Longest a test waits for the saga to move (generous: CI machines are slow).
pub(crate) const SETTLE: Duration = Duration::from_secs(30);

pub(crate) struct TestEngine {
    pub(crate) engine: Option<Engine>,
    pub(crate) gateway: Arc<SimulatedGateway>,
    pub(crate) config: Config,
    pub(crate) dir: tempfile::TempDir,
}

pub(crate) fn config(dir: &std::path::Path, autopilot: bool) -> Config {
    let mut config = Config::new(dir);
    config.fulfillment.autopilot = autopilot;
    config.fulfillment.carrier_step_delay = Duration::from_millis(1);
    config
}

impl TestEngine {
    pub(crate) async fn start(autopilot: bool) -> anyhow::Result<TestEngine> {
        let dir = tempfile::tempdir()?;
        let config = config(dir.path(), autopilot);
        Self::start_in(dir, config, Arc::new(SimulatedGateway::new())).await
    }

    pub(crate) async fn start_in(
        dir: tempfile::TempDir,
        config: Config,
        gateway: Arc<SimulatedGateway>,
    ) -> anyhow::Result<TestEngine> {
        let adapters =
            Adapters { gateway: gateway.clone(), carrier: Arc::new(SimulatedCarrier), ..Adapters::default() };
        let engine = Engine::start_with(config.clone(), adapters).await?;
        Ok(TestEngine { engine: Some(engine), gateway, config, dir })
    }

    pub(crate) fn engine(&self) -> &Engine {
        self.engine.as_ref().expect("engine running")
    }

    /// Drops the engine as a crash would, then starts a new one on the same store and gateway.
    pub(crate) async fn crash_and_restart(mut self) -> anyhow::Result<TestEngine> {
        if let Some(engine) = self.engine.take() {
            engine.abandon().await;
        }
        let TestEngine { gateway, config, dir, .. } = self;
        Self::start_in(dir, config, gateway).await
    }

    pub(crate) async fn product(&self, sku: &str, cents: i64) -> TestResult {
        let product = Product::new(Sku::parse(sku)?, sku, "", Money::new(cents, "EUR".parse()?)?)?;
        self.engine().ecommerce().catalog().upsert(product).await?;
        Ok(())
    }

    pub(crate) async fn warehouse(&self, id: &str, priority: u32, bins: &[&str]) -> TestResult {
        let bins: BTreeSet<BinCode> = bins.iter().map(|b| BinCode::parse(b)).collect::<Result<_, _>>()?;
        let warehouse = Warehouse::new(WarehouseId::parse(id)?, id, priority, bins)?;
        self.engine().fulfillment().create_warehouse(warehouse).await?;
        Ok(())
    }

    pub(crate) async fn receive(&self, bin: &str, sku: &str, units: u32) -> TestResult {
        let bin: BinId = bin.parse()?;
        self.engine().fulfillment().bins().receive(&bin, &Sku::parse(sku)?, units).await?;
        Ok(())
    }

    pub(crate) async fn place(&self, lines: &[(&str, u32)], token: &str) -> anyhow::Result<Order> {
        let lines = lines
            .iter()
            .map(|(sku, n)| Ok((Sku::parse(sku)?, Quantity::new(*n)?)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let request = PlaceOrder {
            id: OrderId::generate(Timestamp::from_millis(1_700_000_000_000)),
            customer_id: CustomerId::from_raw(1),
            lines,
            ship_to: Address::new("Ada Lovelace", "1 Main St", "London", "N1", "GB")?,
            payment_token: token.to_owned(),
        };
        Ok(self.engine().ecommerce().orders().place(request).await?)
    }

    pub(crate) async fn order(&self, id: OrderId) -> anyhow::Result<Order> {
        self.engine().ecommerce().orders().get(id).await?.ok_or_else(|| anyhow::anyhow!("no order {id}"))
    }

    /// Waits until order `id` satisfies `done` (and its saga is finished).
    pub(crate) async fn wait_for(&self, id: OrderId, done: impl Fn(&Order) -> bool) -> anyhow::Result<Order> {
        let deadline = tokio::time::Instant::now() + SETTLE;
        loop {
            let order = self.order(id).await.ok();
            if let Some(order) = order.as_ref().filter(|o| done(o) && o.is_finished()) {
                return Ok(order.clone());
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "order {id} did not get there; last seen {order:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits until fulfillment order `id` reaches `status`.
    pub(crate) async fn wait_fulfillment(
        &self,
        id: orderdock::events::FulfillmentOrderId,
        status: orderdock::fulfillment::fulfillment_order::FulfillmentStatus,
    ) -> TestResult {
        let reached = wait_until(SETTLE, || async {
            self.engine().fulfillment().orders().get(id).await.ok().flatten().is_some_and(|f| f.status() == status)
        })
        .await;
        anyhow::ensure!(reached, "fulfillment order {id} never reached {}", status.as_str());
        Ok(())
    }

    pub(crate) async fn wait_status(&self, id: OrderId, status: OrderStatus) -> anyhow::Result<Order> {
        self.wait_for(id, |o| o.status() == status).await
    }
}

/// Polls `condition` until it holds or `timeout` passes. No fixed sleeps in tests.
pub(crate) async fn wait_until<F, Fut>(timeout: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        if condition().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Polls `probe` until it yields a value or `timeout` passes.
pub(crate) async fn eventually<T, F, Fut>(timeout: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(value) = probe().await {
            return Some(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}
