//! Warehouse work on a fulfillment order: picks confirmed (by a person or
//! the autopilot), packing into one shipment per warehouse, and the stages
//! its shipments report.

use super::*;

impl FulfillmentOrder {
    /// A picker confirms task `index` with `picked` units found. Repeating the
    /// same confirmation changes nothing.
    ///
    /// # Errors
    /// [`FulfillmentOrderError::WrongStatus`], [`FulfillmentOrderError::UnknownTask`],
    /// [`FulfillmentOrderError::OverPick`], [`FulfillmentOrderError::AlreadyPicked`].
    pub fn confirm_pick(
        &self,
        index: u16,
        picked: u32,
        policy: ShortPickPolicy,
        now: Timestamp,
    ) -> Result<Transition, FulfillmentOrderError> {
        self.pick(index, picked, policy, now, true)
    }

    /// [`Self::confirm_pick`]; `announce`: whether the first pick tells
    /// e-commerce `picking` (the autopilot's picks do not).
    pub(crate) fn pick(
        &self,
        index: u16,
        picked: u32,
        policy: ShortPickPolicy,
        now: Timestamp,
        announce: bool,
    ) -> Result<Transition, FulfillmentOrderError> {
        let task = self.tasks.get(usize::from(index)).ok_or(FulfillmentOrderError::UnknownTask(index))?;
        if !task.held {
            return Err(FulfillmentOrderError::TaskNotHeld(index));
        }
        match task.picked {
            Some(done) if done == picked => {
                return Ok(Transition { next: self.clone(), events: vec![], steps: vec![] })
            }
            Some(_) => return Err(FulfillmentOrderError::AlreadyPicked(index)),
            None => {}
        }
        if !matches!(self.status, FulfillmentStatus::Released | FulfillmentStatus::Picking) {
            return Err(self.wrong("confirm a pick"));
        }
        let item = self.plan.get(usize::from(index)).ok_or(FulfillmentOrderError::UnknownTask(index))?;
        if picked > item.units {
            return Err(FulfillmentOrderError::OverPick { units: item.units, picked });
        }
        let mut next = self.changed(now);
        let mut events = Vec::new();
        let mut steps = Vec::new();
        if let Some(task) = next.tasks.get_mut(usize::from(index)) {
            task.picked = Some(picked);
        }
        next.pending.push(Action::Bin {
            bin: item.bin.clone(),
            reservation: item.reservation,
            op: BinOp::Pick { units: picked },
        });
        if picked < item.units {
            let missing = item.units - picked;
            let owed = match policy {
                ShortPickPolicy::Reallocate => &mut next.unplaced,
                ShortPickPolicy::ShipPartial => &mut next.short,
            };
            add_units(owed, &item.sku, missing);
            steps.push(step(
                now,
                "short_pick",
                format!("{} of {} {} found in {}", picked, item.units, item.sku, item.bin),
                true,
            ));
        } else {
            steps.push(step(now, "picked", format!("{}×{} from {}", picked, item.sku, item.bin), false));
        }
        if next.status == FulfillmentStatus::Released {
            next.status = FulfillmentStatus::Picking;
        }
        if announce && self.status == FulfillmentStatus::Released {
            events.extend(next.emit(
                now,
                IntegrationEvent::FulfillmentProgressed { stage: FulfillmentStage::Picking, short: vec![] },
            ));
        }
        debug_assert!(next.check_invariants().is_ok());
        Ok(Transition { next, events, steps })
    }

    /// Packs every picked unit into one shipment per warehouse. Packing again changes nothing.
    ///
    /// # Errors
    /// [`FulfillmentOrderError::PicksOpen`] while tasks are open; [`FulfillmentOrderError::WrongStatus`].
    pub fn pack(&self, now: Timestamp) -> Result<Transition, FulfillmentOrderError> {
        match self.status {
            FulfillmentStatus::Packed | FulfillmentStatus::Shipped | FulfillmentStatus::Delivered => {
                return Ok(Transition { next: self.clone(), events: vec![], steps: vec![] })
            }
            FulfillmentStatus::Picking | FulfillmentStatus::Released => {}
            FulfillmentStatus::Received
            | FulfillmentStatus::Reserved
            | FulfillmentStatus::Rejected
            | FulfillmentStatus::Cancelled { .. } => return Err(self.wrong("pack")),
        }
        let open = self.tasks.iter().filter(|t| t.picked.is_none()).count() + self.unplaced.len();
        if open > 0 {
            return Err(FulfillmentOrderError::PicksOpen(open));
        }
        let mut next = self.changed(now);
        let mut by_warehouse: BTreeMap<WarehouseId, BTreeMap<crate::events::Sku, u32>> = BTreeMap::new();
        for task in &next.tasks {
            let (Some(item), Some(units)) = (next.plan.get(usize::from(task.index)), task.picked) else { continue };
            if units > 0 {
                *by_warehouse.entry(item.bin.warehouse.clone()).or_default().entry(item.sku.clone()).or_default() +=
                    units;
            }
        }
        let mut steps = Vec::new();
        for (n, (warehouse, items)) in by_warehouse.into_iter().enumerate() {
            let shipment = ShipmentId::derived(next.id.as_raw(), u32::try_from(n).unwrap_or(u32::MAX) + 1);
            let items: Vec<SkuUnits> = items.into_iter().map(|(sku, units)| SkuUnits { sku, units }).collect();
            steps.push(step(now, "packed", format!("{shipment} from {warehouse}"), false));
            next.shipments.push(ShipmentRecord {
                id: shipment,
                warehouse: warehouse.clone(),
                stage: ShipmentStage::Created,
                tracking_number: None,
            });
            next.pending.push(Action::CreateShipment { shipment, warehouse, items });
        }
        // Nothing found to ship at all: the order ends here; e-commerce refunds the short units.
        next.status = if next.shipments.is_empty() { FulfillmentStatus::Delivered } else { FulfillmentStatus::Packed };
        let short = next.short.clone();
        let events = next
            .emit(now, IntegrationEvent::FulfillmentProgressed { stage: FulfillmentStage::Packed, short })
            .into_iter()
            .collect();
        debug_assert!(next.check_invariants().is_ok());
        Ok(Transition { next, events, steps })
    }

    /// A shipment reports a new stage. Dispatch is decided here first: a
    /// cancelled order refuses to let its shipment leave. Old or repeated
    /// stages change nothing.
    ///
    /// # Errors
    /// [`FulfillmentOrderError::UnknownShipment`]; [`FulfillmentOrderError::Cancelled`] for a dispatch after cancel.
    pub fn shipment_update(
        &self,
        shipment: ShipmentId,
        stage: ShipmentStage,
        tracking_number: Option<String>,
        now: Timestamp,
    ) -> Result<Transition, FulfillmentOrderError> {
        let position = self
            .shipments
            .iter()
            .position(|s| s.id == shipment)
            .ok_or(FulfillmentOrderError::UnknownShipment(shipment))?;
        let current = self.shipments[position].stage;
        let unchanged = || Ok(Transition { next: self.clone(), events: vec![], steps: vec![] });
        if matches!(self.status, FulfillmentStatus::Cancelled { .. }) {
            return if stage.has_left() { Err(FulfillmentOrderError::Cancelled) } else { unchanged() };
        }
        if stage == current || (current.has_left() && !stage.has_left()) || current == ShipmentStage::Delivered {
            return unchanged();
        }
        let mut next = self.changed(now);
        let mut events = Vec::new();
        let mut steps = Vec::new();
        let total = u16::try_from(next.shipments.len()).unwrap_or(u16::MAX);
        if let Some(number) = tracking_number {
            next.shipments[position].tracking_number = Some(number);
        }
        next.shipments[position].stage = stage;
        if stage.has_left() && !current.has_left() {
            next.dispatched(position, now, &mut events, &mut steps);
        }
        if stage == ShipmentStage::Delivered {
            let delivered =
                u16::try_from(next.shipments.iter().filter(|s| s.stage == ShipmentStage::Delivered).count())
                    .unwrap_or(u16::MAX);
            if delivered == total {
                next.status = FulfillmentStatus::Delivered;
            }
            events.extend(next.emit(
                now,
                IntegrationEvent::ShipmentDelivered {
                    shipment_id: shipment,
                    shipments_total: total,
                    shipments_delivered: delivered,
                },
            ));
            steps.push(step(now, "shipment_delivered", shipment.to_string(), false));
        } else if stage != ShipmentStage::InTransit {
            steps.push(update_step(shipment, stage, now));
        }
        Ok(Transition { next, events, steps })
    }

    /// Shipment number `position` left: its picked units ship from their
    /// bins, e-commerce hears of it, and the order is shipped once every
    /// shipment has left.
    fn dispatched(
        &mut self,
        position: usize,
        now: Timestamp,
        events: &mut Vec<EventEnvelope>,
        steps: &mut Vec<SagaStep>,
    ) {
        let shipment = self.shipments[position].id;
        let warehouse = self.shipments[position].warehouse.clone();
        let total = u16::try_from(self.shipments.len()).unwrap_or(u16::MAX);
        for (index, item) in self.plan.clone().iter().enumerate() {
            let picked = self.tasks.get(index).and_then(|t| t.picked).unwrap_or(0);
            if item.bin.warehouse == warehouse && picked > 0 {
                self.pending.push(Action::Bin {
                    bin: item.bin.clone(),
                    reservation: item.reservation,
                    op: BinOp::Ship,
                });
            }
        }
        let dispatched =
            u16::try_from(self.shipments.iter().filter(|s| s.stage.has_left()).count()).unwrap_or(u16::MAX);
        let tracking_number = self.shipments[position].tracking_number.clone().unwrap_or_default();
        if dispatched == total {
            self.status = FulfillmentStatus::Shipped;
        }
        let event = IntegrationEvent::ShipmentDispatched {
            shipment_id: shipment,
            warehouse_id: warehouse.clone(),
            tracking_number: tracking_number.clone(),
            shipments_total: total,
            shipments_dispatched: dispatched,
        };
        events.extend(self.emit(now, event));
        let detail = format!("{shipment} from {warehouse}, tracking {tracking_number}");
        steps.push(step(now, "shipment_dispatched", detail, false));
    }
}
