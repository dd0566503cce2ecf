//! Browser tests: the storefront and the operations console in headless
//! Chromium (Debian's `chromium`, driven by playwright-core from
//! `tests/browser/`), against the real `orderdock` binary serving on a free
//! loopback port with a temporary data directory. The scenarios live in
//! `tests/browser/run.mjs`; screenshots land in `target/screenshots/`.
//! `scripts/test-deps` installs Chromium and playwright-core (pinned).

use std::path::{Path, PathBuf};
use std::process::Command;

use orderdock::process::spawn_server;

use crate::helpers::TestResult;

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// Runs one scenario of `run.mjs` against a fresh server started with `flags`.
fn scenario(name: &str, flags: &[&str]) -> TestResult {
    let browser_dir = repository().join("tests/browser");
    anyhow::ensure!(
        browser_dir.join("node_modules/playwright-core").is_dir() && chromium().exists(),
        "the browser tests need Chromium at {} and playwright-core in tests/browser/node_modules: run scripts/test-deps",
        chromium().display()
    );
    let shots = repository().join("target/screenshots");
    std::fs::create_dir_all(&shots)?;
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let (_server, address) = spawn_server(Path::new(env!("CARGO_BIN_EXE_orderdock")), &data, flags)?;
    let output = Command::new("node")
        .current_dir(&browser_dir)
        .arg("run.mjs")
        .arg(name)
        .arg(format!("http://{address}"))
        .arg(&data)
        .arg(&shots)
        .env("CHROMIUM", chromium())
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    anyhow::ensure!(output.status.success(), "browser scenario {name} failed:\n{stdout}\n{stderr}");
    Ok(())
}

/// A customer searches, adds to cart, checks out and watches the tracking
/// page reach `delivered` on autopilot; availability falls by what was ordered.
#[test]
fn a_customer_orders_in_the_storefront_and_watches_it_delivered() -> TestResult {
    scenario("shop", &["--autopilot", "--demo"])
}

/// In manual mode an operator confirms a pick and a pack in the console while
/// the customer's tracking page follows live; a receipt shows in the stock table.
#[test]
fn an_operator_picks_and_packs_in_the_console_and_the_customer_sees_it() -> TestResult {
    scenario("console", &[])
}
