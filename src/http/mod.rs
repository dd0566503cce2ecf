//! The axum edge: `/v1` routes, authentication, idempotency, errors, limits.
//! The contexts know no HTTP; this module knows them only through the
//! engine's handles.
//!
//! Placeholder module while the API is built; see issue "HTTP API and CLI".

pub mod error;

pub use error::ApiError;
