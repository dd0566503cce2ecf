//! What every HTTP handler shares ([`AppState`]), the edge's limits
//! ([`HttpConfig`]) and its counters.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use super::error::ApiError;
use super::{auth, console, idempotency};
use crate::node::Node;
use crate::Engine;

/// Limits of the HTTP edge.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Requests handled at once; beyond it requests are shed with 503. Default 1,024.
    pub concurrency_max: usize,
    /// Longest a request may take before 408. Default 30 s.
    pub request_timeout: Duration,
    /// Requests per second per API key (token bucket). Default 10,000.
    pub rate_per_key: u32,
    /// Burst per API key. Default 20,000.
    pub burst_per_key: u32,
    /// Secret for carrier webhook signatures (HMAC-SHA256).
    pub carrier_secret: String,
    /// The demo customer's API key, offered on the storefront's sign-in page
    /// (`serve --demo` only; `None` otherwise).
    pub demo_customer_key: Option<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            concurrency_max: 1024,
            request_timeout: Duration::from_secs(30),
            rate_per_key: 10_000,
            burst_per_key: 20_000,
            carrier_secret: String::new(),
            demo_customer_key: None,
        }
    }
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct Counters {
    /// Orders created through the API.
    pub orders_created: AtomicU64,
    /// Responses with a 2xx status.
    pub responses_2xx: AtomicU64,
    /// Responses with a 4xx status.
    pub responses_4xx: AtomicU64,
    /// Responses with a 5xx status.
    pub responses_5xx: AtomicU64,
}

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    /// What this process serves: both contexts, or one of them.
    pub node: Arc<Node>,
    /// Limits and secrets.
    pub config: Arc<HttpConfig>,
    /// Keys being executed.
    pub in_flight: idempotency::InFlight,
    /// Per-key rate limit.
    pub limiter: Arc<auth::RateLimiter>,
    /// Metrics.
    pub counters: Arc<Counters>,
    /// Throughput and recent steps for the operations console.
    pub activity: Arc<console::Activity>,
}

impl AppState {
    /// State for the embedded `engine` (both contexts) with `config`.
    pub fn new(engine: Arc<Engine>, config: HttpConfig) -> Self {
        Self::for_node(Arc::new(Node::Embedded(engine)), config)
    }

    /// State for `node` (any role) with `config`.
    pub fn for_node(node: Arc<Node>, config: HttpConfig) -> Self {
        let limiter = Arc::new(auth::RateLimiter::new(config.rate_per_key, config.burst_per_key));
        // Outside a runtime (a router built for inspection) there is nothing to follow.
        let activity = if tokio::runtime::Handle::try_current().is_ok() {
            console::Activity::follow(node.watch())
        } else {
            Arc::default()
        };
        Self {
            node,
            config: Arc::new(config),
            in_flight: idempotency::InFlight::default(),
            limiter,
            counters: Arc::default(),
            activity,
        }
    }

    /// Now, in ms since the epoch, from the engine's clock.
    pub fn now(&self) -> crate::events::Timestamp {
        self.node.adapters().clock.now()
    }

    /// The embedded engine, in the `all` role.
    pub fn engine(&self) -> Option<&Arc<Engine>> {
        self.node.engine()
    }

    /// The e-commerce context.
    ///
    /// # Errors
    /// [`ApiError::NotFound`] when this process does not run it (its routes are not served here).
    pub fn ecommerce(&self) -> Result<&crate::ecommerce::Ecommerce, ApiError> {
        self.node.ecommerce().ok_or(ApiError::NotFound("route"))
    }

    /// The fulfillment context.
    ///
    /// # Errors
    /// [`ApiError::NotFound`] when this process does not run it (its routes are not served here).
    pub fn fulfillment(&self) -> Result<&crate::fulfillment::Fulfillment, ApiError> {
        self.node.fulfillment().ok_or(ApiError::NotFound("route"))
    }
}
