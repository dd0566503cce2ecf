//! What the operations console reads: `/v1/console/summary` (orders by
//! status, throughput over the last minutes, outbox lag, open and stuck
//! sagas, recent steps and integration events) and `/v1/stock` (every
//! warehouse's bins and their levels).
//!
//! Throughput and recent steps come from [`Activity`], which follows the
//! engine's stream of committed saga steps while the server runs; counts by
//! status and stuck orders are read from the store on each request.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;
use utoipa::ToSchema;

use super::auth::Caller;
use super::dto::ProblemResponse;
use super::observe::StreamedStep;
use super::{json, respond, ApiError, AppState};
use crate::access::Role;
use crate::actors::saga_log::Progress;
use crate::events::ContextName;

/// Width of one throughput bucket (10 s).
pub const ACTIVITY_BUCKET: Duration = Duration::from_secs(10);
/// Buckets kept: 30 × 10 s = the last five minutes.
pub const ACTIVITY_BUCKETS_MAX: usize = 30;
/// Saga steps the summary lists.
pub const RECENT_STEPS_MAX: usize = 50;
/// An unfinished order that has not moved for this long is listed as stuck (60 s).
pub const STUCK_AFTER: Duration = Duration::from_secs(60);

/// The console's summary (both contexts: the `all` role).
pub fn summary_router() -> Router<AppState> {
    Router::new().route("/v1/console/summary", get(summary))
}

/// Stock per warehouse and bin (wherever fulfillment runs).
pub fn stock_router() -> Router<AppState> {
    Router::new().route("/v1/stock", get(stock))
}

/// Saga milestones counted per bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Bucket {
    /// Start of the bucket, ms since the epoch.
    pub start: u64,
    /// Orders placed (payment authorized).
    pub placed: u32,
    /// Shipments dispatched.
    pub shipped: u32,
    /// Shipments delivered.
    pub delivered: u32,
    /// Orders cancelled (any reason).
    pub cancelled: u32,
}

#[derive(Debug, Default)]
struct Recorded {
    buckets: VecDeque<Bucket>,
    /// As received: made [`StreamedStep`]s only when read.
    recent: VecDeque<Progress>,
}

/// Throughput per [`ACTIVITY_BUCKET`] and the last [`RECENT_STEPS_MAX`] steps,
/// from the committed steps seen since the server started.
#[derive(Debug, Default)]
pub struct Activity {
    recorded: Mutex<Recorded>,
}

impl Activity {
    /// Follows the committed steps of `receiver` from now on, in a task that ends with the stream.
    pub fn follow(mut receiver: tokio::sync::broadcast::Receiver<Progress>) -> Arc<Activity> {
        let activity = Arc::new(Activity::default());
        let recorder = activity.clone();
        tokio::spawn(async move {
            loop {
                match receiver.recv().await {
                    Ok(progress) => recorder.record(progress),
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return,
                }
            }
        });
        activity
    }

    /// Counts one committed step.
    pub fn record(&self, progress: Progress) {
        let step = &progress.step;
        let Ok(mut recorded) = self.recorded.lock() else { return };
        let width = ACTIVITY_BUCKET.as_millis() as u64;
        let at = step.at.as_millis();
        let start = at - at % width;
        if recorded.buckets.back().is_none_or(|last| last.start < start) {
            recorded.buckets.push_back(Bucket { start, ..Bucket::default() });
            while recorded.buckets.len() > ACTIVITY_BUCKETS_MAX {
                recorded.buckets.pop_front();
            }
        }
        // A step from an earlier bucket (commits race by a few ms) counts in its own bucket if still kept.
        if let Some(bucket) = recorded.buckets.iter_mut().rev().find(|b| b.start == start) {
            let ecommerce = step.context == ContextName::Ecommerce;
            match (step.name.as_str(), ecommerce) {
                ("order_placed", true) => bucket.placed += 1,
                ("shipment_dispatched", false) => bucket.shipped += 1,
                ("shipment_delivered", true) => bucket.delivered += 1,
                ("cancelled", true) => bucket.cancelled += 1,
                _ => {}
            }
        }
        if recorded.recent.len() == RECENT_STEPS_MAX {
            recorded.recent.pop_front();
        }
        recorded.recent.push_back(progress);
    }

    /// The last [`ACTIVITY_BUCKETS_MAX`] buckets up to `now` (ms), empty ones
    /// included, oldest first; and the recent steps, newest first.
    pub fn read(&self, now: u64) -> (Vec<Bucket>, Vec<StreamedStep>) {
        let Ok(recorded) = self.recorded.lock() else { return (Vec::new(), Vec::new()) };
        let width = ACTIVITY_BUCKET.as_millis() as u64;
        let current = now - now % width;
        let buckets = (0..ACTIVITY_BUCKETS_MAX as u64)
            .rev()
            .filter_map(|back| current.checked_sub(back * width))
            .map(|start| {
                recorded
                    .buckets
                    .iter()
                    .find(|b| b.start == start)
                    .copied()
                    .unwrap_or(Bucket { start, ..Bucket::default() })
            })
            .collect();
        (buckets, recorded.recent.iter().rev().cloned().map(StreamedStep::from).collect())
    }
}

/// An order listed as stuck or retrying.
#[derive(Debug, Serialize, ToSchema)]
pub struct StuckResponse {
    /// The order.
    pub order_id: String,
    /// Its status.
    pub status: String,
    /// When it last changed, ms since the epoch.
    pub updated_at: u64,
    /// Payment operations owed and being retried (`capture`, `void`, `refund`).
    pub owed_payments: Vec<String>,
}

/// Events written and not yet acknowledged by the other context.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutboxLag {
    /// From e-commerce to fulfillment.
    pub ecommerce: usize,
    /// From fulfillment to e-commerce.
    pub fulfillment: usize,
}

/// Unfinished sagas in the stores.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenSagas {
    /// Orders.
    pub orders: usize,
    /// Fulfillment orders.
    pub fulfillment_orders: usize,
    /// Shipments.
    pub shipments: usize,
}

/// One integration event delivered between the contexts.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveredEventResponse {
    /// The event's id.
    pub event_id: String,
    /// Its type.
    pub kind: String,
    /// The order it concerns.
    pub order_id: String,
    /// The sending context.
    pub source: String,
    /// When it was decided, ms since the epoch.
    pub occurred_at: u64,
    /// Whether it was a redelivery the receiver had already applied.
    pub duplicate: bool,
}

/// The console's summary.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsoleSummary {
    /// Now, ms since the epoch (server clock).
    pub now: u64,
    /// Orders per status.
    pub orders_by_status: BTreeMap<String, usize>,
    /// Orders counted.
    pub orders_counted: usize,
    /// Whether the counts stopped at the scan limit.
    pub counts_partial: bool,
    /// Width of a throughput bucket, seconds.
    pub bucket_secs: u64,
    /// Milestones per bucket over the last minutes, oldest first.
    pub throughput: Vec<Bucket>,
    /// Outbox lag.
    pub outbox: OutboxLag,
    /// Unfinished sagas.
    pub open_sagas: OpenSagas,
    /// Unfinished orders owing a payment operation or quiet for 60 s, oldest first.
    pub stuck: Vec<StuckResponse>,
    /// The last committed saga steps, newest first.
    pub recent_steps: Vec<StreamedStep>,
    /// The last integration events delivered, newest first.
    pub recent_events: Vec<DeliveredEventResponse>,
}

/// The operations console's summary (admin, operator).
#[utoipa::path(get, path = "/v1/console/summary", tag = "operations",
    responses((status = 200, body = ConsoleSummary), (status = 401, body = ProblemResponse), (status = 403, body = ProblemResponse)),
    security(("bearer" = [])))]
pub async fn summary(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    caller.require(&[Role::Admin, Role::Operator])?;
    let now = state.now();
    let census = state.ecommerce()?.orders().census(now, STUCK_AFTER).await?;
    let (orders, fulfillment_orders, shipments) =
        state.node.open_sagas().await.map_err(|err| ApiError::Internal(err.to_string()))?;
    let (ecommerce, fulfillment) = state.node.outbox_lag();
    let (throughput, recent_steps) = state.activity.read(now.as_millis());
    let recent_events = state
        .node
        .recent_deliveries()
        .into_iter()
        .rev()
        .map(|e| DeliveredEventResponse {
            event_id: e.event_id.to_string(),
            kind: e.kind.to_owned(),
            order_id: e.order_id.to_string(),
            source: e.source.as_str().to_owned(),
            occurred_at: e.occurred_at.as_millis(),
            duplicate: e.duplicate,
        })
        .collect();
    let response = ConsoleSummary {
        now: now.as_millis(),
        orders_by_status: census.by_status.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
        orders_counted: census.scanned,
        counts_partial: census.truncated,
        bucket_secs: ACTIVITY_BUCKET.as_secs(),
        throughput,
        outbox: OutboxLag { ecommerce, fulfillment },
        open_sagas: OpenSagas { orders, fulfillment_orders, shipments },
        stuck: census
            .stuck
            .iter()
            .map(|s| StuckResponse {
                order_id: s.id.to_string(),
                status: s.status.to_owned(),
                updated_at: s.updated_at.as_millis(),
                owed_payments: s.owed_payments.iter().map(|p| (*p).to_owned()).collect(),
            })
            .collect(),
        recent_steps,
        recent_events,
    };
    Ok(respond(json(StatusCode::OK, &response)?))
}

/// One SKU's levels in one bin.
#[derive(Debug, Serialize, ToSchema)]
pub struct SkuLevelResponse {
    /// The SKU.
    pub sku: String,
    /// Units in the bin.
    pub on_hand: u32,
    /// Units held by reservations.
    pub reserved: u32,
    /// Units picked, not yet shipped.
    pub picked: u32,
    /// Units free to reserve.
    pub available: u32,
}

/// A bin and what it holds.
#[derive(Debug, Serialize, ToSchema)]
pub struct BinStock {
    /// The bin's code.
    pub bin: String,
    /// Its SKUs.
    pub skus: Vec<SkuLevelResponse>,
}

/// A warehouse's bins.
#[derive(Debug, Serialize, ToSchema)]
pub struct WarehouseStock {
    /// The warehouse id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Lower ranks are allocated first.
    pub priority: u32,
    /// Its bins.
    pub bins: Vec<BinStock>,
}

/// Every warehouse.
#[derive(Debug, Serialize, ToSchema)]
pub struct StockResponse {
    /// Warehouses by priority.
    pub warehouses: Vec<WarehouseStock>,
}

/// Stock per warehouse and bin: on hand, reserved, picked, available (admin, operator).
#[utoipa::path(get, path = "/v1/stock", tag = "inventory",
    responses((status = 200, body = StockResponse), (status = 401, body = ProblemResponse), (status = 403, body = ProblemResponse)),
    security(("bearer" = [])))]
pub async fn stock(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    caller.require(&[Role::Admin, Role::Operator])?;
    let bins: std::collections::HashMap<crate::events::BinId, crate::fulfillment::bin::Bin> =
        state.fulfillment()?.all_bins().await?.into_iter().map(|bin| (bin.id().clone(), bin)).collect();
    let mut warehouses = state.fulfillment()?.directory().warehouses();
    warehouses.sort_by(|a, b| a.priority.cmp(&b.priority).then_with(|| a.id.cmp(&b.id)));
    let warehouses = warehouses
        .into_iter()
        .map(|warehouse| WarehouseStock {
            id: warehouse.id.to_string(),
            name: warehouse.name.clone(),
            priority: warehouse.priority,
            bins: warehouse
                .bins
                .iter()
                .map(|code| BinStock {
                    bin: code.to_string(),
                    skus: bins
                        .get(&crate::events::BinId::new(warehouse.id.clone(), code.clone()))
                        .into_iter()
                        .flat_map(|bin| bin.levels().iter())
                        .map(|(sku, level)| SkuLevelResponse {
                            sku: sku.to_string(),
                            on_hand: level.on_hand,
                            reserved: level.reserved,
                            picked: level.picked,
                            available: level.available(),
                        })
                        .collect(),
                })
                .collect(),
        })
        .collect();
    Ok(respond(json(StatusCode::OK, &StockResponse { warehouses })?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(at: u64, context: ContextName, name: &str) -> Progress {
        Progress {
            order: crate::events::OrderId::from_raw(7),
            step: crate::events::SagaStep {
                at: crate::events::Timestamp::from_millis(at),
                context,
                name: name.into(),
                detail: String::new(),
                compensation: false,
            },
        }
    }

    #[test]
    fn activity_counts_milestones_per_bucket_and_keeps_five_minutes() {
        const T: u64 = 1_800_000_000_000;
        let activity = Activity::default();
        activity.record(step(T + 1_000, ContextName::Ecommerce, "order_placed"));
        activity.record(step(T + 2_000, ContextName::Ecommerce, "order_placed"));
        activity.record(step(T + 12_000, ContextName::Fulfillment, "shipment_dispatched"));
        activity.record(step(T + 12_500, ContextName::Ecommerce, "cancelled"));
        activity.record(step(T + 12_600, ContextName::Fulfillment, "stock_reserved"));
        let (buckets, recent) = activity.read(T + 15_000);
        assert_eq!(buckets.len(), ACTIVITY_BUCKETS_MAX);
        let last = buckets[ACTIVITY_BUCKETS_MAX - 1];
        let before = buckets[ACTIVITY_BUCKETS_MAX - 2];
        assert_eq!((before.start, before.placed, before.shipped), (T, 2, 0));
        assert_eq!((last.start, last.shipped, last.cancelled, last.placed), (T + 10_000, 1, 1, 0));
        assert_eq!(recent.len(), 5);
        assert_eq!(recent[0].step, "stock_reserved", "newest first");
        let (later, _) = activity.read(T + 40 * 10_000);
        assert!(later.iter().all(|b| b.placed == 0 && b.shipped == 0), "old buckets fall out of the window");
    }
}
