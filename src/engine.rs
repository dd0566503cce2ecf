//! The embedded engine: both contexts in one process, each on its own redb
//! store, joined by an in-process bus.
//!
//! [`Engine::start`] opens `<data_dir>/ecommerce.redb` and
//! `<data_dir>/fulfillment.redb`, starts each context's supervisors and
//! outbox dispatcher, and resumes every saga that was not finished: orders
//! owing a payment operation, fulfillment orders still reserving, waiting or
//! owing actions, shipments on their way, and every undelivered outbox event.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::actors::dispatcher::{self, DispatcherHandle};
use crate::actors::{Clock, SystemClock};
use crate::ecommerce::order::Order;
use crate::ecommerce::payments::{PaymentGateway, SimulatedGateway};
use crate::ecommerce::{Ecommerce, StartFailure};
use crate::events::bus::{BoxFuture, Bus, DeliveredEvent, Delivery, DeliveryError, EventSink, RecentDeliveries};
use crate::events::{EventEnvelope, FulfillmentOrderId, OrderId, SagaStep};
use crate::fulfillment::carriers::{Carrier, SimulatedCarrier};
use crate::fulfillment::shipment::Shipment;
use crate::fulfillment::{Fulfillment, FulfillmentConfig, FulfillmentError, FulfillmentOrder};
use crate::persistence::{Store, StoreError};

/// Longest the whole shutdown sequence may take.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How long the unified order view waits for the fulfillment side.
pub const VIEW_FULFILLMENT_TIMEOUT: Duration = Duration::from_secs(2);

/// The engine's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the stores live. Default `./data`.
    pub data_dir: PathBuf,
    /// Fulfillment behaviour (reservation TTL, autopilot, pacing, passivation).
    pub fulfillment: FulfillmentConfig,
    /// Longest a payment gateway call may take before it counts as
    /// unanswered (then retried under the same key). Default [`PAYMENT_TIMEOUT`].
    pub payment_timeout: Duration,
}

/// Default longest wait for the payment gateway's answer.
pub const PAYMENT_TIMEOUT: Duration = Duration::from_secs(10);

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            fulfillment: FulfillmentConfig::default(),
            payment_timeout: PAYMENT_TIMEOUT,
        }
    }
}

impl Config {
    /// A configuration on `data_dir` with defaults elsewhere.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self { data_dir: data_dir.into(), ..Self::default() }
    }

    /// Checks the values.
    ///
    /// # Errors
    /// [`StartError::Config`] naming the bad field.
    pub fn validate(&self) -> Result<(), StartError> {
        if self.fulfillment.reservation_ttl.is_zero() {
            return Err(StartError::Config("fulfillment.reservation_ttl must be positive".to_owned()));
        }
        if self.payment_timeout.is_zero() {
            return Err(StartError::Config("payment_timeout must be positive".to_owned()));
        }
        if self.fulfillment.idle_after < Duration::from_millis(100) {
            return Err(StartError::Config("fulfillment.idle_after must be at least 100 ms".to_owned()));
        }
        Ok(())
    }
}

/// The outside world the engine talks to (and the clock): real or simulated.
#[derive(Debug, Clone)]
pub struct Adapters {
    /// The payment gateway.
    pub gateway: Arc<dyn PaymentGateway>,
    /// The carrier.
    pub carrier: Arc<dyn Carrier>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
}

impl Default for Adapters {
    fn default() -> Self {
        Self {
            gateway: Arc::new(SimulatedGateway::new()),
            carrier: Arc::new(SimulatedCarrier),
            clock: Arc::new(SystemClock),
        }
    }
}

/// The outcome of [`Engine::audit`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Audit {
    /// Bins read.
    pub bins: usize,
    /// Units held, picked or shipped beyond what was received (must be 0).
    pub oversold_units: u64,
    /// Broken bin invariants and oversold SKUs, one line each.
    pub stock_violations: Vec<String>,
    /// The gateway's ledger breaks; `None` when the gateway keeps no ledger.
    pub payment_violations: Option<Vec<String>>,
}

impl Audit {
    /// Whether stock balances (no broken invariant, nothing oversold).
    pub fn stock_balanced(&self) -> bool {
        self.stock_violations.is_empty() && self.oversold_units == 0
    }

    /// Whether money balances (no ledger break; `true` when the gateway keeps no ledger).
    pub fn money_balanced(&self) -> bool {
        self.payment_violations.as_ref().is_none_or(Vec::is_empty)
    }
}

/// The contexts one process runs — both for the embedded engine, one for a
/// `--role` — and what is done the same way over whichever are present.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Contexts<'a> {
    pub(crate) ecommerce: Option<&'a Ecommerce>,
    pub(crate) fulfillment: Option<&'a Fulfillment>,
}

impl Contexts<'_> {
    fn stores(&self) -> Vec<Store> {
        [self.ecommerce.map(|c| c.store().clone()), self.fulfillment.map(|c| c.store().clone())]
            .into_iter()
            .flatten()
            .collect()
    }

    fn dispatchers(&self) -> Vec<&DispatcherHandle> {
        [self.ecommerce.map(Ecommerce::dispatcher), self.fulfillment.map(Fulfillment::dispatcher)]
            .into_iter()
            .flatten()
            .collect()
    }

    /// The saga steps of order `id` in these contexts' stores, in the order they were committed.
    pub(crate) async fn timeline(&self, id: OrderId) -> Vec<SagaStep> {
        let stores = self.stores();
        let rows = tokio::task::spawn_blocking(move || {
            let mut rows = Vec::new();
            for store in &stores {
                match store.steps(id.as_raw()) {
                    Ok(found) => rows.extend(found),
                    Err(err) => tracing::warn!(cause = %err, "cannot read saga steps"),
                }
            }
            rows
        })
        .await
        .unwrap_or_default();
        crate::actors::saga_log::decode_steps(rows)
    }

    /// Events written to the outboxes and not yet acknowledged: (e-commerce,
    /// fulfillment), 0 for a context not run here.
    pub(crate) fn outbox_lag(&self) -> (usize, usize) {
        (
            self.ecommerce.map_or(0, |c| c.dispatcher().pending()),
            self.fulfillment.map_or(0, |c| c.dispatcher().pending()),
        )
    }

    /// Unfinished sagas: (orders, fulfillment orders, shipments).
    pub(crate) async fn open_sagas(&self) -> Result<(usize, usize, usize), StoreError> {
        use crate::fulfillment::{fulfillment_order, shipment};
        let ecommerce = self.ecommerce.map(|c| c.store().clone());
        let fulfillment = self.fulfillment.map(|c| c.store().clone());
        tokio::task::spawn_blocking(move || {
            let count = |store: &Option<Store>, kind| -> Result<usize, StoreError> {
                store.as_ref().map_or(Ok(0), |store| store.open_ids(kind).map(|ids| ids.len()))
            };
            Ok((
                count(&ecommerce, crate::ecommerce::order::snapshot::KIND)?,
                count(&fulfillment, fulfillment_order::snapshot::KIND)?,
                count(&fulfillment, shipment::snapshot::KIND)?,
            ))
        })
        .await
        .map_err(|err| StoreError::Io(err.to_string()))?
    }

    /// Every bin's invariants and stock conservation (where fulfillment runs)
    /// and `gateway`'s ledger (where e-commerce runs).
    pub(crate) async fn audit(&self, gateway: &dyn PaymentGateway) -> Result<Audit, FulfillmentError> {
        let mut audit = Audit::default();
        if let Some(fulfillment) = self.fulfillment {
            let bins = fulfillment.all_bins().await?;
            audit.bins = bins.len();
            for bin in &bins {
                if let Err(err) = bin.check_invariants() {
                    audit.stock_violations.push(format!("{}: {err}", bin.id()));
                }
                for (sku, level) in bin.levels() {
                    let over = crate::fulfillment::bin::StockBook::of(level).oversold();
                    if over > 0 {
                        audit.stock_violations.push(format!("{}: {sku} oversold by {over}", bin.id()));
                    }
                    audit.oversold_units += over;
                }
            }
        }
        if self.ecommerce.is_some() {
            audit.payment_violations = gateway.audit();
        }
        Ok(audit)
    }

    /// Waits until the outboxes are handed over, up to `timeout`. Returns whether they were.
    pub(crate) async fn settle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        for dispatcher in self.dispatchers() {
            if !dispatcher.drain(deadline.saturating_duration_since(Instant::now())).await {
                return false;
            }
        }
        true
    }

    /// Shuts down in order, within [`SHUTDOWN_GRACE`]: hands over what the
    /// outboxes hold, stops the actors, stops the dispatchers and closes the
    /// stores (every acknowledged change is already on disk).
    pub(crate) async fn shutdown(&self) {
        let started = Instant::now();
        let _ = self.settle(SHUTDOWN_GRACE / 3).await;
        if let Some(ecommerce) = self.ecommerce {
            ecommerce.stop(SHUTDOWN_GRACE / 3).await;
        }
        if let Some(fulfillment) = self.fulfillment {
            fulfillment.stop(SHUTDOWN_GRACE / 3).await;
        }
        for dispatcher in self.dispatchers() {
            dispatcher.stop();
        }
        let stores = self.stores();
        let _ = tokio::task::spawn_blocking(move || stores.iter().for_each(Store::close)).await;
        let took = started.elapsed();
        if took > SHUTDOWN_GRACE {
            tracing::warn!(?took, "shutdown overran its grace period");
        }
    }
}

/// Why the engine did not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A configuration value is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The data directory cannot be created.
    #[error("cannot create the data directory {path}: {cause}")]
    DataDir {
        /// The directory.
        path: String,
        /// Why.
        cause: String,
    },
    /// A store failed to open (corrupt, locked, unreadable).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A context failed to start.
    #[error("{0}")]
    Context(String),
}

/// A bus whose receiver is attached after both contexts exist; it notes
/// every delivery in the engine's [`RecentDeliveries`].
struct LateBus {
    target: OnceLock<Arc<dyn EventSink>>,
    recent: Arc<RecentDeliveries>,
}

impl Bus for LateBus {
    fn publish(&self, envelope: EventEnvelope) -> BoxFuture<'_, Result<Delivery, DeliveryError>> {
        match self.target.get() {
            Some(target) => Box::pin(async move {
                let delivered = DeliveredEvent::of(&envelope);
                let result = target.deliver(envelope).await;
                if let Ok(outcome) = result {
                    self.recent.note(delivered, outcome);
                }
                result
            }),
            None => Box::pin(async { Err(DeliveryError::Unavailable("receiver starting".to_owned())) }),
        }
    }
}

/// The fulfillment side of an order, as the unified view shows it.
#[derive(Debug, Clone)]
pub enum FulfillmentView {
    /// Not yet received by fulfillment.
    Pending,
    /// The fulfillment order and its shipments.
    Known {
        /// The fulfillment order.
        order: Box<FulfillmentOrder>,
        /// Its shipments with their tracking events.
        shipments: Vec<Shipment>,
    },
    /// Fulfillment did not answer in time.
    Unavailable,
}

/// An order seen from both contexts, composed at read time.
#[derive(Debug, Clone)]
pub struct OrderView {
    /// The customer's order.
    pub order: Order,
    /// Its fulfillment.
    pub fulfillment: FulfillmentView,
    /// The saga's steps from both contexts, oldest first.
    pub timeline: Vec<SagaStep>,
}

/// The running engine.
#[derive(Debug)]
pub struct Engine {
    ecommerce: Ecommerce,
    fulfillment: Fulfillment,
    adapters: Adapters,
    watch: crate::actors::saga_log::Watch,
    recent: Arc<RecentDeliveries>,
}

impl Engine {
    /// Starts the engine with simulated payment gateway and carrier.
    ///
    /// # Errors
    /// [`StartError`].
    pub async fn start(config: Config) -> Result<Engine, StartError> {
        Self::start_with(config, Adapters::default()).await
    }

    /// Starts the engine with the given adapters.
    ///
    /// # Errors
    /// [`StartError`]: bad config, unusable data directory, corrupt or locked store.
    pub async fn start_with(config: Config, adapters: Adapters) -> Result<Engine, StartError> {
        config.validate()?;
        std::fs::create_dir_all(&config.data_dir).map_err(|err| StartError::DataDir {
            path: config.data_dir.display().to_string(),
            cause: err.to_string(),
        })?;
        let ecommerce_path = config.data_dir.join("ecommerce.redb");
        let fulfillment_path = config.data_dir.join("fulfillment.redb");
        let (ecommerce_store, fulfillment_store) =
            tokio::task::spawn_blocking(move || -> Result<(Store, Store), StoreError> {
                let ecommerce = Store::open(&ecommerce_path)?;
                match Store::open(&fulfillment_path) {
                    Ok(fulfillment) => Ok((ecommerce, fulfillment)),
                    Err(err) => {
                        ecommerce.close();
                        Err(err)
                    }
                }
            })
            .await
            .map_err(|err| StartError::Context(err.to_string()))??;

        let recent = Arc::new(RecentDeliveries::default());
        let to_fulfillment = Arc::new(LateBus { target: OnceLock::new(), recent: recent.clone() });
        let to_ecommerce = Arc::new(LateBus { target: OnceLock::new(), recent: recent.clone() });
        let ecommerce_dispatcher = dispatcher::start(ecommerce_store.clone(), to_fulfillment.clone());
        let fulfillment_dispatcher = dispatcher::start(fulfillment_store.clone(), to_ecommerce.clone());
        let watch = crate::actors::saga_log::watch();
        let fulfillment = Fulfillment::start(
            fulfillment_store.clone(),
            adapters.clock.clone(),
            config.fulfillment.clone(),
            adapters.carrier.clone(),
            fulfillment_dispatcher.clone(),
            watch.clone(),
        )
        .await
        .map_err(|err: FulfillmentError| StartError::Context(err.to_string()))?;
        let ecommerce = Ecommerce::start(
            ecommerce_store.clone(),
            adapters.clock.clone(),
            Arc::new(crate::ecommerce::payments::TimeLimited::new(adapters.gateway.clone(), config.payment_timeout)),
            ecommerce_dispatcher.clone(),
            watch.clone(),
            config.fulfillment.idle_after,
        )
        .await
        .map_err(|err: StartFailure| StartError::Context(err.to_string()))?;
        let _ = to_fulfillment.target.set(fulfillment.inbox());
        let _ = to_ecommerce.target.set(ecommerce.inbox());
        Ok(Engine { ecommerce, fulfillment, adapters, watch, recent })
    }

    /// The e-commerce context.
    pub fn ecommerce(&self) -> &Ecommerce {
        &self.ecommerce
    }

    /// The fulfillment context.
    pub fn fulfillment(&self) -> &Fulfillment {
        &self.fulfillment
    }

    /// Every saga step of every order, as it is committed (both contexts).
    /// A receiver that lags by more than [`crate::actors::saga_log::WATCH_CAPACITY`]
    /// steps is told how many it missed; the stored timeline stays complete.
    pub fn watch(&self) -> tokio::sync::broadcast::Receiver<crate::actors::saga_log::Progress> {
        self.watch.subscribe()
    }

    /// The last integration events delivered between the contexts, oldest first
    /// (at most [`crate::events::bus::RECENT_DELIVERIES_MAX`]).
    pub fn recent_deliveries(&self) -> Vec<crate::events::bus::DeliveredEvent> {
        self.recent.list()
    }

    /// The adapters in use.
    pub fn adapters(&self) -> &Adapters {
        &self.adapters
    }

    /// The order `id` seen from both contexts (API composition): the order,
    /// its fulfillment and shipments, and the merged saga timeline. When
    /// fulfillment does not answer within [`VIEW_FULFILLMENT_TIMEOUT`], the
    /// order still comes back with [`FulfillmentView::Unavailable`].
    ///
    /// # Errors
    /// [`crate::actors::CallError`] when the order cannot be read.
    pub async fn order_view(&self, id: OrderId) -> Result<Option<OrderView>, crate::actors::CallError> {
        let Some(order) = self.ecommerce.orders().get(id).await? else { return Ok(None) };
        let fulfillment = self.fulfillment.clone();
        let side = tokio::time::timeout(VIEW_FULFILLMENT_TIMEOUT, async move {
            let found = fulfillment.orders().get(FulfillmentOrderId::for_order(id)).await?;
            match found {
                Some(fo) => {
                    let shipments = fulfillment.shipments_of(&fo).await?;
                    Ok::<_, FulfillmentError>(FulfillmentView::Known { order: Box::new(fo), shipments })
                }
                None => Ok(FulfillmentView::Pending),
            }
        })
        .await;
        let fulfillment_view = match side {
            Ok(Ok(view)) => view,
            Ok(Err(_)) | Err(_) => FulfillmentView::Unavailable,
        };
        let timeline = self.timeline(id).await;
        Ok(Some(OrderView { order, fulfillment: fulfillment_view, timeline }))
    }

    fn contexts(&self) -> Contexts<'_> {
        Contexts { ecommerce: Some(&self.ecommerce), fulfillment: Some(&self.fulfillment) }
    }

    /// The saga steps of order `id` from both contexts, in the order they were committed.
    pub async fn timeline(&self, id: OrderId) -> Vec<SagaStep> {
        self.contexts().timeline(id).await
    }

    /// Events written to the outboxes and not yet acknowledged: (e-commerce, fulfillment).
    pub fn outbox_lag(&self) -> (usize, usize) {
        self.contexts().outbox_lag()
    }

    /// Checks the books: every bin's invariants and stock conservation, and
    /// the payment gateway's ledger (where it keeps one). Reads every bin.
    ///
    /// # Errors
    /// A bin could not be read.
    pub async fn audit(&self) -> Result<Audit, FulfillmentError> {
        self.contexts().audit(self.adapters.gateway.as_ref()).await
    }

    /// Unfinished sagas in the stores: (orders, fulfillment orders, shipments).
    ///
    /// # Errors
    /// A store could not be read.
    pub async fn open_sagas(&self) -> Result<(usize, usize, usize), StoreError> {
        self.contexts().open_sagas().await
    }

    /// Waits until both outboxes are delivered, up to `timeout`. Returns whether they were.
    pub async fn settle(&self, timeout: Duration) -> bool {
        self.contexts().settle(timeout).await
    }

    /// Shuts down in order, within [`SHUTDOWN_GRACE`]: delivers what the
    /// outboxes hold, stops the actors, stops the dispatchers and closes the
    /// stores (every acknowledged change is already on disk).
    pub async fn shutdown(&self) {
        self.contexts().shutdown().await;
    }

    /// Stops without draining or closing cleanly, as a crash would (for tests
    /// of recovery): actors and dispatchers stop, queued writes are dropped,
    /// nothing more is flushed.
    pub async fn abandon(&self) {
        for dispatcher in self.contexts().dispatchers() {
            dispatcher.stop();
        }
        self.ecommerce.stop(Duration::from_millis(200)).await;
        self.fulfillment.stop(Duration::from_millis(200)).await;
        let stores = [self.ecommerce.store().clone(), self.fulfillment.store().clone()];
        let _ = tokio::task::spawn_blocking(move || stores.iter().for_each(Store::close)).await;
    }
}
