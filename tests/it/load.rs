//! The load driver (`orderdock load`, the binary's own): a small saga-3 run
//! completes every order and balances, embedded and against a server.

use serde_json::Value;

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

    /// The flags that point the load tool at it, with `key`.
    fn target(&self, key: &str) -> Vec<String> {
        vec!["--target".to_owned(), format!("http://{}/", self.address), "--api-key".to_owned(), key.to_owned()]
    }

    async fn stop(self) -> TestResult {
        let _ = self.stop.send(());
        self.task.await??;
        Ok(())
    }
}

/// Runs `orderdock load --json` with `args` (off the runtime's workers: a
/// server under test may run on them) and returns its report and whether it
/// exited successfully.
async fn load(args: &[&str]) -> anyhow::Result<(Value, bool)> {
    let data = tempfile::tempdir()?;
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_orderdock"));
    command.args(["load", "--json"]).args(args).env("ORDERDOCK_LOG", "warn");
    if !args.contains(&"--target") {
        command.arg("--data-dir").arg(data.path());
    }
    let output = tokio::task::spawn_blocking(move || command.output()).await??;
    let report: Value = serde_json::from_slice(&output.stdout)
        .map_err(|err| anyhow::anyhow!("no report ({err}): {}", String::from_utf8_lossy(&output.stderr)))?;
    Ok((report, output.status.success()))
}

fn counts(report: &Value, fields: &[&str]) -> Vec<u64> {
    fields.iter().map(|field| report[*field].as_u64().unwrap_or(u64::MAX)).collect()
}

fn balanced(report: &Value) -> bool {
    report["stock_balanced"] == true && report["money_balanced"] == true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_saga3_run_completes_every_order_and_balances() -> TestResult {
    let (report, ok) = load(&["--workload", "saga-3", "--orders", "200", "--concurrency", "16"]).await?;
    assert!(ok, "{report}");
    assert_eq!(counts(&report, &["orders", "completed", "cancelled", "timed_out"]), [200, 200, 0, 0]);
    assert!(balanced(&report));
    assert_eq!(report["oversold_units"], 0);
    let ms = |field: &str| report[field].as_f64().unwrap_or(f64::NAN);
    assert!(ms("p50_ms") <= ms("p99_ms") && ms("p99_ms") <= ms("max_ms"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lowstock_variant_rejects_about_thirty_percent_and_compensates() -> TestResult {
    let (report, _) = load(&["--workload", "saga-3-lowstock", "--orders", "1000", "--concurrency", "32"]).await?;
    assert_eq!(report["orders"], 1000);
    assert_eq!(report["timed_out"], 0);
    // Stock is sized to 70 % of the orders: exactly 700 can be served.
    assert_eq!(report["completed"], 700, "{report}");
    assert_eq!(report["cancelled"], 300);
    assert!(balanced(&report), "{report}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_against_a_server_over_http_completes_and_balances() -> TestResult {
    let api = crate::api::Api::start(true).await?;
    let server = Server::start(&api).await?;
    let target = server.target(&api.admin);
    let target: Vec<&str> = target.iter().map(String::as_str).collect();
    // 10 SKUs × 21 units: 210 of the 300 orders can be served.
    let mut args = vec!["--orders", "300", "--concurrency", "16", "--skus", "10", "--stock", "21"];
    args.extend(&target);
    let (report, _) = load(&args).await?;
    assert_eq!(counts(&report, &["orders", "failed", "timed_out"]), [300, 0, 0], "{report}");
    assert_eq!(counts(&report, &["completed", "cancelled"]), [210, 90], "{report}");
    assert!(balanced(&report), "{report}");
    assert!(report["rss_peak_bytes"].as_u64() > Some(0));
    // A second run against the same server adds its own stock and customer.
    let mut again = vec!["--orders", "50", "--concurrency", "4", "--until", "placed"];
    again.extend(&target);
    let (report, _) = load(&again).await?;
    assert_eq!(counts(&report, &["completed", "failed"]), [50, 0], "{report}");
    server.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_waiting_for_packing_on_a_server_run_by_hand_stops_as_stalled() -> TestResult {
    // Without autopilot the warehouse waits for people: orders are reserved
    // and paid, and never packed.
    let api = crate::api::Api::start(false).await?;
    let server = Server::start(&api).await?;
    let target = server.target(&api.admin);
    let mut args = vec!["--workload", "saga-3", "--orders", "500", "--concurrency", "8", "--stall-after-secs", "1"];
    args.extend(target.iter().map(String::as_str));
    let (report, ok) = load(&args).await?;
    assert!(!ok, "a stalled run exits non-zero");
    assert_eq!(report["stalled"], true, "{report}");
    assert_eq!(counts(&report, &["completed", "cancelled", "failed"]), [0, 0, 0], "{report}");
    let (orders, timed_out) = (report["orders"].as_u64(), report["timed_out"].as_u64());
    assert!(orders <= Some(8) && timed_out == orders, "at most the eight in flight, none after: {report}");
    assert!(balanced(&report), "{report}");
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
