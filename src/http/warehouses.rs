//! `/v1/warehouses`: warehouses (admin) and their open pick tasks (operators).

use std::collections::BTreeSet;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use super::auth::Caller;
use super::dto::{
    PackQueue, PackQueueItem, PickTaskList, PickTaskResponse, ProblemResponse, WarehouseRequest, WarehouseResponse,
};
use super::{body, json, parse, respond, ApiError, AppState};
use crate::access::Role;
use crate::events::{BinCode, PickTaskId, WarehouseId};
use crate::fulfillment::warehouse::Warehouse;

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/warehouses", post(create))
        .route("/v1/warehouses/{id}/pick-tasks", get(pick_tasks))
        .route("/v1/warehouses/{id}/ready-to-pack", get(ready_to_pack))
}

/// Creates a warehouse or adds bins to it (admin).
#[utoipa::path(post, path = "/v1/warehouses", tag = "warehouses", request_body = WarehouseRequest,
    responses((status = 201, body = WarehouseResponse), (status = 403, body = ProblemResponse), (status = 422, body = ProblemResponse)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Admin])?;
    let request: WarehouseRequest = parse(&body(bytes)?)?;
    let bins: BTreeSet<BinCode> = request.bins.iter().map(|b| BinCode::parse(b)).collect::<Result<_, _>>()?;
    let warehouse = Warehouse::new(WarehouseId::parse(&request.id)?, &request.name, request.priority, bins)
        .map_err(|err| ApiError::invalid("invalid_warehouse", err))?;
    let saved = state.fulfillment()?.create_warehouse(warehouse).await?;
    let response = WarehouseResponse {
        id: saved.id.to_string(),
        name: saved.name,
        priority: saved.priority,
        bins: saved.bins.iter().map(ToString::to_string).collect(),
    };
    Ok(respond(json(StatusCode::CREATED, &response)?))
}

/// The warehouse `id`, if it exists.
fn known_warehouse(state: &AppState, id: &str) -> Result<WarehouseId, ApiError> {
    let warehouse = WarehouseId::parse(id).map_err(|_| ApiError::NotFound("warehouse"))?;
    if state.fulfillment()?.directory().warehouse(&warehouse).is_none() {
        return Err(ApiError::NotFound("warehouse"));
    }
    Ok(warehouse)
}

/// Pick task filter.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TaskQuery {
    /// Only `open` is supported.
    #[serde(default)]
    #[param(pattern = "^open$")]
    pub status: Option<String>,
}

/// Open pick tasks of a warehouse (operator, admin).
#[utoipa::path(get, path = "/v1/warehouses/{id}/pick-tasks", tag = "warehouse work", params(("id" = String, Path), TaskQuery),
    responses((status = 200, body = PickTaskList), (status = 403, body = ProblemResponse), (status = 404, body = ProblemResponse)),
    security(("bearer" = [])))]
pub async fn pick_tasks(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    query: Result<Query<TaskQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Admin, Role::Operator])?;
    let Query(query) = query.map_err(|err| ApiError::bad("invalid_query", err.body_text()))?;
    if query.status.as_deref().is_some_and(|s| s != "open") {
        return Err(ApiError::invalid("invalid_status", "only status=open is supported"));
    }
    let warehouse = known_warehouse(&state, &id)?;
    let tasks = state.fulfillment()?.open_pick_tasks(&warehouse).await?;
    let items = tasks
        .into_iter()
        .map(|(order, index, item)| PickTaskResponse {
            id: PickTaskId { fulfillment_order: order.id(), index }.to_string(),
            fulfillment_order_id: order.id().to_string(),
            warehouse_id: item.bin.warehouse.to_string(),
            bin: item.bin.code.to_string(),
            sku: item.sku.to_string(),
            quantity: item.units,
            status: "open".to_owned(),
            picked: None,
        })
        .collect();
    Ok(respond(json(StatusCode::OK, &PickTaskList { items })?))
}

/// Fulfillment orders of a warehouse whose picks are all confirmed, waiting to be packed (operator, admin).
#[utoipa::path(get, path = "/v1/warehouses/{id}/ready-to-pack", tag = "warehouse work", params(("id" = String, Path)),
    responses((status = 200, body = PackQueue), (status = 403, body = ProblemResponse), (status = 404, body = ProblemResponse)),
    security(("bearer" = [])))]
pub async fn ready_to_pack(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Admin, Role::Operator])?;
    let warehouse = known_warehouse(&state, &id)?;
    let items = state
        .fulfillment()?
        .ready_to_pack(&warehouse)
        .await?
        .iter()
        .map(|order| PackQueueItem {
            fulfillment_order_id: order.id().to_string(),
            order_id: order.order_id().to_string(),
            units: order.tasks().iter().filter_map(|task| task.picked).sum(),
        })
        .collect();
    Ok(respond(json(StatusCode::OK, &PackQueue { items })?))
}
