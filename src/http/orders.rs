//! `/v1/orders`: placing, listing, tracking (the unified view) and cancelling.
//!
//! Customers see and act on their own orders only (another customer's order
//! is a 404); admins act on anyone's; operators may read.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use super::auth::Caller;
use super::dto::{self, CancelResponse, OrderList, OrderResponse, PlaceOrderRequest, ProblemResponse};
use super::idempotency::{Admission, Recorder};
use super::{body, json, parse, respond, ApiError, AppState};
use crate::access::{Principal, Role};
use crate::ecommerce::order::{
    CancelOutcome, Order, OrderFilter, OrderStatus, PlaceOrder, PlacedRecord, PAGE_SIZE_MAX,
};
use crate::events::{Address, CustomerId, OrderId, Quantity, Sku};
use crate::persistence::StoreError;

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/orders", post(create).get(list))
        .route("/v1/orders/{id}", get(read))
        .route("/v1/orders/{id}/cancel", post(cancel))
        .route("/v1/orders/{id}/stream", get(stream))
}

fn visible(principal: &Principal, order: &Order) -> bool {
    match principal.role {
        Role::Admin | Role::Operator => true,
        Role::Customer => principal.customer_id == Some(order.customer_id()),
        Role::Channel => false,
    }
}

async fn view(state: &AppState, id: OrderId) -> Result<OrderResponse, ApiError> {
    if let Some(engine) = state.engine() {
        let view = engine.order_view(id).await?.ok_or(ApiError::NotFound("order"))?;
        return Ok(dto::order_view(&view));
    }
    // The e-commerce role: the order from here, its fulfillment from the fulfillment service.
    let order = state.ecommerce()?.orders().get(id).await?.ok_or(ApiError::NotFound("order"))?;
    let timeline = state.node.local_timeline(id).await;
    let (fulfillment, remote_steps) = match state.node.remote_fulfillment(id).await {
        Ok(Some(remote)) => match serde_json::from_slice::<dto::FulfillmentOrderResponse>(&remote) {
            Ok(remote) => (remote.fulfillment, remote.steps),
            Err(err) => {
                tracing::warn!(cause = %err, order = %id, "unreadable fulfillment answer; partial view");
                (dto::fulfillment_status("unavailable"), Vec::new())
            }
        },
        Ok(None) => (dto::fulfillment_status("pending"), Vec::new()),
        Err(err) => {
            tracing::debug!(cause = err, order = %id, "fulfillment did not answer; partial view");
            (dto::fulfillment_status("unavailable"), Vec::new())
        }
    };
    let mut response = dto::order(&order, fulfillment, &timeline);
    response.timeline.extend(remote_steps);
    response.timeline.sort_by_key(|step| step.at);
    Ok(response)
}

/// Places an order (customer for itself, or admin for `customer_id`; Idempotency-Key required).
#[utoipa::path(post, path = "/v1/orders", tag = "orders", request_body = PlaceOrderRequest,
    params(("Idempotency-Key" = String, Header)),
    responses((status = 201, body = OrderResponse), (status = 400, body = ProblemResponse), (status = 401, body = ProblemResponse),
        (status = 403, body = ProblemResponse), (status = 409, body = ProblemResponse), (status = 413, body = ProblemResponse),
        (status = 422, body = ProblemResponse), (status = 503, body = ProblemResponse)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let principal = caller.require(&[Role::Admin, Role::Customer])?.clone();
    let bytes = body(bytes)?;
    let store = state.ecommerce()?.store().clone();
    let claim =
        match state.in_flight.admit(&store, &principal.key_id, "orders", &headers, &bytes, state.now().as_millis())? {
            Admission::Replay(response) => return Ok(response),
            Admission::Run(claim) => claim,
        };
    let request: PlaceOrderRequest = parse(&bytes)?;
    let customer_id = match (principal.role, &request.customer_id) {
        (Role::Customer, None) => principal.customer_id.ok_or(ApiError::Forbidden)?,
        (Role::Customer, Some(given)) => {
            let given: CustomerId = given.parse()?;
            if Some(given) != principal.customer_id {
                return Err(ApiError::Forbidden);
            }
            given
        }
        (_, Some(given)) => {
            let given: CustomerId = given.parse()?;
            if state.ecommerce()?.accounts().customer(given).is_none() {
                return Err(ApiError::invalid("unknown_customer", format!("unknown customer {given}")));
            }
            given
        }
        (_, None) => return Err(ApiError::invalid("customer_required", "an admin must name the customer_id")),
    };
    let mut lines = Vec::with_capacity(request.lines.len());
    for line in &request.lines {
        lines.push((Sku::parse(&line.sku)?, Quantity::new(line.quantity)?));
    }
    let to = &request.ship_to;
    let ship_to = Address::new(&to.name, &to.line1, &to.city, &to.postal_code, &to.country)?;
    // A new order commits with its answer: the idempotency record names it
    // and holds the response, in the order's own transaction. A run again
    // after a crash finds its order placed, writes nothing, and saves the
    // answer apart.
    let rerun = claim.resource().is_some();
    let id = match claim.resource() {
        Some(resource) => resource.parse()?,
        None => OrderId::generate(state.now()),
    };
    let (record, answered) = placed_record(claim.recorder());
    let (order, placed_now) = state
        .ecommerce()?
        .orders()
        .place_recorded(
            PlaceOrder { id, customer_id, lines, ship_to, payment_token: request.payment.token.clone() },
            Some(record),
        )
        .await?;
    state.counters.orders_created.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if placed_now {
        // Committed with exactly these bytes.
        let kept = answered.lock().ok().and_then(|mut kept| kept.take());
        return Ok(respond(match kept {
            Some(answer) => answer,
            None => created(&order)?,
        }));
    }
    if !rerun {
        // An earlier attempt of this very call placed the order (its reply
        // was lost to a restart of the actor) and saved the answer with it:
        // send that answer, not one made from the order as it is now.
        if let Some(saved) = claim.recorder().saved_response(&store)? {
            return Ok(respond(saved));
        }
    }
    let (status, body) = created(&order)?;
    claim.complete(&id.to_string(), status, body).await
}

/// A new order's response, made once where the order commits
/// with it (the record `recorder` writes), and kept for the reply.
type Answered = Arc<Mutex<Option<(StatusCode, Vec<u8>)>>>;

/// The record a new order commits with, and where its answer is kept.
fn placed_record(recorder: Recorder) -> (PlacedRecord, Answered) {
    let answered = Answered::default();
    let keep = answered.clone();
    let record = PlacedRecord::new(move |order| {
        let answer = created(order).map_err(|err| StoreError::Encode(err.to_string()))?;
        if let Ok(mut kept) = keep.lock() {
            *kept = Some(answer.clone());
        }
        Ok(recorder.write(&order.id().to_string(), Some(answer)))
    });
    (record, answered)
}

/// The answer to the request that placed `order`.
fn created(order: &Order) -> Result<(StatusCode, Vec<u8>), ApiError> {
    json(StatusCode::CREATED, &dto::order(order, dto::fulfillment_status("pending"), &[]))
}

/// Listing filter and page.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only this customer's orders (admins and operators).
    pub customer_id: Option<String>,
    /// Only this status.
    #[param(
        pattern = r"^(placed|stock_confirmed|paid|in_fulfillment|partially_shipped|shipped|delivered|cancelled|refunded)$"
    )]
    pub status: Option<String>,
    /// From a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// 1 to 100; default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<usize>,
}

/// Lists orders, oldest first, by cursor.
#[utoipa::path(get, path = "/v1/orders", tag = "orders", params(ListQuery),
    responses((status = 200, body = OrderList), (status = 422, body = ProblemResponse)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let principal = caller.require(&[Role::Admin, Role::Operator, Role::Customer])?;
    let Query(query) = query.map_err(|err| ApiError::bad("invalid_query", err.body_text()))?;
    let limit = query.limit.unwrap_or(20);
    if limit == 0 || limit > PAGE_SIZE_MAX {
        return Err(ApiError::invalid("invalid_limit", format!("limit must be 1 to {PAGE_SIZE_MAX}")));
    }
    if let Some(status) = &query.status {
        if !OrderStatus::CODES.contains(&status.as_str()) {
            return Err(ApiError::invalid(
                "invalid_status",
                format!("status must be one of {}", OrderStatus::CODES.join(", ")),
            ));
        }
    }
    let asked: Option<CustomerId> = query.customer_id.as_deref().map(str::parse).transpose()?;
    let customer_id = match principal.role {
        Role::Customer => {
            if asked.is_some_and(|c| Some(c) != principal.customer_id) {
                return Err(ApiError::Forbidden);
            }
            principal.customer_id
        }
        Role::Admin | Role::Operator | Role::Channel => asked,
    };
    let after: Option<OrderId> = query
        .cursor
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(|_| ApiError::invalid("invalid_cursor", "unknown cursor"))?;
    let page = state
        .ecommerce()?
        .orders()
        .list(OrderFilter { customer_id, status: query.status.clone() }, after, limit)
        .await?;
    let items = page.orders.iter().map(|o| dto::order(o, dto::fulfillment_status("omitted"), &[])).collect();
    Ok(respond(json(StatusCode::OK, &OrderList { items, next_cursor: page.next.map(|id| id.to_string()) })?))
}

/// An order with its fulfillment, shipments, tracking and saga timeline.
#[utoipa::path(get, path = "/v1/orders/{id}", tag = "orders", params(("id" = String, Path)),
    responses((status = 200, body = OrderResponse), (status = 404, body = ProblemResponse)),
    security(("bearer" = [])))]
pub async fn read(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Response, ApiError> {
    let principal = caller.require(&[Role::Admin, Role::Operator, Role::Customer])?;
    let id: OrderId = id.parse().map_err(|_| ApiError::NotFound("order"))?;
    let order = state.ecommerce()?.orders().get(id).await?.ok_or(ApiError::NotFound("order"))?;
    if !visible(principal, &order) {
        return Err(ApiError::NotFound("order"));
    }
    Ok(respond(json(StatusCode::OK, &view(&state, id).await?)?))
}

/// Asks to cancel an order: 202, or 409 `order_not_cancellable` once shipped (Idempotency-Key required).
#[utoipa::path(post, path = "/v1/orders/{id}/cancel", tag = "orders", params(("id" = String, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 202, body = CancelResponse), (status = 404, body = ProblemResponse), (status = 409, body = ProblemResponse)),
    security(("bearer" = [])))]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let principal = caller.require(&[Role::Admin, Role::Customer])?.clone();
    let bytes = body(bytes)?;
    let id: OrderId = id.parse().map_err(|_| ApiError::NotFound("order"))?;
    let order = state.ecommerce()?.orders().get(id).await?.ok_or(ApiError::NotFound("order"))?;
    if !visible(&principal, &order) {
        return Err(ApiError::NotFound("order"));
    }
    let store = state.ecommerce()?.store().clone();
    let route = format!("cancel:{id}");
    let claim =
        match state.in_flight.admit(&store, &principal.key_id, &route, &headers, &bytes, state.now().as_millis())? {
            Admission::Replay(response) => return Ok(response),
            Admission::Run(claim) => claim,
        };
    let (outcome, _) = state.ecommerce()?.orders().cancel(id).await?;
    let response = CancelResponse {
        outcome: match outcome {
            CancelOutcome::Cancelled => "cancelled",
            CancelOutcome::Requested => "requested",
        }
        .to_owned(),
        order: view(&state, id).await?,
    };
    let (status, body) = json(StatusCode::ACCEPTED, &response)?;
    claim.complete(&id.to_string(), status, body).await
}

/// The unified view of one order as Server-Sent Events: an `event: order`
/// with an [`OrderResponse`] at once, then again after every saga step of
/// this order commits, until the client goes away (customer for its own
/// order, operator, admin).
#[utoipa::path(get, path = "/v1/orders/{id}/stream", tag = "orders", params(("id" = String, Path)),
    responses((status = 200, description = "text/event-stream of the order's view"), (status = 404, body = ProblemResponse)),
    security(("bearer" = [])))]
pub async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    use axum::response::IntoResponse;
    use tokio::sync::broadcast::error::RecvError;

    let principal = caller.require(&[Role::Admin, Role::Operator, Role::Customer])?;
    let id: OrderId = id.parse().map_err(|_| ApiError::NotFound("order"))?;
    let order = state.ecommerce()?.orders().get(id).await?.ok_or(ApiError::NotFound("order"))?;
    if !visible(principal, &order) {
        return Err(ApiError::NotFound("order"));
    }
    // Subscribe before the first read, so no step between the two is missed.
    let receiver = state.node.watch();
    let first = view(&state, id).await?;
    let event = |view: &OrderResponse| Event::default().event("order").json_data(view).unwrap_or_default();
    let initial = futures_util::stream::once(std::future::ready(Ok::<_, std::convert::Infallible>(event(&first))));
    let updates = futures_util::stream::unfold((receiver, state), move |(mut receiver, state)| async move {
        loop {
            match receiver.recv().await {
                Ok(progress) if progress.order == id => {}
                Ok(_) => continue,
                // Missed steps may include ours: send a fresh view anyway.
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return None,
            }
            // Steps come in bursts: let the burst finish, then read once.
            tokio::time::sleep(ORDER_STREAM_COALESCE).await;
            while receiver.try_recv().is_ok() {}
            let next = match view(&state, id).await {
                Ok(view) => event(&view),
                Err(_) => Event::default().event("unavailable").data("the order could not be read; retrying"),
            };
            return Some((Ok(next), (receiver, state)));
        }
    });
    Ok(Sse::new(futures_util::StreamExt::chain(initial, updates)).keep_alive(KeepAlive::default()).into_response())
}

/// How long an order stream waits after a step for the rest of its burst before reading the view.
pub const ORDER_STREAM_COALESCE: std::time::Duration = std::time::Duration::from_millis(50);
