//! A stocked demo shop for newcomers (`orderdock serve --demo`): a small
//! catalog, two warehouses with stock, a demo customer, and a trickle of
//! orders from a second customer so the console has something to show.
//! Everything goes through the engine's ordinary handles and is as durable
//! as any other order.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::ecommerce::catalog::Product;
use crate::ecommerce::order::PlaceOrder;
use crate::events::{Address, BinCode, BinId, Currency, CustomerId, Money, OrderId, Quantity, Sku, WarehouseId};
use crate::fulfillment::warehouse::Warehouse;
use crate::Engine;

/// How often the demo traffic places an order.
pub const TRAFFIC_EVERY: Duration = Duration::from_secs(3);
/// Below this many free units in a bin, the demo traffic restocks it.
pub const RESTOCK_BELOW_UNITS: u32 = 10;
/// Units one demo restock receives.
pub const RESTOCK_UNITS: u32 = 40;

/// The demo catalog: SKU, name, description, price in cents, units in the east and west warehouses.
const CATALOG: [(&str, &str, &str, i64, u32, u32); 8] = [
    ("MUG-ENAMEL", "Enamel mug", "A white enamel camping mug, 350 ml.", 1200, 40, 20),
    ("TEA-SENCHA", "Sencha green tea", "Loose-leaf Japanese green tea, 100 g.", 900, 60, 30),
    ("POT-IRON", "Cast-iron teapot", "A heavy tetsubin teapot, 0.8 l.", 5400, 0, 4),
    ("TOWEL-LINEN", "Linen tea towel", "Stonewashed linen, 50 × 70 cm.", 1500, 30, 30),
    ("DRIPPER-CERAMIC", "Ceramic pour-over", "A ceramic coffee dripper for one cup.", 2400, 25, 10),
    ("TUMBLER-TRAVEL", "Travel tumbler", "Insulated steel tumbler with a lid, 450 ml.", 2900, 35, 15),
    ("COASTER-OAK", "Oak coaster set", "Four oiled oak coasters.", 1800, 20, 20),
    ("BOWL-STONE", "Stoneware bowl", "A speckled stoneware bowl, 15 cm.", 1600, 30, 25),
];

/// Why the demo shop could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
#[error("demo setup failed: {0}")]
pub struct DemoError(String);

fn failed(err: impl std::fmt::Display) -> DemoError {
    DemoError(err.to_string())
}

/// The demo's customers.
#[derive(Debug, Clone)]
pub struct DemoShop {
    /// The API key of the customer a newcomer signs in as (shown once).
    pub customer_key: String,
    /// The customer the background traffic orders as.
    pub traffic_customer: CustomerId,
}

/// Where each demo SKU sits: (warehouse, bin) in each warehouse, by catalog position.
fn bin_of(warehouse: &WarehouseId, n: usize) -> Result<BinId, DemoError> {
    let prefix = if warehouse.as_str() == "wh-east" { "E" } else { "W" };
    Ok(BinId::new(warehouse.clone(), BinCode::parse(&format!("{prefix}-{:02}", n + 1)).map_err(failed)?))
}

fn warehouses() -> Result<[WarehouseId; 2], DemoError> {
    Ok([WarehouseId::parse("wh-east").map_err(failed)?, WarehouseId::parse("wh-west").map_err(failed)?])
}

/// Creates the catalog, the warehouses and their stock, and the two demo customers.
///
/// # Errors
/// [`DemoError`] when a step is refused or a store fails.
pub async fn stock_shop(engine: &Engine) -> Result<DemoShop, DemoError> {
    let [east, west] = warehouses()?;
    for (id, name, priority) in [(&east, "East coast", 1), (&west, "West coast", 2)] {
        let bins: BTreeSet<BinCode> =
            (0..CATALOG.len()).map(|n| bin_of(id, n).map(|b| b.code)).collect::<Result<_, _>>()?;
        let warehouse = Warehouse::new(id.clone(), name, priority, bins).map_err(failed)?;
        engine.fulfillment().create_warehouse(warehouse).await.map_err(failed)?;
    }
    for (n, (sku, name, description, cents, in_east, in_west)) in CATALOG.iter().enumerate() {
        let sku = Sku::parse(sku).map_err(failed)?;
        let price = Money::new(*cents, Currency::EUR).map_err(failed)?;
        let product = Product::new(sku.clone(), name, description, price).map_err(failed)?;
        engine.ecommerce().catalog().upsert(product).await.map_err(failed)?;
        for (warehouse, units) in [(&east, *in_east), (&west, *in_west)] {
            if units > 0 {
                engine.fulfillment().bins().receive(&bin_of(warehouse, n)?, &sku, units).await.map_err(failed)?;
            }
        }
    }
    let accounts = engine.ecommerce().accounts();
    let now = engine.adapters().clock.now();
    let (_, customer_key) = accounts.create_customer("Demo Customer", "demo@example.com", now).await.map_err(failed)?;
    let (traffic, _) = accounts.create_customer("Demo Traffic", "traffic@example.com", now).await.map_err(failed)?;
    Ok(DemoShop { customer_key, traffic_customer: traffic.id })
}

/// Places an order as `customer` every [`TRAFFIC_EVERY`] (one or two lines,
/// now and then a declined card), and restocks a bin that runs low, until
/// the engine stops answering. Runs in its own task.
pub fn traffic(engine: std::sync::Arc<Engine>, customer: CustomerId) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut random = engine.adapters().clock.now().as_millis() | 1;
        let mut next = move || {
            // xorshift64: variety, not security.
            random ^= random << 13;
            random ^= random >> 7;
            random ^= random << 17;
            random
        };
        let Ok(ship_to) = Address::new("Demo Traffic", "2 Market St", "Leeds", "LS1 1AA", "GB") else { return };
        let mut tick = tokio::time::interval(TRAFFIC_EVERY);
        loop {
            tick.tick().await;
            let mut lines = Vec::new();
            for _ in 0..=(next() % 2) {
                let n = (next() % CATALOG.len() as u64) as usize;
                let (Ok(sku), Ok(quantity)) = (Sku::parse(CATALOG[n].0), Quantity::new(1 + (next() % 2) as u32)) else {
                    continue;
                };
                if lines.iter().all(|(s, _)| s != &sku) {
                    lines.push((sku, quantity));
                }
            }
            let token = if next() % 10 == 0 { "tok_decline" } else { "tok_visa" };
            let request = PlaceOrder {
                id: OrderId::generate(engine.adapters().clock.now()),
                customer_id: customer,
                lines,
                ship_to: ship_to.clone(),
                payment_token: token.to_owned(),
            };
            if let Err(err) = engine.ecommerce().orders().place(request).await {
                tracing::warn!(cause = %err, "demo order refused");
            }
            if let Err(err) = restock(&engine).await {
                tracing::warn!(cause = %err, "demo restock failed");
            }
        }
    })
}

/// Receives [`RESTOCK_UNITS`] into every east-coast bin with fewer than [`RESTOCK_BELOW_UNITS`] free.
async fn restock(engine: &Engine) -> Result<(), DemoError> {
    let [east, _] = warehouses()?;
    for (n, (sku, ..)) in CATALOG.iter().enumerate() {
        let sku = Sku::parse(sku).map_err(failed)?;
        let bin = bin_of(&east, n)?;
        let free = engine.fulfillment().bins().available(&bin, &sku).await.map_err(failed)?.unwrap_or(0);
        if free < RESTOCK_BELOW_UNITS && CATALOG[n].4 > 0 {
            engine.fulfillment().bins().receive(&bin, &sku, RESTOCK_UNITS).await.map_err(failed)?;
        }
    }
    Ok(())
}
