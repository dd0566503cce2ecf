//! What operators watch: the live stream of committed saga steps and the
//! books audit (stock conservation, payment ledger).

use std::collections::HashSet;
use std::convert::Infallible;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;
use utoipa::ToSchema;

use super::auth::Caller;
use super::dto::ProblemResponse;
use super::{json, respond, ApiError, AppState};
use crate::access::Role;

/// Step names one stream filter may list.
pub const STREAM_FILTER_MAX: usize = 64;

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/audit", get(audit)).route("/v1/stream/steps", get(steps))
}

/// The books, checked.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditResponse {
    /// Bins read.
    pub bins: usize,
    /// Whether stock balances: no bin invariant broken, nothing oversold.
    pub stock_balanced: bool,
    /// Units held, picked or shipped beyond what was received (must be 0).
    pub oversold_units: u64,
    /// What does not balance, one line each.
    pub stock_violations: Vec<String>,
    /// Whether the payment ledger balances (`true` when the gateway keeps no ledger).
    pub money_balanced: bool,
    /// The gateway's ledger breaks; absent when the gateway keeps no ledger.
    pub payment_violations: Option<Vec<String>>,
    /// Events committed and not yet acknowledged by the other context.
    pub outbox_pending: usize,
    /// Sagas not finished: orders, fulfillment orders and shipments with work left.
    pub open_sagas: usize,
    /// Peak resident memory of the server process, bytes (0 where unknown).
    pub rss_peak_bytes: u64,
}

/// Checks stock conservation in every bin and the gateway's ledger (admin).
#[utoipa::path(get, path = "/v1/audit", tag = "operations",
    responses((status = 200, body = AuditResponse), (status = 401, body = ProblemResponse), (status = 403, body = ProblemResponse)),
    security(("bearer" = [])))]
pub async fn audit(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    caller.require(&[Role::Admin])?;
    let audit = state.node.audit().await?;
    let (ecommerce, fulfillment) = state.node.outbox_lag();
    let (orders, fulfillment_orders, shipments) =
        state.node.open_sagas().await.map_err(|err| ApiError::Internal(err.to_string()))?;
    let response = AuditResponse {
        open_sagas: orders + fulfillment_orders + shipments,
        bins: audit.bins,
        stock_balanced: audit.stock_balanced(),
        money_balanced: audit.money_balanced(),
        oversold_units: audit.oversold_units,
        stock_violations: audit.stock_violations,
        payment_violations: audit.payment_violations,
        outbox_pending: ecommerce + fulfillment,
        rss_peak_bytes: crate::process::rss_peak_bytes(),
    };
    Ok(respond(json(StatusCode::OK, &response)?))
}

/// Which steps to stream.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    /// Comma-separated step names (`packed,stock_rejected`); every step when absent.
    pub steps: Option<String>,
}

/// One committed saga step, as streamed (`event: step`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StreamedStep {
    /// The order.
    pub order_id: String,
    /// Milliseconds since the epoch.
    pub at: u64,
    /// `ecommerce` or `fulfillment`.
    pub context: String,
    /// Step name.
    pub step: String,
    /// Whether it undoes an earlier step.
    pub compensation: bool,
}

impl From<crate::actors::saga_log::Progress> for StreamedStep {
    fn from(progress: crate::actors::saga_log::Progress) -> Self {
        StreamedStep {
            order_id: progress.order.to_string(),
            at: progress.step.at.as_millis(),
            context: progress.step.context.as_str().to_owned(),
            step: progress.step.name,
            compensation: progress.step.compensation,
        }
    }
}

/// Every saga step as it commits, as Server-Sent Events (admin, operator).
///
/// Each step is an `event: step` with a [`StreamedStep`] as data. A client
/// too slow to keep up gets an `event: lagged` with the number of steps it
/// missed (the saga log in the store stays complete).
#[utoipa::path(get, path = "/v1/stream/steps", tag = "operations",
    params(("steps" = Option<String>, Query, description = "comma-separated step names to keep")),
    responses((status = 200, description = "text/event-stream of saga steps"), (status = 401, body = ProblemResponse),
        (status = 403, body = ProblemResponse), (status = 422, body = ProblemResponse)),
    security(("bearer" = [])))]
pub async fn steps(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<StreamQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Admin, Role::Operator])?;
    let Query(query) = query.map_err(|err| ApiError::invalid("invalid_query", err.body_text()))?;
    let filter: Option<HashSet<String>> =
        query.steps.map(|text| text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect());
    if filter.as_ref().is_some_and(|f| f.len() > STREAM_FILTER_MAX) {
        return Err(ApiError::invalid("too_many_steps", format!("at most {STREAM_FILTER_MAX} step names")));
    }
    let receiver = state.node.watch();
    let stream = futures_util::stream::unfold((receiver, filter), |(mut receiver, filter)| async move {
        loop {
            let event = match receiver.recv().await {
                Ok(progress) => {
                    if filter.as_ref().is_some_and(|f| !f.contains(&progress.step.name)) {
                        continue;
                    }
                    let step = StreamedStep::from(progress);
                    Event::default().event("step").json_data(&step).unwrap_or_else(|_| Event::default())
                }
                Err(RecvError::Lagged(missed)) => Event::default().event("lagged").data(missed.to_string()),
                Err(RecvError::Closed) => return None,
            };
            return Some((Ok::<_, Infallible>(event), (receiver, filter)));
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()).into_response())
}
