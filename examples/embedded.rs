//! The engine embedded in a program: two warehouses, four orders, each
//! followed to its terminal state with its saga timeline.
//!
//! `cargo run --release --example embedded`

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::Context;
use orderdock::ecommerce::catalog::Product;
use orderdock::ecommerce::order::{Order, PlaceOrder};
use orderdock::events::{Address, BinCode, BinId, CustomerId, Money, OrderId, Quantity, Sku, Timestamp, WarehouseId};
use orderdock::fulfillment::warehouse::Warehouse;
use orderdock::{Config, Engine, FulfillmentView};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut config = Config::new(dir.path());
    config.fulfillment.autopilot = true;
    let engine = Engine::start(config).await.context("starting the engine")?;

    for (sku, name, cents) in [("MUG", "Enamel mug", 1200), ("TEE", "Cotton tee", 2500), ("CAP", "Cap", 1800)] {
        let product = Product::new(Sku::parse(sku)?, name, "", Money::new(cents, "EUR".parse()?)?)?;
        engine.ecommerce().catalog().upsert(product).await?;
    }
    for (id, priority, bins) in [("wh-east", 1, ["A-01", "A-02"]), ("wh-west", 2, ["B-01", "B-02"])] {
        let bins: BTreeSet<BinCode> = bins.iter().map(|b| BinCode::parse(b)).collect::<Result<_, _>>()?;
        engine.fulfillment().create_warehouse(Warehouse::new(WarehouseId::parse(id)?, id, priority, bins)?).await?;
    }
    for (bin, sku, units) in [
        ("wh-east/A-01", "MUG", 5),
        ("wh-east/A-02", "TEE", 20),
        ("wh-west/B-01", "MUG", 10),
        ("wh-west/B-02", "CAP", 2),
    ] {
        let bin: BinId = bin.parse()?;
        engine.fulfillment().bins().receive(&bin, &Sku::parse(sku)?, units).await?;
    }
    println!("Stocked two warehouses: east (priority 1) and west (priority 2).\n");

    let orders = engine.ecommerce().orders();
    let scenarios: [(&str, &[(&str, u32)]); 4] = [
        ("one warehouse takes it all", &[("MUG", 2), ("TEE", 1)]),
        ("a line split across warehouses", &[("MUG", 12)]),
        ("out of stock", &[("CAP", 5)]),
        ("cancelled before pick", &[("TEE", 1)]),
    ];
    let mut placed = Vec::new();
    for (n, (label, lines)) in scenarios.iter().enumerate() {
        let request = PlaceOrder {
            id: OrderId::generate(Timestamp::from_millis(1_700_000_000_000 + n as u64)),
            customer_id: CustomerId::from_raw(42),
            lines: lines
                .iter()
                .map(|(s, q)| Ok((Sku::parse(s)?, Quantity::new(*q)?)))
                .collect::<anyhow::Result<_>>()?,
            ship_to: Address::new("Ada Lovelace", "12 St James's Square", "London", "SW1Y 4JH", "GB")?,
            payment_token: "tok_visa".to_owned(),
        };
        let order = orders.place(request).await?;
        if *label == "cancelled before pick" {
            // Cancel straight away: before stock is confirmed, or before the warehouse picks.
            orders.cancel(order.id()).await?;
        }
        placed.push((label, order.id()));
    }

    for (label, id) in placed {
        let order = wait_terminal(&engine, id).await?;
        println!("== {label}: {id}");
        println!(
            "   status {} | total {} | payment {:?}",
            order.status().as_str(),
            order.total(),
            order.payment().status
        );
        if let Some(view) = engine.order_view(id).await? {
            if let FulfillmentView::Known { order: fo, shipments } = &view.fulfillment {
                println!("   fulfillment {} with {} shipment(s)", fo.status().as_str(), shipments.len());
                for shipment in shipments {
                    println!(
                        "     {} from {} tracking {} ({})",
                        shipment.id(),
                        shipment.warehouse(),
                        shipment.tracking_number().unwrap_or("-"),
                        shipment.stage().as_str()
                    );
                }
            }
            for step in &view.timeline {
                let mark = if step.compensation { "↺" } else { "→" };
                println!("   {mark} [{:>11}] {:<26} {}", step.context.as_str(), step.name, step.detail);
            }
        }
        println!();
    }
    engine.shutdown().await;
    Ok(())
}

async fn wait_terminal(engine: &Engine, id: OrderId) -> anyhow::Result<Order> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let order = engine.ecommerce().orders().get(id).await?.context("order vanished")?;
        if order.is_finished() {
            return Ok(order);
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "order {id} is stuck in {}", order.status().as_str());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
