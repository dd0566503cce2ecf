//! The HTTP side of a load run: drives a running `orderdock serve` through
//! its public API, one keep-alive HTTP/1.1 connection per worker. Setup
//! creates the products, a warehouse per `--warehouses`, the stock and one
//! customer (whose key places the orders); the saga's progress comes from
//! the server's step stream (`GET /v1/stream/steps`), the balances from
//! `GET /v1/audit`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};

use super::{sku_name, Checks, LoadConfig, LoadError, Placed, Placer, Session, Tracker, Until, CANCELLING_STEPS};
use orderdock::client::{Connection, Reply};
use orderdock::events::{ContextName, OrderId};

/// Attempts per placement when the server answers 409 (in flight), 429 or
/// 503, or the connection drops: the same Idempotency-Key each time.
pub(crate) const PLACE_ATTEMPTS: u32 = 5;
/// Pause before the first retry; doubled each time.
pub(crate) const RETRY_BACKOFF: Duration = Duration::from_millis(20);

/// A server to drive.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// `http://host:port` (no path).
    pub(crate) url: String,
    /// An admin API key (for setup, the stream and the audit).
    pub(crate) api_key: String,
}

impl Target {
    /// `url` must be `http://host:port`.
    ///
    /// # Errors
    /// [`LoadError::Target`] naming what is wrong.
    pub(crate) fn new(url: &str, api_key: &str) -> Result<Target, LoadError> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| LoadError::Target(format!("{url:?}: only http:// targets are supported")))?;
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() || authority.contains('/') {
            return Err(LoadError::Target(format!("{url:?}: give http://host:port without a path")));
        }
        if api_key.trim().is_empty() {
            return Err(LoadError::Target("an admin API key is needed (--api-key or the server's admin.key)".into()));
        }
        Ok(Target { url: format!("http://{authority}"), api_key: api_key.trim().to_owned() })
    }

    fn authority(&self) -> &str {
        self.url.trim_start_matches("http://")
    }
}

fn expect(reply: Result<Reply, String>, what: &str, ok: &[StatusCode]) -> Result<Value, LoadError> {
    let (status, body) = reply.map_err(|e| LoadError::Target(format!("{what}: {e}")))?;
    if !ok.contains(&status) {
        let text = String::from_utf8_lossy(&body);
        return Err(LoadError::Target(format!("{what}: {status}: {text}")));
    }
    Ok(serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn idempotency_key() -> Result<String, LoadError> {
    orderdock::events::ids::random_secret()
        .map(|k| format!("load-{k:032x}"))
        .map_err(|e| LoadError::Setup(e.to_string()))
}

/// A server under load.
#[derive(Debug)]
pub(crate) struct Remote {
    target: Target,
    fulfillment: Option<Target>,
    customer_key: Arc<str>,
    skus: Arc<[String]>,
    stream: Option<tokio::task::JoinHandle<()>>,
}

impl Remote {
    /// Checks the server answers, stocks it as `config` says, creates the
    /// ordering customer and subscribes to its step stream.
    ///
    /// # Errors
    /// [`LoadError::Target`] when the server is unreachable or refuses.
    /// With `fulfillment` (a split deployment), `target` is the e-commerce
    /// service and the warehouses and stock are created on `fulfillment`.
    pub(crate) async fn start(
        target: Target,
        fulfillment: Option<Target>,
        config: &LoadConfig,
        tracker: Arc<Tracker>,
    ) -> Result<Remote, LoadError> {
        let key = target.api_key.clone();
        let mut connection = Connection::new(target.authority());
        let stock_side = fulfillment.clone().unwrap_or_else(|| target.clone());
        let mut stock_connection = Connection::new(stock_side.authority());
        let stock_key = stock_side.api_key.clone();
        let created = StatusCode::CREATED;
        let mut checks = vec![(&mut connection, &key)];
        if fulfillment.is_some() {
            checks.push((&mut stock_connection, &stock_key));
        }
        for (connection, key) in checks {
            expect(
                connection.call(Method::GET, "/v1/audit", key, &[], None).await,
                "checking the admin key",
                &[StatusCode::OK],
            )?;
        }
        let skus: Arc<[String]> = (0..config.skus.max(1)).map(sku_name).collect();
        for (n, sku) in skus.iter().enumerate() {
            let body =
                json!({"sku": sku, "name": format!("Product {n}"), "price": {"amount": 1000, "currency": "EUR"}});
            let reply = connection.call(Method::POST, "/v1/products", &key, &[], Some(&body)).await;
            expect(reply, "creating a product", &[StatusCode::OK, created])?;
        }
        let bins: Vec<String> = (0..skus.len()).map(|n| format!("B-{n:04}")).collect();
        for (w, units) in super::embedded::split(config.stock, config.warehouses).into_iter().enumerate() {
            let warehouse = format!("wh-{w}");
            let body = json!({"id": warehouse, "name": format!("Warehouse {w}"), "priority": w, "bins": bins});
            let reply = stock_connection.call(Method::POST, "/v1/warehouses", &stock_key, &[], Some(&body)).await;
            expect(reply, "creating a warehouse", &[StatusCode::OK, created])?;
            if units == 0 {
                continue;
            }
            for (sku, bin) in skus.iter().zip(&bins) {
                let body = json!({"warehouse_id": warehouse, "bin": bin, "sku": sku, "quantity": units});
                let idempotency = idempotency_key()?;
                let headers = [("Idempotency-Key", idempotency.as_str())];
                let reply = stock_connection
                    .call(Method::POST, "/v1/inventory/receipts", &stock_key, &headers, Some(&body))
                    .await;
                expect(reply, "receiving stock", &[StatusCode::OK, created])?;
            }
        }
        let body = json!({"name": "Load Tester", "email": "load@example.invalid"});
        let customer = expect(
            connection.call(Method::POST, "/v1/customers", &key, &[], Some(&body)).await,
            "creating the customer",
            &[created],
        )?;
        let customer_key: Arc<str> = customer["api_key"]
            .as_str()
            .ok_or_else(|| LoadError::Target("the customer came back without an api_key".into()))?
            .into();
        let split = fulfillment.is_some();
        let stream = if config.until == Until::Placed {
            None
        } else {
            Some(subscribe(&target, config.until, split, tracker).await?)
        };
        Ok(Remote { target, fulfillment, customer_key, skus, stream })
    }
}

/// Opens the step stream (filtered to the milestone and the cancelling
/// steps) and feeds `tracker` from it. Returns once the server accepted the
/// subscription, so no step committed afterwards is missed. In a `split`
/// deployment the e-commerce service streams only its own steps: the
/// milestone is its e-commerce twin ([`Until::ecommerce_step`]).
async fn subscribe(
    target: &Target,
    until: Until,
    split: bool,
    tracker: Arc<Tracker>,
) -> Result<tokio::task::JoinHandle<()>, LoadError> {
    let mut steps: Vec<&str> = CANCELLING_STEPS.to_vec();
    steps.push(if split { until.ecommerce_step() } else { until.step().0 });
    let path = format!("/v1/stream/steps?steps={}", steps.join(","));
    let request = Request::builder()
        .method(Method::GET)
        .uri(&path)
        .header(header::HOST, target.authority())
        .header(header::AUTHORIZATION, format!("Bearer {}", target.api_key))
        .body(Full::new(Bytes::new()))
        .map_err(|e| LoadError::Target(e.to_string()))?;
    let mut connection = Connection::new(target.authority());
    let response = connection.send(request).await.map_err(|e| LoadError::Target(format!("step stream: {e}")))?;
    if response.status() != StatusCode::OK {
        return Err(LoadError::Target(format!("step stream: {}", response.status())));
    }
    let mut body = response.into_body();
    Ok(tokio::spawn(async move {
        let _keep = connection;
        let mut buffer: Vec<u8> = Vec::new();
        while let Some(Ok(frame)) = body.frame().await {
            let Ok(data) = frame.into_data() else { continue };
            buffer.extend_from_slice(&data);
            while let Some(end) = buffer.windows(2).position(|w| w == b"\n\n") {
                let event: Vec<u8> = buffer.drain(..end + 2).collect();
                on_event(&String::from_utf8_lossy(&event), until, split, &tracker);
            }
        }
    }))
}

/// Handles one SSE event (`event:` and `data:` lines).
fn on_event(text: &str, until: Until, split: bool, tracker: &Tracker) {
    let (mut kind, mut data) = ("message", String::new());
    for line in text.lines() {
        if let Some(value) = line.strip_prefix("event:") {
            kind = value.trim();
        } else if let Some(value) = line.strip_prefix("data:") {
            data.push_str(value.trim_start());
        }
    }
    match kind {
        "step" => {
            let Ok(step) = serde_json::from_str::<Value>(&data) else { return };
            let order = step["order_id"].as_str().and_then(|id| id.parse::<OrderId>().ok());
            let context = match step["context"].as_str() {
                Some("ecommerce") => Some(ContextName::Ecommerce),
                Some("fulfillment") => Some(ContextName::Fulfillment),
                _ => None,
            };
            if let (Some(order), Some(context), Some(name)) = (order, context, step["step"].as_str()) {
                if split && context == ContextName::Ecommerce && name == until.ecommerce_step() {
                    let (milestone, milestone_context) = until.step();
                    tracker.step(until, order, milestone_context, milestone);
                } else {
                    tracker.step(until, order, context, name);
                }
            }
        }
        "lagged" => tracing::warn!(missed = %data, "the step stream lagged; those orders will time out"),
        _ => {}
    }
}

/// Places orders over one connection with the customer's key.
#[derive(Debug)]
pub(crate) struct RemotePlacer {
    connection: Connection,
    key: Arc<str>,
    skus: Arc<[String]>,
}

impl Placer for RemotePlacer {
    async fn place(&mut self, n: u64) -> Placed {
        let sku = &self.skus[(n % self.skus.len() as u64) as usize];
        let body = json!({
            "lines": [{"sku": sku, "quantity": 1}],
            "ship_to": {"name": "Load Tester", "line1": "1 Bench St", "city": "Benchville", "postal_code": "00000", "country": "GB"},
            "payment": {"token": "tok_visa"},
        });
        let Ok(idempotency) = idempotency_key() else { return Placed::Failed("no randomness".into()) };
        let headers = [("Idempotency-Key", idempotency.as_str())];
        let mut backoff = RETRY_BACKOFF;
        let mut last = String::new();
        for _ in 0..PLACE_ATTEMPTS {
            match self.connection.call(Method::POST, "/v1/orders", &self.key, &headers, Some(&body)).await {
                Ok((StatusCode::CREATED, bytes)) => {
                    let Ok(order) = serde_json::from_slice::<Value>(&bytes) else {
                        return Placed::Failed("unreadable order".into());
                    };
                    return match (
                        order["id"].as_str().and_then(|id| id.parse::<OrderId>().ok()),
                        order["status"].as_str(),
                    ) {
                        (_, Some("cancelled")) => Placed::Cancelled,
                        (Some(id), _) => Placed::Accepted(id),
                        (None, _) => Placed::Failed("the order came back without an id".into()),
                    };
                }
                Ok((status, bytes))
                    if matches!(
                        status,
                        StatusCode::CONFLICT | StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
                    ) =>
                {
                    last = format!("{status}: {}", String::from_utf8_lossy(&bytes));
                }
                Ok((status, bytes)) => return Placed::Failed(format!("{status}: {}", String::from_utf8_lossy(&bytes))),
                Err(cause) => last = cause,
            }
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
        Placed::Failed(last)
    }
}

impl Session for Remote {
    type Placer = RemotePlacer;

    async fn placer(&self) -> Result<RemotePlacer, LoadError> {
        Ok(RemotePlacer {
            connection: Connection::new(self.target.authority()),
            key: self.customer_key.clone(),
            skus: self.skus.clone(),
        })
    }

    fn commits(&self) -> Option<u64> {
        None
    }

    async fn finish(mut self) -> Checks {
        if let Some(stream) = self.stream.take() {
            stream.abort();
        }
        // Wait (bounded) for every server's outbox to drain, then read the books:
        // stock where fulfillment runs, money where e-commerce runs.
        let deadline = tokio::time::Instant::now() + super::embedded::SETTLE_TIMEOUT;
        let ecommerce = settled_audit(&self.target, deadline).await;
        let fulfillment = match &self.fulfillment {
            Some(fulfillment) => settled_audit(fulfillment, deadline).await,
            None => ecommerce.clone(),
        };
        let (Some(ecommerce), Some(fulfillment)) = (ecommerce, fulfillment) else { return Checks::default() };
        Checks {
            stock_balanced: fulfillment["stock_balanced"].as_bool().unwrap_or(false),
            money_balanced: ecommerce["money_balanced"].as_bool().unwrap_or(false),
            oversold_units: fulfillment["oversold_units"].as_u64().unwrap_or(0),
            rss_peak_bytes: ecommerce["rss_peak_bytes"].as_u64().unwrap_or(0),
        }
    }
}

/// The audit of `target` once its outbox is empty (or at `deadline`); `None` if it cannot be read.
async fn settled_audit(target: &Target, deadline: tokio::time::Instant) -> Option<Value> {
    let mut connection = Connection::new(target.authority());
    loop {
        let reply = connection.call(Method::GET, "/v1/audit", &target.api_key, &[], None).await;
        match expect(reply, "reading the audit", &[StatusCode::OK]) {
            Ok(audit) => {
                let pending = audit["outbox_pending"].as_u64().unwrap_or(0);
                if pending == 0 || tokio::time::Instant::now() >= deadline {
                    return Some(audit);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(err) => {
                tracing::warn!(cause = %err, "the audit failed");
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_must_be_plain_http_with_a_key() {
        assert!(Target::new("https://127.0.0.1:1", "k").is_err());
        assert!(Target::new("http://127.0.0.1:1/v1", "k").is_err());
        assert!(Target::new("http://127.0.0.1:1", " ").is_err());
        assert!(Target::new("http://127.0.0.1:1/", "k").is_ok());
    }
}
