//! Fuzzing, proptest-driven (RELIABILITY.md T10): random bytes and mutations
//! of the checked-in corpora into the snapshot and event decoders, random
//! JSON bodies and the corpus of request bodies into every POST route.
//! Nothing may panic and no body may get a 5xx.
//!
//! Corpora: `tests/corpus/decoders/<decoder>/*.bin` are real stored records
//! (written by `cargo run --example fuzz_corpus`); every one must still
//! decode, so they double as a compatibility check of the stored formats.
//! `tests/corpus/decoders/regressions/*.bin` and `tests/corpus/http/*.json`
//! are inputs that must not panic or get a 5xx; an input that once failed
//! is added there and replayed by every run.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use serde_json::json;
use tower::ServiceExt;

use crate::figures;

/// The decoders, by corpus folder name.
const DECODERS: [&str; 6] = ["order", "bin", "fulfillment_order", "shipment", "envelope", "idempotency"];

fn corpus_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

/// Every file of `tests/corpus/<folder>`, sorted by name.
fn corpus(folder: &str) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(corpus_dir().join(folder))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().is_file())
                .filter_map(|e| Some((e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).ok()?)))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Whether `bytes` decode with decoder `n` of [`DECODERS`].
fn decodes(n: usize, bytes: &[u8]) -> bool {
    match n {
        0 => orderdock::ecommerce::order::snapshot::decode("ord_x", bytes).is_ok(),
        1 => orderdock::fulfillment::bin::snapshot::decode("wh/A", bytes).is_ok(),
        2 => orderdock::fulfillment::fulfillment_order::snapshot::decode("ful_x", bytes).is_ok(),
        3 => orderdock::fulfillment::shipment::snapshot::decode("shp_x", bytes).is_ok(),
        4 => orderdock::actors::dispatcher::decode_envelope(bytes).is_ok(),
        _ => orderdock::http::idempotency::stored_resource(bytes).is_ok(),
    }
}

/// Arbitrary bytes, or a corpus record with a few bytes changed, cut or extended.
fn bytes(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..400),
        (0..seeds.len(), proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6), any::<u8>()).prop_map(
            move |(seed, edits, cut)| {
                let mut base = seeds[seed].clone();
                for (at, byte) in edits {
                    let len = base.len();
                    base[at % len] = byte;
                }
                match cut % 4 {
                    0 => base.truncate(base.len() * usize::from(cut) / 256),
                    1 => base.extend_from_slice(&[cut; 9]),
                    _ => {}
                }
                base
            }
        ),
    ]
}

#[test]
fn corpus_records_decode_and_regressions_do_not_panic() {
    let mut replayed = 0u64;
    for (n, decoder) in DECODERS.iter().enumerate() {
        let files = corpus(&format!("decoders/{decoder}"));
        assert!(!files.is_empty(), "no corpus for the {decoder} decoder in tests/corpus/decoders/{decoder}");
        for (name, bytes) in &files {
            assert!(decodes(n, bytes), "the stored {decoder} record {name} no longer decodes");
            replayed += 1;
        }
    }
    for (name, bytes) in corpus("decoders/regressions") {
        for (n, decoder) in DECODERS.iter().enumerate() {
            let outcome = std::panic::catch_unwind(|| decodes(n, &bytes));
            assert!(outcome.is_ok(), "regression input {name} panics the {decoder} decoder");
            replayed += 1;
        }
    }
    figures::record("fuzz_corpus_replay", 0, replayed, 0, json!({"replayed": replayed}));
}

#[test]
fn fuzz_decoders() {
    let cases = figures::cases(3_000);
    let decoded = AtomicU64::new(0);
    let seeds: Vec<Vec<u8>> = DECODERS
        .iter()
        .flat_map(|decoder| corpus(&format!("decoders/{decoder}")))
        .map(|(_, bytes)| bytes)
        .filter(|bytes| !bytes.is_empty())
        .collect();
    assert!(!seeds.is_empty(), "the decoder corpus is missing");
    let mut runner = figures::runner(cases);
    let result = runner.run(&bytes(seeds), |bytes| {
        let accepted = (0..DECODERS.len()).filter(|n| decodes(*n, &bytes)).count();
        decoded.fetch_add(accepted as u64, Ordering::Relaxed);
        Ok(())
    });
    let violations = u64::from(result.is_err());
    figures::record(
        "fuzz_decoders",
        figures::seed(),
        u64::from(cases),
        violations,
        json!({"inputs": cases, "decoders": 6, "accepted": decoded.load(Ordering::Relaxed), "panics": violations}),
    );
    if let Err(err) = result {
        panic!("{err}");
    }
}

/// JSON-ish bodies: random values, and valid order bodies with one field replaced.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop_oneof![
        Just(json!(null)),
        any::<bool>().prop_map(|b| json!(b)),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        "[ -~]{0,40}".prop_map(|s| json!(s)),
    ];
    let value = leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(|v| json!(v)),
            proptest::collection::btree_map("[a-z_]{1,12}", inner, 0..6).prop_map(|m| json!(m)),
        ]
    });
    let fields = ["lines", "ship_to", "payment", "customer_id", "sku", "quantity", "warehouse_id", "bin", "delta"];
    prop_oneof![
        value.clone().prop_map(|v| serde_json::to_vec(&v).unwrap_or_default()),
        proptest::collection::vec(any::<u8>(), 0..200),
        (0..fields.len(), value).prop_map(move |(f, v)| {
            let mut order = json!({
                "lines": [{"sku": "MUG", "quantity": 1}],
                "ship_to": {"name": "A", "line1": "B", "city": "C", "postal_code": "D", "country": "GB"},
                "payment": {"token": "tok_visa"},
            });
            order[fields[f]] = v;
            serde_json::to_vec(&order).unwrap_or_default()
        }),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzz_http_bodies() -> crate::helpers::TestResult {
    let api = crate::api::Api::start(false).await?;
    api.shop().await?;
    let routes = [
        "/v1/orders",
        "/v1/products",
        "/v1/customers",
        "/v1/warehouses",
        "/v1/inventory/receipts",
        "/v1/inventory/adjustments",
        "/v1/fulfillment/orders",
    ];
    let cases = figures::cases(300);
    // The checked-in bodies first (regressions included), then generated ones.
    let mut inputs: Vec<Vec<u8>> = corpus("http").into_iter().map(|(_, bytes)| bytes).collect();
    assert!(!inputs.is_empty(), "the request body corpus tests/corpus/http is missing");
    let mut runner = figures::runner(cases);
    let strategy = body();
    for _ in 0..cases {
        inputs.push(strategy.new_tree(&mut runner).map_err(|e| anyhow::anyhow!(e))?.current());
    }
    let (mut requests, mut accepted, mut server_errors) = (0u64, 0u64, Vec::new());
    for (n, bytes) in inputs.iter().enumerate() {
        for route in routes {
            let request = Request::post(route)
                .header("authorization", format!("Bearer {}", api.admin))
                .header("content-type", "application/json")
                .header("idempotency-key", format!("fuzz-{n}-{route}"))
                .body(Body::from(bytes.clone()))?;
            let response = orderdock::http::router(api.state.clone()).oneshot(request).await?;
            requests += 1;
            if response.status().is_server_error() {
                server_errors.push(format!("{route} {}: {}", response.status(), String::from_utf8_lossy(bytes)));
            } else if response.status().is_success() {
                accepted += 1;
            }
        }
    }
    let violations = server_errors.len() as u64;
    figures::record(
        "fuzz_http_bodies",
        figures::seed(),
        requests,
        violations,
        json!({"bodies": inputs.len(), "routes": routes.len(), "requests": requests, "accepted": accepted, "server_errors": server_errors}),
    );
    assert!(server_errors.is_empty(), "{server_errors:#?}");
    assert_eq!(StatusCode::OK, api.get("/healthz", &api.admin).await?.status);
    Ok(())
}
