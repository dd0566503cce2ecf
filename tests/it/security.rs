//! Mass assignment and limits (RELIABILITY.md T13): fields a client must not
//! set, and bodies over the limits, are refused with a 4xx and change nothing.

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::api::Api;
use crate::figures;
use crate::helpers::TestResult;

fn order(extra: &[(&str, Value)]) -> Value {
    let mut body = json!({
        "lines": [{"sku": "MUG", "quantity": 1}],
        "ship_to": {"name": "A", "line1": "B", "city": "C", "postal_code": "D", "country": "GB"},
        "payment": {"token": "tok_visa"},
    });
    for (field, value) in extra {
        body[*field] = value.clone();
    }
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_mass_assignment_and_limits() -> TestResult {
    let api = Api::start(false).await?;
    let (customer, _) = api.shop().await?;
    let other = api.post("/v1/customers", &api.admin, None, &json!({"name":"Eve","email":"eve@example.com"})).await?;
    let other_id = other.body["id"].as_str().unwrap_or_default().to_owned();
    let many_lines: Vec<Value> = (0..101).map(|n| json!({"sku": format!("S{n}"), "quantity": 1})).collect();
    let cases: Vec<(&str, Value, StatusCode)> = vec![
        (
            "client total",
            order(&[("total", json!({"amount": 1, "currency": "EUR"}))]),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ("client status", order(&[("status", json!("delivered"))]), StatusCode::UNPROCESSABLE_ENTITY),
        (
            "client line price",
            order(&[("lines", json!([{"sku":"MUG","quantity":1,"unit_price":{"amount":1,"currency":"EUR"}}]))]),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ("someone else's customer id", order(&[("customer_id", json!(other_id))]), StatusCode::FORBIDDEN),
        (
            "client payment status",
            order(&[("payment", json!({"token":"tok_visa","status":"captured"}))]),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ("too many lines", order(&[("lines", json!(many_lines))]), StatusCode::UNPROCESSABLE_ENTITY),
        (
            "huge quantity",
            order(&[("lines", json!([{"sku":"MUG","quantity":4_000_000_000u64}]))]),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "quantity over the cap",
            order(&[("lines", json!([{"sku":"MUG","quantity":10_001}]))]),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ("oversize body", order(&[("ship_to", json!({"name": "x".repeat(70_000)}))]), StatusCode::PAYLOAD_TOO_LARGE),
    ];
    let before = api.get("/v1/orders?limit=100", &api.admin).await?.body["items"].as_array().map_or(0, Vec::len);
    let stock_before = api.get("/v1/inventory/MUG", &api.admin).await?.body;
    let mut unexpected = Vec::new();
    for (n, (what, body, expected)) in cases.iter().enumerate() {
        let reply = api.post("/v1/orders", &customer, Some(&format!("mass-{n}")), body).await?;
        if reply.status != *expected {
            unexpected.push(format!("{what}: {} (expected {expected}): {}", reply.status, reply.body));
        }
    }
    // Page size over the cap.
    let page = api.get("/v1/orders?limit=1000", &api.admin).await?;
    if page.status != StatusCode::UNPROCESSABLE_ENTITY {
        unexpected.push(format!("page size 1000: {}", page.status));
    }
    let after = api.get("/v1/orders?limit=100", &api.admin).await?.body["items"].as_array().map_or(0, Vec::len);
    let state_changes =
        u64::from(after != before) + u64::from(api.get("/v1/inventory/MUG", &api.admin).await?.body != stock_before);
    let violations = unexpected.len() as u64 + state_changes;
    figures::record(
        "api_mass_assignment_and_limits",
        0,
        cases.len() as u64 + 1,
        violations,
        json!({"cases": cases.len() + 1, "unexpected_statuses": unexpected, "state_changes": state_changes}),
    );
    assert!(unexpected.is_empty(), "{unexpected:#?}");
    assert_eq!(state_changes, 0, "a refused request changed state");
    Ok(())
}
