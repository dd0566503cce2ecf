//! Warehouse work (`/v1/pick-tasks`, `/v1/fulfillment-orders`) and channel
//! intake (`/v1/fulfillment/orders`).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

use super::auth::Caller;
use super::dto::{self, ChannelOrderRequest, ConfirmPickRequest, FulfillmentOrderResponse, ProblemResponse};
use super::error::missing;
use super::idempotency::Admission;
use super::{body, json, parse, respond, ApiError, AppState};
use crate::access::Role;
use crate::events::{Address, Channel, EventLine, FulfillmentOrderId, OrderId, PickTaskId, Quantity, Sku};
use crate::fulfillment::fulfillment_order::state::NewFulfillmentOrder;
use crate::fulfillment::FulfillmentOrder;

/// Longest external reference of a channel order, in characters.
pub const EXTERNAL_ID_LEN_MAX: usize = 128;

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/pick-tasks/{id}/confirm", post(confirm_pick))
        .route("/v1/fulfillment-orders/{id}/pack", post(pack))
        .route("/v1/fulfillment/orders", post(create))
        .route("/v1/fulfillment/orders/{id}", get(read))
}

async fn response(state: &AppState, order: &FulfillmentOrder) -> Result<FulfillmentOrderResponse, ApiError> {
    let shipments = state.fulfillment()?.shipments_of(order).await?;
    // Fulfillment's own steps are in its own store.
    let steps = crate::engine::Contexts { ecommerce: None, fulfillment: Some(state.fulfillment()?) }
        .timeline(order.order_id())
        .await;
    Ok(FulfillmentOrderResponse {
        id: order.id().to_string(),
        order_id: order.order_id().to_string(),
        fulfillment: dto::fulfillment(order, &shipments),
        steps: dto::steps(&steps),
    })
}

/// Confirms a pick; fewer units than the task's quantity is a short pick (operator, admin).
#[utoipa::path(post, path = "/v1/pick-tasks/{id}/confirm", tag = "warehouse work", request_body = ConfirmPickRequest, params(("id" = String, Path)),
    responses((status = 200, body = FulfillmentOrderResponse), (status = 404, body = ProblemResponse), (status = 409, body = ProblemResponse), (status = 422, body = ProblemResponse)),
    security(("bearer" = [])))]
pub async fn confirm_pick(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Admin, Role::Operator])?;
    let task: PickTaskId = id.parse().map_err(|_| ApiError::NotFound("pick task"))?;
    let request: ConfirmPickRequest = parse(&body(bytes)?)?;
    let order = state.fulfillment()?.orders().confirm_pick(task, request.picked).await.map_err(missing("pick task"))?;
    Ok(respond(json(StatusCode::OK, &response(&state, &order).await?)?))
}

/// Packs a fulfillment order into shipments (operator, admin).
#[utoipa::path(post, path = "/v1/fulfillment-orders/{id}/pack", tag = "warehouse work", params(("id" = String, Path)),
    responses((status = 200, body = FulfillmentOrderResponse), (status = 404, body = ProblemResponse), (status = 409, body = ProblemResponse)),
    security(("bearer" = [])))]
pub async fn pack(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Response, ApiError> {
    caller.require(&[Role::Admin, Role::Operator])?;
    let id: FulfillmentOrderId = id.parse().map_err(|_| ApiError::NotFound("fulfillment order"))?;
    let order = state.fulfillment()?.orders().pack(id).await.map_err(missing("fulfillment order"))?;
    Ok(respond(json(StatusCode::OK, &response(&state, &order).await?)?))
}

/// Takes in an order from another channel (channel, admin; Idempotency-Key required).
#[utoipa::path(post, path = "/v1/fulfillment/orders", tag = "channels", request_body = ChannelOrderRequest,
    params(("Idempotency-Key" = String, Header)),
    responses((status = 201, body = FulfillmentOrderResponse), (status = 400, body = ProblemResponse), (status = 422, body = ProblemResponse)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let principal = caller.require(&[Role::Admin, Role::Channel])?.clone();
    let bytes = body(bytes)?;
    let store = state.fulfillment()?.store().clone();
    let claim = match state.in_flight.admit(
        &store,
        &principal.key_id,
        "channel-orders",
        &headers,
        &bytes,
        state.now().as_millis(),
    )? {
        Admission::Replay(response) => return Ok(response),
        Admission::Run(claim) => claim,
    };
    let request: ChannelOrderRequest = parse(&bytes)?;
    let channel = match request.channel.as_str() {
        "mobile" => Channel::Mobile,
        "b2b" => Channel::B2b,
        "marketplace" => Channel::Marketplace,
        _ => return Err(ApiError::invalid("invalid_channel", "channel must be mobile, b2b or marketplace")),
    };
    let external = request.external_id.trim();
    if external.is_empty() || external.chars().count() > EXTERNAL_ID_LEN_MAX || external.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "invalid_external_id",
            format!("external_id must be 1 to {EXTERNAL_ID_LEN_MAX} printable characters"),
        ));
    }
    if request.lines.is_empty() || request.lines.len() > crate::ecommerce::order::state::ORDER_LINES_MAX {
        return Err(ApiError::invalid("invalid_lines", "an order has 1 to 100 lines"));
    }
    let mut lines = Vec::with_capacity(request.lines.len());
    for line in &request.lines {
        lines.push(EventLine { sku: Sku::parse(&line.sku)?, quantity: Quantity::new(line.quantity)? });
    }
    let to = &request.ship_to;
    let ship_to = Address::new(&to.name, &to.line1, &to.city, &to.postal_code, &to.country)?;
    let id = match claim.resource() {
        Some(resource) => resource.parse()?,
        None => FulfillmentOrderId::generate(state.now()),
    };
    let record = claim.record(&id.to_string());
    let new = NewFulfillmentOrder { id, order_id: OrderId::from_raw(id.as_raw()), channel, lines, ship_to };
    let order = state.fulfillment()?.orders().create(new, Some(record)).await?;
    let (status, body) = json(StatusCode::CREATED, &response(&state, &order).await?)?;
    claim.complete(&id.to_string(), status, body).await
}

/// A fulfillment order (channel, operator, admin).
#[utoipa::path(get, path = "/v1/fulfillment/orders/{id}", tag = "channels", params(("id" = String, Path)),
    responses((status = 200, body = FulfillmentOrderResponse), (status = 404, body = ProblemResponse)),
    security(("bearer" = [])))]
pub async fn read(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Response, ApiError> {
    caller.require(&[Role::Admin, Role::Operator, Role::Channel])?;
    let id: FulfillmentOrderId = id.parse().map_err(|_| ApiError::NotFound("fulfillment order"))?;
    let order = state.fulfillment()?.orders().get(id).await?.ok_or(ApiError::NotFound("fulfillment order"))?;
    Ok(respond(json(StatusCode::OK, &response(&state, &order).await?)?))
}
