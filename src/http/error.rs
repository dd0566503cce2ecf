//! One error type for the whole API: RFC 9457 `application/problem+json`
//! with a stable machine `code`. 5xx bodies reveal nothing internal; the
//! cause is logged once, here.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::actors::CallError;
use crate::ecommerce::order::{OrderError, PlaceError};
use crate::events::{IdError, ValueError};
use crate::fulfillment::FulfillmentError;

/// An API failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// Missing or unknown credentials.
    #[error("missing or invalid API key")]
    Unauthorized,
    /// The principal may not do this.
    #[error("this key may not do that")]
    Forbidden,
    /// No such resource (or not the caller's).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A body or parameter is malformed.
    #[error("{message}")]
    BadRequest {
        /// Stable code.
        code: &'static str,
        /// Human-readable detail.
        message: String,
    },
    /// Well-formed but breaks a rule.
    #[error("{message}")]
    Unprocessable {
        /// Stable code.
        code: &'static str,
        /// Human-readable detail.
        message: String,
    },
    /// The resource's state does not allow it.
    #[error("{message}")]
    Conflict {
        /// Stable code.
        code: &'static str,
        /// Human-readable detail.
        message: String,
    },
    /// The body is larger than the limit.
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
    /// Too many requests for this key.
    #[error("too many requests; retry later")]
    RateLimited,
    /// Overloaded, or a commit whose outcome is unknown: retry with the same Idempotency-Key.
    #[error("{0}")]
    Unavailable(&'static str),
    /// The request took too long.
    #[error("the request timed out")]
    Timeout,
    /// A bug or an unexpected failure (logged, never shown).
    #[error("internal error")]
    Internal(String),
}

#[derive(Serialize)]
struct Problem<'a> {
    r#type: &'a str,
    title: &'a str,
    status: u16,
    code: &'a str,
    detail: String,
}

impl ApiError {
    /// The HTTP status.
    pub fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Timeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::BadRequest { code, .. }
            | ApiError::Unprocessable { code, .. }
            | ApiError::Conflict { code, .. } => code,
            ApiError::TooLarge(_) => "body_too_large",
            ApiError::RateLimited => "rate_limited",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Timeout => "timeout",
            ApiError::Internal(_) => "internal",
        }
    }

    /// A 400 with `code`.
    pub fn bad(code: &'static str, message: impl ToString) -> Self {
        ApiError::BadRequest { code, message: message.to_string() }
    }

    /// A 422 with `code`.
    pub fn invalid(code: &'static str, message: impl ToString) -> Self {
        ApiError::Unprocessable { code, message: message.to_string() }
    }

    /// A 409 with `code`.
    pub fn conflict(code: &'static str, message: impl ToString) -> Self {
        ApiError::Conflict { code, message: message.to_string() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let detail = match &self {
            ApiError::Internal(cause) => {
                tracing::error!(%cause, "request failed");
                "the server could not complete the request".to_owned()
            }
            other => other.to_string(),
        };
        let body = Problem {
            r#type: "about:blank",
            title: status.canonical_reason().unwrap_or("error"),
            status: status.as_u16(),
            code: self.code(),
            detail,
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        (status, [(header::CONTENT_TYPE, "application/problem+json")], bytes).into_response()
    }
}

impl From<CallError> for ApiError {
    fn from(err: CallError) -> Self {
        match err {
            CallError::NotFound => ApiError::NotFound("resource"),
            CallError::Timeout => {
                ApiError::Unavailable("the engine did not answer in time; retry with the same Idempotency-Key")
            }
            CallError::Unavailable => ApiError::Unavailable("the engine is busy; retry with the same Idempotency-Key"),
            CallError::Store(cause) => ApiError::Internal(cause),
        }
    }
}

impl From<IdError> for ApiError {
    fn from(err: IdError) -> Self {
        ApiError::invalid("invalid_id", err)
    }
}

impl From<ValueError> for ApiError {
    fn from(err: ValueError) -> Self {
        ApiError::invalid("invalid_value", err)
    }
}

impl From<OrderError> for ApiError {
    fn from(err: OrderError) -> Self {
        match &err {
            OrderError::NotCancellable { .. } => ApiError::conflict("order_not_cancellable", err),
            OrderError::NoLines => ApiError::invalid("no_lines", err),
            OrderError::TooManyLines => ApiError::invalid("too_many_lines", err),
            OrderError::DuplicateSku(_) => ApiError::invalid("duplicate_sku", err),
            OrderError::Amount(_) => ApiError::invalid("invalid_amount", err),
            _ => ApiError::Internal(err.to_string()),
        }
    }
}

impl From<PlaceError> for ApiError {
    fn from(err: PlaceError) -> Self {
        match err {
            PlaceError::UnknownSku(sku) => ApiError::invalid("unknown_sku", format!("unknown SKU {sku}")),
            PlaceError::PaymentToken => ApiError::invalid("invalid_payment_token", PlaceError::PaymentToken),
            PlaceError::Order(err) => err.into(),
            PlaceError::Call(err) => err.into(),
        }
    }
}

/// Maps a failed fulfillment command on `what`: a missing aggregate is a 404
/// naming it (the command itself reports it; no lookup beforehand).
pub fn missing(what: &'static str) -> impl Fn(FulfillmentError) -> ApiError {
    move |err| match err {
        FulfillmentError::Call(CallError::NotFound) => ApiError::NotFound(what),
        other => other.into(),
    }
}

impl From<FulfillmentError> for ApiError {
    fn from(err: FulfillmentError) -> Self {
        use crate::fulfillment::bin::BinError;
        use crate::fulfillment::FulfillmentOrderError as Fo;
        match err {
            FulfillmentError::UnknownBin(bin) => ApiError::invalid("unknown_bin", format!("unknown bin {bin}")),
            FulfillmentError::UnknownWarehouse(_) => ApiError::NotFound("warehouse"),
            FulfillmentError::Bin(err @ BinError::AdjustmentBelowHeld { .. }) => {
                ApiError::conflict("adjustment_below_held", err)
            }
            FulfillmentError::Bin(err @ BinError::Capacity) => ApiError::invalid("bin_capacity", err),
            FulfillmentError::Bin(err) => ApiError::invalid("invalid_stock_change", err),
            FulfillmentError::Order(err @ (Fo::UnknownTask(_) | Fo::UnknownShipment(_))) => {
                ApiError::invalid("unknown_task", err)
            }
            FulfillmentError::Order(err @ Fo::OverPick { .. }) => ApiError::invalid("over_pick", err),
            FulfillmentError::Order(err) => ApiError::conflict("illegal_transition", err),
            FulfillmentError::Shipment(err) => ApiError::conflict("illegal_transition", err),
            FulfillmentError::Warehouse(err) => ApiError::invalid("invalid_warehouse", err),
            FulfillmentError::Call(err) => err.into(),
            FulfillmentError::Store(err) => ApiError::Internal(err.to_string()),
        }
    }
}
