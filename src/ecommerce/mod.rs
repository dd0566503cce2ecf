//! The e-commerce context: catalog, orders and payments.
//!
//! It talks to fulfillment only through integration events: it receives them
//! through [`EcommerceInbox`] and sends its own through its store's outbox
//! and the dispatcher. It never uses the fulfillment context's code.

pub mod accounts;
pub mod catalog;
pub mod order;
pub mod payments;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ractor::{Actor, ActorRef};

use crate::actors::dispatcher::DispatcherHandle;
use crate::actors::saga_log::Watch;
use crate::actors::Journal;
use crate::actors::{CallError, Children, Clock, Supervisor, SupervisorMsg};
use crate::events::bus::{BoxFuture, Delivery, DeliveryError, EventSink};
use crate::events::EventEnvelope;
use crate::persistence::{Store, StoreError};

use catalog::Catalog;
use order::actor::OrderSpec;
use order::OrderHandle;
use payments::PaymentGateway;

/// What the e-commerce actors share.
#[derive(Debug)]
pub(crate) struct Deps {
    pub(crate) store: Store,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) gateway: Arc<dyn PaymentGateway>,
    pub(crate) catalog: Catalog,
    pub(crate) accounts: accounts::Accounts,
    pub(crate) journal: Journal,
    pub(crate) idle_after: Duration,
    orders: OnceLock<ActorRef<SupervisorMsg<OrderSpec>>>,
    pub(crate) live_orders: Children<OrderSpec>,
}

impl Deps {
    pub(crate) fn orders(&self) -> Result<&ActorRef<SupervisorMsg<OrderSpec>>, CallError> {
        self.orders.get().ok_or(CallError::Unavailable)
    }
}

/// The running e-commerce context.
#[derive(Debug, Clone)]
pub struct Ecommerce {
    deps: Arc<Deps>,
}

impl Ecommerce {
    /// Starts the context on `store`: loads the catalog, starts the order
    /// supervisor and resumes every order with work left.
    ///
    /// # Errors
    /// [`StoreError`] for an unreadable store; [`CallError`] if the supervisor cannot start.
    pub async fn start(
        store: Store,
        clock: Arc<dyn Clock>,
        gateway: Arc<dyn PaymentGateway>,
        dispatcher: DispatcherHandle,
        watch: Watch,
        idle_after: Duration,
    ) -> Result<Ecommerce, StartFailure> {
        let loader = store.clone();
        let (catalog, accounts) = tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
            Ok((Catalog::load(loader.clone())?, accounts::Accounts::load(loader)?))
        })
        .await
        .map_err(|err| StoreError::Io(err.to_string()))??;
        let deps = Arc::new(Deps {
            journal: Journal::new(store.clone(), dispatcher, watch),
            store,
            clock,
            gateway,
            catalog,
            accounts,
            idle_after,
            orders: OnceLock::new(),
            live_orders: Children::new(),
        });
        let (orders, _) = Actor::spawn(None, Supervisor::new(Arc::new(OrderSpec { deps: deps.clone() })), ())
            .await
            .map_err(|err| CallError::Store(err.to_string()))?;
        let _ = deps.orders.set(orders);
        let context = Ecommerce { deps };
        // Open orders that owe a payment operation get an actor now; the
        // others wait for their next event, which spawns them on demand.
        let spec = OrderSpec { deps: context.deps.clone() };
        let (open, resumed) = crate::actors::supervisor::resume_owing(
            &spec,
            context.deps.orders()?,
            &context.deps.store,
            order::snapshot::decode,
            |order: &order::Order| order.owes_work().then(|| order.id()),
        )
        .await?;
        if open > 0 {
            tracing::info!(open, resumed, "open orders: those owing a payment operation resumed");
        }
        Ok(context)
    }

    /// Orders.
    pub fn orders(&self) -> OrderHandle {
        OrderHandle::new(self.deps.clone())
    }

    /// The catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.deps.catalog
    }

    /// Customer accounts and API keys.
    pub fn accounts(&self) -> &accounts::Accounts {
        &self.deps.accounts
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.deps.store
    }

    /// The outbox dispatcher.
    pub fn dispatcher(&self) -> &DispatcherHandle {
        self.deps.journal.dispatcher()
    }

    /// The receiving side for fulfillment's events.
    pub fn inbox(&self) -> Arc<dyn EventSink> {
        Arc::new(EcommerceInbox { orders: self.orders() })
    }

    /// Live order actors.
    pub async fn live_actors(&self) -> usize {
        crate::actors::live_children(self.deps.orders()).await
    }

    /// Stops the order supervisor and its children, waiting up to `grace`.
    pub async fn stop(&self, grace: Duration) {
        crate::actors::stop_tree(self.deps.orders(), grace).await;
    }
}

/// Why the context could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StartFailure {
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An actor could not be started.
    #[error(transparent)]
    Call(#[from] CallError),
}

/// E-commerce's [`EventSink`]: routes each event to its order.
#[derive(Debug)]
pub struct EcommerceInbox {
    orders: OrderHandle,
}

impl EventSink for EcommerceInbox {
    fn deliver(&self, envelope: EventEnvelope) -> BoxFuture<'_, Result<Delivery, DeliveryError>> {
        Box::pin(self.orders.deliver(envelope))
    }
}
