//! The fulfillment order actor: runs fulfillment's side of one order's saga.
//!
//! Handler order everywhere: decide (pure), swap, and keep what was decided;
//! before asking a bin or shipment to act, queue it in the writer (snapshot
//! with the events it applied, outbox and saga steps in one atomic batch), so the plan lands before
//! the holds; before answering anyone, and before returning, wait until all
//! of it is durable, then let its events leave. A batch that lets no event
//! leave and answers no person (an event's receipt, actions noted done, a label
//! acknowledged) is queued lazily: it shares the next urgent commit. Acts: reserve at bins,
//! perform pending actions, arm the expiry timer, drive the autopilot.
//! The actor never waits on an actor that could be waiting on it: bins and
//! shipments answer it without calling back.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use super::state::{
    Action, FulfillmentOrder, FulfillmentOrderError, FulfillmentStatus, NewFulfillmentOrder, Transition,
};
use crate::actors::{aggregate, backoff, idle_check_interval, Answer, ChildSpec, Children, Live};
use crate::events::bus::{Delivery, DeliveryError};
use crate::events::{
    Channel, EventEnvelope, EventLine, FulfillmentOrderId, IntegrationEvent, OrderId, Quantity, SkuUnits,
};
use crate::fulfillment::bin::BinError;
use crate::fulfillment::shipment::state::{NewShipment, ShipmentStage};
use crate::fulfillment::warehouse::{allocate, demand, BinStock};
use crate::fulfillment::Deps;
use crate::persistence::{StoreError, Urgency, WriteOp};

/// Plans tried before an order is rejected because others keep taking the
/// stock first. The first may plan without asking the bins (see
/// `reserve_stock`); a bin short of it then costs one of these attempts.
pub const ALLOCATION_ATTEMPTS_MAX: u32 = 4;

/// Messages to a fulfillment order.
#[derive(Debug)]
pub enum FulfillmentOrderMsg {
    /// An integration event from e-commerce.
    Deliver(EventEnvelope, RpcReplyPort<Result<Delivery, DeliveryError>>),
    /// An order from another channel.
    Create(NewFulfillmentOrder, Option<WriteOp>, RpcReplyPort<Result<FulfillmentOrder, FulfillmentOrderError>>),
    /// A picker confirms a task.
    ConfirmPick {
        /// Task number.
        index: u16,
        /// Units found.
        picked: u32,
        /// The order after it.
        reply: RpcReplyPort<Result<FulfillmentOrder, FulfillmentOrderError>>,
    },
    /// A packer closes the order into shipments.
    Pack(RpcReplyPort<Result<FulfillmentOrder, FulfillmentOrderError>>),
    /// A shipment reports a stage; dispatch is refused for a cancelled order.
    ShipmentUpdate {
        /// The shipment.
        shipment: crate::events::ShipmentId,
        /// Its new stage.
        stage: ShipmentStage,
        /// Its tracking number, when labelled.
        tracking_number: Option<String>,
        /// Whether the order took it.
        reply: RpcReplyPort<Result<(), FulfillmentOrderError>>,
    },
    /// The order as it is.
    Get(RpcReplyPort<Option<FulfillmentOrder>>),
    /// The reservation timer fired.
    Expire,
    /// Carry on with whatever is owed (after start, restart or a failed action).
    Resume,
    /// Passivate if idle.
    Idle,
}

/// The fulfillment order actor.
#[derive(Debug)]
pub struct FulfillmentOrderActor {
    deps: Arc<Deps>,
}

/// The supervisor's view of fulfillment orders.
#[derive(Debug)]
pub struct FulfillmentOrderSpec {
    pub(crate) deps: Arc<Deps>,
}

impl ChildSpec for FulfillmentOrderSpec {
    type Id = FulfillmentOrderId;
    type Actor = FulfillmentOrderActor;
    type Args = Option<FulfillmentOrder>;
    const KIND: &'static str = super::snapshot::KIND;

    fn children(&self) -> &Children<Self> {
        &self.deps.live_orders
    }

    fn actor(&self) -> FulfillmentOrderActor {
        FulfillmentOrderActor { deps: self.deps.clone() }
    }

    fn load(&self, id: &FulfillmentOrderId) -> Result<Option<Option<FulfillmentOrder>>, StoreError> {
        Ok(aggregate::load(&self.deps.store, id)?.map(Some))
    }

    fn vacant(&self, _id: &FulfillmentOrderId) -> Option<FulfillmentOrder> {
        None
    }

    fn store(&self) -> &crate::persistence::Store {
        &self.deps.store
    }

    fn idle_check(&self) -> Option<crate::actors::supervisor::IdleCheck<Self>> {
        Some((idle_check_interval(self.deps.config.idle_after), || FulfillmentOrderMsg::Idle))
    }
}

type State = Live<FulfillmentOrder>;

impl FulfillmentOrderActor {
    /// Decides a transition: the handler persists it, with the decisions
    /// around it, before it asks another actor to act ([`Self::flush`]) and
    /// before it answers ([`Live::land`]). An event it applied is recorded
    /// in the order itself (`FulfillmentOrder::has_applied`).
    fn save(&self, state: &mut State, transition: Transition) -> Result<(), ActorProcessingErr> {
        state.decide(transition)
    }

    /// Persists what was decided so far, queued lazily, not awaited: a bin
    /// or shipment asked next queues its own write behind it (the plan
    /// before the holds), and the handler lands them all, with an urgent
    /// write if anyone waits, before it answers or returns.
    async fn flush(&self, state: &mut State) -> Result<(), ActorProcessingErr> {
        Ok(state.persist(&self.deps.journal, Urgency::Lazy).await?)
    }

    /// Lands every change of the handler (see [`Live::land`]).
    async fn land(&self, state: &mut State, urgency: Urgency) -> Result<(), ActorProcessingErr> {
        Ok(state.land(&self.deps.journal, urgency).await?)
    }

    /// Plans and reserves stock until every line is held or the order is rejected.
    ///
    /// On the first attempt, a SKU that one bin alone stocks is planned
    /// there without asking the bin what it has: its reservation is the
    /// check. A bin that is short answers so, and the next attempt asks every
    /// bin first, as every attempt does for SKUs that several bins stock.
    async fn reserve_stock(&self, state: &mut State) -> Result<(), ActorProcessingErr> {
        let bins = self.deps.bin_handle();
        for attempt in 0..ALLOCATION_ATTEMPTS_MAX {
            let order = state.get()?;
            if order.status() != FulfillmentStatus::Received {
                return Ok(());
            }
            let (id, lines, held) = (order.id(), order.lines().to_vec(), order.plan().to_vec());
            // Whatever an earlier attempt (or a run before a crash) may hold goes back first.
            if !held.is_empty() {
                self.flush(state).await?;
            }
            for item in &held {
                bins.resolve(&item.bin, item.reservation, super::state::BinOp::Release).await??;
            }
            let mut stock = Vec::new();
            for (sku, wanted) in demand(&lines) {
                let candidates = self.deps.directory.bins_for(sku);
                if let [bin] = candidates.as_slice() {
                    if attempt == 0 {
                        let available = u32::try_from(wanted).unwrap_or(u32::MAX);
                        stock.push(BinStock { bin: bin.clone(), sku: sku.clone(), available });
                        continue;
                    }
                }
                for bin in candidates {
                    if let Some(available) = bins.available(&bin, sku).await? {
                        stock.push(BinStock { bin, sku: sku.clone(), available });
                    }
                }
            }
            let now = self.deps.clock.now();
            let order = state.get()?;
            let plan = match allocate(&lines, &self.deps.directory.ranked(), &stock, |n| order.next_reservation_id(n)) {
                Ok(plan) => plan,
                Err(missing) => return self.reject(state, missing),
            };
            let transition = order.planned(plan, now)?;
            self.save(state, transition)?;
            self.flush(state).await?; // the plan before the holds
            let plan = state.get()?.plan().to_vec();
            let mut short = None;
            for item in &plan {
                match bins.reserve(&item.bin, item.reservation, &item.sku, item.units).await? {
                    Ok(()) => {}
                    Err(BinError::InsufficientStock { sku, available, requested }) => {
                        short = Some(SkuUnits { sku, units: requested - available });
                        break;
                    }
                    Err(err) => return Err(err.into()),
                }
            }
            match short {
                None => {
                    let now = self.deps.clock.now();
                    let expires_at = now.plus(self.deps.config.reservation_ttl);
                    let transition = state.get()?.reserved(expires_at, now)?;
                    self.save(state, transition)?;
                    return Ok(());
                }
                Some(missing) if attempt + 1 == ALLOCATION_ATTEMPTS_MAX => return self.reject(state, vec![missing]),
                Some(_) => tracing::debug!(order = %id, attempt, "stock short while reserving; planning again"),
            }
        }
        Ok(())
    }

    fn reject(&self, state: &mut State, missing: Vec<SkuUnits>) -> Result<(), ActorProcessingErr> {
        let now = self.deps.clock.now();
        let transition = state.get()?.rejected(missing, now)?;
        self.save(state, transition)
    }

    /// Finds the units of short picks elsewhere: plans them (persisted before
    /// any bin is asked), then reserves each new item; what cannot be held ships short.
    async fn reallocate(&self, state: &mut State) -> Result<(), ActorProcessingErr> {
        let order = state.get()?.clone();
        if !order.unplaced().is_empty() {
            let bins = self.deps.bin_handle();
            let mut stock = Vec::new();
            for missing in order.unplaced() {
                for bin in self.deps.directory.bins_for(&missing.sku) {
                    if let Some(available) = bins.available(&bin, &missing.sku).await? {
                        stock.push(BinStock { bin, sku: missing.sku.clone(), available });
                    }
                }
            }
            let lines: Vec<EventLine> = order
                .unplaced()
                .iter()
                .filter_map(|m| Quantity::new(m.units).ok().map(|quantity| EventLine { sku: m.sku.clone(), quantity }))
                .collect();
            let items = allocate(&lines, &self.deps.directory.ranked(), &stock, |n| order.reallocation_id(n))
                .unwrap_or_default();
            let transition = order.reallocated(items, self.deps.clock.now())?;
            self.save(state, transition)?;
        }
        let order = state.get()?.clone();
        for task in order.tasks().iter().filter(|t| !t.held) {
            let Some(item) = order.plan().get(usize::from(task.index)) else { continue };
            self.flush(state).await?;
            let held = match self.deps.bin_handle().reserve(&item.bin, item.reservation, &item.sku, item.units).await? {
                Ok(()) => true,
                Err(BinError::InsufficientStock { .. }) => false,
                Err(err) => return Err(err.into()),
            };
            let transition = state.get()?.hold_result(task.index, held, self.deps.clock.now())?;
            self.save(state, transition)?;
        }
        Ok(())
    }

    /// Performs the pending actions in order; on a failure, schedules a retry.
    async fn run_pending(
        &self,
        myself: &ActorRef<FulfillmentOrderMsg>,
        state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        if state.get()?.pending().is_empty() {
            return Ok(());
        }
        let current = state.get()?;
        let (id, order_id, pending) = (current.id(), current.order_id(), current.pending().to_vec());
        self.flush(state).await?; // what is owed, before it is done
        let mut done = 0;
        for action in &pending {
            if let Err(err) = self.perform(id, order_id, action).await {
                tracing::warn!(order = %id, cause = %err, "action failed; retrying");
                let delay = backoff(state.attempts);
                state.attempts = state.attempts.saturating_add(1);
                myself.send_after(delay, || FulfillmentOrderMsg::Resume);
                break;
            }
            done += 1;
        }
        if done > 0 {
            state.attempts = 0;
            let next = state.get()?.actions_done(done, self.deps.clock.now());
            self.save(state, Transition { next, events: vec![], steps: vec![] })?;
        }
        Ok(())
    }

    async fn perform(&self, id: FulfillmentOrderId, order_id: OrderId, action: &Action) -> Result<(), String> {
        match action {
            Action::Bin { bin, reservation, op } => {
                match self.deps.bin_handle().resolve(bin, *reservation, op.clone()).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(err)) => {
                        // The bin refused (e.g. an over-pick that the order already checked): nothing to retry.
                        tracing::error!(order = %id, %bin, cause = %err, "bin refused an action");
                        Ok(())
                    }
                    Err(err) => Err(err.to_string()),
                }
            }
            Action::CreateShipment { shipment, warehouse, items } => {
                let new = NewShipment {
                    id: *shipment,
                    fulfillment_order: id,
                    order_id,
                    warehouse: warehouse.clone(),
                    items: items.clone(),
                    carrier: self.deps.carrier.name().to_owned(),
                };
                self.deps.shipment_handle().create(new).await.map(|_| ()).map_err(|err| err.to_string())
            }
            Action::CancelShipment { shipment } => match self.deps.shipment_handle().cancel(*shipment).await {
                Ok(_) => Ok(()),
                Err(crate::fulfillment::FulfillmentError::Shipment(err)) => {
                    tracing::warn!(%shipment, cause = %err, "shipment could not be cancelled");
                    Ok(())
                }
                Err(err) => Err(err.to_string()),
            },
        }
    }

    /// Everything that follows a change: actions, timers, autopilot.
    async fn follow_up(
        &self,
        myself: &ActorRef<FulfillmentOrderMsg>,
        state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        if state.current().is_some_and(|o| o.status() == FulfillmentStatus::Received) {
            self.reserve_stock(state).await?;
        }
        self.run_pending(myself, state).await?;
        if state.current().is_some_and(|o| o.status() == FulfillmentStatus::Picking) {
            self.reallocate(state).await?;
        }
        let Some((status, expires_at)) = state.current().map(|o| (o.status(), o.expires_at())) else {
            return Ok(());
        };
        if !matches!(status, FulfillmentStatus::Reserved) {
            // Paid (or cancelled) in time: the expiry timer has nothing left to do.
            state.disarm();
        }
        match status {
            FulfillmentStatus::Reserved => {
                if let Some(at) = expires_at {
                    let wait = at.since(self.deps.clock.now());
                    let timer = myself.send_after(wait, || FulfillmentOrderMsg::Expire);
                    state.arm(&timer);
                }
            }
            FulfillmentStatus::Released | FulfillmentStatus::Picking if self.deps.config.autopilot => {
                self.autopilot(myself, state).await?;
            }
            FulfillmentStatus::Received
            | FulfillmentStatus::Rejected
            | FulfillmentStatus::Released
            | FulfillmentStatus::Picking
            | FulfillmentStatus::Packed
            | FulfillmentStatus::Shipped
            | FulfillmentStatus::Delivered
            | FulfillmentStatus::Cancelled { .. } => {}
        }
        Ok(())
    }

    /// The simulated operator: picks every open task in full, then packs.
    async fn autopilot(
        &self,
        myself: &ActorRef<FulfillmentOrderMsg>,
        state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        let now = self.deps.clock.now();
        let transition = state.get()?.pick_all_and_pack(self.deps.config.short_pick, now)?;
        self.save(state, transition)?;
        self.run_pending(myself, state).await
    }
}

impl Actor for FulfillmentOrderActor {
    type Msg = FulfillmentOrderMsg;
    type State = State;
    type Arguments = Option<FulfillmentOrder>;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        order: Option<FulfillmentOrder>,
    ) -> Result<State, ActorProcessingErr> {
        if order.as_ref().is_some_and(|o| !o.is_finished()) {
            myself.cast(FulfillmentOrderMsg::Resume)?;
        }
        Ok(Live::new(order))
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        // Boxed: an idle actor's task then holds a pointer, not the
        // largest state of this future (see BENCHMARKS.md, memory).
        crate::actors::boxed(async move {
            // A person or client waits on these: nothing they decide is held back.
            let urgency = match message {
                FulfillmentOrderMsg::Create(..)
                | FulfillmentOrderMsg::ConfirmPick { .. }
                | FulfillmentOrderMsg::Pack(_) => Urgency::Now,
                _ => Urgency::Lazy,
            };
            let result = self.on(&myself, message, state, urgency).await;
            // Whatever the handler staged lands, even when it failed half way:
            // a restarted actor must not read a snapshot older than a write still queued.
            let landed = self.land(state, urgency).await;
            result.and(landed)
        })
        .await
    }
}

impl FulfillmentOrderActor {
    /// Handles one message; the changes it stages land, as `urgency` says,
    /// before it answers and when it returns ([`Self::land`]).
    async fn on(
        &self,
        myself: &ActorRef<FulfillmentOrderMsg>,
        message: FulfillmentOrderMsg,
        state: &mut State,
        urgency: Urgency,
    ) -> Result<(), ActorProcessingErr> {
        if !matches!(message, FulfillmentOrderMsg::Idle) {
            state.touched = std::time::Instant::now();
        }
        let now = self.deps.clock.now();
        match message {
            FulfillmentOrderMsg::Deliver(envelope, reply) => {
                match state.current() {
                    Some(order) if order.has_applied(envelope.event_id) => {
                        let _ = reply.send(Ok(Delivery::Duplicate));
                        return Ok(());
                    }
                    Some(order) => {
                        let transition = if self.deps.config.autopilot {
                            order.apply_on_autopilot(&envelope, self.deps.config.short_pick, now)
                        } else {
                            order.apply(&envelope, now)
                        };
                        self.save(state, transition)?;
                    }
                    None => match &envelope.event {
                        IntegrationEvent::OrderPlaced { lines, ship_to, .. } => {
                            let new = NewFulfillmentOrder {
                                id: FulfillmentOrderId::for_order(envelope.order_id),
                                order_id: envelope.order_id,
                                channel: Channel::Web,
                                lines: lines.clone(),
                                ship_to: ship_to.clone(),
                            };
                            let transition = FulfillmentOrder::receive(new, Some(envelope.event_id), now);
                            self.save(state, transition)?;
                        }
                        other => {
                            let _ = reply
                                .send(Err(DeliveryError::NotReady(format!("{} before order_placed", other.kind()))));
                            myself.stop(None);
                            return Ok(());
                        }
                    },
                }
                // Reserving follows at once; the sender hears back when all of
                // it is durable (one fsync for receipt, plan, holds and reserved).
                self.follow_up(myself, state).await?;
                self.land(state, urgency).await?;
                let _ = reply.send(Ok(Delivery::Applied));
            }
            FulfillmentOrderMsg::Create(new, record, reply) => {
                if let Some(order) = state.current().cloned() {
                    let _ = reply.send(Ok(order));
                    return Ok(());
                }
                let transition = FulfillmentOrder::receive(new, None, now);
                state.decide_with(&self.deps.journal, transition, record).await?;
                self.follow_up(myself, state).await?;
                self.land(state, urgency).await?;
                let _ = reply.send(Ok(state.get()?.clone()));
            }
            FulfillmentOrderMsg::ConfirmPick { index, picked, reply } => {
                match state.get()?.confirm_pick(index, picked, self.deps.config.short_pick, now) {
                    Ok(transition) => {
                        self.save(state, transition)?;
                        self.run_pending(myself, state).await?;
                        self.reallocate(state).await?;
                        self.land(state, urgency).await?;
                        let _ = reply.send(Ok(state.get()?.clone()));
                    }
                    Err(err) => {
                        let _ = reply.send(Err(err));
                    }
                }
            }
            FulfillmentOrderMsg::Pack(reply) => {
                match state.get()?.pack(now) {
                    Ok(transition) => {
                        self.save(state, transition)?;
                        // The shipments exist by the time the packer hears back.
                        self.run_pending(myself, state).await?;
                        self.land(state, urgency).await?;
                        let _ = reply.send(Ok(state.get()?.clone()));
                    }
                    Err(err) => {
                        let _ = reply.send(Err(err));
                    }
                }
            }
            FulfillmentOrderMsg::ShipmentUpdate { shipment, stage, tracking_number, reply } => {
                let current = state.get()?;
                let decided = current.shipment_update(shipment, stage, tracking_number, now).map(|transition| {
                    let changed = transition.next != *current;
                    (transition, changed)
                });
                match decided {
                    Ok((transition, changed)) => {
                        if changed {
                            self.save(state, transition)?;
                        }
                        // The shipment acts on the answer only through writes
                        // of its own to this store, queued behind this one (see
                        // `Store::enqueue`): it hears back once the change is
                        // queued; the events leave once it is durable.
                        state.ready_to_answer(&self.deps.journal, Answer::AfterQueued, urgency).await?;
                        let _ = reply.send(Ok(()));
                        state.wait_landed(&self.deps.journal).await?;
                        self.run_pending(myself, state).await?;
                    }
                    Err(err) => {
                        let _ = reply.send(Err(err));
                    }
                }
            }
            FulfillmentOrderMsg::Get(reply) => {
                let _ = reply.send(state.current().cloned());
            }
            FulfillmentOrderMsg::Expire => {
                let Some(order) = state.current().cloned() else { return Ok(()) };
                match order.expire(now) {
                    Ok(transition) => {
                        self.save(state, transition)?;
                        self.run_pending(myself, state).await?;
                    }
                    Err(_) if order.status() == FulfillmentStatus::Reserved => {
                        // Early (clock skew): try again when due.
                        if let Some(at) = order.expires_at() {
                            let timer = myself.send_after(at.since(now), || FulfillmentOrderMsg::Expire);
                            state.arm(&timer);
                        }
                    }
                    Err(_) => {}
                }
            }
            FulfillmentOrderMsg::Resume => {
                if state.current().is_some() {
                    self.follow_up(myself, state).await?;
                }
            }
            FulfillmentOrderMsg::Idle => {
                let busy = state.current().is_some_and(|o| {
                    !o.pending().is_empty()
                        || matches!(o.status(), FulfillmentStatus::Received | FulfillmentStatus::Reserved)
                });
                if state.current().is_none() || (!busy && state.idle_for(self.deps.config.idle_after)) {
                    myself.stop(Some("passivated".to_owned()));
                }
            }
        }
        Ok(())
    }
}
