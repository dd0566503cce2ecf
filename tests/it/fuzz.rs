//! Fuzzing, proptest-driven (RELIABILITY.md T10; cargo-fuzz needs a nightly
//! toolchain, which CI does not have): random and mutated bytes into the
//! snapshot and event decoders, random JSON bodies into every POST route.
//! Nothing may panic, no body may get a 5xx, and a refused request changes
//! nothing.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use serde_json::json;
use tower::ServiceExt;

use crate::figures;

/// Arbitrary bytes, or a valid record with a few bytes changed.
fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..400),
        (proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6)).prop_map(|edits| {
            let mut base = orderdock::persistence::codec::encode(1, &"seed".to_owned()).unwrap_or_default();
            base.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
            for (at, byte) in edits {
                let len = base.len();
                base[at % len] = byte;
            }
            base
        }),
    ]
}

#[test]
fn fuzz_decoders() {
    let cases = figures::cases(3_000);
    let decoded = AtomicU64::new(0);
    let mut runner = figures::runner(cases);
    let result = runner.run(&bytes(), |bytes| {
        let outcomes = [
            orderdock::ecommerce::order::actor::decode("ord_x", &bytes).is_ok(),
            orderdock::fulfillment::bin::actor::decode("wh/A", &bytes).is_ok(),
            orderdock::fulfillment::fulfillment_order::actor::decode("ful_x", &bytes).is_ok(),
            orderdock::fulfillment::shipment::actor::decode("shp_x", &bytes).is_ok(),
            orderdock::actors::dispatcher::decode_envelope(&bytes).is_ok(),
            orderdock::http::idempotency::stored_resource(&bytes).is_ok(),
        ];
        decoded.fetch_add(outcomes.iter().filter(|ok| **ok).count() as u64, Ordering::Relaxed);
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
    let mut inputs = Vec::new();
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
        json!({"bodies": cases, "routes": routes.len(), "requests": requests, "accepted": accepted, "server_errors": server_errors}),
    );
    assert!(server_errors.is_empty(), "{server_errors:#?}");
    assert_eq!(StatusCode::OK, api.get("/healthz", &api.admin).await?.status);
    Ok(())
}
