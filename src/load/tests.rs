use super::*;

#[tokio::test]
async fn the_pacer_hands_out_every_order_in_turn_never_before_it_is_due() {
    let (rate, started) = (2_000.0, Instant::now());
    let mut due = pace(rate, 20, started, None);
    let mut seen = Vec::new();
    while let Some((n, at)) = due.recv().await {
        assert_eq!(at, started + Duration::from_secs_f64(n as f64 / rate));
        assert!(Instant::now() >= started + Duration::from_secs_f64(n as f64 / rate), "order {n} early");
        seen.push(n);
    }
    assert_eq!(seen, (0..20).collect::<Vec<_>>());
}

/// A session whose orders are accepted and then never heard of again,
/// as against a server whose warehouse waits for people; or, with
/// `hang`, whose placements never return, as against a server that hangs.
struct Stuck {
    hang: bool,
}

struct StuckPlacer {
    hang: bool,
}

impl Placer for StuckPlacer {
    async fn place(&mut self, n: u64) -> Placed {
        if self.hang {
            std::future::pending::<()>().await;
        }
        Placed::Accepted(OrderId::from_raw(u128::from(n) + 1))
    }
}

impl Session for Stuck {
    type Placer = StuckPlacer;
    async fn placer(&self) -> Result<StuckPlacer, LoadError> {
        Ok(StuckPlacer { hang: self.hang })
    }
    fn commits(&self) -> Option<u64> {
        None
    }
    async fn finish(self) -> Checks {
        Checks::default()
    }
}

#[tokio::test]
async fn a_run_whose_orders_never_finish_stops_as_stalled_and_places_no_more() {
    let mut config = LoadConfig::saga3(1_000, 4, false);
    config.stall_after = Duration::from_millis(50);
    let tracker = Arc::new(Tracker::default());
    for hang in [false, true] {
        let placed = place_all(&Stuck { hang }, &config, &tracker, |_| {}).await.expect("the run");
        assert!(placed.stalled, "hang {hang}");
        assert_eq!((placed.completed, placed.cancelled, placed.failed), (0, 0, 0), "hang {hang}");
        let timed_out = placed.timed_out;
        assert!((1..=4).contains(&timed_out), "hang {hang}: at most the four in flight, none after: {timed_out}");
    }
}

#[test]
fn a_stall_needs_orders_in_flight_and_a_quiet_spell() {
    let (started, after) = (Instant::now(), Duration::from_secs(30));
    let flow = Flow::default();
    let later = started + Duration::from_secs(60);
    assert!(!flow.stalled(started, later, after), "nothing in flight: an open loop waiting for its next order");
    flow.taken.store(3, Ordering::Relaxed);
    assert!(!flow.stalled(started, started + Duration::from_secs(29), after));
    assert!(flow.stalled(started, started + after, after));
    // One order finishes 40 s in: the quiet spell starts again.
    flow.finish(started);
    flow.last_finished_ms.store(40_000, Ordering::Relaxed);
    assert!(!flow.stalled(started, later, after), "20 s since the last one finished");
    assert!(flow.stalled(started, started + Duration::from_secs(70), after));
    flow.finish(started);
    flow.finish(started);
    assert!(!flow.stalled(started, started + Duration::from_secs(600), after), "all three done");
}

#[tokio::test]
async fn the_pacer_stops_at_the_deadline() {
    let started = Instant::now();
    let deadline = started + Duration::from_micros(2_500);
    let mut due = pace(1_000.0, 1_000, started, Some(deadline));
    let mut seen = Vec::new();
    while let Some((n, _)) = due.recv().await {
        seen.push(n);
    }
    assert_eq!(seen, [0, 1, 2], "due at 0, 1 and 2 ms; the rest after the deadline");
}
