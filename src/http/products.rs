//! `/v1/products`: the catalog. Reading is public; writing is for admins.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use super::auth::Caller;
use super::dto::{AvailabilityResponse, ProblemResponse, ProductList, ProductRequest, ProductResponse};
use super::{body, json, parse, respond, ApiError, AppState};
use crate::access::Role;
use crate::ecommerce::catalog::Product;
use crate::events::{Currency, Money, Sku};

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/products", post(create).get(search))
        .route("/v1/products/{sku}", get(read))
        .route("/v1/products/{sku}/availability", get(availability))
}

fn response(product: &Product) -> ProductResponse {
    ProductResponse {
        sku: product.sku.to_string(),
        name: product.name.clone(),
        description: product.description.clone(),
        price: product.price.into(),
    }
}

/// Creates or replaces a product (admin).
#[utoipa::path(post, path = "/v1/products", tag = "catalog", request_body = ProductRequest,
    responses((status = 201, body = ProductResponse), (status = 401, body = ProblemResponse), (status = 403, body = ProblemResponse), (status = 422, body = ProblemResponse)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Admin])?;
    let request: ProductRequest = parse(&body(bytes)?)?;
    let price = Money::new(request.price.amount, Currency::parse(&request.price.currency)?)?;
    let product = Product::new(Sku::parse(&request.sku)?, &request.name, &request.description, price)
        .map_err(|err| ApiError::invalid("invalid_product", err))?;
    let product =
        state.ecommerce()?.catalog().upsert(product).await.map_err(|err| ApiError::Internal(err.to_string()))?;
    Ok(respond(json(StatusCode::CREATED, &response(&product))?))
}

/// Search parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// Words that must all appear in the SKU, name or description.
    #[serde(default)]
    pub q: String,
}

/// Searches the catalog (public).
#[utoipa::path(get, path = "/v1/products", tag = "catalog", params(SearchQuery), responses((status = 200, body = ProductList)))]
pub async fn search(
    State(state): State<AppState>,
    query: Result<Query<SearchQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|err| ApiError::bad("invalid_query", err.body_text()))?;
    let items = state.ecommerce()?.catalog().search(&query.q).iter().map(response).collect();
    Ok(respond(json(StatusCode::OK, &ProductList { items })?))
}

/// One product (public).
#[utoipa::path(get, path = "/v1/products/{sku}", tag = "catalog", params(("sku" = String, Path)),
    responses((status = 200, body = ProductResponse), (status = 404, body = ProblemResponse)))]
pub async fn read(State(state): State<AppState>, Path(sku): Path<String>) -> Result<Response, ApiError> {
    let sku = Sku::parse(&sku).map_err(|_| ApiError::NotFound("product"))?;
    let product = state.ecommerce()?.catalog().get(&sku).ok_or(ApiError::NotFound("product"))?;
    Ok(respond(json(StatusCode::OK, &response(&product))?))
}

/// Units of a product free to order across every warehouse (public; no
/// locations are shown).
#[utoipa::path(get, path = "/v1/products/{sku}/availability", tag = "catalog", params(("sku" = String, Path)),
    responses((status = 200, body = AvailabilityResponse), (status = 404, body = ProblemResponse)))]
pub async fn availability(State(state): State<AppState>, Path(sku): Path<String>) -> Result<Response, ApiError> {
    let sku = Sku::parse(&sku).map_err(|_| ApiError::NotFound("product"))?;
    if state.ecommerce()?.catalog().get(&sku).is_none() {
        return Err(ApiError::NotFound("product"));
    }
    let available = state.node.available(&sku).await.map_err(|err| {
        tracing::warn!(cause = err, "availability unknown");
        ApiError::Unavailable("stock levels are not available right now")
    })?;
    Ok(respond(json(StatusCode::OK, &AvailabilityResponse { sku: sku.to_string(), available })?))
}
