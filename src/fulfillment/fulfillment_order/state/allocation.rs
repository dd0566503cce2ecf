//! Allocation: the saga's decisions about where a fulfillment order's
//! stock comes from. Planning a received order (and planning again when a
//! bin turns out short, up to [`ALLOCATION_ATTEMPTS_MAX`] plans), and
//! re-allocating the units of short picks elsewhere. The actor asks the bins
//! what these functions say to ask, and hands back their answers.

use super::{add_units, step, BinOp, FulfillmentOrder, FulfillmentOrderError, FulfillmentStatus, PickTask, Transition};
use crate::events::{
    BinId, EventLine, IntegrationEvent, Quantity, ReservationId, Sku, SkuUnits, Timestamp, WarehouseId,
};
use crate::fulfillment::warehouse::state::{allocate, demand, BinStock, PlannedItem};

/// Plans tried before an order is rejected because others keep taking the
/// stock first. The first may plan without asking the bins
/// ([`StockQuery::assumed`]); a bin short of it then costs one of these attempts.
pub const ALLOCATION_ATTEMPTS_MAX: u16 = 4;

/// What planning a received order needs from the bins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockQuery {
    /// Holds of an earlier plan (this run's, or one before a crash), to
    /// release before anything is asked.
    pub release: Vec<PlannedItem>,
    /// Bins to ask how many units of a SKU they have free.
    pub ask: Vec<(BinId, Sku)>,
    /// What is taken as free without asking: on the first plan, a SKU that
    /// one bin alone stocks is planned there, its reservation being the check.
    pub assumed: Vec<BinStock>,
}

impl FulfillmentOrder {
    /// What to ask the bins before the next plan (`None` unless the order
    /// is received and unplanned). `bins_for` lists the bins stocking a SKU.
    pub fn stock_query(&self, bins_for: impl Fn(&Sku) -> Vec<BinId>) -> Option<StockQuery> {
        if self.status != FulfillmentStatus::Received {
            return None;
        }
        let mut query = StockQuery { release: self.plan.clone(), ask: Vec::new(), assumed: Vec::new() };
        for (sku, wanted) in demand(&self.lines) {
            let candidates = bins_for(sku);
            match candidates.as_slice() {
                [bin] if self.attempt == 0 => {
                    let available = u32::try_from(wanted).unwrap_or(u32::MAX);
                    query.assumed.push(BinStock { bin: bin.clone(), sku: sku.clone(), available });
                }
                _ => query.ask.extend(candidates.into_iter().map(|bin| (bin, sku.clone()))),
            }
        }
        Some(query)
    }

    /// Plans from the free `stock` found (warehouses preferred in `ranked`
    /// order): the plan, to reserve next, or a rejection when the lines
    /// cannot be covered.
    ///
    /// # Errors
    /// [`FulfillmentOrderError::WrongStatus`] unless `Received`.
    pub fn plan_from(
        &self,
        stock: &[BinStock],
        ranked: &[WarehouseId],
        now: Timestamp,
    ) -> Result<Transition, FulfillmentOrderError> {
        match allocate(&self.lines, ranked, stock, |n| self.next_reservation_id(n)) {
            Ok(plan) => self.planned(plan, now),
            Err(missing) => self.rejected(missing, now),
        }
    }

    /// The bins answered the plan's reservations: every one held (`short`
    /// is `None`) reserves the order until `expires_at`; a bin short of its
    /// units rejects it on the last attempt, and otherwise (`None`) it is
    /// planned again.
    ///
    /// # Errors
    /// [`FulfillmentOrderError::WrongStatus`] unless `Received` with a plan.
    pub fn reservations_answered(
        &self,
        short: Option<SkuUnits>,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<Option<Transition>, FulfillmentOrderError> {
        match short {
            None => self.reserved(expires_at, now).map(Some),
            Some(missing) if self.attempt >= ALLOCATION_ATTEMPTS_MAX => self.rejected(vec![missing], now).map(Some),
            Some(_) => Ok(None),
        }
    }

    /// The reservation id of item `n` of the next plan.
    pub fn next_reservation_id(&self, n: u16) -> ReservationId {
        ReservationId::derived(self.id.as_raw(), (u32::from(self.attempt.wrapping_add(1)) << 16) | u32::from(n))
    }

    /// Records a new plan, before any of it is reserved.
    ///
    /// # Errors
    /// [`FulfillmentOrderError::WrongStatus`] unless `Received`.
    pub fn planned(&self, plan: Vec<PlannedItem>, now: Timestamp) -> Result<Transition, FulfillmentOrderError> {
        if self.status != FulfillmentStatus::Received {
            return Err(self.wrong("plan"));
        }
        let mut next = self.changed(now);
        next.attempt = next.attempt.wrapping_add(1);
        let detail =
            plan.iter().map(|p| format!("{}×{} from {}", p.units, p.sku, p.bin)).collect::<Vec<_>>().join(", ");
        next.plan = plan;
        Ok(Transition { next, events: Vec::new(), steps: vec![step(now, "allocated", detail, false)] })
    }

    /// Every planned reservation is held: tell e-commerce, start the clock.
    ///
    /// # Errors
    /// [`FulfillmentOrderError::WrongStatus`] unless `Received` with a plan.
    pub fn reserved(&self, expires_at: Timestamp, now: Timestamp) -> Result<Transition, FulfillmentOrderError> {
        if self.status != FulfillmentStatus::Received || self.plan.is_empty() {
            return Err(self.wrong("confirm reservation"));
        }
        let mut next = self.changed(now);
        next.status = FulfillmentStatus::Reserved;
        next.expires_at = Some(expires_at);
        let warehouses: std::collections::BTreeSet<&WarehouseId> = next.plan.iter().map(|p| &p.bin.warehouse).collect();
        let shipments_planned = u16::try_from(warehouses.len()).unwrap_or(u16::MAX);
        let events = next
            .emit(now, IntegrationEvent::StockReserved { fulfillment_order_id: next.id, expires_at, shipments_planned })
            .into_iter()
            .collect();
        let detail = format!("{} reservations until {}", next.plan.len(), expires_at.as_millis());
        Ok(Transition { next, events, steps: vec![step(now, "stock_reserved", detail, false)] })
    }

    /// The stock cannot be had: reject (terminal).
    ///
    /// # Errors
    /// [`FulfillmentOrderError::WrongStatus`] unless `Received`.
    pub fn rejected(&self, missing: Vec<SkuUnits>, now: Timestamp) -> Result<Transition, FulfillmentOrderError> {
        if self.status != FulfillmentStatus::Received {
            return Err(self.wrong("reject"));
        }
        let mut next = self.changed(now);
        next.status = FulfillmentStatus::Rejected;
        next.release_plan(BinOp::Release);
        let detail = missing.iter().map(|m| format!("{} short by {}", m.sku, m.units)).collect::<Vec<_>>().join(", ");
        let events = next.emit(now, IntegrationEvent::StockRejected { missing }).into_iter().collect();
        Ok(Transition { next, events, steps: vec![step(now, "stock_rejected", detail, true)] })
    }

    /// What to ask the bins before re-allocating the units of short picks:
    /// every bin stocking each SKU (`None`: nothing to re-allocate).
    pub fn reallocation_query(&self, bins_for: impl Fn(&Sku) -> Vec<BinId>) -> Option<Vec<(BinId, Sku)>> {
        if self.status != FulfillmentStatus::Picking || self.unplaced.is_empty() {
            return None;
        }
        let ask = self
            .unplaced
            .iter()
            .flat_map(|missing| bins_for(&missing.sku).into_iter().map(|bin| (bin, missing.sku.clone())));
        Some(ask.collect())
    }

    /// Re-allocates the units of short picks from the free `stock` found;
    /// what cannot be found anywhere ships short.
    ///
    /// # Errors
    /// [`FulfillmentOrderError::WrongStatus`] unless picking with units to re-allocate.
    pub fn reallocate_from(
        &self,
        stock: &[BinStock],
        ranked: &[WarehouseId],
        now: Timestamp,
    ) -> Result<Transition, FulfillmentOrderError> {
        let lines: Vec<EventLine> = self
            .unplaced
            .iter()
            .filter_map(|m| Quantity::new(m.units).ok().map(|quantity| EventLine { sku: m.sku.clone(), quantity }))
            .collect();
        let items = allocate(&lines, ranked, stock, |n| self.reallocation_id(n)).unwrap_or_default();
        self.reallocated(items, now)
    }

    /// The re-allocated items still to reserve, with their task numbers.
    pub fn holds_owed(&self) -> Vec<(u16, PlannedItem)> {
        self.tasks
            .iter()
            .filter(|task| !task.held)
            .filter_map(|task| self.plan.get(usize::from(task.index)).map(|item| (task.index, item.clone())))
            .collect()
    }

    /// Units from short picks waiting to be re-allocated.
    pub fn unplaced(&self) -> &[SkuUnits] {
        &self.unplaced
    }

    /// The reservation id of re-allocated item `n` (after the current plan).
    pub fn reallocation_id(&self, n: u16) -> ReservationId {
        let offset = u16::try_from(self.plan.len()).unwrap_or(u16::MAX).saturating_add(n);
        ReservationId::derived(self.id.as_raw(), (u32::from(self.attempt.wrapping_add(1)) << 16) | u32::from(offset))
    }

    /// Re-allocates the short-picked units to `items` (planned elsewhere):
    /// each becomes a pick task that waits for its reservation. With no
    /// items, the units cannot be found anywhere and will ship short.
    ///
    /// # Errors
    /// [`FulfillmentOrderError::WrongStatus`] unless picking with units to re-allocate.
    pub fn reallocated(&self, items: Vec<PlannedItem>, now: Timestamp) -> Result<Transition, FulfillmentOrderError> {
        if self.status != FulfillmentStatus::Picking || self.unplaced.is_empty() {
            return Err(self.wrong("re-allocate"));
        }
        let mut next = self.changed(now);
        next.attempt = next.attempt.wrapping_add(1);
        let mut steps = Vec::new();
        if items.is_empty() {
            for missing in std::mem::take(&mut next.unplaced) {
                steps.push(step(
                    now,
                    "reallocation_failed",
                    format!("{} {} not found elsewhere", missing.units, missing.sku),
                    true,
                ));
                add_units(&mut next.short, &missing.sku, missing.units);
            }
        } else {
            next.unplaced.clear();
            for item in items {
                let index = u16::try_from(next.plan.len()).unwrap_or(u16::MAX);
                steps.push(step(now, "reallocated", format!("{}×{} from {}", item.units, item.sku, item.bin), true));
                next.tasks.push(PickTask { index, picked: None, held: false });
                next.plan.push(item);
            }
        }
        debug_assert!(next.check_invariants().is_ok());
        Ok(Transition { next, events: Vec::new(), steps })
    }

    /// The reservation of re-allocated task `index` was (`held`) or was not
    /// obtained; a task that could not be held ships short.
    ///
    /// # Errors
    /// [`FulfillmentOrderError::UnknownTask`].
    pub fn hold_result(&self, index: u16, held: bool, now: Timestamp) -> Result<Transition, FulfillmentOrderError> {
        let item = self.plan.get(usize::from(index)).ok_or(FulfillmentOrderError::UnknownTask(index))?.clone();
        let mut next = self.changed(now);
        let mut steps = Vec::new();
        if let Some(task) = next.tasks.get_mut(usize::from(index)).filter(|t| !t.held) {
            task.held = true;
            if !held {
                task.picked = Some(0);
                add_units(&mut next.short, &item.sku, item.units);
                steps.push(step(
                    now,
                    "reallocation_failed",
                    format!("{}×{} taken in {}", item.units, item.sku, item.bin),
                    true,
                ));
            }
        }
        Ok(Transition { next, events: Vec::new(), steps })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Address, Channel, FulfillmentOrderId, OrderId};
    use crate::fulfillment::fulfillment_order::state::NewFulfillmentOrder;

    const NOW: Timestamp = Timestamp::from_millis(1_000);
    const LATER: Timestamp = Timestamp::from_millis(10_000_000);

    fn sku(name: &str) -> Sku {
        Sku::parse(name).unwrap()
    }

    /// An order of 3 MUG and 1 CUP: MUG is stocked by one bin, CUP by two.
    fn received() -> FulfillmentOrder {
        let lines = vec![
            EventLine { sku: sku("MUG"), quantity: Quantity::new(3).unwrap() },
            EventLine { sku: sku("CUP"), quantity: Quantity::new(1).unwrap() },
        ];
        let new = NewFulfillmentOrder {
            id: FulfillmentOrderId::from_raw(7),
            order_id: OrderId::from_raw(7),
            channel: Channel::Web,
            lines,
            ship_to: Address::new("A", "B", "C", "D", "FR").unwrap(),
        };
        FulfillmentOrder::receive(new, None, NOW).next
    }

    fn bins_for(sku: &Sku) -> Vec<BinId> {
        match sku.as_str() {
            "MUG" => vec!["east/A".parse().unwrap()],
            _ => vec!["east/B".parse().unwrap(), "west/C".parse().unwrap()],
        }
    }

    fn stock(query: &StockQuery, free: u32) -> Vec<BinStock> {
        let mut stock = query.assumed.clone();
        stock.extend(query.ask.iter().map(|(bin, sku)| BinStock {
            bin: bin.clone(),
            sku: sku.clone(),
            available: free,
        }));
        stock
    }

    #[test]
    fn the_first_plan_asks_only_the_bins_of_skus_stocked_in_several() {
        let order = received();
        let query = order.stock_query(bins_for).unwrap();
        assert!(query.release.is_empty());
        assert_eq!(query.assumed.len(), 1, "MUG is planned at its one bin without asking");
        assert_eq!((query.assumed[0].sku.as_str(), query.assumed[0].available), ("MUG", 3));
        assert_eq!(query.ask.len(), 2, "both bins of CUP are asked");
        let ranked: Vec<WarehouseId> = vec!["east".parse().unwrap(), "west".parse().unwrap()];
        let planned = order.plan_from(&stock(&query, 5), &ranked, NOW).unwrap().next;
        assert_eq!(planned.status(), FulfillmentStatus::Received);
        assert_eq!(planned.plan().len(), 2);

        let again = planned.stock_query(bins_for).unwrap();
        assert_eq!(again.release, planned.plan().to_vec(), "what the last plan holds goes back first");
        assert!(again.assumed.is_empty(), "later plans ask every bin");
        assert_eq!(again.ask.len(), 3);
    }

    #[test]
    fn a_short_bin_plans_again_until_the_last_attempt_rejects() {
        let ranked: Vec<WarehouseId> = vec!["east".parse().unwrap(), "west".parse().unwrap()];
        let short = || Some(SkuUnits { sku: sku("MUG"), units: 1 });
        let mut order = received();
        for attempt in 1..=ALLOCATION_ATTEMPTS_MAX {
            let query = order.stock_query(bins_for).unwrap();
            order = order.plan_from(&stock(&query, 5), &ranked, NOW).unwrap().next;
            match order.reservations_answered(short(), LATER, NOW).unwrap() {
                None => assert!(attempt < ALLOCATION_ATTEMPTS_MAX, "plan {attempt} is tried again"),
                Some(transition) => {
                    assert_eq!(attempt, ALLOCATION_ATTEMPTS_MAX);
                    assert_eq!(transition.next.status(), FulfillmentStatus::Rejected);
                    assert!(transition.next.stock_query(bins_for).is_none());
                    return;
                }
            }
        }
        panic!("never rejected");
    }

    #[test]
    fn every_hold_taken_reserves_and_missing_stock_rejects_at_once() {
        let ranked: Vec<WarehouseId> = vec!["east".parse().unwrap(), "west".parse().unwrap()];
        let order = received();
        let query = order.stock_query(bins_for).unwrap();
        let planned = order.plan_from(&stock(&query, 5), &ranked, NOW).unwrap().next;
        let reserved = planned.reservations_answered(None, LATER, NOW).unwrap().unwrap();
        assert_eq!(reserved.next.status(), FulfillmentStatus::Reserved);
        assert!(matches!(reserved.events[0].event, IntegrationEvent::StockReserved { .. }));

        let none = order.plan_from(&stock(&query, 0), &ranked, NOW).unwrap();
        assert_eq!(none.next.status(), FulfillmentStatus::Rejected, "no CUP anywhere");
    }
}
