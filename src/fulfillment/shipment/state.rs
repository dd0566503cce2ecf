//! A shipment: one warehouse's share of a fulfillment order, in a parcel.
//!
//! `Created -> LabelPurchased -> InTransit -> OutForDelivery -> Delivered`,
//! with `Exception` (a carrier problem, from which it can still move on) and
//! `Cancelled` (only before it leaves). Stages only move forward.

use serde::{Deserialize, Serialize};

use crate::events::{ContextName, FulfillmentOrderId, OrderId, SagaStep, ShipmentId, SkuUnits, Timestamp, WarehouseId};

/// Most tracking events kept per shipment.
pub const TRACKING_EVENTS_MAX: usize = 64;

/// Where a shipment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShipmentStage {
    /// Packed, no label yet.
    Created,
    /// Has a carrier label and tracking number.
    LabelPurchased,
    /// Picked up by the carrier: dispatched.
    InTransit,
    /// On the delivery vehicle.
    OutForDelivery,
    /// Handed to the recipient. Terminal.
    Delivered,
    /// A carrier problem was reported.
    Exception,
    /// Cancelled before it left. Terminal.
    Cancelled,
}

impl ShipmentStage {
    /// The stage as a stable snake_case code.
    pub fn as_str(self) -> &'static str {
        match self {
            ShipmentStage::Created => "created",
            ShipmentStage::LabelPurchased => "label_purchased",
            ShipmentStage::InTransit => "in_transit",
            ShipmentStage::OutForDelivery => "out_for_delivery",
            ShipmentStage::Delivered => "delivered",
            ShipmentStage::Exception => "exception",
            ShipmentStage::Cancelled => "cancelled",
        }
    }

    /// Whether the parcel has left the warehouse.
    pub fn has_left(self) -> bool {
        match self {
            ShipmentStage::InTransit
            | ShipmentStage::OutForDelivery
            | ShipmentStage::Delivered
            | ShipmentStage::Exception => true,
            ShipmentStage::Created | ShipmentStage::LabelPurchased | ShipmentStage::Cancelled => false,
        }
    }

    /// Whether a move from `from` to this stage is its fulfillment order's
    /// to agree to or to know of: the dispatch (a cancelled order refuses
    /// it), the delivery (it finishes the order), an exception and a
    /// cancellation. The label and the stages between dispatch and delivery
    /// are the shipment's own: it records them alone, with their saga step.
    pub fn concerns_order(self, from: ShipmentStage) -> bool {
        (self.has_left() && !from.has_left())
            || matches!(self, ShipmentStage::Delivered | ShipmentStage::Exception | ShipmentStage::Cancelled)
    }
}

/// The saga step of `shipment` reaching `stage` when that is neither its
/// dispatch nor its delivery, whoever records it: the shipment for a stage of
/// its own, its fulfillment order for an exception.
pub fn update_step(shipment: ShipmentId, stage: ShipmentStage, now: Timestamp) -> SagaStep {
    SagaStep {
        at: now,
        context: ContextName::Fulfillment,
        name: "shipment_update".to_owned(),
        detail: format!("{shipment} {}", stage.as_str()),
        compensation: false,
    }
}

/// One tracking event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackingEvent {
    /// When it was recorded.
    pub at: Timestamp,
    /// The stage reached.
    pub stage: ShipmentStage,
    /// The carrier's words.
    pub detail: String,
}

/// A shipment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipment {
    id: ShipmentId,
    fulfillment_order: FulfillmentOrderId,
    order_id: OrderId,
    warehouse: WarehouseId,
    items: Vec<SkuUnits>,
    carrier: String,
    stage: ShipmentStage,
    tracking_number: Option<String>,
    events: Vec<TrackingEvent>,
}

/// A rule the shipment refused to break.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShipmentError {
    /// The stage cannot follow the current one.
    #[error("cannot go from {from} to {to}")]
    IllegalStage {
        /// The current stage.
        from: &'static str,
        /// The stage asked for.
        to: &'static str,
    },
    /// The parcel has left: too late to cancel.
    #[error("the shipment has left the warehouse")]
    AlreadyLeft,
}

/// What the caller asked to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewShipment {
    /// The shipment's id (chosen by the fulfillment order: a retry names the same one).
    pub id: ShipmentId,
    /// Its fulfillment order.
    pub fulfillment_order: FulfillmentOrderId,
    /// Its order.
    pub order_id: OrderId,
    /// The warehouse it leaves from.
    pub warehouse: WarehouseId,
    /// What is in it.
    pub items: Vec<SkuUnits>,
    /// The carrier's name.
    pub carrier: String,
}

impl Shipment {
    /// A shipment just packed.
    pub fn create(new: NewShipment, now: Timestamp) -> Shipment {
        Shipment {
            id: new.id,
            fulfillment_order: new.fulfillment_order,
            order_id: new.order_id,
            warehouse: new.warehouse,
            items: new.items,
            carrier: new.carrier,
            stage: ShipmentStage::Created,
            tracking_number: None,
            events: vec![TrackingEvent { at: now, stage: ShipmentStage::Created, detail: "packed".to_owned() }],
        }
    }

    /// Whether [`Self::advance`] to `stage` would be accepted, without
    /// building the next state; `labelled`: a tracking number comes with it
    /// or is already known.
    ///
    /// # Errors
    /// As [`Self::advance`].
    pub fn check_advance(&self, stage: ShipmentStage, labelled: bool) -> Result<(), ShipmentError> {
        if stage == self.stage {
            return Ok(());
        }
        use ShipmentStage::{Cancelled, Created, Delivered, Exception, InTransit, LabelPurchased, OutForDelivery};
        let illegal = ShipmentError::IllegalStage { from: self.stage.as_str(), to: stage.as_str() };
        // Every pair named: the label first, then forward only (an exception
        // from anywhere on the way), cancellation until it has left.
        match (self.stage, stage) {
            (Created, LabelPurchased) => {
                if labelled {
                    Ok(())
                } else {
                    Err(illegal)
                }
            }
            (Created | LabelPurchased, Cancelled) => Ok(()),
            (InTransit | OutForDelivery | Exception, Cancelled) => Err(ShipmentError::AlreadyLeft),
            (LabelPurchased, InTransit | OutForDelivery | Delivered | Exception)
            | (InTransit, OutForDelivery | Delivered | Exception)
            | (OutForDelivery, Delivered | Exception)
            | (Exception, OutForDelivery | Delivered) => Ok(()),
            // The same stage again was answered above.
            (Created, Created)
            | (LabelPurchased, LabelPurchased)
            | (InTransit, InTransit)
            | (OutForDelivery, OutForDelivery)
            | (Exception, Exception) => Ok(()),
            (Created, InTransit | OutForDelivery | Delivered | Exception)
            | (LabelPurchased, Created)
            | (InTransit, Created | LabelPurchased)
            | (OutForDelivery, Created | LabelPurchased | InTransit)
            | (Exception, Created | LabelPurchased | InTransit)
            | (
                Delivered | Cancelled,
                Created | LabelPurchased | InTransit | OutForDelivery | Delivered | Exception | Cancelled,
            ) => Err(illegal),
        }
    }

    /// Moves to `stage`. Moving to the current stage again changes nothing.
    ///
    /// # Errors
    /// [`ShipmentError::IllegalStage`] for a step backwards or a skipped label;
    /// [`ShipmentError::AlreadyLeft`] for a cancel after dispatch.
    pub fn advance(
        &self,
        stage: ShipmentStage,
        detail: &str,
        tracking_number: Option<String>,
        now: Timestamp,
    ) -> Result<Shipment, ShipmentError> {
        if stage == self.stage {
            return Ok(self.clone());
        }
        self.check_advance(stage, tracking_number.is_some())?;
        let mut next = self.clone();
        next.stage = stage;
        if let Some(number) = tracking_number {
            next.tracking_number = Some(number);
        }
        if next.events.len() >= TRACKING_EVENTS_MAX {
            next.events.remove(1);
        }
        next.events.push(TrackingEvent { at: now, stage, detail: detail.to_owned() });
        Ok(next)
    }

    /// Records a stage that is the shipment's own ([`ShipmentStage::concerns_order`]
    /// is false): the next shipment and its saga step, `None` for a repeat.
    ///
    /// # Errors
    /// As [`Self::advance`].
    pub fn advance_alone(
        &self,
        stage: ShipmentStage,
        detail: &str,
        tracking_number: Option<String>,
        now: Timestamp,
    ) -> Result<Option<(Shipment, SagaStep)>, ShipmentError> {
        debug_assert!(!stage.concerns_order(self.stage), "{:?} -> {stage:?} is the order's to know", self.stage);
        if stage == self.stage {
            return Ok(None);
        }
        let next = self.advance(stage, detail, tracking_number, now)?;
        Ok(Some((next, update_step(self.id, stage, now))))
    }

    /// The shipment's id.
    pub fn id(&self) -> ShipmentId {
        self.id
    }
    /// Its fulfillment order.
    pub fn fulfillment_order(&self) -> FulfillmentOrderId {
        self.fulfillment_order
    }
    /// Its order.
    pub fn order_id(&self) -> OrderId {
        self.order_id
    }
    /// The warehouse it leaves from.
    pub fn warehouse(&self) -> &WarehouseId {
        &self.warehouse
    }
    /// What is in it.
    pub fn items(&self) -> &[SkuUnits] {
        &self.items
    }
    /// The carrier.
    pub fn carrier(&self) -> &str {
        &self.carrier
    }
    /// Where it stands.
    pub fn stage(&self) -> ShipmentStage {
        self.stage
    }
    /// The tracking number, once labelled.
    pub fn tracking_number(&self) -> Option<&str> {
        self.tracking_number.as_deref()
    }
    /// Tracking events, oldest first.
    pub fn events(&self) -> &[TrackingEvent] {
        &self.events
    }
    /// Whether nothing more will happen to it.
    pub fn is_finished(&self) -> bool {
        matches!(self.stage, ShipmentStage::Delivered | ShipmentStage::Cancelled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::from_millis(5);

    fn shipment() -> Shipment {
        Shipment::create(
            NewShipment {
                id: ShipmentId::from_raw(1),
                fulfillment_order: FulfillmentOrderId::from_raw(2),
                order_id: OrderId::from_raw(2),
                warehouse: WarehouseId::parse("wh").unwrap(),
                items: vec![],
                carrier: "sim".into(),
            },
            NOW,
        )
    }

    #[test]
    fn a_shipment_walks_forward_to_delivered() {
        let s = shipment().advance(ShipmentStage::LabelPurchased, "label", Some("T1".into()), NOW).unwrap();
        let s = s.advance(ShipmentStage::InTransit, "picked up", None, NOW).unwrap();
        let s = s.advance(ShipmentStage::OutForDelivery, "van", None, NOW).unwrap();
        let s = s.advance(ShipmentStage::Delivered, "signed", None, NOW).unwrap();
        assert_eq!(s.tracking_number(), Some("T1"));
        assert_eq!(s.events().len(), 5);
        assert!(s.is_finished());
    }

    #[test]
    fn stages_never_go_back_or_skip_the_label() {
        assert!(shipment().advance(ShipmentStage::InTransit, "", None, NOW).is_err());
        assert!(shipment().advance(ShipmentStage::LabelPurchased, "", None, NOW).is_err(), "a label needs a number");
        let s = shipment().advance(ShipmentStage::LabelPurchased, "", Some("T".into()), NOW).unwrap();
        let s = s.advance(ShipmentStage::OutForDelivery, "", None, NOW).unwrap();
        assert!(s.advance(ShipmentStage::InTransit, "", None, NOW).is_err());
        assert_eq!(s.advance(ShipmentStage::OutForDelivery, "", None, NOW).unwrap(), s, "repeats change nothing");
    }

    #[test]
    fn cancel_only_before_it_leaves() {
        let labelled = shipment().advance(ShipmentStage::LabelPurchased, "", Some("T".into()), NOW).unwrap();
        assert!(labelled.advance(ShipmentStage::Cancelled, "", None, NOW).is_ok());
        let left = labelled.advance(ShipmentStage::InTransit, "", None, NOW).unwrap();
        assert_eq!(left.advance(ShipmentStage::Cancelled, "", None, NOW).unwrap_err(), ShipmentError::AlreadyLeft);
    }

    #[test]
    fn the_order_hears_of_dispatch_delivery_and_trouble_only() {
        use ShipmentStage::{Cancelled, Created, Delivered, Exception, InTransit, LabelPurchased, OutForDelivery};
        assert!(!LabelPurchased.concerns_order(Created), "the label is the shipment's own");
        assert!(InTransit.concerns_order(LabelPurchased), "dispatch: a cancelled order refuses it");
        assert!(OutForDelivery.concerns_order(LabelPurchased), "a first stage that has left is the dispatch");
        assert!(!OutForDelivery.concerns_order(InTransit));
        assert!(!OutForDelivery.concerns_order(Exception));
        assert!(Delivered.concerns_order(OutForDelivery));
        assert!(Exception.concerns_order(InTransit));
        assert!(Cancelled.concerns_order(LabelPurchased));
    }

    #[test]
    fn a_stage_of_its_own_comes_with_its_saga_step() {
        let created = shipment();
        let (labelled, step) = created
            .advance_alone(ShipmentStage::LabelPurchased, "label", Some("T1".into()), NOW)
            .unwrap()
            .expect("a change");
        assert_eq!(labelled.stage(), ShipmentStage::LabelPurchased);
        assert_eq!(labelled.tracking_number(), Some("T1"));
        assert_eq!(step.name, "shipment_update");
        assert_eq!(step.detail, format!("{} label_purchased", created.id()));
        assert_eq!(labelled.advance_alone(ShipmentStage::LabelPurchased, "again", None, NOW), Ok(None));
        assert!(created.advance_alone(ShipmentStage::LabelPurchased, "no number", None, NOW).is_err());
    }

    #[test]
    fn an_exception_can_still_be_delivered() {
        let s = shipment().advance(ShipmentStage::LabelPurchased, "", Some("T".into()), NOW).unwrap();
        let s = s.advance(ShipmentStage::InTransit, "", None, NOW).unwrap();
        let s = s.advance(ShipmentStage::Exception, "address unclear", None, NOW).unwrap();
        assert!(s.advance(ShipmentStage::Delivered, "", None, NOW).is_ok());
    }

    #[test]
    fn the_check_accepts_exactly_what_advance_accepts() {
        use ShipmentStage::{Cancelled, Created, Delivered, Exception, InTransit, LabelPurchased, OutForDelivery};
        let all = [Created, LabelPurchased, InTransit, OutForDelivery, Delivered, Exception, Cancelled];
        // A shipment at every stage it can reach, labelled or not.
        let mut reached = vec![shipment()];
        for _ in 0..3 {
            let next: Vec<Shipment> = reached
                .iter()
                .flat_map(|s| all.iter().filter_map(move |to| s.advance(*to, "", Some("T".into()), NOW).ok()))
                .collect();
            reached.extend(next);
        }
        for from in &reached {
            for to in all {
                for number in [None, Some("T2".to_owned())] {
                    let labelled = number.is_some();
                    assert_eq!(
                        from.check_advance(to, labelled),
                        from.advance(to, "", number, NOW).map(|_| ()),
                        "{:?} -> {to:?}, labelled {labelled}",
                        from.stage()
                    );
                }
            }
        }
    }
}
