//! `/v1/carriers/{carrier}/events`: the carrier tracking webhook, signed with
//! HMAC-SHA256 over the raw body (`X-Orderdock-Signature: sha256=<hex>`).
//! Unsigned or badly signed → 401.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::dto::{self, CarrierEventRequest, ProblemResponse, ShipmentResponse};
use super::error::missing;
use super::{body, json, parse, respond, ApiError, AppState};
use crate::events::ShipmentId;
use crate::fulfillment::shipment::ShipmentStage;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-orderdock-signature";

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/carriers/{carrier}/events", post(event))
}

/// The signature header value for `body` under `secret` (`sha256=<hex>`).
pub fn sign(secret: &str, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else { return String::new() };
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    format!("sha256={}", digest.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

fn verify(secret: &str, headers: &HeaderMap, body: &[u8]) -> Result<(), ApiError> {
    if secret.is_empty() {
        return Err(ApiError::Unauthorized);
    }
    let given = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()).ok_or(ApiError::Unauthorized)?;
    let hex = given.strip_prefix("sha256=").unwrap_or(given);
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::Unauthorized);
    }
    let bytes: Vec<u8> = (0..32).filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()).collect();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|_| ApiError::Unauthorized)?;
    mac.update(body);
    // Constant-time comparison.
    mac.verify_slice(&bytes).map_err(|_| ApiError::Unauthorized)
}

/// A tracking event from a carrier (HMAC-signed).
#[utoipa::path(post, path = "/v1/carriers/{carrier}/events", tag = "carriers", request_body = CarrierEventRequest,
    params(("carrier" = String, Path), ("X-Orderdock-Signature" = String, Header, description = "sha256=<hex HMAC-SHA256 of the body>")),
    responses((status = 202, body = ShipmentResponse), (status = 401, body = ProblemResponse), (status = 404, body = ProblemResponse), (status = 409, body = ProblemResponse)))]
pub async fn event(
    State(state): State<AppState>,
    Path(_carrier): Path<String>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let bytes = body(bytes)?;
    verify(&state.config.carrier_secret, &headers, &bytes)?;
    let request: CarrierEventRequest = parse(&bytes)?;
    let stage = match request.status.as_str() {
        "in_transit" => ShipmentStage::InTransit,
        "out_for_delivery" => ShipmentStage::OutForDelivery,
        "delivered" => ShipmentStage::Delivered,
        "exception" => ShipmentStage::Exception,
        _ => {
            return Err(ApiError::invalid(
                "invalid_status",
                "status must be in_transit, out_for_delivery, delivered or exception",
            ))
        }
    };
    let id: ShipmentId = request.shipment_id.parse().map_err(|_| ApiError::NotFound("shipment"))?;
    let shipment =
        state.fulfillment()?.shipments().track(id, stage, &request.detail).await.map_err(missing("shipment"))?;
    Ok(respond(json(StatusCode::ACCEPTED, &dto::shipment(&shipment))?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_only_with_the_right_secret_and_body() {
        let mut headers = HeaderMap::new();
        headers.insert(SIGNATURE_HEADER, sign("s3cret", b"{}").parse().unwrap());
        assert!(verify("s3cret", &headers, b"{}").is_ok());
        assert_eq!(verify("other", &headers, b"{}"), Err(ApiError::Unauthorized));
        assert_eq!(verify("s3cret", &headers, b"{ }"), Err(ApiError::Unauthorized));
        assert_eq!(verify("s3cret", &HeaderMap::new(), b"{}"), Err(ApiError::Unauthorized));
    }
}
