//! The fulfillment context: order intake from every channel, inventory per
//! warehouse bin with reservations, allocation, picking and packing,
//! shipments and tracking.
//!
//! It talks to e-commerce only through integration events: it receives them
//! through [`FulfillmentInbox`] (an [`EventSink`]) and sends its own through
//! its store's outbox and the dispatcher. It never uses the e-commerce context's code.

pub mod autopilot;
pub mod bin;
pub mod carriers;
pub mod fulfillment_order;
pub mod shipment;
pub mod warehouse;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ractor::{Actor, ActorRef};

use crate::actors::dispatcher::DispatcherHandle;
use crate::actors::saga_log::Watch;
use crate::actors::Journal;
use crate::actors::{CallError, Children, Clock, Supervisor, SupervisorMsg};
use crate::events::bus::{BoxFuture, Delivery, DeliveryError, EventSink};
use crate::events::{BinId, EventEnvelope, Sku, WarehouseId};
use crate::persistence::{Store, StoreError, WriteBatch};

use bin::actor::BinSpec;
use bin::{Bin, BinError, BinHandle};
use carriers::Carrier;
use fulfillment_order::actor::FulfillmentOrderSpec;
pub use fulfillment_order::{FulfillmentOrder, FulfillmentOrderError, FulfillmentOrderHandle};
use shipment::actor::ShipmentSpec;
use shipment::{Shipment, ShipmentError, ShipmentHandle};
use warehouse::{Directory, Warehouse, WarehouseError};

/// How fulfillment behaves.
#[derive(Debug, Clone)]
pub struct FulfillmentConfig {
    /// How long stock stays reserved waiting for payment. Default 15 minutes.
    pub reservation_ttl: Duration,
    /// Whether simulated operators pick and pack and a simulated carrier delivers. Default off.
    pub autopilot: bool,
    /// Whether, on autopilot, the simulated carrier moves labelled shipments
    /// on to delivery. Off, they wait for the carrier's webhook as without
    /// autopilot (the saga-3 workload ends at shipment created). Default on.
    pub carrier_autopilot: bool,
    /// Pause between the simulated carrier's steps, on autopilot. Default 10 ms.
    pub carrier_step_delay: Duration,
    /// Idle time after which an actor passivates (stops; respawned from its snapshot on demand). Default 30 s.
    pub idle_after: Duration,
    /// What a short pick leads to. Default: re-allocate the missing units elsewhere.
    pub short_pick: fulfillment_order::ShortPickPolicy,
}

impl FulfillmentConfig {
    /// Whether the simulated carrier advances shipments.
    pub fn carrier_on_autopilot(&self) -> bool {
        self.autopilot && self.carrier_autopilot
    }
}

impl Default for FulfillmentConfig {
    fn default() -> Self {
        Self {
            reservation_ttl: Duration::from_secs(15 * 60),
            autopilot: false,
            carrier_autopilot: true,
            carrier_step_delay: Duration::from_millis(10),
            idle_after: Duration::from_secs(30),
            short_pick: fulfillment_order::ShortPickPolicy::default(),
        }
    }
}

/// A failure of a fulfillment operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FulfillmentError {
    /// The bin is not a bin of a known warehouse.
    #[error("unknown bin {0}")]
    UnknownBin(BinId),
    /// No such warehouse.
    #[error("unknown warehouse {0}")]
    UnknownWarehouse(WarehouseId),
    /// A bin refused.
    #[error(transparent)]
    Bin(#[from] BinError),
    /// A fulfillment order refused.
    #[error(transparent)]
    Order(#[from] FulfillmentOrderError),
    /// A shipment refused.
    #[error(transparent)]
    Shipment(#[from] ShipmentError),
    /// A warehouse definition was refused.
    #[error(transparent)]
    Warehouse(#[from] WarehouseError),
    /// An actor could not be reached.
    #[error(transparent)]
    Call(#[from] CallError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the fulfillment actors share.
#[derive(Debug)]
pub(crate) struct Deps {
    pub(crate) store: Store,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: FulfillmentConfig,
    pub(crate) directory: Directory,
    pub(crate) carrier: Arc<dyn Carrier>,
    pub(crate) journal: Journal,
    bins: OnceLock<ActorRef<SupervisorMsg<BinSpec>>>,
    orders: OnceLock<ActorRef<SupervisorMsg<FulfillmentOrderSpec>>>,
    shipments: OnceLock<ActorRef<SupervisorMsg<ShipmentSpec>>>,
    pub(crate) live_bins: Children<BinSpec>,
    pub(crate) live_orders: Children<FulfillmentOrderSpec>,
    pub(crate) live_shipments: Children<ShipmentSpec>,
    /// The bins read at start, each handed to its actor when it first
    /// spawns: reading one bin alone reads every bin's holds
    /// ([`Store::record`]), so it is done at start for all of them at once.
    /// An entry is taken once; a later spawn (a restart) reads the store.
    pub(crate) loaded_bins: std::sync::Mutex<std::collections::HashMap<BinId, Bin>>,
}

impl Deps {
    pub(crate) fn bins(&self) -> Result<&ActorRef<SupervisorMsg<BinSpec>>, CallError> {
        self.bins.get().ok_or(CallError::Unavailable)
    }
    pub(crate) fn fulfillment_orders(&self) -> Result<&ActorRef<SupervisorMsg<FulfillmentOrderSpec>>, CallError> {
        self.orders.get().ok_or(CallError::Unavailable)
    }
    pub(crate) fn shipments(&self) -> Result<&ActorRef<SupervisorMsg<ShipmentSpec>>, CallError> {
        self.shipments.get().ok_or(CallError::Unavailable)
    }
    pub(crate) fn bin_handle(self: &Arc<Self>) -> BinHandle {
        BinHandle::new(self.clone())
    }
    pub(crate) fn fulfillment_order_handle(self: &Arc<Self>) -> FulfillmentOrderHandle {
        FulfillmentOrderHandle::new(self.clone())
    }
    pub(crate) fn shipment_handle(self: &Arc<Self>) -> ShipmentHandle {
        ShipmentHandle::new(self.clone())
    }
}

/// Stock of one SKU in one bin, for queries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinLevel {
    /// The bin.
    pub bin: BinId,
    /// Units in the bin.
    pub on_hand: u32,
    /// Units reserved.
    pub reserved: u32,
    /// Units picked, not yet shipped.
    pub picked: u32,
    /// Units free.
    pub available: u32,
}

/// The running fulfillment context.
#[derive(Debug, Clone)]
pub struct Fulfillment {
    deps: Arc<Deps>,
}

impl Fulfillment {
    /// Starts the context on `store`: loads the directory, starts the
    /// supervisors, and resumes every fulfillment order and shipment with work left.
    ///
    /// # Errors
    /// [`FulfillmentError::Store`] for an unreadable store; [`CallError`] if a supervisor cannot start.
    pub async fn start(
        store: Store,
        clock: Arc<dyn Clock>,
        config: FulfillmentConfig,
        carrier: Arc<dyn Carrier>,
        dispatcher: DispatcherHandle,
        watch: Watch,
    ) -> Result<Fulfillment, FulfillmentError> {
        let loader = store.clone();
        let (directory, rewrite, loaded_bins) = tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
            let mut sku_bins = Vec::new();
            let mut loaded = std::collections::HashMap::new();
            // Bins of the first format (holds inside the snapshot row) get a row per hold.
            let mut rewrite = WriteBatch::new();
            for (bin, whole) in bin::snapshot::load_all(&loader)? {
                if whole {
                    bin::snapshot::write_whole(&bin, &mut rewrite)?;
                }
                sku_bins.push((bin.id().clone(), bin.levels().keys().cloned().collect()));
                loaded.insert(bin.id().clone(), bin);
            }
            Ok((Directory::load(&loader, sku_bins)?, rewrite, loaded))
        })
        .await
        .map_err(|err| StoreError::Io(err.to_string()))??;
        if !rewrite.is_empty() {
            store.commit(rewrite).await?;
        }
        let deps = Arc::new(Deps {
            journal: Journal::new(store.clone(), dispatcher, watch),
            store,
            clock,
            config,
            directory,
            carrier,
            bins: OnceLock::new(),
            orders: OnceLock::new(),
            shipments: OnceLock::new(),
            live_bins: Children::new(),
            live_orders: Children::new(),
            live_shipments: Children::new(),
            loaded_bins: std::sync::Mutex::new(loaded_bins),
        });
        let spawn_error = |err: ractor::SpawnErr| FulfillmentError::Call(CallError::Store(err.to_string()));
        let (bins, _) = Actor::spawn(None, Supervisor::new(Arc::new(BinSpec { deps: deps.clone() })), ())
            .await
            .map_err(spawn_error)?;
        let (orders, _) =
            Actor::spawn(None, Supervisor::new(Arc::new(FulfillmentOrderSpec { deps: deps.clone() })), ())
                .await
                .map_err(spawn_error)?;
        let (shipments, _) = Actor::spawn(None, Supervisor::new(Arc::new(ShipmentSpec { deps: deps.clone() })), ())
            .await
            .map_err(spawn_error)?;
        let _ = deps.bins.set(bins);
        let _ = deps.orders.set(orders);
        let _ = deps.shipments.set(shipments);
        let context = Fulfillment { deps };
        context.resume().await?;
        Ok(context)
    }

    /// Spawns every fulfillment order and shipment marked open; each resumes its own work.
    async fn resume(&self) -> Result<(), FulfillmentError> {
        let autopilot = self.deps.config.autopilot;
        // Fulfillment orders with work of their own get an actor now; the
        // others wait for an event or an operator, which spawns them on demand.
        let order_spec = FulfillmentOrderSpec { deps: self.deps.clone() };
        let (open, resumed) = crate::actors::supervisor::resume_owing(
            &order_spec,
            self.deps.fulfillment_orders()?,
            &self.deps.store,
            fulfillment_order::snapshot::decode,
            move |order: &FulfillmentOrder| order.owes_work(autopilot).then(|| order.id()),
        )
        .await?;
        let store = self.deps.store.clone();
        let shipments = tokio::task::spawn_blocking(move || store.open_ids(shipment::snapshot::KIND))
            .await
            .map_err(|err| StoreError::Io(err.to_string()))??;
        let shipment_spec = ShipmentSpec { deps: self.deps.clone() };
        for id in shipments.iter().filter_map(|id| id.parse().ok()) {
            crate::actors::child(&shipment_spec, self.deps.shipments()?, &id, false).await?;
        }
        if open > 0 || !shipments.is_empty() {
            tracing::info!(
                fulfillment_orders = open,
                resumed,
                shipments = shipments.len(),
                "open sagas: those with work of their own resumed"
            );
        }
        Ok(())
    }

    /// The receiving side for e-commerce's events.
    pub fn inbox(&self) -> Arc<dyn EventSink> {
        Arc::new(FulfillmentInbox { orders: self.orders() })
    }

    /// Fulfillment orders.
    pub fn orders(&self) -> FulfillmentOrderHandle {
        self.deps.fulfillment_order_handle()
    }

    /// Bins.
    pub fn bins(&self) -> BinHandle {
        self.deps.bin_handle()
    }

    /// Shipments.
    pub fn shipments(&self) -> ShipmentHandle {
        self.deps.shipment_handle()
    }

    /// The warehouse directory.
    pub fn directory(&self) -> &Directory {
        &self.deps.directory
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.deps.store
    }

    /// The outbox dispatcher.
    pub fn dispatcher(&self) -> &DispatcherHandle {
        self.deps.journal.dispatcher()
    }

    /// Creates or updates a warehouse (bins are only added).
    ///
    /// # Errors
    /// [`FulfillmentError::Store`].
    pub async fn create_warehouse(&self, warehouse: Warehouse) -> Result<Warehouse, FulfillmentError> {
        Ok(self.deps.directory.upsert(&self.deps.store, warehouse).await?)
    }

    /// Stock of `sku` in every bin that holds it.
    ///
    /// # Errors
    /// [`FulfillmentError::Call`].
    pub async fn stock(&self, sku: &Sku) -> Result<Vec<BinLevel>, FulfillmentError> {
        let mut levels = Vec::new();
        for bin in self.deps.directory.bins_for(sku) {
            if let Some(found) = self.bins().get(&bin).await? {
                let level = found.level(sku);
                levels.push(BinLevel {
                    bin,
                    on_hand: level.on_hand,
                    reserved: level.reserved,
                    picked: level.picked,
                    available: level.available(),
                });
            }
        }
        Ok(levels)
    }

    /// Every bin as stored (for checkers and `inspect`).
    ///
    /// # Errors
    /// [`FulfillmentError::Call`].
    pub async fn all_bins(&self) -> Result<Vec<Bin>, FulfillmentError> {
        let mut bins = Vec::new();
        for warehouse in self.deps.directory.warehouses() {
            for code in &warehouse.bins {
                if let Some(found) = self.bins().get(&BinId::new(warehouse.id.clone(), code.clone())).await? {
                    bins.push(found);
                }
            }
        }
        Ok(bins)
    }

    /// The shipments of a fulfillment order.
    ///
    /// # Errors
    /// [`FulfillmentError::Call`].
    pub async fn shipments_of(&self, order: &FulfillmentOrder) -> Result<Vec<Shipment>, FulfillmentError> {
        let mut found = Vec::new();
        for record in order.shipments() {
            if let Some(shipment) = self.shipments().get(record.id).await? {
                found.push(shipment);
            }
        }
        Ok(found)
    }

    /// Open pick tasks of `warehouse`: (fulfillment order, task index, planned item), oldest order first.
    ///
    /// # Errors
    /// [`FulfillmentError::Store`].
    pub async fn open_pick_tasks(
        &self,
        warehouse: &WarehouseId,
    ) -> Result<Vec<(FulfillmentOrder, u16, warehouse::PlannedItem)>, FulfillmentError> {
        let orders = self.open_orders().await?;
        let mut tasks = Vec::new();
        for order in orders {
            for task in order.tasks().iter().filter(|t| t.picked.is_none() && t.held) {
                if let Some(item) = order.plan().get(usize::from(task.index)).filter(|i| &i.bin.warehouse == warehouse)
                {
                    tasks.push((order.clone(), task.index, item.clone()));
                }
            }
        }
        tasks.sort_by_key(|(order, index, _)| (order.created_at(), *index));
        Ok(tasks)
    }

    /// Every unfinished fulfillment order, as stored.
    async fn open_orders(&self) -> Result<Vec<FulfillmentOrder>, FulfillmentError> {
        let store = self.deps.store.clone();
        let orders = tokio::task::spawn_blocking(move || -> Result<Vec<FulfillmentOrder>, StoreError> {
            store
                .open_snapshots(fulfillment_order::snapshot::KIND)?
                .iter()
                .map(|(id, bytes)| fulfillment_order::snapshot::decode(id, bytes))
                .collect()
        })
        .await
        .map_err(|err| StoreError::Io(err.to_string()))??;
        Ok(orders)
    }

    /// Fulfillment orders of `warehouse` whose picks are all confirmed and
    /// that wait to be packed, oldest first.
    ///
    /// # Errors
    /// [`FulfillmentError::Store`].
    pub async fn ready_to_pack(&self, warehouse: &WarehouseId) -> Result<Vec<FulfillmentOrder>, FulfillmentError> {
        let orders = self.open_orders().await?;
        let mut ready: Vec<FulfillmentOrder> = orders
            .into_iter()
            .filter(|order| order.ready_to_pack() && order.plan().iter().any(|item| &item.bin.warehouse == warehouse))
            .collect();
        ready.sort_by_key(FulfillmentOrder::created_at);
        Ok(ready)
    }

    /// Live children per supervisor: (bins, fulfillment orders, shipments).
    pub async fn live_actors(&self) -> (usize, usize, usize) {
        use crate::actors::live_children;
        (
            live_children(self.deps.bins()).await,
            live_children(self.deps.fulfillment_orders()).await,
            live_children(self.deps.shipments()).await,
        )
    }

    /// Stops the supervisors and their children, waiting up to `grace`.
    pub async fn stop(&self, grace: Duration) {
        use crate::actors::stop_tree;
        stop_tree(self.deps.fulfillment_orders(), grace).await;
        stop_tree(self.deps.shipments(), grace).await;
        stop_tree(self.deps.bins(), grace).await;
    }
}

/// Fulfillment's [`EventSink`]: routes each event to its fulfillment order.
#[derive(Debug)]
pub struct FulfillmentInbox {
    orders: FulfillmentOrderHandle,
}

impl EventSink for FulfillmentInbox {
    fn deliver(&self, envelope: EventEnvelope) -> BoxFuture<'_, Result<Delivery, DeliveryError>> {
        Box::pin(self.orders.deliver(envelope))
    }
}
