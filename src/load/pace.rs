//! The open loop's pacer.

use std::time::{Duration, Instant};

/// Hands out order numbers `0..orders` with their due times (`started + n /
/// rate`, until `deadline`), each at that time, from a thread of its own that sleeps on the
/// operating system's fine timer. The runtime's timer rounds every sleep up
/// to its next millisecond tick, and an open loop paced by it would count
/// that lateness of its own sending as the server's latency.
pub(super) fn pace(
    rate: f64,
    orders: u64,
    started: Instant,
    deadline: Option<Instant>,
) -> tokio::sync::mpsc::UnboundedReceiver<(u64, Instant)> {
    let (due, receiver) = tokio::sync::mpsc::unbounded_channel();
    let spawned = std::thread::Builder::new().name("orderdock-pacer".to_owned()).spawn(move || {
        for n in 0..orders {
            let at = started + Duration::from_secs_f64(n as f64 / rate);
            if deadline.is_some_and(|d| at >= d) {
                return;
            }
            if let Some(wait) = at.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            if due.send((n, at)).is_err() {
                return;
            }
        }
    });
    if let Err(err) = spawned {
        tracing::error!(cause = %err, "the load tool's pacer thread did not start");
    }
    receiver
}
