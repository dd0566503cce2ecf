//! The fulfillment order: fulfillment's side of the saga, as a pure state machine.
//!
//! ```text
//! Received --plan, reserve--> Reserved --payment captured--> Released --pick--> Picking
//!    |                          |                                                  |
//!    +--> Rejected              +--ttl--> Cancelled(released)          pack --> Packed
//!                                                                                  |
//!                         Delivered <--every shipment delivered-- Shipped <--dispatch--+
//! ```
//!
//! The allocation plan is persisted before any bin is asked to reserve, so
//! after a crash the order knows which reservations it may hold and releases
//! them before planning again. Everything else the order must do to other
//! actors (release, expire, pick, restock and ship reservations; create and
//! cancel shipments) is an [`Action`] kept in [`FulfillmentOrder::pending`]:
//! persisted first, performed after, dropped once done. Every action is
//! idempotent at its target.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::events::{
    Address, BinId, CancelReason, Channel, ContextName, EventEnvelope, EventId, EventLine, FulfillmentOrderId,
    FulfillmentStage, IntegrationEvent, OrderId, ReservationId, SagaStep, ShipmentId, SkuUnits, StockOutcome,
    Timestamp, WarehouseId, EVENT_SCHEMA_VERSION,
};
use crate::fulfillment::shipment::state::{update_step, ShipmentStage};
use crate::fulfillment::warehouse::state::PlannedItem;

mod allocation;
pub use allocation::{StockQuery, ALLOCATION_ATTEMPTS_MAX};

/// What to do when a picker finds fewer units than reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShortPickPolicy {
    /// Reserve the missing units elsewhere (a new pick task); ship short only what cannot be found.
    #[default]
    Reallocate,
    /// Ship what was found; the missing units are refunded.
    ShipPartial,
}

/// Where a fulfillment order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FulfillmentStatus {
    /// Taken in; planning and reserving stock.
    Received,
    /// Stock held until the payment is captured or the hold expires.
    Reserved,
    /// Not enough stock. Terminal.
    Rejected,
    /// Handed to the warehouse: pick tasks are open.
    Released,
    /// Some picks confirmed.
    Picking,
    /// Packed into shipments.
    Packed,
    /// Every shipment has left.
    Shipped,
    /// Every shipment arrived. Terminal.
    Delivered,
    /// Stopped; the stock went back. Terminal.
    Cancelled {
        /// What happened to the stock.
        stock: StockOutcome,
    },
}

impl FulfillmentStatus {
    /// The status as a stable snake_case code.
    pub fn as_str(self) -> &'static str {
        match self {
            FulfillmentStatus::Received => "received",
            FulfillmentStatus::Reserved => "reserved",
            FulfillmentStatus::Rejected => "rejected",
            FulfillmentStatus::Released => "released",
            FulfillmentStatus::Picking => "picking",
            FulfillmentStatus::Packed => "packed",
            FulfillmentStatus::Shipped => "shipped",
            FulfillmentStatus::Delivered => "delivered",
            FulfillmentStatus::Cancelled { .. } => "cancelled",
        }
    }

    /// Whether no further status change can happen.
    pub fn is_terminal(self) -> bool {
        match self {
            FulfillmentStatus::Rejected | FulfillmentStatus::Delivered | FulfillmentStatus::Cancelled { .. } => true,
            FulfillmentStatus::Received
            | FulfillmentStatus::Reserved
            | FulfillmentStatus::Released
            | FulfillmentStatus::Picking
            | FulfillmentStatus::Packed
            | FulfillmentStatus::Shipped => false,
        }
    }
}

/// An operation on a bin's reservation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BinOp {
    /// Let the hold go.
    Release,
    /// Let the hold go because its time ran out.
    Expire,
    /// `units` were picked.
    Pick {
        /// Units found.
        units: u32,
    },
    /// Put picked units back.
    Restock,
    /// Picked units left with their shipment.
    Ship,
}

/// Something the fulfillment order owes another actor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// An operation on one reservation.
    Bin {
        /// The bin.
        bin: BinId,
        /// The reservation.
        reservation: ReservationId,
        /// What to do.
        op: BinOp,
    },
    /// Create (and label) a shipment.
    CreateShipment {
        /// Its id.
        shipment: ShipmentId,
        /// The warehouse it leaves from.
        warehouse: WarehouseId,
        /// What is in it.
        items: Vec<SkuUnits>,
    },
    /// Cancel a shipment that has not left.
    CancelShipment {
        /// Its id.
        shipment: ShipmentId,
    },
}

/// A pick task: one planned item to take out of its bin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PickTask {
    /// Index into the plan (and the task's number in its order).
    pub index: u16,
    /// Units found, once confirmed.
    pub picked: Option<u32>,
    /// Whether its reservation is held (a re-allocated task waits for its reservation).
    pub held: bool,
}

/// The order's record of one of its shipments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentRecord {
    /// The shipment.
    pub id: ShipmentId,
    /// The warehouse it leaves from.
    pub warehouse: WarehouseId,
    /// The last stage the order heard of.
    pub stage: ShipmentStage,
    /// The tracking number, once labelled.
    pub tracking_number: Option<String>,
}

/// What fulfillment was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFulfillmentOrder {
    /// Its id.
    pub id: FulfillmentOrderId,
    /// The order it serves.
    pub order_id: OrderId,
    /// Where it came from.
    pub channel: Channel,
    /// What to ship.
    pub lines: Vec<EventLine>,
    /// Where to.
    pub ship_to: Address,
}

/// A fulfillment order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FulfillmentOrder {
    id: FulfillmentOrderId,
    order_id: OrderId,
    channel: Channel,
    lines: Vec<EventLine>,
    ship_to: Address,
    status: FulfillmentStatus,
    attempt: u16,
    plan: Vec<PlannedItem>,
    tasks: Vec<PickTask>,
    shipments: Vec<ShipmentRecord>,
    short: Vec<SkuUnits>,
    unplaced: Vec<SkuUnits>,
    pending: Vec<Action>,
    applied: Vec<EventId>,
    sequence: u32,
    expires_at: Option<Timestamp>,
    created_at: Timestamp,
    updated_at: Timestamp,
}

/// A rule the fulfillment order refused to break.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FulfillmentOrderError {
    /// The command does not apply in the current status.
    #[error("cannot {action} while {status}")]
    WrongStatus {
        /// What was asked.
        action: &'static str,
        /// The current status.
        status: &'static str,
    },
    /// No such pick task.
    #[error("unknown pick task {0}")]
    UnknownTask(u16),
    /// More units picked than reserved.
    #[error("picked {picked} units but the task is for {units}")]
    OverPick {
        /// Units in the task.
        units: u32,
        /// Units said to be picked.
        picked: u32,
    },
    /// The task was already confirmed with another count.
    #[error("pick task {0} was already confirmed with another count")]
    AlreadyPicked(u16),
    /// The task's reservation is not held yet (a re-allocation in progress).
    #[error("pick task {0} is waiting for its reservation")]
    TaskNotHeld(u16),
    /// Pack asked for before every task was picked.
    #[error("{0} pick tasks are still open")]
    PicksOpen(usize),
    /// No such shipment on this order.
    #[error("unknown shipment {0}")]
    UnknownShipment(ShipmentId),
    /// The order was cancelled: the shipment must not leave.
    #[error("the fulfillment order was cancelled")]
    Cancelled,
    /// A snapshot broke an invariant.
    #[error("invariant violated: {0}")]
    Invariant(&'static str),
}

/// The result of a decision about a fulfillment order.
pub type Transition = crate::actors::aggregate::Transition<FulfillmentOrder>;

fn add_units(list: &mut Vec<SkuUnits>, sku: &crate::events::Sku, units: u32) {
    match list.iter_mut().find(|entry| &entry.sku == sku) {
        Some(entry) => entry.units += units,
        None => list.push(SkuUnits { sku: sku.clone(), units }),
    }
}

fn step(now: Timestamp, name: &str, detail: String, compensation: bool) -> SagaStep {
    SagaStep { at: now, context: ContextName::Fulfillment, name: name.to_owned(), detail, compensation }
}

impl FulfillmentOrder {
    /// Takes in an order. Nothing is reserved yet.
    pub fn receive(new: NewFulfillmentOrder, applied: Option<EventId>, now: Timestamp) -> Transition {
        let order = FulfillmentOrder {
            id: new.id,
            order_id: new.order_id,
            channel: new.channel,
            lines: new.lines,
            ship_to: new.ship_to,
            status: FulfillmentStatus::Received,
            attempt: 0,
            plan: Vec::new(),
            tasks: Vec::new(),
            shipments: Vec::new(),
            short: Vec::new(),
            unplaced: Vec::new(),
            pending: Vec::new(),
            applied: applied.into_iter().collect(),
            sequence: 0,
            expires_at: None,
            created_at: now,
            updated_at: now,
        };
        let detail = format!("{} lines from {:?}", order.lines.len(), order.channel);
        Transition { next: order, events: Vec::new(), steps: vec![step(now, "fulfillment_received", detail, false)] }
    }

    fn emit(&mut self, now: Timestamp, event: IntegrationEvent) -> Option<EventEnvelope> {
        // Only the web channel has an e-commerce order to tell.
        if self.channel != Channel::Web {
            return None;
        }
        self.sequence += 1;
        Some(EventEnvelope {
            event_id: EventId::derived(self.id.as_raw(), self.sequence | 0x8000_0000),
            order_id: self.order_id,
            sequence: self.sequence,
            occurred_at: now,
            source: ContextName::Fulfillment,
            schema_version: EVENT_SCHEMA_VERSION,
            event,
        })
    }

    fn changed(&self, now: Timestamp) -> FulfillmentOrder {
        let mut next = self.clone();
        next.updated_at = now;
        next
    }

    fn wrong(&self, action: &'static str) -> FulfillmentOrderError {
        FulfillmentOrderError::WrongStatus { action, status: self.status.as_str() }
    }

    /// Queues `op` for every planned reservation that was not picked, and restock for picked ones.
    fn release_plan(&mut self, op: BinOp) {
        let picked: BTreeMap<u16, u32> = self.tasks.iter().filter_map(|t| t.picked.map(|p| (t.index, p))).collect();
        for (index, item) in self.plan.iter().enumerate() {
            let index = u16::try_from(index).unwrap_or(u16::MAX);
            let op = match picked.get(&index) {
                Some(units) if *units > 0 => BinOp::Restock,
                Some(_) => continue,
                None => op.clone(),
            };
            self.pending.push(Action::Bin { bin: item.bin.clone(), reservation: item.reservation, op });
        }
    }

    /// Whether event `id` has been applied.
    pub fn has_applied(&self, id: EventId) -> bool {
        self.applied.contains(&id)
    }

    /// Applies an event from e-commerce. Events that no longer matter are
    /// recorded as applied and change nothing else.
    pub fn apply(&self, envelope: &EventEnvelope, now: Timestamp) -> Transition {
        self.apply_announcing(envelope, now, true)
    }

    /// [`Self::apply`] with the warehouse on autopilot: a captured payment
    /// releases the order and the simulated operator picks and packs it in
    /// the same transition ([`Self::pick_all_and_pack`]), so e-commerce hears
    /// only `packed` — not `released` at the same instant. Anything else
    /// applies as [`Self::apply`] does.
    pub fn apply_on_autopilot(&self, envelope: &EventEnvelope, policy: ShortPickPolicy, now: Timestamp) -> Transition {
        let releases = matches!(
            (&envelope.event, self.status),
            (IntegrationEvent::PaymentCaptured { .. }, FulfillmentStatus::Reserved)
        );
        if !releases {
            return self.apply(envelope, now);
        }
        let quiet = self.apply_announcing(envelope, now, false);
        match quiet.next.pick_all_and_pack(policy, now) {
            Ok(packed) => {
                let mut steps = quiet.steps;
                steps.extend(packed.steps);
                Transition { next: packed.next, events: packed.events, steps }
            }
            // Nothing to pack yet: release as usual, announced.
            Err(_) => self.apply(envelope, now),
        }
    }

    fn apply_announcing(&self, envelope: &EventEnvelope, now: Timestamp, announce: bool) -> Transition {
        let mut next = self.changed(now);
        next.applied.push(envelope.event_id);
        let mut events = Vec::new();
        let mut steps = Vec::new();
        match (&envelope.event, self.status) {
            (IntegrationEvent::PaymentCaptured { amount }, FulfillmentStatus::Reserved) => {
                next.status = FulfillmentStatus::Released;
                next.expires_at = None;
                next.tasks = (0..next.plan.len())
                    .map(|i| PickTask { index: u16::try_from(i).unwrap_or(u16::MAX), picked: None, held: true })
                    .collect();
                if announce {
                    events.extend(next.emit(
                        now,
                        IntegrationEvent::FulfillmentProgressed { stage: FulfillmentStage::Released, short: vec![] },
                    ));
                }
                steps.push(step(
                    now,
                    "released_to_warehouse",
                    format!("paid {amount}; {} pick tasks", next.tasks.len()),
                    false,
                ));
            }
            (IntegrationEvent::OrderCancelled { reason }, status) => {
                next.cancel(*reason, status, now, &mut events, &mut steps)
            }
            (event, status) => {
                steps.push(step(now, "event_ignored", format!("{} while {}", event.kind(), status.as_str()), false));
            }
        }
        debug_assert!(next.check_invariants().is_ok());
        Transition { next, events, steps }
    }

    fn cancel(
        &mut self,
        reason: CancelReason,
        status: FulfillmentStatus,
        now: Timestamp,
        events: &mut Vec<EventEnvelope>,
        steps: &mut Vec<SagaStep>,
    ) {
        let dispatched = self.shipments.iter().any(|s| s.stage.has_left());
        match status {
            FulfillmentStatus::Received | FulfillmentStatus::Reserved | FulfillmentStatus::Released => {
                self.status = FulfillmentStatus::Cancelled { stock: StockOutcome::Released };
                self.expires_at = None;
                self.release_plan(BinOp::Release);
                events
                    .extend(self.emit(now, IntegrationEvent::CancellationConfirmed { stock: StockOutcome::Released }));
                steps.push(step(now, "stock_released", format!("cancelled: {}", reason.as_str()), true));
            }
            FulfillmentStatus::Picking | FulfillmentStatus::Packed if !dispatched => {
                self.status = FulfillmentStatus::Cancelled { stock: StockOutcome::ReturnedToStock };
                self.release_plan(BinOp::Release);
                for shipment in &mut self.shipments {
                    self.pending.push(Action::CancelShipment { shipment: shipment.id });
                    shipment.stage = ShipmentStage::Cancelled;
                }
                events.extend(
                    self.emit(now, IntegrationEvent::CancellationConfirmed { stock: StockOutcome::ReturnedToStock }),
                );
                steps.push(step(now, "returned_to_stock", format!("cancelled: {}", reason.as_str()), true));
            }
            FulfillmentStatus::Picking
            | FulfillmentStatus::Packed
            | FulfillmentStatus::Shipped
            | FulfillmentStatus::Delivered => {
                events.extend(self.emit(now, IntegrationEvent::CancellationRejected));
                steps.push(step(now, "cancellation_rejected", "already dispatched".to_owned(), false));
            }
            FulfillmentStatus::Cancelled { stock } => {
                // Tell again: the requester may be waiting for the answer.
                events.extend(self.emit(now, IntegrationEvent::CancellationConfirmed { stock }));
            }
            FulfillmentStatus::Rejected => {}
        }
    }

    /// The reservation time ran out before payment: release and tell e-commerce.
    ///
    /// # Errors
    /// [`FulfillmentOrderError::WrongStatus`] unless `Reserved` and past the expiry.
    pub fn expire(&self, now: Timestamp) -> Result<Transition, FulfillmentOrderError> {
        let due = self.expires_at.is_some_and(|at| now >= at);
        if self.status != FulfillmentStatus::Reserved || !due {
            return Err(self.wrong("expire"));
        }
        let mut next = self.changed(now);
        next.status = FulfillmentStatus::Cancelled { stock: StockOutcome::Released };
        next.expires_at = None;
        next.release_plan(BinOp::Expire);
        let events = next.emit(now, IntegrationEvent::ReservationExpired).into_iter().collect();
        Ok(Transition { next, events, steps: vec![step(now, "reservation_expired", String::new(), true)] })
    }

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

    /// The simulated operator's whole job at once: picks every held open
    /// task in full, then packs. E-commerce hears only `packed`: a `picking`
    /// event at the same instant would cost a delivery and a commit on its
    /// side and tell the customer nothing.
    ///
    /// # Errors
    /// As [`Self::confirm_pick`] and [`Self::pack`] (tasks still open).
    pub fn pick_all_and_pack(
        &self,
        policy: ShortPickPolicy,
        now: Timestamp,
    ) -> Result<Transition, FulfillmentOrderError> {
        let mut next = self.clone();
        let mut steps = Vec::new();
        for task in self.tasks.iter().filter(|t| t.picked.is_none() && t.held) {
            let units = self.plan.get(usize::from(task.index)).map_or(0, |p| p.units);
            let picked = next.pick(task.index, units, policy, now, false)?;
            next = picked.next;
            steps.extend(picked.steps);
        }
        let packed = next.pack(now)?;
        steps.extend(packed.steps);
        Ok(Transition { next: packed.next, events: packed.events, steps })
    }

    /// [`Self::confirm_pick`]; `announce`: whether the first pick tells e-commerce `picking`.
    fn pick(
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
        let warehouse = next.shipments[position].warehouse.clone();
        if let Some(number) = tracking_number {
            next.shipments[position].tracking_number = Some(number);
        }
        next.shipments[position].stage = stage;
        if stage.has_left() && !current.has_left() {
            for (index, item) in next.plan.clone().iter().enumerate() {
                let picked = next.tasks.get(index).and_then(|t| t.picked).unwrap_or(0);
                if item.bin.warehouse == warehouse && picked > 0 {
                    next.pending.push(Action::Bin {
                        bin: item.bin.clone(),
                        reservation: item.reservation,
                        op: BinOp::Ship,
                    });
                }
            }
            let dispatched =
                u16::try_from(next.shipments.iter().filter(|s| s.stage.has_left()).count()).unwrap_or(u16::MAX);
            let tracking_number = next.shipments[position].tracking_number.clone().unwrap_or_default();
            if dispatched == total {
                next.status = FulfillmentStatus::Shipped;
            }
            events.extend(next.emit(
                now,
                IntegrationEvent::ShipmentDispatched {
                    shipment_id: shipment,
                    warehouse_id: warehouse.clone(),
                    tracking_number: tracking_number.clone(),
                    shipments_total: total,
                    shipments_dispatched: dispatched,
                },
            ));
            steps.push(step(
                now,
                "shipment_dispatched",
                format!("{shipment} from {warehouse}, tracking {tracking_number}"),
                false,
            ));
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

    /// The first `count` pending actions were performed.
    pub fn actions_done(&self, count: usize, now: Timestamp) -> FulfillmentOrder {
        let mut next = self.changed(now);
        next.pending.drain(..count.min(next.pending.len()));
        next
    }

    /// Checks the order's invariants (before a write and after a read).
    ///
    /// # Errors
    /// [`FulfillmentOrderError::Invariant`] naming the broken rule.
    pub fn check_invariants(&self) -> Result<(), FulfillmentOrderError> {
        if self.lines.is_empty() {
            return Err(FulfillmentOrderError::Invariant("a fulfillment order has lines"));
        }
        if !self.tasks.is_empty() && self.tasks.len() != self.plan.len() {
            return Err(FulfillmentOrderError::Invariant("one pick task per planned item"));
        }
        for task in &self.tasks {
            let units = self.plan.get(usize::from(task.index)).map(|p| p.units);
            if task.picked.zip(units).is_some_and(|(picked, units)| picked > units) {
                return Err(FulfillmentOrderError::Invariant("picked <= planned"));
            }
        }
        if self.status == FulfillmentStatus::Reserved && self.expires_at.is_none() {
            return Err(FulfillmentOrderError::Invariant("a reservation has an expiry"));
        }
        Ok(())
    }

    /// Whether every pick is confirmed and the order waits to be packed.
    pub fn ready_to_pack(&self) -> bool {
        let picking = match self.status {
            FulfillmentStatus::Released | FulfillmentStatus::Picking => true,
            FulfillmentStatus::Received
            | FulfillmentStatus::Reserved
            | FulfillmentStatus::Rejected
            | FulfillmentStatus::Packed
            | FulfillmentStatus::Shipped
            | FulfillmentStatus::Delivered
            | FulfillmentStatus::Cancelled { .. } => false,
        };
        picking && self.unplaced.is_empty() && self.tasks.iter().all(|t| t.picked.is_some())
    }

    /// Whether the saga is over here: terminal and nothing owed.
    pub fn is_finished(&self) -> bool {
        self.status.is_terminal() && self.pending.is_empty()
    }

    /// Whether it has work of its own to do, so an actor must run for it
    /// when the engine starts: stock to reserve, a reservation whose expiry
    /// must be watched, actions owed, units to re-allocate, or (on
    /// `autopilot`) picking and packing. Otherwise it waits for an event or
    /// a warehouse operator's command, either of which wakes it.
    pub fn owes_work(&self, autopilot: bool) -> bool {
        match self.status {
            FulfillmentStatus::Received | FulfillmentStatus::Reserved => true,
            FulfillmentStatus::Picking if !self.unplaced.is_empty() => true,
            FulfillmentStatus::Released | FulfillmentStatus::Picking => autopilot || !self.pending.is_empty(),
            FulfillmentStatus::Rejected
            | FulfillmentStatus::Packed
            | FulfillmentStatus::Shipped
            | FulfillmentStatus::Delivered
            | FulfillmentStatus::Cancelled { .. } => !self.pending.is_empty(),
        }
    }

    /// Its id.
    pub fn id(&self) -> FulfillmentOrderId {
        self.id
    }
    /// The order it serves.
    pub fn order_id(&self) -> OrderId {
        self.order_id
    }
    /// Where it came from.
    pub fn channel(&self) -> Channel {
        self.channel
    }
    /// What to ship.
    pub fn lines(&self) -> &[EventLine] {
        &self.lines
    }
    /// Where to.
    pub fn ship_to(&self) -> &Address {
        &self.ship_to
    }
    /// Where it stands.
    pub fn status(&self) -> FulfillmentStatus {
        self.status
    }
    /// The current allocation plan.
    pub fn plan(&self) -> &[PlannedItem] {
        &self.plan
    }
    /// Pick tasks (after release).
    pub fn tasks(&self) -> &[PickTask] {
        &self.tasks
    }
    /// Shipments (after packing).
    pub fn shipments(&self) -> &[ShipmentRecord] {
        &self.shipments
    }
    /// Units that will not ship.
    pub fn short(&self) -> &[SkuUnits] {
        &self.short
    }
    /// Actions owed.
    pub fn pending(&self) -> &[Action] {
        &self.pending
    }
    /// When the reservations expire, while reserved.
    pub fn expires_at(&self) -> Option<Timestamp> {
        self.expires_at
    }
    /// When it was taken in.
    pub fn created_at(&self) -> Timestamp {
        self.created_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Quantity, Sku};

    const NOW: Timestamp = Timestamp::from_millis(1_000);
    const LATER: Timestamp = Timestamp::from_millis(10_000_000);

    fn sku() -> Sku {
        Sku::parse("MUG").unwrap()
    }

    fn received() -> FulfillmentOrder {
        let new = NewFulfillmentOrder {
            id: FulfillmentOrderId::from_raw(7),
            order_id: OrderId::from_raw(7),
            channel: Channel::Web,
            lines: vec![EventLine { sku: sku(), quantity: Quantity::new(3).unwrap() }],
            ship_to: Address::new("A", "B", "C", "D", "FR").unwrap(),
        };
        FulfillmentOrder::receive(new, None, NOW).next
    }

    fn plan(order: &FulfillmentOrder) -> Vec<PlannedItem> {
        vec![
            PlannedItem {
                line: 0,
                sku: sku(),
                bin: "east/A".parse().unwrap(),
                units: 2,
                reservation: order.next_reservation_id(0),
            },
            PlannedItem {
                line: 0,
                sku: sku(),
                bin: "west/B".parse().unwrap(),
                units: 1,
                reservation: order.next_reservation_id(1),
            },
        ]
    }

    fn event(n: u32, event: IntegrationEvent) -> EventEnvelope {
        EventEnvelope {
            event_id: EventId::from_raw(500 + u128::from(n)),
            order_id: OrderId::from_raw(7),
            sequence: n,
            occurred_at: NOW,
            source: ContextName::Ecommerce,
            schema_version: EVENT_SCHEMA_VERSION,
            event,
        }
    }

    fn captured() -> EventEnvelope {
        event(2, IntegrationEvent::PaymentCaptured { amount: crate::events::Money::zero(crate::events::Currency::EUR) })
    }

    fn cancelled() -> EventEnvelope {
        event(3, IntegrationEvent::OrderCancelled { reason: CancelReason::CustomerRequest })
    }

    fn planned() -> FulfillmentOrder {
        let order = received();
        order.planned(plan(&order), NOW).unwrap().next
    }
    fn reserved() -> FulfillmentOrder {
        planned().reserved(LATER, NOW).unwrap().next
    }
    fn rejected() -> FulfillmentOrder {
        planned().rejected(vec![SkuUnits { sku: sku(), units: 1 }], NOW).unwrap().next
    }
    fn released() -> FulfillmentOrder {
        reserved().apply(&captured(), NOW).next
    }
    fn picking() -> FulfillmentOrder {
        released().confirm_pick(0, 2, ShortPickPolicy::ShipPartial, NOW).unwrap().next
    }
    fn packed() -> FulfillmentOrder {
        picking().confirm_pick(1, 1, ShortPickPolicy::ShipPartial, NOW).unwrap().next.pack(NOW).unwrap().next
    }
    fn shipped() -> FulfillmentOrder {
        let mut order = packed();
        for id in order.shipments().iter().map(|s| s.id).collect::<Vec<_>>() {
            order = order.shipment_update(id, ShipmentStage::InTransit, Some("T".into()), NOW).unwrap().next;
        }
        order
    }
    fn delivered() -> FulfillmentOrder {
        let mut order = shipped();
        for id in order.shipments().iter().map(|s| s.id).collect::<Vec<_>>() {
            order = order.shipment_update(id, ShipmentStage::Delivered, None, NOW).unwrap().next;
        }
        order
    }
    fn cancelled_order() -> FulfillmentOrder {
        released().apply(&cancelled(), NOW).next
    }

    #[test]
    fn an_order_is_ready_to_pack_once_every_pick_is_confirmed() {
        assert!(!released().ready_to_pack());
        assert!(!picking().ready_to_pack(), "one of two picks confirmed");
        let picked = picking().confirm_pick(1, 1, ShortPickPolicy::ShipPartial, NOW).unwrap().next;
        assert!(picked.ready_to_pack());
        assert!(!picked.pack(NOW).unwrap().next.ready_to_pack(), "packed orders are done with");
        assert!(!cancelled_order().ready_to_pack());
    }

    fn every_status() -> Vec<(&'static str, FulfillmentOrder)> {
        vec![
            ("received", planned()),
            ("reserved", reserved()),
            ("rejected", rejected()),
            ("released", released()),
            ("picking", picking()),
            ("packed", packed()),
            ("shipped", shipped()),
            ("delivered", delivered()),
            ("cancelled", cancelled_order()),
        ]
    }

    #[test]
    fn the_builders_reach_every_status() {
        for (name, order) in every_status() {
            assert_eq!(order.status().as_str(), name);
            assert!(order.check_invariants().is_ok(), "{name}");
        }
    }

    // Goal: every (status, command) pair, valid and invalid, has the outcome the
    // state machine promises — a change, an unchanged no-op, or a named error.
    #[test]
    fn every_command_in_every_status() {
        for (name, order) in every_status() {
            let plan_ok = order.planned(plan(&order), NOW).is_ok();
            assert_eq!(plan_ok, name == "received", "plan while {name}");
            let reserve_ok = order.reserved(LATER, NOW).is_ok();
            assert_eq!(reserve_ok, name == "received", "reserve while {name}");
            let reject_ok = order.rejected(vec![], NOW).is_ok();
            assert_eq!(reject_ok, name == "received", "reject while {name}");
            let expire_ok = order.expire(LATER).is_ok();
            assert_eq!(expire_ok, name == "reserved", "expire while {name}");
            assert!(order.expire(NOW).is_err(), "never before the expiry ({name})");

            let paid = order.apply(&captured(), NOW);
            let released_now =
                paid.next.status() == FulfillmentStatus::Released && order.status() != FulfillmentStatus::Released;
            assert_eq!(released_now, name == "reserved", "payment captured while {name}");
            assert!(paid.next.has_applied(captured().event_id));

            let cancel = order.apply(&cancelled(), NOW);
            let expected = match name {
                "received" | "reserved" | "released" => Some("cancellation_confirmed"),
                "picking" | "packed" => Some("cancellation_confirmed"),
                "shipped" | "delivered" => Some("cancellation_rejected"),
                "cancelled" => Some("cancellation_confirmed"),
                _ => None,
            };
            assert_eq!(cancel.events.first().map(|e| e.event.kind()), expected, "cancel while {name}");

            let pick = order.confirm_pick(0, 2, ShortPickPolicy::ShipPartial, NOW);
            match name {
                "released" => assert!(pick.is_ok()),
                "picking" | "packed" | "shipped" | "delivered" => {
                    assert_eq!(pick.map(|t| t.next), Ok(order.clone()), "repeat pick ({name})")
                }
                "cancelled" => assert!(pick.is_err() || pick.is_ok_and(|t| t.next == order)),
                _ => assert!(matches!(pick, Err(FulfillmentOrderError::UnknownTask(0))), "pick while {name}"),
            }

            let pack = order.pack(NOW);
            match name {
                "released" => assert_eq!(pack.unwrap_err(), FulfillmentOrderError::PicksOpen(2)),
                "picking" => assert_eq!(pack.unwrap_err(), FulfillmentOrderError::PicksOpen(1)),
                "packed" | "shipped" | "delivered" => assert_eq!(pack.map(|t| t.next), Ok(order.clone())),
                _ => assert!(matches!(pack, Err(FulfillmentOrderError::WrongStatus { .. })), "pack while {name}"),
            }

            let shipment = order.shipments().first().map(|s| s.id).unwrap_or(ShipmentId::from_raw(99));
            let dispatch = order.shipment_update(shipment, ShipmentStage::InTransit, None, NOW);
            match name {
                "packed" => assert_eq!(dispatch.unwrap().events[0].event.kind(), "shipment_dispatched"),
                "shipped" | "delivered" => assert!(dispatch.unwrap().events.is_empty(), "repeat dispatch ({name})"),
                _ => assert!(dispatch.is_err(), "dispatch while {name}"),
            }
        }
    }

    #[test]
    fn a_cancelled_order_refuses_to_let_its_shipment_leave() {
        let order = packed().apply(&cancelled(), NOW).next;
        assert_eq!(order.status(), FulfillmentStatus::Cancelled { stock: StockOutcome::ReturnedToStock });
        let shipment = order.shipments()[0].id;
        assert_eq!(
            order.shipment_update(shipment, ShipmentStage::InTransit, None, NOW).unwrap_err(),
            FulfillmentOrderError::Cancelled
        );
        assert!(order.pending().iter().any(|a| matches!(a, Action::CancelShipment { .. })));
        assert!(order.pending().iter().any(|a| matches!(a, Action::Bin { op: BinOp::Restock, .. })));
    }

    #[test]
    fn expiry_releases_every_reservation_and_tells_ecommerce() {
        let transition = reserved().expire(LATER).unwrap();
        assert_eq!(transition.events[0].event.kind(), "reservation_expired");
        let expiring =
            transition.next.pending().iter().filter(|a| matches!(a, Action::Bin { op: BinOp::Expire, .. })).count();
        assert_eq!(expiring, 2);
    }

    #[test]
    fn a_short_pick_is_recorded_and_reported_at_pack() {
        let order = released()
            .confirm_pick(0, 1, ShortPickPolicy::ShipPartial, NOW)
            .unwrap()
            .next
            .confirm_pick(1, 1, ShortPickPolicy::ShipPartial, NOW)
            .unwrap()
            .next;
        assert_eq!(order.short(), &[SkuUnits { sku: sku(), units: 1 }]);
        let packed = order.pack(NOW).unwrap();
        match &packed.events[0].event {
            IntegrationEvent::FulfillmentProgressed { stage: FulfillmentStage::Packed, short } => {
                assert_eq!(short.len(), 1)
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_short_pick_under_reallocate_waits_for_a_new_reservation() {
        let order = released().confirm_pick(0, 1, ShortPickPolicy::Reallocate, NOW).unwrap().next;
        assert_eq!(order.unplaced(), &[SkuUnits { sku: sku(), units: 1 }]);
        assert!(order.short().is_empty());
        let order = order.confirm_pick(1, 1, ShortPickPolicy::Reallocate, NOW).unwrap().next;
        assert_eq!(
            order.pack(NOW).unwrap_err(),
            FulfillmentOrderError::PicksOpen(1),
            "the unplaced unit keeps it open"
        );
        let item = PlannedItem {
            line: 0,
            sku: sku(),
            bin: "west/C".parse().unwrap(),
            units: 1,
            reservation: order.reallocation_id(0),
        };
        let order = order.reallocated(vec![item], NOW).unwrap().next;
        assert_eq!(order.tasks().len(), 3);
        assert_eq!(
            order.confirm_pick(2, 1, ShortPickPolicy::Reallocate, NOW).unwrap_err(),
            FulfillmentOrderError::TaskNotHeld(2)
        );
        let order = order.hold_result(2, true, NOW).unwrap().next;
        let order = order.confirm_pick(2, 1, ShortPickPolicy::Reallocate, NOW).unwrap().next;
        let packed = order.pack(NOW).unwrap().next;
        assert!(packed.short().is_empty());
        let shipped: u32 = packed
            .pending()
            .iter()
            .filter_map(|a| match a {
                Action::CreateShipment { items, .. } => Some(items.iter().map(|i| i.units).sum::<u32>()),
                _ => None,
            })
            .sum();
        assert_eq!(shipped, 3, "every ordered unit ships");
    }

    #[test]
    fn units_that_cannot_be_reallocated_ship_short() {
        let order = released().confirm_pick(0, 0, ShortPickPolicy::Reallocate, NOW).unwrap().next;
        let order = order.reallocated(vec![], NOW).unwrap().next;
        assert_eq!(order.short(), &[SkuUnits { sku: sku(), units: 2 }]);
        assert!(order.unplaced().is_empty());
        let item = PlannedItem {
            line: 0,
            sku: sku(),
            bin: "west/C".parse().unwrap(),
            units: 2,
            reservation: order.reallocation_id(0),
        };
        let again = released().confirm_pick(0, 0, ShortPickPolicy::Reallocate, NOW).unwrap().next;
        let lost = again.reallocated(vec![item], NOW).unwrap().next.hold_result(2, false, NOW).unwrap().next;
        assert_eq!(lost.short(), &[SkuUnits { sku: sku(), units: 2 }]);
    }

    #[test]
    fn over_picks_and_conflicting_repeats_are_refused() {
        assert_eq!(
            released().confirm_pick(0, 3, ShortPickPolicy::ShipPartial, NOW).unwrap_err(),
            FulfillmentOrderError::OverPick { units: 2, picked: 3 }
        );
        assert_eq!(
            picking().confirm_pick(0, 1, ShortPickPolicy::ShipPartial, NOW).unwrap_err(),
            FulfillmentOrderError::AlreadyPicked(0)
        );
    }

    #[test]
    fn split_plans_pack_into_one_shipment_per_warehouse() {
        assert_eq!(packed().shipments().len(), 2);
        let delivered = delivered();
        assert!(delivered.is_finished() || !delivered.pending().is_empty());
        assert_eq!(delivered.status(), FulfillmentStatus::Delivered);
    }

    #[test]
    fn channel_orders_emit_no_ecommerce_events() {
        let mut order = planned();
        order.channel = Channel::B2b;
        assert!(order.reserved(LATER, NOW).unwrap().events.is_empty());
    }

    #[test]
    fn which_open_orders_need_an_actor_at_start() {
        let expected = [
            ("received", true, true),
            ("reserved", true, true),
            ("released", false, true),
            ("picking", false, true),
            ("packed", false, false),
            ("shipped", false, false),
            ("delivered", false, false),
        ];
        let statuses = every_status();
        for (name, manual, autopilot) in expected {
            let (_, order) = statuses.iter().find(|(n, _)| *n == name).unwrap();
            assert_eq!(order.owes_work(false), manual || !order.pending().is_empty(), "{name}, manual");
            assert_eq!(order.owes_work(true), autopilot || !order.pending().is_empty(), "{name}, autopilot");
        }
    }

    #[test]
    fn autopilot_picks_and_packs_announcing_only_packed() {
        let released = released();
        let by_hand = released
            .confirm_pick(0, 2, ShortPickPolicy::ShipPartial, NOW)
            .unwrap()
            .next
            .confirm_pick(1, 1, ShortPickPolicy::ShipPartial, NOW)
            .unwrap()
            .next
            .pack(NOW)
            .unwrap()
            .next;
        let at_once = released.pick_all_and_pack(ShortPickPolicy::ShipPartial, NOW).unwrap();
        assert_eq!(at_once.next.status(), FulfillmentStatus::Packed);
        assert_eq!(at_once.next.shipments(), by_hand.shipments());
        assert_eq!(at_once.next.pending(), by_hand.pending());
        let kinds: Vec<_> = at_once.events.iter().map(|e| e.event.kind()).collect();
        assert_eq!(kinds, ["fulfillment_progressed"]);
        assert!(matches!(
            at_once.events[0].event,
            IntegrationEvent::FulfillmentProgressed { stage: FulfillmentStage::Packed, .. }
        ));
        // One event fewer, so no gap in the sequence e-commerce sees.
        assert_eq!(at_once.events[0].sequence, released.sequence + 1);
        let names: Vec<_> = at_once.steps.iter().map(|s| s.name.as_str()).collect();
        let pack_steps = by_hand.shipments().len();
        assert_eq!(names.len(), 2 + pack_steps, "{names:?}");
        assert!(names[..2].iter().all(|n| *n == "picked") && names[2..].iter().all(|n| *n == "packed"), "{names:?}");
    }

    #[test]
    fn on_autopilot_a_capture_releases_picks_and_packs_announcing_only_packed() {
        let reserved = reserved();
        let manual =
            reserved.apply(&captured(), NOW).next.pick_all_and_pack(ShortPickPolicy::ShipPartial, NOW).unwrap();
        let auto = reserved.apply_on_autopilot(&captured(), ShortPickPolicy::ShipPartial, NOW);
        assert_eq!(auto.next.status(), FulfillmentStatus::Packed);
        assert_eq!(auto.next.shipments(), manual.next.shipments());
        assert_eq!(auto.next.pending(), manual.next.pending());
        assert!(auto.next.has_applied(captured().event_id));
        assert_eq!(auto.events.len(), 1);
        assert!(matches!(
            auto.events[0].event,
            IntegrationEvent::FulfillmentProgressed { stage: FulfillmentStage::Packed, .. }
        ));
        assert_eq!(auto.events[0].sequence, reserved.sequence + 1, "no gap in what e-commerce sees");
        let names: Vec<_> = auto.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names.first(), Some(&"released_to_warehouse"), "{names:?}");
        assert_eq!(names.last(), Some(&"packed"), "{names:?}");
        // Any other event applies as without autopilot.
        let cancel = reserved.apply_on_autopilot(&cancelled(), ShortPickPolicy::ShipPartial, NOW);
        assert_eq!(cancel.next, reserved.apply(&cancelled(), NOW).next);
    }
}
