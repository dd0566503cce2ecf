//! Writes the seed corpus of the decoder fuzz test (`tests/it/fuzz.rs`):
//! real snapshots of every aggregate kind, outbox envelopes of several event
//! types and idempotency records, taken from an engine that walked a few
//! orders. Run it again after a snapshot schema change:
//!
//! ```sh
//! cargo run --example fuzz_corpus -- tests/corpus/decoders
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use axum::body::Body;
use axum::http::Request;
use orderdock::ecommerce::catalog::Product;
use orderdock::events::{
    Address, BinCode, BinId, ContextName, Currency, CustomerId, EventEnvelope, EventId, EventLine, FulfillmentOrderId,
    IntegrationEvent, Money, OrderId, Quantity, ShipmentId, Sku, SkuUnits, WarehouseId, EVENT_SCHEMA_VERSION,
};
use orderdock::fulfillment::warehouse::Warehouse;
use orderdock::http::{AppState, HttpConfig};
use orderdock::{Config, Engine};
use tower::ServiceExt;

/// Snapshots kept per kind.
const PER_KIND: usize = 3;

fn write(dir: &Path, decoder: &str, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = dir.join(decoder);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(format!("{name}.bin")), bytes).with_context(|| format!("writing {decoder}/{name}"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let out = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "tests/corpus/decoders".to_owned()));
    let temp = tempfile::tempdir()?;
    let mut config = Config::new(temp.path());
    config.fulfillment.autopilot = true;
    let engine = std::sync::Arc::new(Engine::start(config).await?);
    let sku = Sku::parse("MUG")?;
    let price = Money::new(1200, Currency::EUR)?;
    engine.ecommerce().catalog().upsert(Product::new(sku.clone(), "Mug", "", price)?).await?;
    let warehouse = WarehouseId::parse("wh-east")?;
    let code = BinCode::parse("A-01")?;
    engine
        .fulfillment()
        .create_warehouse(Warehouse::new(warehouse.clone(), "East", 1, [code.clone()].into_iter().collect())?)
        .await?;
    engine.fulfillment().bins().receive(&BinId::new(warehouse.clone(), code), &sku, 3).await?;

    // Orders through HTTP, so idempotency records are written too: two served, one out of stock.
    let state = AppState::new(engine.clone(), HttpConfig::default());
    let (admin, _) = engine.ecommerce().accounts().keys().issue_key(orderdock::access::Role::Admin, None).await?;
    let (customer, key) =
        engine.ecommerce().accounts().create_customer("Ada", "ada@example.com", engine.adapters().clock.now()).await?;
    drop(key);
    for (n, quantity) in [1, 2, 5].into_iter().enumerate() {
        let body = serde_json::json!({
            "customer_id": customer.id.to_string(),
            "lines": [{"sku": "MUG", "quantity": quantity}],
            "ship_to": {"name": "Ada", "line1": "1 Main St", "city": "London", "postal_code": "N1", "country": "GB"},
            "payment": {"token": "tok_visa"},
        });
        let request = Request::post("/v1/orders")
            .header("authorization", format!("Bearer {admin}"))
            .header("idempotency-key", format!("corpus-{n}"))
            .body(Body::from(serde_json::to_vec(&body)?))?;
        let response = orderdock::http::router(state.clone()).oneshot(request).await?;
        anyhow::ensure!(response.status().is_success(), "order {n}: {}", response.status());
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    anyhow::ensure!(engine.settle(Duration::from_secs(10)).await, "the outboxes did not drain");

    let ecommerce = engine.ecommerce().store().clone();
    let fulfillment = engine.fulfillment().store().clone();
    let kinds = [
        (&ecommerce, orderdock::ecommerce::order::snapshot::KIND, "order"),
        (&fulfillment, orderdock::fulfillment::bin::snapshot::KIND, "bin"),
        (&fulfillment, orderdock::fulfillment::fulfillment_order::snapshot::KIND, "fulfillment_order"),
        (&fulfillment, orderdock::fulfillment::shipment::snapshot::KIND, "shipment"),
    ];
    for (store, kind, decoder) in kinds {
        let rows = store.snapshots(kind)?;
        anyhow::ensure!(!rows.is_empty(), "no {kind} snapshot");
        for (n, (_, bytes)) in rows.iter().take(PER_KIND).enumerate() {
            write(&out, decoder, &format!("{decoder}-{n}"), bytes)?;
        }
    }
    for (n, (_, bytes)) in ecommerce.idempotency_records()?.iter().take(PER_KIND).enumerate() {
        write(&out, "idempotency", &format!("record-{n}"), bytes)?;
    }

    let now = engine.adapters().clock.now();
    let order = OrderId::generate(now);
    let events = [
        (
            "order_placed",
            ContextName::Ecommerce,
            IntegrationEvent::OrderPlaced {
                customer_id: CustomerId::generate(now),
                lines: vec![EventLine { sku: sku.clone(), quantity: Quantity::new(2)? }],
                ship_to: Address::new("Ada", "1 Main St", "London", "N1", "GB")?,
            },
        ),
        (
            "stock_reserved",
            ContextName::Fulfillment,
            IntegrationEvent::StockReserved {
                fulfillment_order_id: FulfillmentOrderId::for_order(order),
                expires_at: now,
                shipments_planned: 1,
            },
        ),
        (
            "stock_rejected",
            ContextName::Fulfillment,
            IntegrationEvent::StockRejected { missing: vec![SkuUnits { sku: sku.clone(), units: 3 }] },
        ),
        (
            "shipment_delivered",
            ContextName::Fulfillment,
            IntegrationEvent::ShipmentDelivered {
                shipment_id: ShipmentId::generate(now),
                shipments_total: 2,
                shipments_delivered: 1,
            },
        ),
    ];
    for (sequence, (name, source, event)) in events.into_iter().enumerate() {
        let envelope = EventEnvelope {
            event_id: EventId::generate(now),
            order_id: order,
            sequence: u32::try_from(sequence)? + 1,
            occurred_at: now,
            source,
            schema_version: EVENT_SCHEMA_VERSION,
            event,
        };
        write(&out, "envelope", name, &orderdock::actors::dispatcher::encode_envelope(&envelope)?)?;
    }
    engine.shutdown().await;
    println!("corpus written to {}", out.display());
    Ok(())
}
