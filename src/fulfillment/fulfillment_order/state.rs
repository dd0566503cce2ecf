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
mod warehouse_work;
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

    /// Holding its stock and waiting for the payment.
    pub fn is_reserved(self) -> bool {
        match self {
            FulfillmentStatus::Reserved => true,
            FulfillmentStatus::Received
            | FulfillmentStatus::Rejected
            | FulfillmentStatus::Released
            | FulfillmentStatus::Picking
            | FulfillmentStatus::Packed
            | FulfillmentStatus::Shipped
            | FulfillmentStatus::Delivered
            | FulfillmentStatus::Cancelled { .. } => false,
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

    /// [`Self::apply`] that does not tell e-commerce of a release (`announce`
    /// false): the autopilot's picks and pack follow in the same transition.
    pub(crate) fn apply_announcing(&self, envelope: &EventEnvelope, now: Timestamp, announce: bool) -> Transition {
        let mut next = self.changed(now);
        next.applied.push(envelope.event_id);
        let mut events = Vec::new();
        let mut steps = Vec::new();
        let ignored = |steps: &mut Vec<SagaStep>| {
            let detail = format!("{} while {}", envelope.event.kind(), self.status.as_str());
            steps.push(step(now, "event_ignored", detail, false));
        };
        match &envelope.event {
            IntegrationEvent::PaymentCaptured { amount } if self.status.is_reserved() => {
                next.released(*amount, announce, now, &mut events, &mut steps);
            }
            IntegrationEvent::PaymentCaptured { .. } => ignored(&mut steps),
            IntegrationEvent::OrderCancelled { reason } => {
                next.cancel(*reason, self.status, now, &mut events, &mut steps);
            }
            // Fulfillment's own events, and the order it was created from, never come back to it.
            IntegrationEvent::OrderPlaced { .. }
            | IntegrationEvent::StockReserved { .. }
            | IntegrationEvent::StockRejected { .. }
            | IntegrationEvent::ReservationExpired
            | IntegrationEvent::FulfillmentProgressed { .. }
            | IntegrationEvent::ShipmentDispatched { .. }
            | IntegrationEvent::ShipmentDelivered { .. }
            | IntegrationEvent::CancellationConfirmed { .. }
            | IntegrationEvent::CancellationRejected => ignored(&mut steps),
        }
        debug_assert!(next.check_invariants().is_ok());
        Transition { next, events, steps }
    }

    /// The payment was captured: the order goes to the warehouse, one pick
    /// task per planned item; e-commerce hears of it if `announce`.
    fn released(
        &mut self,
        amount: crate::events::Money,
        announce: bool,
        now: Timestamp,
        events: &mut Vec<EventEnvelope>,
        steps: &mut Vec<SagaStep>,
    ) {
        self.status = FulfillmentStatus::Released;
        self.expires_at = None;
        self.tasks = (0..self.plan.len())
            .map(|i| PickTask { index: u16::try_from(i).unwrap_or(u16::MAX), picked: None, held: true })
            .collect();
        if announce {
            let event = IntegrationEvent::FulfillmentProgressed { stage: FulfillmentStage::Released, short: vec![] };
            events.extend(self.emit(now, event));
        }
        let detail = format!("paid {amount}; {} pick tasks", self.tasks.len());
        steps.push(step(now, "released_to_warehouse", detail, false));
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
mod tests;
