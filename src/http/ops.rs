//! Operations: `/healthz`, `/readyz`, `/metrics` (Prometheus text) and `/openapi.json`.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use utoipa::OpenApi;

use super::{ApiError, AppState};

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(health))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
}

/// The OpenAPI document, generated from the handlers and DTOs.
#[derive(OpenApi)]
#[openapi(
    info(title = "Orderdock API", description = "Order intake, unified tracking, inventory and warehouse work."),
    paths(
        super::products::create, super::products::search, super::products::read,
        super::customers::create,
        super::warehouses::create, super::warehouses::pick_tasks, super::warehouses::ready_to_pack,
        super::inventory::receive, super::inventory::adjust, super::inventory::levels,
        super::orders::create, super::orders::list, super::orders::read, super::orders::cancel,
        super::fulfillment::confirm_pick, super::fulfillment::pack, super::fulfillment::create, super::fulfillment::read,
        super::carriers::event,
        super::observe::audit, super::observe::steps, super::orders::stream, super::products::availability,
        super::console::summary, super::console::stock,
        health, ready, metrics,
    ),
    modifiers(&BearerAuth, &ProblemResponses)
)]
#[derive(Debug)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Errors are `application/problem+json`, and the edge's limits apply to
/// every route: this documents both on every operation, so the document
/// matches what the server answers.
struct ProblemResponses;

/// The Idempotency-Key header's format, as [`super::idempotency`] checks it.
fn idempotency_key_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
    let max = super::idempotency::KEY_LEN_MAX;
    Schema::Object(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(max))
            .pattern(Some(format!("^[!-~]{{1,{max}}}$")))
            .build(),
    )
}

impl utoipa::Modify for ProblemResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{Content, Ref, RefOr, ResponseBuilder};
        const PROBLEM: &str = "application/problem+json";
        let problem = |description: &str| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(PROBLEM, Content::new(Some(Ref::from_schema_name("ProblemResponse"))))
                    .build(),
            )
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                (&mut item.get, false),
                (&mut item.post, true),
                (&mut item.put, true),
                (&mut item.delete, false),
                (&mut item.patch, true),
            ];
            for (operation, has_body) in operations {
                let Some(operation) = operation.as_mut() else { continue };
                for parameter in operation.parameters.iter_mut().flatten() {
                    if let RefOr::T(parameter) = parameter {
                        if parameter.name == super::idempotency::HEADER {
                            parameter.description = Some(format!(
                                "1 to {} printable ASCII characters, no spaces; the same key replays the first answer",
                                super::idempotency::KEY_LEN_MAX
                            ));
                            parameter.schema = Some(RefOr::T(idempotency_key_schema()));
                        }
                    }
                }
                let responses = &mut operation.responses.responses;
                for (status, response) in responses.iter_mut() {
                    if let (true, RefOr::T(response)) = (status.starts_with('4') || status.starts_with('5'), response) {
                        if let Some(content) = response.content.shift_remove("application/json") {
                            response.content.insert(PROBLEM.to_owned(), content);
                        }
                    }
                }
                let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
                let mut standard =
                    vec![("408", "the request took too long"), ("503", "at capacity or a store is unavailable")];
                if secured {
                    standard.extend([
                        ("401", "no or unknown API key"),
                        ("403", "the key's role may not do this"),
                        ("429", "rate limit of the key"),
                    ]);
                }
                let has_query = operation.parameters.as_ref().is_some_and(|parameters| {
                    parameters.iter().any(|p| {
                        matches!(p, RefOr::T(p) if matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Query))
                    })
                });
                if has_query {
                    standard.extend([
                        ("400", "an unknown or unreadable query parameter"),
                        ("422", "an invalid query value"),
                    ]);
                }
                if has_body {
                    standard.extend([
                        ("400", "unreadable or malformed body"),
                        ("413", "body over 64 KiB"),
                        ("422", "invalid body"),
                    ]);
                }
                if path.contains('{') {
                    standard.push(("404", "not found"));
                }
                if path.starts_with("/v1/carriers/") && !secured {
                    standard.push(("401", "missing or bad signature"));
                }
                for (status, description) in standard {
                    responses.entry(status.to_owned()).or_insert_with(|| problem(description));
                }
            }
        }
    }
}

async fn openapi() -> Result<Response, ApiError> {
    let body = ApiDoc::openapi().to_json().map_err(|err| ApiError::Internal(err.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "alive")))]
pub async fn health() -> &'static str {
    "ok"
}

/// The stores of the contexts this process runs, named.
fn stores(state: &AppState) -> Vec<(&'static str, crate::persistence::Store)> {
    [
        state.node.ecommerce().map(|c| ("ecommerce", c.store().clone())),
        state.node.fulfillment().map(|c| ("fulfillment", c.store().clone())),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Readiness: this process's stores answer.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200, description = "ready"), (status = 503, description = "not ready")))]
pub async fn ready(State(state): State<AppState>) -> Response {
    let stores = stores(&state);
    let ok = tokio::task::spawn_blocking(move || stores.iter().all(|(_, s)| s.stats().is_ok())).await.unwrap_or(false);
    if ok {
        (StatusCode::OK, "ready").into_response()
    } else {
        ApiError::Unavailable("a store is not answering").into_response()
    }
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text format")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let counters = &state.counters;
    let (ecommerce_lag, fulfillment_lag) = state.node.outbox_lag();
    let orders_live = match state.node.ecommerce() {
        Some(ecommerce) => ecommerce.live_actors().await,
        None => 0,
    };
    let (bins_live, fulfillment_live, shipments_live) = match state.node.fulfillment() {
        Some(fulfillment) => fulfillment.live_actors().await,
        None => (0, 0, 0),
    };
    let stores = stores(&state);
    let stats =
        tokio::task::spawn_blocking(move || stores.iter().map(|(name, s)| (*name, s.stats().ok())).collect::<Vec<_>>())
            .await
            .unwrap_or_default();
    let mut text = String::new();
    let mut line = |name: &str, kind: &str, help: &str, samples: &[(&str, u64)]| {
        text.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for (labels, value) in samples {
            text.push_str(&format!("{name}{labels} {value}\n"));
        }
    };
    line(
        "orderdock_orders_created_total",
        "counter",
        "Orders created through the API.",
        &[("", counters.orders_created.load(Ordering::Relaxed))],
    );
    line(
        "orderdock_http_responses_total",
        "counter",
        "HTTP responses by status class.",
        &[
            ("{class=\"2xx\"}", counters.responses_2xx.load(Ordering::Relaxed)),
            ("{class=\"4xx\"}", counters.responses_4xx.load(Ordering::Relaxed)),
            ("{class=\"5xx\"}", counters.responses_5xx.load(Ordering::Relaxed)),
        ],
    );
    line(
        "orderdock_outbox_pending",
        "gauge",
        "Events committed and not yet acknowledged by the other context.",
        &[("{context=\"ecommerce\"}", ecommerce_lag as u64), ("{context=\"fulfillment\"}", fulfillment_lag as u64)],
    );
    line(
        "orderdock_actors_live",
        "gauge",
        "Live aggregate actors by kind.",
        &[
            ("{kind=\"order\"}", orders_live as u64),
            ("{kind=\"fulfillment_order\"}", fulfillment_live as u64),
            ("{kind=\"bin\"}", bins_live as u64),
            ("{kind=\"shipment\"}", shipments_live as u64),
        ],
    );
    let commits: Vec<(String, u64)> =
        stats.iter().filter_map(|(c, s)| s.as_ref().map(|s| (format!("{{context=\"{c}\"}}"), s.commits))).collect();
    let commits: Vec<(&str, u64)> = commits.iter().map(|(l, v)| (l.as_str(), *v)).collect();
    line("orderdock_store_commits_total", "counter", "Group commits (fsync'd transactions).", &commits);
    let open: Vec<(String, u64)> =
        stats.iter().filter_map(|(c, s)| s.as_ref().map(|s| (format!("{{context=\"{c}\"}}"), s.open_len))).collect();
    let open: Vec<(&str, u64)> = open.iter().map(|(l, v)| (l.as_str(), *v)).collect();
    line("orderdock_sagas_open", "gauge", "Aggregates with saga work left.", &open);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}
