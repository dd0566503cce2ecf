//! What one process serves: the embedded [`Engine`] (both contexts, the
//! default), or one context on its own store, linked to the other over NATS
//! JetStream ([`crate::broker`]).
//!
//! In the e-commerce role the unified order view is composed over HTTP: the
//! order comes from this process, its fulfillment side from the fulfillment
//! service's API (`GET /v1/fulfillment/orders/{id}`), within
//! [`crate::engine::VIEW_FULFILLMENT_TIMEOUT`]; when fulfillment does not
//! answer, the order comes back with `"fulfillment": {"status": "unavailable"}`.
//! Taking orders never waits for fulfillment: a placed order's events wait in
//! the outbox or in the broker until fulfillment is back.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::access::ApiKeys;
use crate::actors::dispatcher::{self, DispatcherHandle};
use crate::broker::{Broker, BrokerConfig, Consumer};
use crate::ecommerce::{Ecommerce, StartFailure};
use crate::engine::{Adapters, Audit, Config, Contexts, StartError};
use crate::events::{ContextName, OrderId, SagaStep, Sku};
use crate::fulfillment::{Fulfillment, FulfillmentError};
use crate::persistence::{Store, StoreError};
use crate::Engine;

/// Which context(s) a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Both contexts in one process, joined in memory (the default).
    All,
    /// The e-commerce context only.
    Ecommerce,
    /// The fulfillment context only.
    Fulfillment,
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "all" => Ok(Role::All),
            "ecommerce" => Ok(Role::Ecommerce),
            "fulfillment" => Ok(Role::Fulfillment),
            other => Err(format!("unknown role {other:?}: all, ecommerce or fulfillment")),
        }
    }
}

/// Where the e-commerce role finds the fulfillment service's API.
#[derive(Debug, Clone)]
pub struct FulfillmentApi {
    /// `http://host:port`.
    pub url: String,
    /// An operator (or admin) key of the fulfillment service.
    pub key: String,
}

impl FulfillmentApi {
    fn authority(&self) -> &str {
        self.url.trim_start_matches("http://").trim_end_matches('/')
    }

    /// `GET path` with the key, within `timeout`: the status and body, or why not.
    async fn get(&self, path: &str, timeout: Duration) -> Result<(u16, axum::body::Bytes), String> {
        let mut connection = crate::client::Connection::new(self.authority());
        let call = connection.call(axum::http::Method::GET, path, &self.key, &[], None);
        match tokio::time::timeout(timeout, call).await {
            Ok(Ok((status, body))) => Ok((status.as_u16(), body)),
            Ok(Err(err)) => Err(err),
            Err(_) => Err(format!("no answer within {timeout:?}")),
        }
    }
}

/// The e-commerce context on its own.
#[derive(Debug)]
pub struct EcommerceNode {
    ecommerce: Ecommerce,
    adapters: Adapters,
    watch: crate::actors::saga_log::Watch,
    consumer: Consumer,
    fulfillment_api: Option<FulfillmentApi>,
}

/// The fulfillment context on its own, with its own API keys.
#[derive(Debug)]
pub struct FulfillmentNode {
    fulfillment: Fulfillment,
    keys: ApiKeys,
    adapters: Adapters,
    watch: crate::actors::saga_log::Watch,
    consumer: Consumer,
}

/// What a process serves.
#[derive(Debug)]
pub enum Node {
    /// Both contexts.
    Embedded(Arc<Engine>),
    /// E-commerce, linked over the broker.
    Ecommerce(EcommerceNode),
    /// Fulfillment, linked over the broker.
    Fulfillment(FulfillmentNode),
}

/// What a role starts before its context: its store, the broker link, the
/// dispatcher publishing its outbox to the broker, and its step stream.
struct Linked {
    store: Store,
    broker: Broker,
    dispatcher: DispatcherHandle,
    watch: crate::actors::saga_log::Watch,
}

async fn link(config: &Config, file: &str, broker: &BrokerConfig) -> Result<Linked, StartError> {
    config.validate()?;
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|err| StartError::DataDir { path: config.data_dir.display().to_string(), cause: err.to_string() })?;
    let path = config.data_dir.join(file);
    let store = tokio::task::spawn_blocking(move || Store::open(&path))
        .await
        .map_err(|err| StartError::Context(err.to_string()))??;
    let broker = Broker::connect(broker).await.map_err(|err| StartError::Context(err.to_string()))?;
    let dispatcher = dispatcher::start(store.clone(), broker.bus());
    Ok(Linked { store, broker, dispatcher, watch: crate::actors::saga_log::watch() })
}

impl Linked {
    /// Delivers the other context's events to `receiver`'s inbox `sink`.
    async fn consume(
        &self,
        receiver: ContextName,
        sink: Arc<dyn crate::events::bus::EventSink>,
        config: &BrokerConfig,
    ) -> Result<Consumer, StartError> {
        self.broker
            .consume(receiver, sink, config.abort_before_ack_after)
            .await
            .map_err(|err| StartError::Context(err.to_string()))
    }
}

impl Node {
    /// Starts the e-commerce context on `<data_dir>/ecommerce.redb`, publishing to
    /// and consuming from the broker.
    ///
    /// # Errors
    /// [`StartError`] when the store, the broker link or the context fails to start.
    pub async fn start_ecommerce(
        config: Config,
        adapters: Adapters,
        broker: &BrokerConfig,
        fulfillment_api: Option<FulfillmentApi>,
    ) -> Result<Node, StartError> {
        let linked = link(&config, "ecommerce.redb", broker).await?;
        let gateway =
            Arc::new(crate::ecommerce::payments::TimeLimited::new(adapters.gateway.clone(), config.payment_timeout));
        let ecommerce = Ecommerce::start(
            linked.store.clone(),
            adapters.clock.clone(),
            gateway,
            linked.dispatcher.clone(),
            linked.watch.clone(),
            config.fulfillment.idle_after,
        )
        .await
        .map_err(|err: StartFailure| StartError::Context(err.to_string()))?;
        let consumer = linked.consume(ContextName::Ecommerce, ecommerce.inbox(), broker).await?;
        let watch = linked.watch;
        Ok(Node::Ecommerce(EcommerceNode { ecommerce, adapters, watch, consumer, fulfillment_api }))
    }

    /// Starts the fulfillment context on `<data_dir>/fulfillment.redb`, publishing
    /// to and consuming from the broker. Its API keys live in the same store.
    ///
    /// # Errors
    /// [`StartError`] when the store, the broker link or the context fails to start.
    pub async fn start_fulfillment(
        config: Config,
        adapters: Adapters,
        broker: &BrokerConfig,
    ) -> Result<Node, StartError> {
        let linked = link(&config, "fulfillment.redb", broker).await?;
        let loader = linked.store.clone();
        let keys = tokio::task::spawn_blocking(move || ApiKeys::load(loader))
            .await
            .map_err(|err| StartError::Context(err.to_string()))??;
        let fulfillment = Fulfillment::start(
            linked.store.clone(),
            adapters.clock.clone(),
            config.fulfillment.clone(),
            adapters.carrier.clone(),
            linked.dispatcher.clone(),
            linked.watch.clone(),
        )
        .await
        .map_err(|err: FulfillmentError| StartError::Context(err.to_string()))?;
        let consumer = linked.consume(ContextName::Fulfillment, fulfillment.inbox(), broker).await?;
        let watch = linked.watch;
        Ok(Node::Fulfillment(FulfillmentNode { fulfillment, keys, adapters, watch, consumer }))
    }

    /// The role it plays.
    pub fn role(&self) -> Role {
        match self {
            Node::Embedded(_) => Role::All,
            Node::Ecommerce(_) => Role::Ecommerce,
            Node::Fulfillment(_) => Role::Fulfillment,
        }
    }

    /// The embedded engine, in the `all` role.
    pub fn engine(&self) -> Option<&Arc<Engine>> {
        match self {
            Node::Embedded(engine) => Some(engine),
            Node::Ecommerce(_) | Node::Fulfillment(_) => None,
        }
    }

    /// The e-commerce context, if this process runs it.
    pub fn ecommerce(&self) -> Option<&Ecommerce> {
        match self {
            Node::Embedded(engine) => Some(engine.ecommerce()),
            Node::Ecommerce(node) => Some(&node.ecommerce),
            Node::Fulfillment(_) => None,
        }
    }

    /// The fulfillment context, if this process runs it.
    pub fn fulfillment(&self) -> Option<&Fulfillment> {
        match self {
            Node::Embedded(engine) => Some(engine.fulfillment()),
            Node::Fulfillment(node) => Some(&node.fulfillment),
            Node::Ecommerce(_) => None,
        }
    }

    /// The API keys this process accepts.
    pub fn keys(&self) -> &ApiKeys {
        match self {
            Node::Embedded(engine) => engine.ecommerce().accounts().keys(),
            Node::Ecommerce(node) => node.ecommerce.accounts().keys(),
            Node::Fulfillment(node) => &node.keys,
        }
    }

    /// The adapters in use.
    pub fn adapters(&self) -> &Adapters {
        match self {
            Node::Embedded(engine) => engine.adapters(),
            Node::Ecommerce(node) => &node.adapters,
            Node::Fulfillment(node) => &node.adapters,
        }
    }

    /// The stream of saga steps committed in this process.
    pub fn watch(&self) -> tokio::sync::broadcast::Receiver<crate::actors::saga_log::Progress> {
        match self {
            Node::Embedded(engine) => engine.watch(),
            Node::Ecommerce(node) => node.watch.subscribe(),
            Node::Fulfillment(node) => node.watch.subscribe(),
        }
    }

    fn contexts(&self) -> Contexts<'_> {
        Contexts { ecommerce: self.ecommerce(), fulfillment: self.fulfillment() }
    }

    /// Events committed here and not yet acknowledged: (e-commerce, fulfillment),
    /// 0 for a context this process does not run.
    pub fn outbox_lag(&self) -> (usize, usize) {
        self.contexts().outbox_lag()
    }

    /// Unfinished sagas in this process's stores: (orders, fulfillment orders, shipments).
    ///
    /// # Errors
    /// A store could not be read.
    pub async fn open_sagas(&self) -> Result<(usize, usize, usize), StoreError> {
        self.contexts().open_sagas().await
    }

    /// The books this process holds: stock (fulfillment) and the payment ledger (e-commerce).
    ///
    /// # Errors
    /// A bin could not be read.
    pub async fn audit(&self) -> Result<Audit, FulfillmentError> {
        self.contexts().audit(self.adapters().gateway.as_ref()).await
    }

    /// The last integration events delivered in memory (the `all` role only; empty otherwise).
    pub fn recent_deliveries(&self) -> Vec<crate::events::bus::DeliveredEvent> {
        self.engine().map(|engine| engine.recent_deliveries()).unwrap_or_default()
    }

    /// The saga steps of order `id` committed in this process's stores.
    pub async fn local_timeline(&self, id: OrderId) -> Vec<SagaStep> {
        self.contexts().timeline(id).await
    }

    /// The fulfillment service's answer for order `id` in the e-commerce role:
    /// `Ok(None)` when it has no such order yet, `Err` when it does not answer.
    ///
    /// # Errors
    /// The service is not configured, unreachable, slow or answered badly.
    /// The body is the service's JSON, read by the HTTP edge, which knows its shape.
    pub async fn remote_fulfillment(&self, id: OrderId) -> Result<Option<axum::body::Bytes>, String> {
        let Node::Ecommerce(node) = self else { return Err("not the e-commerce role".to_owned()) };
        let api = node.fulfillment_api.as_ref().ok_or("no fulfillment service configured")?;
        let path = format!("/v1/fulfillment/orders/{}", crate::events::FulfillmentOrderId::for_order(id));
        match api.get(&path, crate::engine::VIEW_FULFILLMENT_TIMEOUT).await? {
            (200, body) => Ok(Some(body)),
            (404, _) => Ok(None),
            (status, _) => Err(format!("fulfillment answered {status}")),
        }
    }

    /// Units of `sku` free to order across every warehouse: from the local
    /// fulfillment context, or from the fulfillment service in the e-commerce role.
    ///
    /// # Errors
    /// The stock could not be read (or the service did not answer).
    pub async fn available(&self, sku: &Sku) -> Result<u64, String> {
        if let Some(fulfillment) = self.fulfillment() {
            let levels = fulfillment.stock(sku).await.map_err(|err| err.to_string())?;
            return Ok(levels.iter().map(|level| u64::from(level.available)).sum());
        }
        let Node::Ecommerce(node) = self else { return Ok(0) };
        let api = node.fulfillment_api.as_ref().ok_or("no fulfillment service configured")?;
        match api.get(&format!("/v1/inventory/{sku}"), crate::engine::VIEW_FULFILLMENT_TIMEOUT).await? {
            (200, body) => {
                let value: serde_json::Value = serde_json::from_slice(&body).map_err(|err| err.to_string())?;
                Ok(value["locations"].as_array().into_iter().flatten().filter_map(|l| l["available"].as_u64()).sum())
            }
            (404, _) => Ok(0),
            (status, _) => Err(format!("fulfillment answered {status}")),
        }
    }

    /// Shuts down in order within [`crate::engine::SHUTDOWN_GRACE`]: stops consuming (a role),
    /// hands over the outboxes, stops the actors and the dispatchers, closes the stores.
    pub async fn shutdown(&self) {
        match self {
            Node::Embedded(_) => {}
            Node::Ecommerce(node) => node.consumer.stop(),
            Node::Fulfillment(node) => node.consumer.stop(),
        }
        self.contexts().shutdown().await;
    }
}

/// Reads an API key from a file (first line), for `--fulfillment-key-file`.
///
/// # Errors
/// The file cannot be read or is empty.
pub fn read_key(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|err| format!("{}: {err}", path.display()))?;
    let key = text.lines().next().unwrap_or_default().trim().to_owned();
    if key.is_empty() {
        return Err(format!("{}: empty", path.display()));
    }
    Ok(key)
}
