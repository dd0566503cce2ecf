//! The axum edge: `/v1` routes, authentication, idempotency, errors, limits.
//!
//! The contexts know no HTTP; this module reaches them only through the
//! engine's handles. One file per resource, each with `router()`.
//! Every error is `application/problem+json` ([`ApiError`]).

pub mod auth;
pub mod carriers;
pub mod console;
pub mod customers;
pub mod dto;
pub mod error;
pub mod fulfillment;
pub mod idempotency;
pub mod inventory;
pub mod observe;
pub mod ops;
pub mod orders;
pub mod products;
pub mod state;
pub mod warehouses;

use std::future::Future;
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::rejection::BytesRejection;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Router;
use serde::de::DeserializeOwned;
use tower::ServiceBuilder;

pub use error::ApiError;
pub use state::{AppState, Counters, HttpConfig};

use crate::node::Role;

/// Largest request body, in bytes (64 KiB).
pub const BODY_LIMIT_BYTES: usize = 64 * 1024;

/// The body bytes, or the right problem (413 over the limit).
///
/// # Errors
/// [`ApiError::TooLarge`] or [`ApiError::BadRequest`].
pub fn body(bytes: Result<axum::body::Bytes, BytesRejection>) -> Result<axum::body::Bytes, ApiError> {
    bytes.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(BODY_LIMIT_BYTES)
        } else {
            ApiError::bad("unreadable_body", rejection.body_text())
        }
    })
}

/// Parses a JSON body: malformed → 400 `malformed_json`; wrong shape or unknown field → 422 `invalid_body`.
///
/// # Errors
/// As above.
///
/// A number written with a zero fraction (`3.0`) is the integer it equals,
/// as JSON Schema has it: it is accepted wherever an integer is.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let classify = |err: serde_json::Error| match err.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof | serde_json::error::Category::Io => {
            ApiError::bad("malformed_json", err)
        }
        serde_json::error::Category::Data => ApiError::invalid("invalid_body", err),
    };
    match serde_json::from_slice(bytes) {
        Ok(parsed) => Ok(parsed),
        // Only a body the type refused takes the slower road: read it as a
        // value, turn integral floats into integers, and try again.
        Err(err) if err.classify() == serde_json::error::Category::Data => {
            let mut value: serde_json::Value = serde_json::from_slice(bytes).map_err(classify)?;
            if !integral_numbers(&mut value) {
                return Err(classify(err));
            }
            serde_json::from_value(value).map_err(classify)
        }
        Err(err) => Err(classify(err)),
    }
}

/// Rewrites every float with no fraction that fits an `i64` or `u64` as that
/// integer; whether it rewrote any.
fn integral_numbers(value: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::Number(number) if number.is_f64() => {
            let Some(float) = number.as_f64() else { return false };
            // 2^63 and 2^64 are exact in f64; below them the casts are exact for integral values.
            if float.fract() == 0.0 && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&float) {
                *value = Value::from(float as i64);
                true
            } else if float.fract() == 0.0 && (0.0..1.844_674_407_370_955_2e19).contains(&float) {
                *value = Value::from(float as u64);
                true
            } else {
                false
            }
        }
        // Every element is visited (no short circuit).
        Value::Array(items) => items.iter_mut().fold(false, |any, item| integral_numbers(item) | any),
        Value::Object(fields) => fields.values_mut().fold(false, |any, item| integral_numbers(item) | any),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => false,
    }
}

/// A JSON response.
pub fn json<T: serde::Serialize>(status: StatusCode, value: &T) -> Result<(StatusCode, Vec<u8>), ApiError> {
    serde_json::to_vec(value).map(|bytes| (status, bytes)).map_err(|err| ApiError::Internal(err.to_string()))
}

/// Sends JSON bytes.
pub fn respond((status, bytes): (StatusCode, Vec<u8>)) -> axum::response::Response {
    (status, [(axum::http::header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

async fn overloaded(err: tower::BoxError) -> ApiError {
    if err.is::<tower::timeout::error::Elapsed>() {
        ApiError::Timeout
    } else if err.is::<tower::load_shed::error::Overloaded>() {
        ApiError::Unavailable("the server is at capacity; retry shortly")
    } else {
        ApiError::Internal(err.to_string())
    }
}

async fn count(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use std::sync::atomic::Ordering;
    let response = next.run(request).await;
    let counter = match response.status().as_u16() {
        200..=299 => &state.counters.responses_2xx,
        400..=499 => &state.counters.responses_4xx,
        _ => &state.counters.responses_5xx,
    };
    counter.fetch_add(1, Ordering::Relaxed);
    response
}

async fn not_found() -> ApiError {
    ApiError::NotFound("route")
}

/// Every route, with the edge's limits.
pub fn router(state: AppState) -> Router {
    let limits = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(overloaded))
        .load_shed()
        .concurrency_limit(state.config.concurrency_max)
        .timeout(state.config.request_timeout);
    let role = state.node.role();
    let mut routes = Router::new().merge(ops::router()).merge(observe::router());
    if matches!(role, Role::All | Role::Ecommerce) {
        routes = routes
            .merge(products::router())
            .merge(customers::router())
            .merge(orders::router())
            .merge(crate::web::shop_router());
    }
    if matches!(role, Role::All | Role::Fulfillment) {
        routes = routes
            .merge(warehouses::router())
            .merge(inventory::router())
            .merge(fulfillment::router())
            .merge(carriers::router())
            .merge(console::stock_router());
    }
    if role == Role::All {
        // The console reads both contexts at once.
        routes = routes.merge(console::summary_router()).merge(crate::web::console_router());
    }
    routes
        .merge(crate::web::assets_router())
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .layer(axum::middleware::from_fn_with_state(state.clone(), count))
        .layer(limits)
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` completes, then stops taking
/// requests and lets those running finish.
///
/// # Errors
/// An I/O error from the listener.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let pruner = {
        let state = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(3600));
            loop {
                tick.tick().await;
                let now = state.now().as_millis();
                let stores = [state.node.ecommerce().map(|c| c.store()), state.node.fulfillment().map(|c| c.store())];
                for store in stores.into_iter().flatten() {
                    match idempotency::prune(store, now).await {
                        Ok(n) if n > 0 => tracing::info!(pruned = n, "idempotency records pruned"),
                        Ok(_) => {}
                        Err(err) => tracing::warn!(cause = %err, "idempotency pruning failed"),
                    }
                }
            }
        })
    };
    let result = axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await;
    pruner.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Body {
        quantity: u32,
        delta: i32,
    }

    #[test]
    fn integral_floats_are_integers_and_fractions_are_refused() {
        let body: Body = parse(br#"{"quantity": 3.0, "delta": -2.0}"#).unwrap();
        assert_eq!(body, Body { quantity: 3, delta: -2 });
        assert!(matches!(parse::<Body>(br#"{"quantity": 3.5, "delta": 1}"#), Err(ApiError::Unprocessable { .. })));
        assert!(matches!(parse::<Body>(br#"{"quantity": 1e300, "delta": 1}"#), Err(ApiError::Unprocessable { .. })));
        assert!(matches!(parse::<Body>(br#"{"quantity": "#), Err(ApiError::BadRequest { .. })));
    }
}
