//! Carriers: the [`Carrier`] trait and a simulated carrier.

use crate::events::bus::BoxFuture;
use crate::events::{Currency, Money, ShipmentId, SkuUnits};
use crate::fulfillment::shipment::ShipmentStage;

/// Why a carrier call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CarrierError {
    /// The carrier did not answer; retry.
    #[error("carrier unavailable: {0}")]
    Unavailable(String),
    /// The carrier refused the parcel.
    #[error("refused: {0}")]
    Refused(String),
}

/// A parcel carrier.
pub trait Carrier: Send + Sync + std::fmt::Debug + 'static {
    /// The carrier's name.
    fn name(&self) -> &str;
    /// The price of shipping `items`.
    fn quote(&self, items: &[SkuUnits]) -> Money;
    /// Buys a label for `shipment`; returns its tracking number. Buying again
    /// for the same shipment returns the same number.
    fn purchase_label(&self, shipment: ShipmentId, items: Vec<SkuUnits>)
        -> BoxFuture<'_, Result<String, CarrierError>>;
    /// The tracking event a simulated carrier reports after `stage`, on
    /// autopilot. Real carriers report theirs through the tracking webhook
    /// and answer `None`.
    fn next_tracking_event(&self, stage: ShipmentStage) -> Option<(ShipmentStage, &'static str)>;
}

/// A carrier that labels everything at a flat rate per unit.
#[derive(Debug, Default, Clone, Copy)]
pub struct SimulatedCarrier;

impl Carrier for SimulatedCarrier {
    fn name(&self) -> &str {
        "simulated"
    }

    fn quote(&self, items: &[SkuUnits]) -> Money {
        let units: i64 = items.iter().map(|i| i64::from(i.units)).sum();
        Money::new(490 + 50 * units, Currency::EUR).unwrap_or_else(|_| Money::zero(Currency::EUR))
    }

    fn purchase_label(
        &self,
        shipment: ShipmentId,
        _items: Vec<SkuUnits>,
    ) -> BoxFuture<'_, Result<String, CarrierError>> {
        let tracking = format!("SIM{:016X}", shipment.as_raw() as u64);
        Box::pin(async move { Ok(tracking) })
    }

    fn next_tracking_event(&self, stage: ShipmentStage) -> Option<(ShipmentStage, &'static str)> {
        match stage {
            ShipmentStage::LabelPurchased => Some((ShipmentStage::InTransit, "picked up by the carrier")),
            ShipmentStage::InTransit | ShipmentStage::Exception => {
                Some((ShipmentStage::OutForDelivery, "out for delivery"))
            }
            ShipmentStage::OutForDelivery => Some((ShipmentStage::Delivered, "delivered")),
            ShipmentStage::Created | ShipmentStage::Delivered | ShipmentStage::Cancelled => None,
        }
    }
}
