//! The HTTP API through `Router::oneshot` (no socket), and one full walk over a real socket.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use orderdock::access::Role;
use orderdock::http::{carriers, AppState, HttpConfig};
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::helpers::{eventually, wait_until, TestResult, SETTLE};

const SECRET: &str = "carrier-test-secret";

pub(crate) struct Api {
    pub(crate) state: AppState,
    pub(crate) admin: String,
    pub(crate) operator: String,
    pub(crate) channel: String,
    _dir: tempfile::TempDir,
}

pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) body: Value,
    pub(crate) bytes: Vec<u8>,
}

impl Api {
    pub(crate) async fn start(autopilot: bool) -> anyhow::Result<Api> {
        let dir = tempfile::tempdir()?;
        let config = crate::helpers::config(dir.path(), autopilot);
        let engine = Arc::new(orderdock::Engine::start(config).await?);
        let accounts = engine.ecommerce().accounts().keys().clone();
        let (admin, _) = accounts.issue_key(Role::Admin, None).await?;
        let (operator, _) = accounts.issue_key(Role::Operator, None).await?;
        let (channel, _) = accounts.issue_key(Role::Channel, None).await?;
        let http = HttpConfig { carrier_secret: SECRET.to_owned(), ..HttpConfig::default() };
        Ok(Api { state: AppState::new(engine, http), admin, operator, channel, _dir: dir })
    }

    /// The embedded engine behind the API.
    pub(crate) fn engine(&self) -> &Arc<orderdock::Engine> {
        self.state.engine().expect("the tests run the embedded engine")
    }

    /// The status of a request whose body is not read (a stream).
    pub(crate) async fn status_only(&self, method: &str, path: &str, key: Option<&str>) -> anyhow::Result<StatusCode> {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(key) = key {
            request = request.header("authorization", format!("Bearer {key}"));
        }
        let response = orderdock::http::router(self.state.clone()).oneshot(request.body(Body::empty())?).await?;
        Ok(response.status())
    }

    pub(crate) async fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        idempotency: Option<&str>,
        body: Option<&[u8]>,
    ) -> anyhow::Result<Reply> {
        let mut request = Request::builder().method(method).uri(path).header("content-type", "application/json");
        if let Some(key) = key {
            request = request.header("authorization", format!("Bearer {key}"));
        }
        if let Some(idempotency) = idempotency {
            request = request.header("idempotency-key", idempotency);
        }
        let request = request.body(Body::from(body.map(<[u8]>::to_vec).unwrap_or_default()))?;
        let response = orderdock::http::router(self.state.clone()).oneshot(request).await?;
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 22).await?.to_vec();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Reply { status, body, bytes })
    }

    pub(crate) async fn post(
        &self,
        path: &str,
        key: &str,
        idempotency: Option<&str>,
        body: &Value,
    ) -> anyhow::Result<Reply> {
        self.call("POST", path, Some(key), idempotency, Some(&serde_json::to_vec(body)?)).await
    }

    pub(crate) async fn get(&self, path: &str, key: &str) -> anyhow::Result<Reply> {
        self.call("GET", path, Some(key), None, None).await
    }

    /// A catalog, a warehouse with stock and a customer; returns the customer's key and id.
    pub(crate) async fn shop(&self) -> anyhow::Result<(String, String)> {
        let product =
            json!({"sku":"MUG","name":"Enamel mug","description":"blue","price":{"amount":1200,"currency":"EUR"}});
        assert_eq!(self.post("/v1/products", &self.admin, None, &product).await?.status, StatusCode::CREATED);
        let warehouse = json!({"id":"wh-east","name":"East","priority":1,"bins":["A-01","A-02"]});
        assert_eq!(self.post("/v1/warehouses", &self.admin, None, &warehouse).await?.status, StatusCode::CREATED);
        let receipt = json!({"warehouse_id":"wh-east","bin":"A-01","sku":"MUG","quantity":10});
        assert_eq!(
            self.post("/v1/inventory/receipts", &self.operator, Some("receipt-1"), &receipt).await?.status,
            StatusCode::CREATED
        );
        let customer =
            self.post("/v1/customers", &self.admin, None, &json!({"name":"Ada","email":"ada@example.com"})).await?;
        assert_eq!(customer.status, StatusCode::CREATED);
        Ok((
            customer.body["api_key"].as_str().unwrap_or_default().to_owned(),
            customer.body["id"].as_str().unwrap_or_default().to_owned(),
        ))
    }

    pub(crate) async fn stock(&self) -> anyhow::Result<Value> {
        Ok(self.get("/v1/inventory/MUG", &self.admin).await?.body)
    }

    pub(crate) async fn wait_status(&self, id: &str, key: &str, status: &str) -> anyhow::Result<Value> {
        let path = format!("/v1/orders/{id}");
        let found = eventually(SETTLE, || async {
            let body = self.get(&path, key).await.ok()?.body;
            (body["status"] == status).then_some(body)
        })
        .await;
        match found {
            Some(body) => Ok(body),
            None => anyhow::bail!("order {id} never reached {status}: {}", self.get(&path, key).await?.body),
        }
    }
}

pub(crate) fn order_body(quantity: u32) -> Value {
    json!({
        "lines": [{"sku": "MUG", "quantity": quantity}],
        "ship_to": {"name": "Ada", "line1": "1 Main St", "city": "London", "postal_code": "N1", "country": "GB"},
        "payment": {"token": "tok_visa"}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_idempotency_key_contract_holds() -> TestResult {
    let api = Api::start(false).await?;
    let (customer, _) = api.shop().await?;
    let body = order_body(1);
    // Missing key → 400.
    let missing = api.post("/v1/orders", &customer, None, &body).await?;
    assert_eq!(
        (missing.status, missing.body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("idempotency_key_missing"))
    );
    // Malformed key → 400.
    let bad = api.post("/v1/orders", &customer, Some(&"x".repeat(300)), &body).await?;
    assert_eq!(bad.body["code"], "idempotency_key_invalid");
    // Same key, same body → the same bytes; one order.
    let first = api.post("/v1/orders", &customer, Some("k-1"), &body).await?;
    assert_eq!(first.status, StatusCode::CREATED);
    let again = api.post("/v1/orders", &customer, Some("k-1"), &body).await?;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(first.bytes, again.bytes, "replayed byte for byte");
    // Same body with keys in another order and spacing: still the same request.
    let reordered = br#"{ "payment": {"token": "tok_visa"}, "ship_to": {"country": "GB", "postal_code": "N1", "city": "London", "line1": "1 Main St", "name": "Ada"}, "lines": [{"quantity": 1, "sku": "MUG"}] }"#;
    let third = api.call("POST", "/v1/orders", Some(&customer), Some("k-1"), Some(reordered)).await?;
    assert_eq!(third.bytes, first.bytes);
    // Same key, other body → 422.
    let other = api.post("/v1/orders", &customer, Some("k-1"), &order_body(2)).await?;
    assert_eq!(
        (other.status, other.body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("idempotency_key_reused"))
    );
    // Keys are scoped per principal: another customer may use "k-1" for itself.
    let second_customer =
        api.post("/v1/customers", &api.admin, None, &json!({"name":"Bo","email":"bo@example.com"})).await?;
    let bo = second_customer.body["api_key"].as_str().unwrap_or_default().to_owned();
    let bos = api.post("/v1/orders", &bo, Some("k-1"), &body).await?;
    assert_eq!(bos.status, StatusCode::CREATED);
    assert_ne!(bos.body["id"], first.body["id"]);
    // Same key while the first request is running → 409 (the first holds the claim).
    let principal = api.engine().ecommerce().accounts().keys().authenticate(&customer).expect("customer key");
    let store = api.engine().ecommerce().store().clone();
    let held = api.state.in_flight.admit(
        &store,
        &principal.key_id,
        "orders",
        &{
            let mut headers = axum::http::HeaderMap::new();
            headers.insert("idempotency-key", "k-busy".parse()?);
            headers
        },
        &serde_json::to_vec(&body)?,
        0,
    )?;
    let busy = api.post("/v1/orders", &customer, Some("k-busy"), &body).await?;
    assert_eq!((busy.status, busy.body["code"].as_str()), (StatusCode::CONFLICT, Some("idempotency_in_flight")));
    drop(held);
    // Validation failures are not saved: the same key works once the body is fixed.
    let invalid = api.post("/v1/orders", &customer, Some("k-2"), &order_body(0)).await?;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    let fixed = api.post("/v1/orders", &customer, Some("k-2"), &order_body(1)).await?;
    assert_eq!(fixed.status, StatusCode::CREATED);
    // Exactly one order per key for this customer: k-1 and k-2.
    let listed = api.get("/v1/orders", &customer).await?;
    assert_eq!(listed.body["items"].as_array().map(Vec::len), Some(2));
    // A new order committed with its answer: the record holds the response already.
    let stored = |raw: &'static str| {
        let key = format!("{}|orders|{raw}", principal.key_id);
        let store = store.clone();
        move || -> anyhow::Result<Option<(u16, Vec<u8>)>> {
            let bytes = store.idempotency(&key)?.ok_or_else(|| anyhow::anyhow!("no record for {key}"))?;
            Ok(orderdock::http::idempotency::stored_response(&bytes)?)
        }
    };
    assert_eq!(stored("k-1")()?, Some((201, first.bytes.clone())), "saved with the order, byte for byte");
    // A run again after a crash between the order's commit and its answer
    // (the record names an order but holds no response): the same order,
    // answered, and the answer saved for the next repeat.
    let headers = {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("idempotency-key", "k-crash".parse()?);
        headers
    };
    let body_bytes = serde_json::to_vec(&body)?;
    let orderdock::http::idempotency::Admission::Run(claim) =
        api.state.in_flight.admit(&store, &principal.key_id, "orders", &headers, &body_bytes, 0)?
    else {
        panic!("a new key runs");
    };
    let named = orderdock::events::OrderId::generate(orderdock::events::Timestamp::from_millis(1));
    store.put_idempotency(&claim.record(&named.to_string())).await?;
    let recorder = claim.recorder();
    drop(claim);
    assert_eq!(stored("k-crash")()?, None);
    assert_eq!(recorder.saved_response(&store)?, None);
    let rerun = api.post("/v1/orders", &customer, Some("k-crash"), &body).await?;
    assert_eq!(rerun.status, StatusCode::CREATED);
    assert_eq!(rerun.body["id"], named.to_string(), "the order the record names");
    assert_eq!(stored("k-crash")()?, Some((201, rerun.bytes.clone())));
    assert_eq!(recorder.saved_response(&store)?, Some((StatusCode::CREATED, rerun.bytes.clone())));
    let replay = api.post("/v1/orders", &customer, Some("k-crash"), &body).await?;
    assert_eq!(replay.bytes, rerun.bytes, "replayed byte for byte");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_get_their_4xx_and_change_nothing() -> TestResult {
    let api = Api::start(false).await?;
    let (customer, _) = api.shop().await?;
    let before = api.stock().await?;
    let cases: Vec<(&str, Vec<u8>, StatusCode, &str)> = vec![
        ("malformed json", b"{\"lines\": [".to_vec(), StatusCode::BAD_REQUEST, "malformed_json"),
        ("unknown field", serde_json::to_vec(&{ let mut b = order_body(1); b["total"] = json!(1); b })?, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
        ("client price", serde_json::to_vec(&{ let mut b = order_body(1); b["lines"][0]["unit_price"] = json!(1); b })?, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
        ("status", serde_json::to_vec(&{ let mut b = order_body(1); b["status"] = json!("delivered"); b })?, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
        ("zero quantity", serde_json::to_vec(&order_body(0))?, StatusCode::UNPROCESSABLE_ENTITY, "invalid_value"),
        ("negative quantity", br#"{"lines":[{"sku":"MUG","quantity":-1}],"ship_to":{"name":"A","line1":"B","city":"C","postal_code":"D","country":"GB"},"payment":{"token":"tok_visa"}}"#.to_vec(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
        ("huge quantity", serde_json::to_vec(&order_body(10_001))?, StatusCode::UNPROCESSABLE_ENTITY, "invalid_value"),
        ("unknown sku", serde_json::to_vec(&{ let mut b = order_body(1); b["lines"][0]["sku"] = json!("NOPE"); b })?, StatusCode::UNPROCESSABLE_ENTITY, "unknown_sku"),
        ("no lines", serde_json::to_vec(&{ let mut b = order_body(1); b["lines"] = json!([]); b })?, StatusCode::UNPROCESSABLE_ENTITY, "no_lines"),
        ("huge line count", serde_json::to_vec(&{ let mut b = order_body(1); b["lines"] = Value::Array((0..101).map(|i| json!({"sku": format!("S{i}"), "quantity": 1})).collect()); b })?, StatusCode::UNPROCESSABLE_ENTITY, "too_many_lines"),
        ("bad country", serde_json::to_vec(&{ let mut b = order_body(1); b["ship_to"]["country"] = json!("Britain"); b })?, StatusCode::UNPROCESSABLE_ENTITY, "invalid_value"),
        ("oversize body", vec![b' '; 70_000], StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
    ];
    for (n, (name, body, status, code)) in cases.into_iter().enumerate() {
        let reply = api.call("POST", "/v1/orders", Some(&customer), Some(&format!("bad-{n}")), Some(&body)).await?;
        assert_eq!(reply.status, status, "{name}: {}", reply.body);
        assert_eq!(reply.body["code"], code, "{name}");
        assert!(reply.body["detail"].is_string(), "{name}: problem+json body");
    }
    let listed = api.get("/v1/orders", &api.admin).await?;
    assert_eq!(listed.body["items"], json!([]), "no order was created");
    assert_eq!(api.stock().await?, before, "no stock moved");
    // Stock changes refuse bad input too.
    let zero = api
        .post(
            "/v1/inventory/receipts",
            &api.operator,
            Some("r0"),
            &json!({"warehouse_id":"wh-east","bin":"A-01","sku":"MUG","quantity":0}),
        )
        .await?;
    assert_eq!(zero.status, StatusCode::UNPROCESSABLE_ENTITY);
    let nobin = api
        .post(
            "/v1/inventory/receipts",
            &api.operator,
            Some("r1"),
            &json!({"warehouse_id":"wh-east","bin":"Z-99","sku":"MUG","quantity":1}),
        )
        .await?;
    assert_eq!((nobin.status, nobin.body["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("unknown_bin")));
    let below = api
        .post(
            "/v1/inventory/adjustments",
            &api.operator,
            Some("a1"),
            &json!({"warehouse_id":"wh-east","bin":"A-01","sku":"MUG","delta":-11}),
        )
        .await?;
    assert_eq!(below.status, StatusCode::CONFLICT);
    assert_eq!(api.stock().await?, before);
    // Page size is capped.
    let page = api.get("/v1/orders?limit=101", &api.admin).await?;
    assert_eq!((page.status, page.body["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_limit")));
    Ok(())
}

/// (method, path, body, needs an idempotency key, role → expected status).
type Route = (&'static str, String, Vec<u8>, bool, Vec<(&'static str, StatusCode)>);

// Goal: every route answers each role as documented: 401 without a key,
// 403 for a role that may not, and customers see only their own orders (404 otherwise).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authorization_matrix_holds() -> TestResult {
    let api = Api::start(false).await?;
    let (alice, alice_id) = api.shop().await?;
    let bob = api.post("/v1/customers", &api.admin, None, &json!({"name":"Bob","email":"bob@example.com"})).await?.body
        ["api_key"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let order = api.post("/v1/orders", &alice, Some("a-1"), &order_body(1)).await?;
    let order_id = order.body["id"].as_str().unwrap_or_default().to_owned();
    let fo_id = order_id.replace("ord_", "ful_");
    let roles: [(&str, Option<&str>); 6] = [
        ("anonymous", None),
        ("admin", Some(&api.admin)),
        ("operator", Some(&api.operator)),
        ("channel", Some(&api.channel)),
        ("alice", Some(&alice)),
        ("bob", Some(&bob)),
    ];
    let product = serde_json::to_vec(&json!({"sku":"CAP","name":"Cap","price":{"amount":900,"currency":"EUR"}}))?;
    let admin_order = serde_json::to_vec(&{
        let mut b = order_body(1);
        b["customer_id"] = json!(alice_id);
        b
    })?;
    // (method, path, body, idempotency, allowed roles → expected status; everyone else gets 401/403/404)
    let routes: Vec<Route> = vec![
        ("GET", "/v1/products".into(), vec![], false, vec![("*", StatusCode::OK)]),
        ("POST", "/v1/products".into(), product.clone(), false, vec![("admin", StatusCode::CREATED)]),
        ("POST", "/v1/customers".into(), br#"{"name":"C","email":"c@x.io"}"#.to_vec(), false, vec![("admin", StatusCode::CREATED)]),
        ("POST", "/v1/warehouses".into(), br#"{"id":"wh-2","name":"Two","priority":2,"bins":["B"]}"#.to_vec(), false, vec![("admin", StatusCode::CREATED)]),
        ("GET", "/v1/inventory/MUG".into(), vec![], false, vec![("admin", StatusCode::OK), ("operator", StatusCode::OK)]),
        ("POST", "/v1/inventory/receipts".into(), br#"{"warehouse_id":"wh-east","bin":"A-02","sku":"MUG","quantity":1}"#.to_vec(), true, vec![("admin", StatusCode::CREATED), ("operator", StatusCode::CREATED)]),
        ("GET", "/v1/warehouses/wh-east/pick-tasks".into(), vec![], false, vec![("admin", StatusCode::OK), ("operator", StatusCode::OK)]),
        ("GET", "/v1/orders".into(), vec![], false, vec![("admin", StatusCode::OK), ("operator", StatusCode::OK), ("alice", StatusCode::OK), ("bob", StatusCode::OK)]),
        ("GET", format!("/v1/orders/{order_id}"), vec![], false, vec![("admin", StatusCode::OK), ("operator", StatusCode::OK), ("alice", StatusCode::OK), ("bob", StatusCode::NOT_FOUND)]),
        ("POST", "/v1/orders".into(), admin_order, true, vec![("admin", StatusCode::CREATED), ("alice", StatusCode::CREATED), ("bob", StatusCode::FORBIDDEN)]),
        ("GET", format!("/v1/fulfillment/orders/{fo_id}"), vec![], false, vec![("admin", StatusCode::OK), ("operator", StatusCode::OK), ("channel", StatusCode::OK)]),
        ("POST", format!("/v1/fulfillment-orders/{fo_id}/pack"), vec![], false, vec![("admin", StatusCode::CONFLICT), ("operator", StatusCode::CONFLICT)]),
        ("POST", "/v1/fulfillment/orders".into(), br#"{"channel":"b2b","external_id":"PO-1","lines":[{"sku":"MUG","quantity":1}],"ship_to":{"name":"A","line1":"B","city":"C","postal_code":"D","country":"GB"}}"#.to_vec(), true, vec![("admin", StatusCode::CREATED), ("channel", StatusCode::CREATED)]),
        ("POST", format!("/v1/orders/{order_id}/cancel"), vec![], true, vec![("admin", StatusCode::ACCEPTED), ("alice", StatusCode::ACCEPTED), ("bob", StatusCode::NOT_FOUND)]),
        ("GET", "/v1/audit".into(), vec![], false, vec![("admin", StatusCode::OK)]),
        ("GET", "/v1/stream/steps?steps=packed".into(), vec![], false, vec![("admin", StatusCode::OK), ("operator", StatusCode::OK)]),
        ("GET", format!("/v1/orders/{order_id}/stream"), vec![], false, vec![("admin", StatusCode::OK), ("operator", StatusCode::OK), ("alice", StatusCode::OK), ("bob", StatusCode::NOT_FOUND)]),
        ("GET", "/v1/products/MUG/availability".into(), vec![], false, vec![("*", StatusCode::OK)]),
        ("GET", "/v1/console/summary".into(), vec![], false, vec![("admin", StatusCode::OK), ("operator", StatusCode::OK)]),
        ("GET", "/v1/stock".into(), vec![], false, vec![("admin", StatusCode::OK), ("operator", StatusCode::OK)]),
        ("GET", "/v1/warehouses/wh-east/ready-to-pack".into(), vec![], false, vec![("admin", StatusCode::OK), ("operator", StatusCode::OK)]),
        ("GET", "/".into(), vec![], false, vec![("*", StatusCode::OK)]),
        ("GET", "/console".into(), vec![], false, vec![("*", StatusCode::OK)]),
    ];
    let mut cells = 0;
    for (method, path, body, idempotent, allowed) in &routes {
        for (n, (role, key)) in roles.iter().enumerate() {
            let expected = allowed
                .iter()
                .find(|(r, _)| r == role || *r == "*")
                .map(|(_, s)| *s)
                .unwrap_or(if key.is_none() { StatusCode::UNAUTHORIZED } else { StatusCode::FORBIDDEN });
            let idempotency = idempotent.then(|| format!("matrix-{n}-{cells}"));
            if path.starts_with("/v1/stream/") || path.ends_with("/stream") {
                // An open stream never ends: check the status only.
                let status = api.status_only(method, path, *key).await?;
                assert_eq!(status, expected, "{method} {path} as {role}");
                cells += 1;
                continue;
            }
            let reply = api.call(method, path, *key, idempotency.as_deref(), Some(body)).await?;
            assert_eq!(reply.status, expected, "{method} {path} as {role}: {}", reply.body);
            cells += 1;
        }
    }
    assert_eq!(cells, routes.len() * roles.len());
    // Every cell asserted above; reaching here means no unexpected status.
    crate::figures::record(
        "api_authz_matrix",
        0,
        cells as u64,
        0,
        json!({"routes": routes.len(), "principals": roles.len(), "cells": cells, "unexpected_statuses": 0}),
    );
    // Customers list only their own orders.
    let bobs = api.get("/v1/orders", &bob).await?;
    assert_eq!(bobs.body["items"], json!([]));
    let asking_for_alice = api.get(&format!("/v1/orders?customer_id={alice_id}"), &bob).await?;
    assert_eq!(asking_for_alice.status, StatusCode::FORBIDDEN);
    // The carrier webhook needs a valid signature.
    let event =
        serde_json::to_vec(&json!({"shipment_id":"shp_00000000000000000000000000000001","status":"delivered"}))?;
    let unsigned = api.call("POST", "/v1/carriers/simulated/events", None, None, Some(&event)).await?;
    assert_eq!(unsigned.status, StatusCode::UNAUTHORIZED);
    let forged = Request::builder()
        .method("POST")
        .uri("/v1/carriers/simulated/events")
        .header(carriers::SIGNATURE_HEADER, carriers::sign("wrong-secret", &event))
        .body(Body::from(event.clone()))?;
    let response = orderdock::http::router(api.state.clone()).oneshot(forged).await?;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_over_http_before_pick_after_pick_and_after_dispatch() -> TestResult {
    let api = Api::start(false).await?;
    let (customer, _) = api.shop().await?;
    let place = |key: &'static str| {
        let api = &api;
        let customer = customer.clone();
        async move {
            let order = api.post("/v1/orders", &customer, Some(key), &order_body(2)).await?;
            let id = order.body["id"].as_str().unwrap_or_default().to_owned();
            let path = format!("/v1/orders/{id}");
            let released = eventually(SETTLE, || async {
                let body = api.get(&path, &customer).await.ok()?.body;
                (body["fulfillment"]["status"] == "released").then_some(())
            })
            .await;
            anyhow::ensure!(released.is_some(), "order {id} not released");
            anyhow::Ok(id)
        }
    };
    // Before pick: refunded, stock released.
    let first = place("c-1").await?;
    let cancel = api.post(&format!("/v1/orders/{first}/cancel"), &customer, Some("x-1"), &json!({})).await?;
    assert_eq!((cancel.status, cancel.body["outcome"].as_str()), (StatusCode::ACCEPTED, Some("requested")));
    api.wait_status(&first, &customer, "refunded").await?;
    // The status turns `refunded` when fulfillment confirms; the refund itself follows.
    let path = format!("/v1/orders/{first}");
    let done = eventually(SETTLE, || async {
        let body = api.get(&path, &customer).await.ok()?.body;
        (body["payment"]["status"] == "refunded").then_some(body)
    })
    .await
    .expect("refund completed");
    assert_eq!(done["cancel_reason"], "customer_request");
    assert_eq!(done["payment"]["refunded"]["amount"], 2400);
    // After pick: returned to stock.
    let second = place("c-2").await?;
    let tasks = api.get("/v1/warehouses/wh-east/pick-tasks?status=open", &api.operator).await?;
    let task = tasks.body["items"][0]["id"].as_str().unwrap_or_default().to_owned();
    let picked =
        api.post(&format!("/v1/pick-tasks/{task}/confirm"), &api.operator, None, &json!({"picked": 2})).await?;
    assert_eq!(picked.status, StatusCode::OK, "{}", picked.body);
    api.post(&format!("/v1/orders/{second}/cancel"), &customer, Some("x-2"), &json!({})).await?;
    let done = api.wait_status(&second, &customer, "refunded").await?;
    assert_eq!(done["fulfillment"]["status"], "cancelled");
    assert!(
        wait_until(SETTLE, || async { api.stock().await.ok().is_some_and(|s| s["available"] == 10) }).await,
        "{}",
        api.stock().await?
    );
    // After dispatch: 409 order_not_cancellable.
    let third = place("c-3").await?;
    let tasks = api.get("/v1/warehouses/wh-east/pick-tasks", &api.operator).await?;
    let task = tasks.body["items"][0]["id"].as_str().unwrap_or_default().to_owned();
    api.post(&format!("/v1/pick-tasks/{task}/confirm"), &api.operator, None, &json!({"picked": 2})).await?;
    let fo = third.replace("ord_", "ful_");
    let packed = api.post(&format!("/v1/fulfillment-orders/{fo}/pack"), &api.operator, None, &json!({})).await?;
    assert_eq!(packed.status, StatusCode::OK, "{}", packed.body);
    let shipment = packed.body["fulfillment"]["shipments"][0]["id"].as_str().unwrap_or_default().to_owned();
    let dispatched = wait_until(SETTLE, || async {
        let event =
            serde_json::to_vec(&json!({"shipment_id": shipment, "status": "in_transit", "detail": "picked up"}))
                .unwrap_or_default();
        let request = Request::builder()
            .method("POST")
            .uri("/v1/carriers/simulated/events")
            .header(carriers::SIGNATURE_HEADER, carriers::sign(SECRET, &event))
            .body(Body::from(event))
            .expect("request");
        let accepted = orderdock::http::router(api.state.clone())
            .oneshot(request)
            .await
            .map(|r| r.status() == StatusCode::ACCEPTED)
            .unwrap_or(false);
        accepted
            && api.get(&format!("/v1/orders/{third}"), &customer).await.is_ok_and(|r| r.body["status"] == "shipped")
    })
    .await;
    assert!(dispatched);
    let refused = api.post(&format!("/v1/orders/{third}/cancel"), &customer, Some("x-3"), &json!({})).await?;
    assert_eq!((refused.status, refused.body["code"].as_str()), (StatusCode::CONFLICT, Some("order_not_cancellable")));
    Ok(())
}

/// A minimal HTTP/1.1 client for the real-socket test (one request per connection).
async fn http(
    address: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> anyhow::Result<(u16, Value)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n", body.len());
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await?;
    stream.write_all(body).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let text = String::from_utf8_lossy(&response);
    let status: u16 = text.split(' ').nth(1).unwrap_or("0").parse()?;
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        let mut out = String::new();
        let mut rest = rest;
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if size == 0 {
                break;
            }
            out.push_str(&tail[..size.min(tail.len())]);
            rest = tail.get(size + 2..).unwrap_or("");
        }
        out
    } else {
        rest.to_owned()
    };
    Ok((status, serde_json::from_str(&body).unwrap_or(Value::Null)))
}

// Goal: the whole walk over a real socket, as a newcomer would do it with curl:
// products, warehouse, stock, customer order, operator pick and pack, carrier
// webhook, and the tracking view ending in `delivered` with its timeline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_full_walk_over_a_real_socket_ends_delivered() -> TestResult {
    let api = Api::start(false).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(orderdock::http::serve(listener, api.state.clone(), async move {
        let _ = stopped.await;
    }));
    let bearer = |key: &str| ("Authorization", format!("Bearer {key}"));
    let admin = bearer(&api.admin);
    let operator = bearer(&api.operator);
    let (status, _) = http(
        address,
        "POST",
        "/v1/products",
        std::slice::from_ref(&admin),
        br#"{"sku":"MUG","name":"Mug","price":{"amount":1200,"currency":"EUR"}}"#,
    )
    .await?;
    assert_eq!(status, 201);
    let (status, _) = http(
        address,
        "POST",
        "/v1/warehouses",
        std::slice::from_ref(&admin),
        br#"{"id":"wh-east","name":"East","priority":1,"bins":["A-01"]}"#,
    )
    .await?;
    assert_eq!(status, 201);
    let (status, _) = http(
        address,
        "POST",
        "/v1/inventory/receipts",
        &[operator.clone(), ("Idempotency-Key", "r1".into())],
        br#"{"warehouse_id":"wh-east","bin":"A-01","sku":"MUG","quantity":5}"#,
    )
    .await?;
    assert_eq!(status, 201);
    let (_, customer) = http(
        address,
        "POST",
        "/v1/customers",
        std::slice::from_ref(&admin),
        br#"{"name":"Ada","email":"ada@example.com"}"#,
    )
    .await?;
    let customer = bearer(customer["api_key"].as_str().unwrap_or_default());
    let (status, order) = http(
        address,
        "POST",
        "/v1/orders",
        &[customer.clone(), ("Idempotency-Key", "o1".into())],
        &serde_json::to_vec(&order_body(2))?,
    )
    .await?;
    assert_eq!(status, 201, "{order}");
    let id = order["id"].as_str().unwrap_or_default().to_owned();
    let tasks = eventually(SETTLE, || async {
        let tasks =
            http(address, "GET", "/v1/warehouses/wh-east/pick-tasks?status=open", std::slice::from_ref(&operator), b"")
                .await
                .ok()?
                .1;
        tasks["items"].as_array().is_some_and(|t| !t.is_empty()).then_some(tasks)
    })
    .await
    .expect("a pick task");
    let task = tasks["items"][0]["id"].as_str().unwrap_or_default();
    let (status, _) = http(
        address,
        "POST",
        &format!("/v1/pick-tasks/{task}/confirm"),
        std::slice::from_ref(&operator),
        br#"{"picked":2}"#,
    )
    .await?;
    assert_eq!(status, 200);
    let (status, packed) = http(
        address,
        "POST",
        &format!("/v1/fulfillment-orders/{}/pack", id.replace("ord_", "ful_")),
        std::slice::from_ref(&operator),
        b"",
    )
    .await?;
    assert_eq!(status, 200, "{packed}");
    let shipment = packed["fulfillment"]["shipments"][0]["id"].as_str().unwrap_or_default().to_owned();
    for stage in ["in_transit", "out_for_delivery", "delivered"] {
        let event = serde_json::to_vec(&json!({"shipment_id": shipment, "status": stage}))?;
        let accepted = wait_until(SETTLE, || async {
            let signature = ("X-Orderdock-Signature", carriers::sign(SECRET, &event));
            let (status, shipment) = http(address, "POST", "/v1/carriers/simulated/events", &[signature], &event)
                .await
                .unwrap_or((0, Value::Null));

            // The label is bought asynchronously: until then `in_transit` cannot follow.
            status == 202 && shipment["status"] != "created"
        })
        .await;
        assert!(accepted, "{stage} not accepted");
        let path = format!("/v1/orders/{id}");
        let _ = wait_until(SETTLE, || async {
            let (_, view) =
                http(address, "GET", &path, std::slice::from_ref(&customer), b"").await.unwrap_or((0, Value::Null));
            view["fulfillment"]["shipments"][0]["status"] == stage
        })
        .await;
    }
    let view = eventually(SETTLE, || async {
        let view =
            http(address, "GET", &format!("/v1/orders/{id}"), std::slice::from_ref(&customer), b"").await.ok()?.1;
        (view["status"] == "delivered").then_some(view)
    })
    .await
    .expect("delivered");
    let steps: Vec<&str> =
        view["timeline"].as_array().map(|t| t.iter().filter_map(|s| s["step"].as_str()).collect()).unwrap_or_default();
    for expected in [
        "order_placed",
        "stock_reserved",
        "payment_captured",
        "picked",
        "packed",
        "shipment_dispatched",
        "shipment_delivered",
    ] {
        assert!(steps.contains(&expected), "timeline lacks {expected}: {steps:?}");
    }
    // The stages the shipment records alone are in the order's saga log too.
    let updates: Vec<&str> = view["timeline"]
        .as_array()
        .map(|t| t.iter().filter(|s| s["step"] == "shipment_update").filter_map(|s| s["detail"].as_str()).collect())
        .unwrap_or_default();
    for stage in ["label_purchased", "out_for_delivery"] {
        assert!(updates.iter().any(|d| d.ends_with(stage)), "timeline lacks the shipment's {stage}: {updates:?}");
    }
    assert_eq!(
        view["fulfillment"]["shipments"][0]["tracking_number"].as_str().map(|t| t.starts_with("SIM")),
        Some(true)
    );
    let (status, openapi) = http(address, "GET", "/openapi.json", &[], b"").await?;
    assert_eq!(status, 200);
    assert!(openapi["paths"]["/v1/orders"].is_object());
    let _ = stop.send(());
    server.await??;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_order_view_survives_an_unresponsive_fulfillment_side() -> TestResult {
    let api = Api::start(false).await?;
    let (customer, _) = api.shop().await?;
    let order = api.post("/v1/orders", &customer, Some("u-1"), &order_body(1)).await?;
    let id = order.body["id"].as_str().unwrap_or_default().to_owned();
    api.engine().fulfillment().stop(std::time::Duration::from_secs(1)).await;
    let view = api.get(&format!("/v1/orders/{id}"), &customer).await?;
    assert_eq!(view.status, StatusCode::OK);
    assert_eq!(view.body["fulfillment"], json!({"status": "unavailable"}));
    assert_eq!(view.body["id"], id.as_str());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_over_its_rate_gets_429() -> TestResult {
    let mut api = Api::start(false).await?;
    api.state =
        AppState::new(api.engine().clone(), HttpConfig { rate_per_key: 1, burst_per_key: 2, ..HttpConfig::default() });
    assert_eq!(api.get("/v1/orders", &api.admin).await?.status, StatusCode::OK);
    assert_eq!(api.get("/v1/orders", &api.admin).await?.status, StatusCode::OK);
    let limited = api.get("/v1/orders", &api.admin).await?;
    assert_eq!((limited.status, limited.body["code"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited")));
    assert_eq!(api.get("/v1/orders", &api.operator).await?.status, StatusCode::OK, "other keys are not affected");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_on_unknown_tasks_orders_and_shipments_are_404() -> TestResult {
    let api = Api::start(false).await?;
    let task = "pck_018bcfe568006f6a4acff4591a61fc39.0";
    let pick = api.post(&format!("/v1/pick-tasks/{task}/confirm"), &api.operator, None, &json!({"picked": 1})).await?;
    assert_eq!((pick.status, pick.body["detail"].as_str()), (StatusCode::NOT_FOUND, Some("pick task not found")));
    let pack = api
        .post("/v1/fulfillment-orders/ful_018bcfe568006f6a4acff4591a61fc39/pack", &api.operator, None, &json!({}))
        .await?;
    assert_eq!(
        (pack.status, pack.body["detail"].as_str()),
        (StatusCode::NOT_FOUND, Some("fulfillment order not found"))
    );
    let event =
        serde_json::to_vec(&json!({"shipment_id": "shp_018bcfe568006f6a4acff4591a61fc39", "status": "delivered"}))?;
    let request = Request::builder()
        .method("POST")
        .uri("/v1/carriers/simulated/events")
        .header(carriers::SIGNATURE_HEADER, carriers::sign(SECRET, &event))
        .body(Body::from(event))?;
    let response = orderdock::http::router(api.state.clone()).oneshot(request).await?;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    Ok(())
}

/// Goal: what the console and the storefront read beside the order API is
/// right. Method: one order in manual mode, walked through pick and pack,
/// checking the summary, the stock table, the pack queue, availability and
/// the order's live stream at each stage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_reads_orders_stock_work_and_events() -> TestResult {
    let api = Api::start(false).await?;
    let (alice, _) = api.shop().await?;
    let order = api.post("/v1/orders", &alice, Some("c-1"), &order_body(3)).await?;
    let id = order.body["id"].as_str().unwrap_or_default().to_owned();
    api.wait_status(&id, &alice, "in_fulfillment").await?;

    let available = api.call("GET", "/v1/products/MUG/availability", None, None, None).await?;
    assert_eq!(available.body, json!({"sku": "MUG", "available": 7}));
    let stock = api.get("/v1/stock", &api.operator).await?.body;
    let bin = &stock["warehouses"][0]["bins"][0];
    assert_eq!(bin["bin"], "A-01");
    assert_eq!(bin["skus"][0], json!({"sku":"MUG","on_hand":10,"reserved":3,"picked":0,"available":7}));

    let summary = api.get("/v1/console/summary", &api.operator).await?.body;
    assert_eq!(summary["orders_by_status"], json!({"in_fulfillment": 1}));
    assert_eq!(summary["open_sagas"]["orders"], 1);
    assert!(summary["recent_steps"].as_array().is_some_and(|s| s.iter().any(|s| s["step"] == "order_placed")));
    let events: Vec<&str> =
        summary["recent_events"].as_array().into_iter().flatten().filter_map(|e| e["kind"].as_str()).collect();
    for kind in ["order_placed", "stock_reserved", "payment_captured"] {
        assert!(events.contains(&kind), "recent events list {kind}: {events:?}");
    }
    let placed: u64 = summary["throughput"].as_array().into_iter().flatten().filter_map(|b| b["placed"].as_u64()).sum();
    assert_eq!(placed, 1, "the throughput chart counts the placement once");

    let empty = api.get("/v1/warehouses/wh-east/ready-to-pack", &api.operator).await?.body;
    assert_eq!(empty["items"], json!([]), "nothing to pack before the pick");
    let tasks = api.get("/v1/warehouses/wh-east/pick-tasks", &api.operator).await?.body;
    let task = tasks["items"][0]["id"].as_str().unwrap_or_default().to_owned();
    let picked =
        api.post(&format!("/v1/pick-tasks/{task}/confirm"), &api.operator, None, &json!({"picked": 3})).await?;
    assert_eq!(picked.status, StatusCode::OK);
    let ready = api.get("/v1/warehouses/wh-east/ready-to-pack", &api.operator).await?.body;
    assert_eq!(ready["items"][0]["order_id"], json!(id));
    assert_eq!(ready["items"][0]["units"], 3);
    let missing = api.get("/v1/warehouses/wh-nowhere/ready-to-pack", &api.operator).await?;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    // The order's stream starts with the current view.
    let request = Request::builder()
        .uri(format!("/v1/orders/{id}/stream"))
        .header("authorization", format!("Bearer {alice}"))
        .body(Body::empty())?;
    let response = orderdock::http::router(api.state.clone()).oneshot(request).await?;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body().into_data_stream();
    let first = futures_util::StreamExt::next(&mut body).await.ok_or_else(|| anyhow::anyhow!("no event"))??;
    let text = String::from_utf8_lossy(&first);
    assert!(text.starts_with("event: order\n"), "{text}");
    assert!(text.contains(&format!("\"id\":\"{id}\"")) && text.contains("\"status\":\"picking\""), "{text}");
    // …and sends the view again after the next step of this order.
    let pack = api
        .post(&format!("/v1/fulfillment-orders/{}/pack", id.replace("ord_", "ful_")), &api.operator, None, &json!({}))
        .await?;
    assert_eq!(pack.status, StatusCode::OK);
    let next = tokio::time::timeout(std::time::Duration::from_secs(10), futures_util::StreamExt::next(&mut body))
        .await?
        .ok_or_else(|| anyhow::anyhow!("the stream ended"))??;
    assert!(String::from_utf8_lossy(&next).contains("\"packed\""), "{}", String::from_utf8_lossy(&next));
    Ok(())
}
