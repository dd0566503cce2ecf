//! `/v1/inventory`: receipts, adjustments and stock levels (operators, admins).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

use super::auth::Caller;
use super::dto::{AdjustmentRequest, InventoryResponse, LocationLevel, ProblemResponse, ReceiptRequest};
use super::idempotency::Admission;
use super::{body, json, parse, ApiError, AppState};
use crate::access::Role;
use crate::events::{BinCode, BinId, Sku, WarehouseId};
use crate::fulfillment::bin::RECEIPT_UNITS_MAX;

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/inventory/receipts", post(receive))
        .route("/v1/inventory/adjustments", post(adjust))
        .route("/v1/inventory/{sku}", get(levels))
}

fn bin(warehouse: &str, code: &str) -> Result<BinId, ApiError> {
    Ok(BinId::new(WarehouseId::parse(warehouse)?, BinCode::parse(code)?))
}

async fn inventory(state: &AppState, sku: &Sku) -> Result<InventoryResponse, ApiError> {
    let levels = state.fulfillment()?.stock(sku).await?;
    let locations: Vec<LocationLevel> = levels
        .iter()
        .map(|l| LocationLevel {
            warehouse_id: l.bin.warehouse.to_string(),
            bin: l.bin.code.to_string(),
            on_hand: l.on_hand,
            reserved: l.reserved + l.picked,
            available: l.available,
        })
        .collect();
    Ok(InventoryResponse {
        sku: sku.to_string(),
        on_hand: locations.iter().map(|l| l.on_hand).sum(),
        reserved: locations.iter().map(|l| l.reserved).sum(),
        available: locations.iter().map(|l| l.available).sum(),
        locations,
    })
}

/// A stock change to a bin.
enum StockChange {
    Receive(u32),
    Adjust(i32),
}

/// Runs one idempotent stock change: admit the key, validate, apply the change
/// with the key's record in the same transaction, answer with the SKU's stock.
async fn change_stock(
    state: &AppState,
    caller: &Caller,
    route: &str,
    headers: &HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
    decide: impl FnOnce(&[u8]) -> Result<(BinId, Sku, StockChange), ApiError>,
) -> Result<Response, ApiError> {
    let principal = caller.require(&[Role::Admin, Role::Operator])?;
    let bytes = body(bytes)?;
    let store = state.fulfillment()?.store().clone();
    let claim =
        match state.in_flight.admit(&store, &principal.key_id, route, headers, &bytes, state.now().as_millis())? {
            Admission::Replay(response) => return Ok(response),
            Admission::Run(claim) => claim,
        };
    let (bin, sku, change) = decide(&bytes)?;
    if claim.resource().is_none() {
        let record = Some(claim.record(&bin.to_string()));
        let bins = state.fulfillment()?.bins();
        match change {
            StockChange::Receive(units) => bins.receive_recorded(&bin, &sku, units, record).await?,
            StockChange::Adjust(delta) => bins.adjust_recorded(&bin, &sku, delta, record).await?,
        };
    }
    let (status, body) = json(StatusCode::CREATED, &inventory(state, &sku).await?)?;
    claim.complete(&bin.to_string(), status, body).await
}

/// Receives units into a bin (operator, admin; Idempotency-Key required).
#[utoipa::path(post, path = "/v1/inventory/receipts", tag = "inventory", request_body = ReceiptRequest,
    params(("Idempotency-Key" = String, Header)),
    responses((status = 201, body = InventoryResponse), (status = 400, body = ProblemResponse), (status = 403, body = ProblemResponse),
        (status = 409, body = ProblemResponse), (status = 422, body = ProblemResponse)),
    security(("bearer" = [])))]
pub async fn receive(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    change_stock(&state, &caller, "receipts", &headers, bytes, |bytes| {
        let request: ReceiptRequest = parse(bytes)?;
        if request.quantity == 0 || request.quantity > RECEIPT_UNITS_MAX {
            return Err(ApiError::invalid("invalid_quantity", format!("quantity must be 1 to {RECEIPT_UNITS_MAX}")));
        }
        Ok((
            bin(&request.warehouse_id, &request.bin)?,
            Sku::parse(&request.sku)?,
            StockChange::Receive(request.quantity),
        ))
    })
    .await
}

/// Corrects a bin's count (operator, admin; Idempotency-Key required).
#[utoipa::path(post, path = "/v1/inventory/adjustments", tag = "inventory", request_body = AdjustmentRequest,
    params(("Idempotency-Key" = String, Header)),
    responses((status = 201, body = InventoryResponse), (status = 400, body = ProblemResponse), (status = 409, body = ProblemResponse), (status = 422, body = ProblemResponse)),
    security(("bearer" = [])))]
pub async fn adjust(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    change_stock(&state, &caller, "adjustments", &headers, bytes, |bytes| {
        let request: AdjustmentRequest = parse(bytes)?;
        if request.delta == 0 || request.delta.unsigned_abs() > RECEIPT_UNITS_MAX {
            return Err(ApiError::invalid(
                "invalid_quantity",
                format!("delta must be non-zero and at most {RECEIPT_UNITS_MAX} units either way"),
            ));
        }
        Ok((bin(&request.warehouse_id, &request.bin)?, Sku::parse(&request.sku)?, StockChange::Adjust(request.delta)))
    })
    .await
}

/// Stock of a SKU in every bin (operator, admin).
#[utoipa::path(get, path = "/v1/inventory/{sku}", tag = "inventory", params(("sku" = String, Path)),
    responses((status = 200, body = InventoryResponse), (status = 403, body = ProblemResponse)),
    security(("bearer" = [])))]
pub async fn levels(
    State(state): State<AppState>,
    caller: Caller,
    Path(sku): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Admin, Role::Operator])?;
    let sku = Sku::parse(&sku).map_err(|_| ApiError::NotFound("sku"))?;
    Ok(super::respond(json(StatusCode::OK, &inventory(&state, &sku).await?)?))
}
