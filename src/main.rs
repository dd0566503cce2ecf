//! `orderdock`: the command line. Reads configuration, installs tracing,
//! wires signals; the engine lives in the library. The load generator
//! (`load`, `bench`) is this binary's own: nothing in the library imports it.

mod load;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use orderdock::access::Role;
use orderdock::config::FileConfig;
use orderdock::fulfillment::bin::StockBook;
use orderdock::http::{AppState, HttpConfig};
use orderdock::node::{Node, Role as NodeRole};
use orderdock::persistence::Store;
use orderdock::{Config, Engine};

/// The allocator: mimalloc, for the many short-lived allocations of message
/// passing.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Asks Linux not to back this process's memory with transparent huge
/// pages. mimalloc asks for them on its arenas; every first touch of a
/// 2 MiB page then zeroes all of it, and the live actors of a busy engine
/// touch new memory all the time. Best effort: a kernel without the setting changes nothing.
fn without_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl(PR_SET_THP_DISABLE) takes integers only and changes
    // nothing but this process's choice of page size for later mappings.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// Orderdock: an order-to-delivery engine — e-commerce and fulfillment joined by a durable saga.
#[derive(Debug, Parser)]
#[command(name = "orderdock", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the engine with its HTTP API (embedded: both contexts, redb, nothing else needed).
    Serve(ServeArgs),
    /// Generate load (on an embedded engine, or a server with --target) and report throughput and latency (see BENCHMARKS.md).
    Load(LoadArgs),
    /// Whole-process benchmarks: memory per open order, recovery time after SIGKILL (see BENCHMARKS.md).
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Read a stopped engine's stores: orders by status, open sagas, outbox lag, stock with a conservation check.
    Inspect {
        /// Where the stores are.
        #[arg(long, default_value = "data")]
        data_dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Place N orders that stay open (manual warehouse) and report resident memory per order.
    Memory {
        /// Orders to place.
        #[arg(long, default_value_t = 100_000)]
        orders: u64,
        /// Orders in flight at once.
        #[arg(long, default_value_t = 256)]
        concurrency: usize,
        /// Let idle actors passivate (after 1 s) before measuring, instead of keeping them all live.
        #[arg(long)]
        passivate: bool,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Kill a loaded `orderdock serve` with SIGKILL, reopen its store, time until every saga is resumed.
    Recovery {
        /// Orders the server takes before it is killed.
        #[arg(long, default_value_t = 100_000)]
        orders: u64,
        /// Orders in flight at once.
        #[arg(long, default_value_t = 256)]
        concurrency: usize,
        /// An empty (or absent) directory for the server's stores.
        #[arg(long)]
        data_dir: PathBuf,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Args)]
struct LoadArgs {
    /// A fixed workload: `saga-3` or `saga-3-lowstock` (sets SKUs, stock and --until).
    #[arg(long)]
    workload: Option<String>,
    /// Orders to place.
    #[arg(long, default_value_t = 20_000)]
    orders: u64,
    /// Orders in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Distinct SKUs, ordered round-robin.
    #[arg(long, default_value_t = 100)]
    skus: usize,
    /// Units per SKU.
    #[arg(long, default_value_t = 1_000_000)]
    stock: u32,
    /// Warehouses the stock is spread over.
    #[arg(long, default_value_t = 1)]
    warehouses: usize,
    /// When an order counts as done: placed, reserved, paid, packed (shipment created), shipped or
    /// delivered. Default packed (the saga-3 milestone).
    #[arg(long)]
    until: Option<String>,
    /// Stop placing orders after this many seconds.
    #[arg(long)]
    duration: Option<u64>,
    /// Recorded with the results (the workload itself is deterministic).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Where the engine's stores go (default: a temporary directory, removed
    /// afterwards). With --target: where the server's admin.key is read from.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Drive a running server (`http://127.0.0.1:8080`) instead of an embedded engine.
    #[arg(long)]
    target: Option<String>,
    /// Admin API key for --target (default: $ORDERDOCK_API_KEY, else <data-dir>/admin.key, else data/admin.key).
    #[arg(long)]
    api_key: Option<String>,
    /// A split deployment: the fulfillment service (`--target` is then the
    /// e-commerce service); stock is set up and audited there.
    #[arg(long, requires = "target")]
    fulfillment_target: Option<String>,
    /// Admin API key of --fulfillment-target (default: $ORDERDOCK_FULFILLMENT_API_KEY).
    #[arg(long)]
    fulfillment_api_key: Option<String>,
    /// Place this many orders per second (open loop; latency counts from each order's due time).
    #[arg(long)]
    rate: Option<f64>,
    /// Embedded: passivate actors idle for this many milliseconds (default: the engine's 30 s).
    #[arg(long)]
    idle_after_ms: Option<u64>,
    /// Stop when orders are in flight and none finishes for this many seconds (a stalled run).
    #[arg(long, default_value_t = load::STALL_AFTER.as_secs())]
    stall_after_secs: u64,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Where the stores, the admin key and the carrier secret live.
    #[arg(long, default_value = "data")]
    data_dir: PathBuf,
    /// A TOML configuration file (see docs/configuration.md).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Simulated warehouse operators and carrier advance work by themselves.
    #[arg(long)]
    autopilot: bool,
    /// Keep the simulated payment gateway's ledger in this file, so it
    /// survives restarts as a real provider would (default: in memory).
    #[arg(long)]
    gateway_journal: Option<PathBuf>,
    /// A stocked demo shop: products, two warehouses with stock, a demo
    /// customer (key in `<data-dir>/demo-customer.key`, offered on the
    /// storefront's sign-in page) and a trickle of orders from a second one.
    #[arg(long)]
    demo: bool,
    /// Which context(s) to run: `all` (both, joined in memory), `ecommerce`
    /// or `fulfillment` (one context, linked to the other over NATS JetStream).
    #[arg(long, default_value = "all")]
    role: orderdock::node::Role,
    /// The NATS server of the `ecommerce` and `fulfillment` roles.
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    nats: String,
    /// The fulfillment service's API (`ecommerce` role), for the unified order
    /// view and stock availability, e.g. `http://127.0.0.1:8081`.
    #[arg(long)]
    fulfillment_url: Option<String>,
    /// A file holding an operator or admin key of the fulfillment service
    /// (`ecommerce` role, with `--fulfillment-url`), e.g. its `admin.key`.
    #[arg(long)]
    fulfillment_key_file: Option<PathBuf>,
    /// Test hook of the broker fault tests: abort after the receiver's commit
    /// of the n-th event, before its ack.
    #[arg(long, hide = true)]
    fault_abort_before_ack: Option<u64>,
}

fn main() -> anyhow::Result<()> {
    without_huge_pages();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ORDERDOCK_LOG").unwrap_or_else(|_| "info,ractor=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    match cli.command {
        Command::Serve(args) => runtime.block_on(serve(args)),
        Command::Load(args) => runtime.block_on(load(args)),
        Command::Bench(command) => runtime.block_on(bench(command)),
        Command::Inspect { data_dir } => inspect(&data_dir),
    }
}

/// Writes `contents` to `path` readable by the owner only.
fn write_secret(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path).with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = Config::new(&args.data_dir);
    let mut http = HttpConfig::default();
    if let Some(path) = &args.config {
        FileConfig::read(path)?.apply(&mut config, &mut http);
    }
    if args.autopilot {
        config.fulfillment.autopilot = true;
    }
    let mut adapters = orderdock::Adapters::default();
    if let Some(path) = &args.gateway_journal {
        let gateway = orderdock::ecommerce::payments::SimulatedGateway::with_journal(path)
            .with_context(|| format!("opening the gateway journal {}", path.display()))?;
        adapters.gateway = Arc::new(gateway);
    }
    let node = start_node(&args, config.clone(), adapters).await?;
    ensure_admin_key(&node, &args.data_dir.join("admin.key")).await?;
    if http.carrier_secret.is_empty() {
        http.carrier_secret = carrier_secret(&args.data_dir.join("carrier.key"))?;
    }
    let node = Arc::new(node);
    if let (true, Some(engine)) = (args.demo, node.engine()) {
        http.demo_customer_key = Some(demo(engine, &args.data_dir.join("demo-customer.key")).await?);
    }
    let listener =
        tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("binding {}", args.listen))?;
    let address = listener.local_addr()?;
    if args.demo && args.role != NodeRole::All {
        eprintln!("--demo needs the all role; ignored.");
    }
    eprintln!(
        "Orderdock listening on http://{address} (role {:?}, data in {}, autopilot {})",
        args.role,
        args.data_dir.display(),
        if config.fulfillment.autopilot { "on" } else { "off" }
    );
    if args.demo && args.role == NodeRole::All {
        eprintln!("Storefront: http://{address}/   Console: http://{address}/console (admin key above)");
    }
    let state = AppState::for_node(node.clone(), http);
    orderdock::http::serve(listener, state, shutdown_signal()).await?;
    eprintln!("Stopping: draining the outboxes and closing the stores…");
    node.shutdown().await;
    eprintln!("Stopped.");
    Ok(())
}

/// Starts what `args.role` serves.
async fn start_node(args: &ServeArgs, config: Config, adapters: orderdock::Adapters) -> anyhow::Result<Node> {
    let broker =
        orderdock::broker::BrokerConfig { url: args.nats.clone(), abort_before_ack_after: args.fault_abort_before_ack };
    Ok(match args.role {
        NodeRole::All => {
            Node::Embedded(Arc::new(Engine::start_with(config.clone(), adapters).await.context("starting the engine")?))
        }
        NodeRole::Ecommerce => {
            let api = match &args.fulfillment_url {
                Some(url) => {
                    let path = args
                        .fulfillment_key_file
                        .clone()
                        .context("--fulfillment-url needs --fulfillment-key-file (an operator key of that service)")?;
                    let key = orderdock::node::read_key(&path).map_err(anyhow::Error::msg)?;
                    Some(orderdock::node::FulfillmentApi { url: url.clone(), key })
                }
                None => None,
            };
            Node::start_ecommerce(config.clone(), adapters, &broker, api)
                .await
                .context("starting the e-commerce role")?
        }
        NodeRole::Fulfillment => {
            Node::start_fulfillment(config.clone(), adapters, &broker).await.context("starting the fulfillment role")?
        }
    })
}

/// Issues the first admin key into `path` (readable by its owner only) when the node has none.
async fn ensure_admin_key(node: &Node, path: &Path) -> anyhow::Result<()> {
    let keys = node.keys();
    if keys.has_admin() {
        eprintln!("Admin API key: {}", path.display());
        return Ok(());
    }
    let (secret, _) = keys.issue_key(Role::Admin, None).await?;
    let _ = std::fs::remove_file(path);
    write_secret(path, &format!("{secret}\n"))?;
    eprintln!("Created an admin API key in {} (readable by you only).", path.display());
    Ok(())
}

/// The carrier webhook secret kept in `path`, made on first start.
fn carrier_secret(path: &Path) -> anyhow::Result<String> {
    if !path.exists() {
        let random = orderdock::events::ids::random_secret()
            .map_err(|err| anyhow::anyhow!("no randomness for the carrier secret: {err}"))?;
        write_secret(path, &format!("{random:032x}\n"))?;
    }
    Ok(std::fs::read_to_string(path)?.trim().to_owned())
}

/// Stocks the demo shop on first start, starts its traffic and returns the
/// demo customer's key. The file at `path` holds that key, then the traffic
/// customer's id.
async fn demo(engine: &Arc<Engine>, path: &Path) -> anyhow::Result<String> {
    if !path.exists() {
        let shop = orderdock::demo::stock_shop(engine).await?;
        write_secret(path, &format!("{}\n{}\n", shop.customer_key, shop.traffic_customer))?;
        eprintln!("Stocked the demo shop; the demo customer's key is in {}.", path.display());
    }
    let text = std::fs::read_to_string(path)?;
    let mut lines = text.lines();
    let customer_key = lines.next().unwrap_or_default().trim().to_owned();
    let traffic: orderdock::events::CustomerId =
        lines.next().unwrap_or_default().trim().parse().with_context(|| format!("reading {}", path.display()))?;
    orderdock::demo::traffic(engine.clone(), traffic);
    Ok(customer_key)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

async fn load(args: LoadArgs) -> anyhow::Result<()> {
    let config = load_config(&args)?;
    let bar = progress_bar(config.orders, args.json);
    let ticker = bar.clone();
    let report = load::run(config, move |done| ticker.set_position(done)).await?;
    bar.finish_and_clear();
    print_report(&report, args.json)?;
    anyhow::ensure!(
        report.stock_balanced && report.money_balanced && report.oversold_units == 0,
        "balance checks failed"
    );
    if report.stalled {
        anyhow::bail!(
            "the run stalled: no order in flight reached `{}` (or was cancelled) for {} s, so it stopped.{}",
            report.until.as_str(),
            args.stall_after_secs,
            if args.target.is_none() {
                ""
            } else {
                " Against a server: orders are packed, shipped and delivered only when it runs \
                 with `--autopilot` (its simulated warehouse and carrier); without it they wait \
                 for people once paid. In a split deployment, both services must be up."
            }
        );
    }
    anyhow::ensure!(report.failed == 0 && report.timed_out == 0, "some orders failed or timed out");
    Ok(())
}

/// The run `args` ask for, checked.
fn load_config(args: &LoadArgs) -> anyhow::Result<load::LoadConfig> {
    use load::{LoadConfig, Until};
    let mut config = match args.workload.as_deref() {
        Some("saga-3") => LoadConfig::saga3(args.orders, args.concurrency, false),
        Some("saga-3-lowstock") => LoadConfig::saga3(args.orders, args.concurrency, true),
        Some(other) => anyhow::bail!("unknown workload {other:?}: saga-3 or saga-3-lowstock"),
        None => LoadConfig {
            orders: args.orders,
            concurrency: args.concurrency,
            skus: args.skus,
            stock: args.stock,
            warehouses: args.warehouses,
            until: Until::Packed,
            duration: None,
            seed: args.seed,
            data_dir: None,
            target: None,
            fulfillment_target: None,
            rate: None,
            autopilot: true,
            idle_after: None,
            stall_after: load::STALL_AFTER,
        },
    };
    anyhow::ensure!(args.orders > 0, "--orders must be at least 1");
    anyhow::ensure!(config.concurrency > 0, "--concurrency must be at least 1");
    anyhow::ensure!(args.skus > 0, "--skus must be at least 1");
    anyhow::ensure!(args.warehouses > 0, "--warehouses must be at least 1");
    anyhow::ensure!(args.duration != Some(0), "--duration must be at least 1 (seconds)");
    anyhow::ensure!(args.rate.is_none_or(|r| r.is_finite() && r > 0.0), "--rate must be a positive number");
    config.duration = args.duration.map(std::time::Duration::from_secs);
    config.seed = args.seed;
    config.rate = args.rate;
    if let Some(ms) = args.idle_after_ms {
        anyhow::ensure!(ms > 0, "--idle-after-ms must be at least 1");
        config.idle_after = Some(std::time::Duration::from_millis(ms));
    }
    anyhow::ensure!(args.stall_after_secs > 0, "--stall-after-secs must be at least 1");
    config.stall_after = std::time::Duration::from_secs(args.stall_after_secs);
    if let Some(until) = &args.until {
        config.until = Until::parse(until).map_err(anyhow::Error::msg)?;
    }
    if let Some(url) = &args.target {
        let key = match args.api_key.clone().or_else(|| std::env::var("ORDERDOCK_API_KEY").ok()) {
            Some(key) => key,
            None => {
                let path = args.data_dir.clone().unwrap_or_else(|| PathBuf::from("data")).join("admin.key");
                std::fs::read_to_string(&path)
                    .with_context(|| format!("reading the admin key from {} (or pass --api-key)", path.display()))?
            }
        };
        config.target = Some(load::remote::Target::new(url, &key)?);
        if let Some(url) = &args.fulfillment_target {
            let key = args
                .fulfillment_api_key
                .clone()
                .or_else(|| std::env::var("ORDERDOCK_FULFILLMENT_API_KEY").ok())
                .context("--fulfillment-target needs --fulfillment-api-key (the fulfillment service's admin key)")?;
            config.fulfillment_target = Some(load::remote::Target::new(url, &key)?);
        }
    } else {
        config.data_dir = args.data_dir.clone();
    }
    Ok(config)
}

/// Prints a run's report: one JSON object, or a table.
fn print_report(report: &load::LoadReport, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "orders        {} ({} done at {}, {} cancelled, {} timed out, {} failed)",
            report.orders,
            report.completed,
            report.until.as_str(),
            report.cancelled,
            report.timed_out,
            report.failed
        );
        println!("target        {} (concurrency {})", report.target, report.concurrency);
        let commits = report.commits.map(|c| format!(" ({c} durable commits)")).unwrap_or_default();
        println!("throughput    {:.0} orders/s over {:.1} s{commits}", report.orders_per_sec, report.elapsed_sec);
        println!(
            "intake        p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            report.intake.p50_ms, report.intake.p90_ms, report.intake.p99_ms, report.intake.max_ms
        );
        println!(
            "saga          p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            report.saga.p50_ms, report.saga.p90_ms, report.saga.p99_ms, report.saga.max_ms
        );
        println!("memory        {:.1} MiB peak RSS", report.rss_peak_bytes as f64 / (1024.0 * 1024.0));
        println!(
            "checks        stock {} ({} oversold), money {}",
            if report.stock_balanced { "balanced" } else { "MISMATCH" },
            report.oversold_units,
            if report.money_balanced { "balanced" } else { "MISMATCH" }
        );
    }
    Ok(())
}

fn progress_bar(len: u64, hidden: bool) -> indicatif::ProgressBar {
    if hidden {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} orders ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar
}

async fn bench(command: BenchCommand) -> anyhow::Result<()> {
    use load::bench;
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    match command {
        BenchCommand::Memory { orders, concurrency, passivate, json } => {
            anyhow::ensure!(orders > 0 && concurrency > 0, "--orders and --concurrency must be at least 1");
            let bar = progress_bar(orders, json);
            let ticker = bar.clone();
            let report = bench::memory(orders, concurrency, passivate, move |n| ticker.set_position(n)).await?;
            bar.finish_and_clear();
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!("orders open       {} ({} open sagas in the stores)", report.orders, report.open_sagas);
                println!(
                    "live actors       {} orders, {} fulfillment orders, {} bins{}",
                    report.live_orders,
                    report.live_fulfillment_orders,
                    report.live_bins,
                    if report.passivated { " (after passivation)" } else { "" }
                );
                println!(
                    "resident memory   {:.1} MiB before, {:.1} MiB after",
                    mib(report.rss_before_bytes),
                    mib(report.rss_after_bytes)
                );
                println!("per order         {:.0} bytes", report.rss_per_order_bytes);
                println!("per live actor    {:.0} bytes", report.rss_per_live_actor_bytes);
            }
        }
        BenchCommand::Recovery { orders, concurrency, data_dir, json } => {
            anyhow::ensure!(orders > 0 && concurrency > 0, "--orders and --concurrency must be at least 1");
            let exe = std::env::current_exe().context("finding the orderdock binary")?;
            let bar = progress_bar(orders, json);
            let ticker = bar.clone();
            let report = bench::recovery(&exe, &data_dir, orders, concurrency, move |n| ticker.set_position(n)).await?;
            bar.finish_and_clear();
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!("acknowledged      {} orders, then SIGKILL", report.orders_acknowledged);
                println!(
                    "found on reopen   {} unfinished sagas, {} undelivered events",
                    report.open_sagas, report.outbox_pending
                );
                println!(
                    "started           {:.0} ms (stores opened, every unfinished saga respawned)",
                    report.start_ms
                );
                println!("resumed           {:.0} ms (every undelivered event delivered)", report.resumed_ms);
                println!(
                    "checks            {} lost orders, stock {}, money {}",
                    report.lost_orders,
                    if report.stock_balanced { "balanced" } else { "MISMATCH" },
                    if report.money_balanced { "balanced" } else { "MISMATCH" }
                );
                println!("memory            {:.1} MiB peak RSS", mib(report.rss_peak_bytes));
            }
            anyhow::ensure!(
                report.lost_orders == 0 && report.stock_balanced && report.money_balanced,
                "recovery checks failed"
            );
        }
    }
    Ok(())
}

fn inspect(data_dir: &Path) -> anyhow::Result<()> {
    let open = |name: &str| {
        let path = data_dir.join(name);
        anyhow::ensure!(path.exists(), "no store at {} (is --data-dir right?)", path.display());
        Store::open(&path).map_err(|err| match err {
            orderdock::persistence::StoreError::AlreadyOpen => {
                anyhow::anyhow!("{} is in use: stop the server first", path.display())
            }
            other => anyhow::anyhow!("{}: {other}", path.display()),
        })
    };
    let ecommerce = open("ecommerce.redb")?;
    let fulfillment = open("fulfillment.redb")?;

    let mut by_status: BTreeMap<&'static str, usize> = BTreeMap::new();
    for (id, bytes) in ecommerce.snapshots("order")? {
        let order = orderdock::ecommerce::order::snapshot::decode(&id, &bytes)?;
        *by_status.entry(order.status().as_str()).or_default() += 1;
    }
    println!("Orders by status:");
    if by_status.is_empty() {
        println!("  (none)");
    }
    for (status, count) in &by_status {
        println!("  {status:<18} {count:>8}");
    }

    println!("\nSagas not finished:");
    println!("  orders             {:>8}", ecommerce.open_ids("order")?.len());
    println!("  fulfillment orders {:>8}", fulfillment.open_ids("fulfillment_order")?.len());
    println!("  shipments          {:>8}", fulfillment.open_ids("shipment")?.len());

    println!("\nOutbox (events not yet acknowledged):");
    println!("  ecommerce          {:>8}", ecommerce.outbox()?.len());
    println!("  fulfillment        {:>8}", fulfillment.outbox()?.len());

    println!("\nStock per SKU (received = on hand + shipped + written off):");
    let mut totals: BTreeMap<String, StockBook> = BTreeMap::new();
    let mut broken = 0;
    for (bin, _) in orderdock::fulfillment::bin::snapshot::load_all(&fulfillment)? {
        for (sku, level) in bin.levels() {
            totals.entry(sku.to_string()).or_default().add(level);
        }
    }
    println!(
        "  {:<20} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}  check",
        "sku", "received", "on_hand", "held", "available", "shipped", "written_off"
    );
    for (sku, book) in &totals {
        let StockBook { received, on_hand, held, available, shipped, written_off } = book;
        let balanced = book.check().is_ok();
        if !balanced {
            broken += 1;
        }
        println!(
            "  {sku:<20} {received:>10} {on_hand:>10} {held:>10} {available:>10} {shipped:>10} {written_off:>10}  {}",
            if balanced { "ok" } else { "MISMATCH" }
        );
    }
    ecommerce.close();
    fulfillment.close();
    anyhow::ensure!(broken == 0, "{broken} SKU(s) do not balance");
    Ok(())
}
