//! `/v1/customers`: accounts (admin).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use axum::Router;

use super::auth::Caller;
use super::dto::{CustomerCreated, CustomerRequest, ProblemResponse};
use super::{body, json, parse, respond, ApiError, AppState};
use crate::access::Role;
use crate::ecommerce::accounts::AccountError;

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/customers", post(create))
}

/// Creates a customer and returns its API key once (admin).
#[utoipa::path(post, path = "/v1/customers", tag = "customers", request_body = CustomerRequest,
    responses((status = 201, body = CustomerCreated), (status = 403, body = ProblemResponse), (status = 422, body = ProblemResponse)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Admin])?;
    let request: CustomerRequest = parse(&body(bytes)?)?;
    let (customer, api_key) =
        state.ecommerce()?.accounts().create_customer(&request.name, &request.email, state.now()).await.map_err(
            |err| match err {
                AccountError::Field(_) => ApiError::invalid("invalid_customer", err),
                other => ApiError::Internal(other.to_string()),
            },
        )?;
    let created = CustomerCreated { id: customer.id.to_string(), name: customer.name, email: customer.email, api_key };
    Ok(respond(json(StatusCode::CREATED, &created)?))
}
