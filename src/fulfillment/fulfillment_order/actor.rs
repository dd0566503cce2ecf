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
    Action, BinOp, FulfillmentOrder, FulfillmentOrderError, FulfillmentStatus, NewFulfillmentOrder, Transition,
};
use crate::actors::{aggregate, backoff, idle_check_interval, Answer, ChildSpec, Children, Live};
use crate::events::bus::{Delivery, DeliveryError};
use crate::events::{BinId, Channel, EventEnvelope, FulfillmentOrderId, IntegrationEvent, OrderId, Sku, SkuUnits};
use crate::fulfillment::autopilot;
use crate::fulfillment::bin::{BinError, BinHandle};
use crate::fulfillment::shipment::state::{NewShipment, ShipmentStage};
use crate::fulfillment::warehouse::{BinStock, PlannedItem};
use crate::fulfillment::Deps;
use crate::persistence::{KeyedRecord, StoreError, Urgency};

/// Messages to a fulfillment order.
#[derive(Debug)]
pub enum FulfillmentOrderMsg {
    /// An integration event from e-commerce.
    Deliver(EventEnvelope, RpcReplyPort<Result<Delivery, DeliveryError>>),
    /// An order from another channel.
    Create(NewFulfillmentOrder, Option<KeyedRecord>, RpcReplyPort<Result<FulfillmentOrder, FulfillmentOrderError>>),
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

    /// Plans and reserves stock as the order's state says
    /// ([`FulfillmentOrder::stock_query`],
    /// [`FulfillmentOrder::reservations_answered`]) until every line is held
    /// or the order is rejected.
    async fn reserve_stock(&self, state: &mut State) -> Result<(), ActorProcessingErr> {
        let bins = self.deps.bin_handle();
        let directory = &self.deps.directory;
        while let Some(query) = state.get()?.stock_query(|sku| directory.bins_for(sku)) {
            if !query.release.is_empty() {
                self.flush(state).await?;
            }
            for item in &query.release {
                bins.resolve(&item.bin, item.reservation, BinOp::Release).await??;
            }
            let mut stock = query.assumed;
            stock.extend(self.ask(&bins, query.ask).await?);
            let transition = state.get()?.plan_from(&stock, &directory.ranked(), self.deps.clock.now())?;
            self.save(state, transition)?;
            if state.get()?.status() != FulfillmentStatus::Received {
                return Ok(()); // rejected
            }
            self.flush(state).await?; // the plan before the holds
            let short = self.reserve_all(&bins, state.get()?.plan()).await?;
            let now = self.deps.clock.now();
            let expires_at = now.plus(self.deps.config.reservation_ttl);
            match state.get()?.reservations_answered(short, expires_at, now)? {
                Some(transition) => self.save(state, transition)?,
                None => tracing::debug!(order = %state.get()?.id(), "stock short while reserving; planning again"),
            }
        }
        Ok(())
    }

    /// The free units of each SKU at each bin asked.
    async fn ask(&self, bins: &BinHandle, ask: Vec<(BinId, Sku)>) -> Result<Vec<BinStock>, ActorProcessingErr> {
        let mut stock = Vec::with_capacity(ask.len());
        for (bin, sku) in ask {
            if let Some(available) = bins.available(&bin, &sku).await? {
                stock.push(BinStock { bin, sku, available });
            }
        }
        Ok(stock)
    }

    /// Reserves every item of `plan` in turn; the first a bin is short of stops it.
    async fn reserve_all(
        &self,
        bins: &BinHandle,
        plan: &[PlannedItem],
    ) -> Result<Option<SkuUnits>, ActorProcessingErr> {
        for item in plan {
            match bins.reserve(&item.bin, item.reservation, &item.sku, item.units).await? {
                Ok(()) => {}
                Err(BinError::InsufficientStock { sku, available, requested }) => {
                    return Ok(Some(SkuUnits { sku, units: requested - available }));
                }
                Err(err) => return Err(err.into()),
            }
        }
        Ok(None)
    }

    /// Finds the units of short picks elsewhere, as the order's state says:
    /// plans them (persisted before any bin is asked), then reserves each
    /// new item; what cannot be held ships short.
    async fn reallocate(&self, state: &mut State) -> Result<(), ActorProcessingErr> {
        let bins = self.deps.bin_handle();
        let directory = &self.deps.directory;
        if let Some(ask) = state.get()?.reallocation_query(|sku| directory.bins_for(sku)) {
            let stock = self.ask(&bins, ask).await?;
            let transition = state.get()?.reallocate_from(&stock, &directory.ranked(), self.deps.clock.now())?;
            self.save(state, transition)?;
        }
        for (index, item) in state.get()?.holds_owed() {
            self.flush(state).await?;
            let held = match bins.reserve(&item.bin, item.reservation, &item.sku, item.units).await? {
                Ok(()) => true,
                Err(BinError::InsufficientStock { .. }) => false,
                Err(err) => return Err(err.into()),
            };
            let transition = state.get()?.hold_result(index, held, self.deps.clock.now())?;
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
        let transition = autopilot::pick_all_and_pack(state.get()?, self.deps.config.short_pick, now)?;
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
        // largest state of this future.
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
    /// Handles one message; the changes it decides land, as `urgency` says,
    /// before it answers and when it returns ([`Live::land`]).
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
                self.deliver(myself, state, envelope, reply, urgency, now).await?;
            }
            FulfillmentOrderMsg::Create(new, record, reply) => {
                if let Some(order) = state.current() {
                    let _ = reply.send(Ok(order.clone()));
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
            FulfillmentOrderMsg::Pack(reply) => match state.get()?.pack(now) {
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
            },
            FulfillmentOrderMsg::ShipmentUpdate { shipment, stage, tracking_number, reply } => {
                self.shipment_update(myself, state, (shipment, stage, tracking_number), reply, urgency, now).await?;
            }
            FulfillmentOrderMsg::Get(reply) => {
                let _ = reply.send(state.current().cloned());
            }
            FulfillmentOrderMsg::Expire => self.expire(myself, state, now).await?,
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

    /// An event from e-commerce: applied (an `order_placed` creates the
    /// order), then reserving follows at once; the sender hears back when
    /// all of it is durable (one fsync for receipt, plan, holds and reserved).
    async fn deliver(
        &self,
        myself: &ActorRef<FulfillmentOrderMsg>,
        state: &mut State,
        envelope: EventEnvelope,
        reply: RpcReplyPort<Result<Delivery, DeliveryError>>,
        urgency: Urgency,
        now: crate::events::Timestamp,
    ) -> Result<(), ActorProcessingErr> {
        let transition = match state.current() {
            Some(order) if order.has_applied(envelope.event_id) => {
                let _ = reply.send(Ok(Delivery::Duplicate));
                return Ok(());
            }
            Some(order) if self.deps.config.autopilot => {
                autopilot::apply(order, &envelope, self.deps.config.short_pick, now)
            }
            Some(order) => order.apply(&envelope, now),
            None => match &envelope.event {
                IntegrationEvent::OrderPlaced { lines, ship_to, .. } => {
                    let new = NewFulfillmentOrder {
                        id: FulfillmentOrderId::for_order(envelope.order_id),
                        order_id: envelope.order_id,
                        channel: Channel::Web,
                        lines: lines.clone(),
                        ship_to: ship_to.clone(),
                    };
                    FulfillmentOrder::receive(new, Some(envelope.event_id), now)
                }
                other => {
                    let _ = reply.send(Err(DeliveryError::NotReady(format!("{} before order_placed", other.kind()))));
                    myself.stop(None);
                    return Ok(());
                }
            },
        };
        self.save(state, transition)?;
        self.follow_up(myself, state).await?;
        self.land(state, urgency).await?;
        let _ = reply.send(Ok(Delivery::Applied));
        Ok(())
    }

    /// A shipment reports a stage; it hears back after queued (see below).
    async fn shipment_update(
        &self,
        myself: &ActorRef<FulfillmentOrderMsg>,
        state: &mut State,
        (shipment, stage, tracking_number): (crate::events::ShipmentId, ShipmentStage, Option<String>),
        reply: RpcReplyPort<Result<(), FulfillmentOrderError>>,
        urgency: Urgency,
        now: crate::events::Timestamp,
    ) -> Result<(), ActorProcessingErr> {
        let current = state.get()?;
        match current.shipment_update(shipment, stage, tracking_number, now) {
            Ok(transition) => {
                if transition.next != *current {
                    self.save(state, transition)?;
                }
                // Answered after queued: the shipment acts on the answer only
                // through writes of its own to this store, queued behind this
                // one. The events leave once it is durable.
                state.ready_to_answer(&self.deps.journal, Answer::AfterQueued, urgency).await?;
                let _ = reply.send(Ok(()));
                state.wait_landed(&self.deps.journal).await?;
                self.run_pending(myself, state).await?;
            }
            Err(err) => {
                let _ = reply.send(Err(err));
            }
        }
        Ok(())
    }

    /// The reservation's time ran out: release it (or, early by clock skew, wait again).
    async fn expire(
        &self,
        myself: &ActorRef<FulfillmentOrderMsg>,
        state: &mut State,
        now: crate::events::Timestamp,
    ) -> Result<(), ActorProcessingErr> {
        let Some(order) = state.current() else { return Ok(()) };
        match order.expire(now) {
            Ok(transition) => {
                self.save(state, transition)?;
                self.run_pending(myself, state).await?;
            }
            Err(_) if order.status() == FulfillmentStatus::Reserved => {
                if let Some(at) = order.expires_at() {
                    let timer = myself.send_after(at.since(now), || FulfillmentOrderMsg::Expire);
                    state.arm(&timer);
                }
            }
            Err(_) => {}
        }
        Ok(())
    }
}
