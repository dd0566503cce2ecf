//! The load driver: a small saga-3 run completes every order and balances.

use orderdock::load::{self, LoadConfig};

use crate::helpers::TestResult;

/// `api`'s routes served on a free loopback port until [`Server::stop`].
struct Server {
    address: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(api: &crate::api::Api) -> anyhow::Result<Server> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(orderdock::http::serve(listener, api.state.clone(), async move {
            let _ = stopped.await;
        }));
        Ok(Server { address, stop, task })
    }

    /// The load tool's view of it, with `key`.
    fn target(&self, key: &str) -> anyhow::Result<load::remote::Target> {
        Ok(load::remote::Target::new(&format!("http://{}", self.address), key)?)
    }

    async fn stop(self) -> TestResult {
        let _ = self.stop.send(());
        self.task.await??;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_saga3_run_completes_every_order_and_balances() -> TestResult {
    let report = load::run(LoadConfig::saga3(200, 16, false), |_| {}).await?;
    assert_eq!((report.orders, report.completed, report.cancelled, report.timed_out), (200, 200, 0, 0));
    assert!(report.stock_balanced && report.money_balanced);
    assert_eq!(report.oversold_units, 0);
    assert!(report.p50_ms <= report.p99_ms && report.p99_ms <= report.max_ms);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lowstock_variant_rejects_about_thirty_percent_and_compensates() -> TestResult {
    let report = load::run(LoadConfig::saga3(1000, 32, true), |_| {}).await?;
    assert_eq!(report.orders, 1000);
    assert_eq!(report.timed_out, 0);
    // Stock is sized to 70 % of the orders: exactly 700 can be served.
    assert_eq!(report.completed, 700, "{report:?}");
    assert_eq!(report.cancelled, 300);
    assert!(report.stock_balanced && report.money_balanced, "{report:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_against_a_server_over_http_completes_and_balances() -> TestResult {
    let api = crate::api::Api::start(true).await?;
    let server = Server::start(&api).await?;
    let address = server.address;
    let mut config = LoadConfig::saga3(300, 16, true);
    config.skus = 10;
    config.stock = 21; // 10 SKUs × 21 units: 210 of the 300 orders can be served.
    config.target = Some(load::remote::Target::new(&format!("http://{address}/"), &api.admin)?);
    let report = load::run(config, |_| {}).await?;
    assert_eq!((report.orders, report.failed, report.timed_out), (300, 0, 0), "{report:?}");
    assert_eq!((report.completed, report.cancelled), (210, 90), "{report:?}");
    assert!(report.stock_balanced && report.money_balanced, "{report:?}");
    assert!(report.rss_peak_bytes > 0);
    // A second run against the same server adds its own stock and customer.
    let mut again = LoadConfig::saga3(50, 4, false);
    again.until = load::Until::Placed;
    again.target = Some(server.target(&api.admin)?);
    let report = load::run(again, |_| {}).await?;
    assert_eq!((report.completed, report.failed), (50, 0), "{report:?}");
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_waiting_for_packing_on_a_server_run_by_hand_stops_as_stalled() -> TestResult {
    // Without autopilot the warehouse waits for people: orders are reserved
    // and paid, and never packed.
    let api = crate::api::Api::start(false).await?;
    let server = Server::start(&api).await?;
    let mut config = LoadConfig::saga3(500, 8, false);
    config.stall_after = std::time::Duration::from_secs(1);
    config.target = Some(server.target(&api.admin)?);
    let report = load::run(config, |_| {}).await?;
    assert!(report.stalled, "{report:?}");
    assert_eq!((report.completed, report.cancelled, report.failed), (0, 0, 0), "{report:?}");
    assert!(
        report.orders <= 8 && report.timed_out == report.orders,
        "at most the eight in flight, none after: {report:?}"
    );
    assert!(report.stock_balanced && report.money_balanced, "{report:?}");
    server.stop().await
}

#[test]
fn bad_load_arguments_are_refused_before_anything_runs() -> TestResult {
    let refused = [
        ("--orders", "0"),
        ("--concurrency", "0"),
        ("--skus", "0"),
        ("--warehouses", "0"),
        ("--duration", "0"),
        ("--rate", "0"),
        ("--stall-after-secs", "0"),
        ("--until", "nowhere"),
        ("--workload", "saga-4"),
    ];
    for (flag, value) in refused {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_orderdock"))
            .args(["load", flag, value, "--json"])
            .env("RUST_BACKTRACE", "0")
            .output()?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{flag} {value} was taken");
        assert!(output.stdout.is_empty(), "{flag} {value} ran: {}", String::from_utf8_lossy(&output.stdout));
        let named = stderr.contains(flag) || stderr.contains(value);
        assert!(named, "{flag} {value}: the error names neither: {stderr}");
    }
    Ok(())
}

#[test]
fn a_target_must_be_plain_http_with_a_key() {
    assert!(load::remote::Target::new("https://127.0.0.1:1", "k").is_err());
    assert!(load::remote::Target::new("http://127.0.0.1:1/v1", "k").is_err());
    assert!(load::remote::Target::new("http://127.0.0.1:1", " ").is_err());
    assert!(load::remote::Target::new("http://127.0.0.1:1/", "k").is_ok());
}
