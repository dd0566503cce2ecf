//! A load run's workers: each takes the next order, places it and waits
//! for its milestone.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::{micros, Flow, Latencies, LoadConfig, Placed, Placer, Stall, Tracker, Until, WorkerResult, ORDER_TIMEOUT};

/// What the workers of one run share.
pub(super) struct Shared {
    pub(super) config: LoadConfig,
    pub(super) tracker: Arc<Tracker>,
    /// The next order number (closed loop).
    pub(super) next: AtomicU64,
    pub(super) flow: Arc<Flow>,
    pub(super) progress: Box<dyn Fn(u64) + Send + Sync>,
    pub(super) latencies: Mutex<Latencies>,
    /// The pacer's orders with their due times (open loop).
    pub(super) paced: Option<tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<(u64, Instant)>>>,
    pub(super) started: Instant,
    pub(super) deadline: Option<Instant>,
}

/// One worker: takes the next order (or the pacer's), places it and waits
/// for its milestone, until the orders, the time or the flow run out.
pub(super) async fn work<P: Placer>(mut placer: P, shared: Arc<Shared>, mut stall: Stall) -> WorkerResult {
    let Shared { config, tracker, next, flow, latencies, paced, started, deadline, .. } = &*shared;
    let finish = || (shared.progress)(flow.finish(*started));
    let mut result = WorkerResult::default();
    loop {
        // Open loop: order n is due at n / rate, handed out then by the
        // pacer; latency counts from the due time, so an order that waited
        // for a free worker is charged its wait.
        let (n, due) = match paced {
            Some(paced) => {
                let due = tokio::select! {
                    due = async { paced.lock().await.recv().await } => due,
                    () = stall.stalled() => None,
                };
                let Some(due) = due else { break };
                due
            }
            None => (next.fetch_add(1, Ordering::Relaxed), Instant::now()),
        };
        if n >= config.orders || deadline.is_some_and(|d| Instant::now() >= d) || stall.is_stalled() {
            break;
        }
        flow.taken.fetch_add(1, Ordering::Relaxed);
        let placed = tokio::select! {
            placed = placer.place(n) => placed,
            () = stall.stalled() => {
                // Its fate is unknown: it may have been placed.
                result.timed_out += 1;
                finish();
                break;
            }
        };
        if let Ok(mut latencies) = latencies.lock() {
            let _ = latencies.intake.record(micros(due.elapsed()));
        }
        let outcome = match placed {
            Placed::Failed(cause) => {
                tracing::warn!(%cause, "placement failed");
                result.failed += 1;
                finish();
                continue;
            }
            Placed::Cancelled => Some(false),
            Placed::Accepted(_) if config.until == Until::Placed => Some(true),
            Placed::Accepted(id) => tracker.wait(id, ORDER_TIMEOUT, &mut stall).await,
        };
        match outcome {
            Some(true) => result.completed += 1,
            Some(false) => result.cancelled += 1,
            None => result.timed_out += 1,
        }
        if let Ok(mut latencies) = latencies.lock() {
            let _ = latencies.saga.record(micros(due.elapsed()));
        }
        finish();
    }
    result
}
