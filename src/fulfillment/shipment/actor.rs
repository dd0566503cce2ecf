//! The shipment actor: buys the label, records tracking events, and lets its
//! fulfillment order decide first on the stages that concern it: the
//! dispatch (a cancelled order refuses it), the delivery, an exception. The
//! call to the fulfillment order runs in a task whose answer comes back as a
//! message, so the two actors never wait on each other. The label and the
//! stages between dispatch and delivery are the shipment's own: it records
//! them alone, with their saga step, durably before it acts on them.
//! Its creation is answered once queued, like a bin's hold (the fulfillment
//! order acts on it only through a later write); it is durable before the
//! label is bought.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use super::state::{NewShipment, Shipment, ShipmentError, ShipmentStage};
use crate::actors::{aggregate, backoff, idle_check_interval, Answer, ChildSpec, Children, Live, Transition};
use crate::events::{SagaStep, ShipmentId};
use crate::fulfillment::{Deps, FulfillmentError};
use crate::persistence::{StoreError, Urgency};

/// Messages to a shipment.
#[derive(Debug)]
pub enum ShipmentMsg {
    /// Create it (a repeat answers with the existing shipment).
    Create(NewShipment, RpcReplyPort<Shipment>),
    /// A tracking event from the carrier: checked with the fulfillment order, then recorded.
    Track {
        /// The stage reached.
        stage: ShipmentStage,
        /// The carrier's words.
        detail: String,
        /// Whether the stage can follow the current one (it is recorded once the order agrees).
        reply: RpcReplyPort<Result<Shipment, ShipmentError>>,
    },
    /// The simulated carrier reached `stage` (autopilot).
    Carrier {
        /// The stage reached.
        stage: ShipmentStage,
        /// The carrier's words.
        detail: String,
    },
    /// The fulfillment order agreed to `stage`: record it.
    Confirmed {
        /// The stage.
        stage: ShipmentStage,
        /// The carrier's words.
        detail: String,
        /// The tracking number, for the label.
        tracking_number: Option<String>,
    },
    /// The fulfillment order was cancelled: cancel if not gone.
    Cancel(RpcReplyPort<Result<Shipment, ShipmentError>>),
    /// The shipment as it is.
    Get(RpcReplyPort<Option<Shipment>>),
    /// Carry on (label, autopilot) after start or a failure.
    Resume,
    /// Passivate if idle.
    Idle,
}

/// The shipment actor.
#[derive(Debug)]
pub struct ShipmentActor {
    deps: Arc<Deps>,
}

/// The supervisor's view of shipments.
#[derive(Debug)]
pub struct ShipmentSpec {
    pub(crate) deps: Arc<Deps>,
}

impl ChildSpec for ShipmentSpec {
    type Id = ShipmentId;
    type Actor = ShipmentActor;
    type Args = Option<Shipment>;
    const KIND: &'static str = super::snapshot::KIND;

    fn children(&self) -> &Children<Self> {
        &self.deps.live_shipments
    }

    fn actor(&self) -> ShipmentActor {
        ShipmentActor { deps: self.deps.clone() }
    }

    fn load(&self, id: &ShipmentId) -> Result<Option<Option<Shipment>>, StoreError> {
        Ok(aggregate::load(&self.deps.store, id)?.map(Some))
    }

    fn vacant(&self, _id: &ShipmentId) -> Option<Shipment> {
        None
    }

    fn store(&self) -> &crate::persistence::Store {
        &self.deps.store
    }

    fn idle_check(&self) -> Option<crate::actors::supervisor::IdleCheck<Self>> {
        Some((idle_check_interval(self.deps.config.idle_after), || ShipmentMsg::Idle))
    }
}

type State = Live<Shipment>;

impl ShipmentActor {
    /// Decides, persists and swaps in `next` with `steps`, its saga steps,
    /// and waits until it is durable, as `answer` says: after queued, the
    /// handler lands it later ([`Live::land`]). The shipment's own progress
    /// (created, labelled, each carrier stage) is [`Urgency::Lazy`] unless a
    /// carrier waits: the fulfillment order's write that tells anyone of it
    /// is urgent, and carries it.
    async fn save(
        &self,
        state: &mut State,
        next: Shipment,
        steps: Vec<SagaStep>,
        answer: Answer,
        urgency: Urgency,
    ) -> Result<(), ActorProcessingErr> {
        state.decide(Transition { next, events: Vec::new(), steps })?;
        state.ready_to_answer(&self.deps.journal, answer, urgency).await?;
        Ok(())
    }

    /// Asks the fulfillment order to agree to `stage`, from a task.
    fn propose(
        &self,
        myself: &ActorRef<ShipmentMsg>,
        shipment: &Shipment,
        stage: ShipmentStage,
        detail: String,
        tracking_number: Option<String>,
    ) {
        let orders = self.deps.fulfillment_order_handle();
        let fulfillment_order = shipment.fulfillment_order();
        let id = shipment.id();
        let myself = myself.clone();
        tokio::spawn(async move {
            match orders.shipment_update(fulfillment_order, id, stage, tracking_number.clone()).await {
                Ok(()) => {
                    let _ = myself.cast(ShipmentMsg::Confirmed { stage, detail, tracking_number });
                }
                Err(FulfillmentError::Order(crate::fulfillment::FulfillmentOrderError::Cancelled)) => {
                    let _ = myself.cast(ShipmentMsg::Confirmed {
                        stage: ShipmentStage::Cancelled,
                        detail: "order cancelled".to_owned(),
                        tracking_number: None,
                    });
                }
                Err(err) => {
                    tracing::warn!(shipment = %id, cause = %err, "fulfillment order did not take the update; retrying");
                    let _ = myself.cast(ShipmentMsg::Resume);
                }
            }
        });
    }

    /// Checks a tracking event and moves the shipment on: a stage that
    /// concerns the fulfillment order is proposed to it (and recorded once it
    /// agrees), any other is recorded at once, as `urgency` says.
    /// `Ok(Ok(true))`: recorded now, so what follows it is due;
    /// `Ok(Err(_))`: the stage cannot follow the current one.
    async fn track(
        &self,
        myself: &ActorRef<ShipmentMsg>,
        state: &mut State,
        stage: ShipmentStage,
        detail: String,
        urgency: Urgency,
    ) -> Result<Result<bool, ShipmentError>, ActorProcessingErr> {
        let shipment = state.get()?;
        if !stage.concerns_order(shipment.stage()) {
            return self.record_alone(state, stage, &detail, None, urgency).await;
        }
        let checked = shipment.check_advance(stage, shipment.tracking_number().is_some());
        if checked.is_ok() && stage != shipment.stage() {
            let tracking_number = shipment.tracking_number().map(str::to_owned);
            self.propose(myself, shipment, stage, detail, tracking_number);
            state.in_flight = true;
        }
        Ok(checked.map(|()| false))
    }

    /// Records a stage of the shipment's own with its saga step, and waits
    /// until it is durable (and its step published) before anything acts on
    /// it. `Ok(Ok(false))`: a repeat, nothing written; `Ok(Err(_))`: the
    /// stage cannot follow the current one.
    async fn record_alone(
        &self,
        state: &mut State,
        stage: ShipmentStage,
        detail: &str,
        tracking_number: Option<String>,
        urgency: Urgency,
    ) -> Result<Result<bool, ShipmentError>, ActorProcessingErr> {
        let shipment = state.get()?;
        let (next, step) = match shipment.advance_alone(stage, detail, tracking_number, self.deps.clock.now()) {
            Ok(Some(change)) => change,
            Ok(None) => return Ok(Ok(false)),
            Err(err) => return Ok(Err(err)),
        };
        self.save(state, next, vec![step], Answer::AfterDurable, urgency).await?;
        Ok(Ok(true))
    }

    /// What happens next on its own: the label, and on autopilot the simulated carrier.
    async fn follow_up(&self, myself: &ActorRef<ShipmentMsg>, state: &mut State) -> Result<(), ActorProcessingErr> {
        let Some(shipment) = state.current() else { return Ok(()) };
        if state.in_flight {
            return Ok(());
        }
        if shipment.stage() == ShipmentStage::Created {
            let (id, items) = (shipment.id(), shipment.items().to_vec());
            match self.deps.carrier.purchase_label(id, items).await {
                Ok(tracking) => {
                    state.attempts = 0;
                    let stage = ShipmentStage::LabelPurchased;
                    if let Err(err) =
                        self.record_alone(state, stage, "label purchased", Some(tracking), Urgency::Lazy).await?
                    {
                        tracing::warn!(shipment = %id, cause = %err, "label no longer applies");
                    }
                }
                Err(err) => {
                    tracing::warn!(shipment = %id, cause = %err, "label purchase failed; retrying");
                    myself.send_after(backoff(state.attempts), || ShipmentMsg::Resume);
                    state.attempts = state.attempts.saturating_add(1);
                    return Ok(());
                }
            }
        }
        let Some(stage) = state.current().map(Shipment::stage) else { return Ok(()) };
        if self.deps.config.carrier_on_autopilot() {
            if let Some((stage, detail)) = self.deps.carrier.next_tracking_event(stage) {
                let delay = self.deps.config.carrier_step_delay;
                myself.send_after(delay, move || ShipmentMsg::Carrier { stage, detail: detail.to_owned() });
            }
        }
        Ok(())
    }
}

impl Actor for ShipmentActor {
    type Msg = ShipmentMsg;
    type State = State;
    type Arguments = Option<Shipment>;

    async fn pre_start(
        &self,
        myself: ActorRef<ShipmentMsg>,
        shipment: Option<Shipment>,
    ) -> Result<State, ActorProcessingErr> {
        if shipment.as_ref().is_some_and(|s| !s.is_finished()) {
            myself.cast(ShipmentMsg::Resume)?;
        }
        Ok(Live::new(shipment))
    }

    async fn handle(
        &self,
        myself: ActorRef<ShipmentMsg>,
        message: ShipmentMsg,
        state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        // Boxed: an idle actor's task then holds a pointer, not the
        // largest state of this future.
        crate::actors::boxed(async move {
            if !matches!(message, ShipmentMsg::Idle) {
                state.touched = std::time::Instant::now();
            }
            let now = self.deps.clock.now();
            match message {
                ShipmentMsg::Create(new, reply) => self.create(&myself, state, new, reply, now).await?,
                ShipmentMsg::Track { stage, detail, reply } => {
                    // The carrier waits for the answer: a stage recorded alone commits at once.
                    let answer = self.track(&myself, state, stage, detail, Urgency::Now).await?;
                    let current = state.get()?.clone();
                    let recorded = answer == Ok(true);
                    let _ = reply.send(answer.map(|_| current));
                    if recorded {
                        self.follow_up(&myself, state).await?;
                    }
                }
                ShipmentMsg::Carrier { stage, detail } => {
                    match self.track(&myself, state, stage, detail, Urgency::Lazy).await? {
                        Ok(true) => self.follow_up(&myself, state).await?,
                        Ok(false) => {}
                        Err(err) => tracing::debug!(cause = %err, "carrier step no longer applies"),
                    }
                }
                ShipmentMsg::Confirmed { stage, detail, tracking_number } => {
                    self.confirmed(&myself, state, (stage, detail, tracking_number), now).await?;
                }
                ShipmentMsg::Cancel(reply) => self.cancel(state, reply, now).await?,
                ShipmentMsg::Get(reply) => {
                    let _ = reply.send(state.current().cloned());
                }
                ShipmentMsg::Resume => {
                    state.in_flight = false;
                    self.follow_up(&myself, state).await?;
                }
                ShipmentMsg::Idle => {
                    let waiting = state.in_flight
                        || (self.deps.config.carrier_on_autopilot()
                            && state.current().is_some_and(|s| !s.is_finished()));
                    if state.current().is_none() || (!waiting && state.idle_for(self.deps.config.idle_after)) {
                        // Its successor must not load an older snapshot than a write still queued.
                        state.land(&self.deps.journal, Urgency::Lazy).await?;
                        myself.stop(Some("passivated".to_owned()));
                    }
                }
            }
            Ok(())
        })
        .await
    }
}

impl ShipmentActor {
    async fn create(
        &self,
        myself: &ActorRef<ShipmentMsg>,
        state: &mut State,
        new: NewShipment,
        reply: RpcReplyPort<Shipment>,
        now: crate::events::Timestamp,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(existing) = state.current().cloned() {
            let _ = reply.send(existing);
            return Ok(());
        }
        let shipment = Shipment::create(new, now);
        // Answered after queued: the fulfillment order asking acts on the
        // answer only through a write of its own, queued after this one.
        // The label waits until this is durable.
        self.save(state, shipment.clone(), Vec::new(), Answer::AfterQueued, Urgency::Lazy).await?;
        let _ = reply.send(shipment);
        state.land(&self.deps.journal, Urgency::Lazy).await?;
        self.follow_up(myself, state).await
    }

    /// The fulfillment order agreed to a stage: record it.
    async fn confirmed(
        &self,
        myself: &ActorRef<ShipmentMsg>,
        state: &mut State,
        (stage, detail, tracking_number): (ShipmentStage, String, Option<String>),
        now: crate::events::Timestamp,
    ) -> Result<(), ActorProcessingErr> {
        state.in_flight = false;
        let Some(shipment) = state.current() else { return Ok(()) };
        match shipment.advance(stage, &detail, tracking_number, now) {
            Ok(next) => {
                if next != *shipment {
                    // The fulfillment order's write of this stage came first;
                    // this one repeats it in the shipment's own row, and the
                    // next stage's writes queue behind it. Nothing waits for
                    // it but the next landing or passivation.
                    self.save(state, next, Vec::new(), Answer::AfterQueued, Urgency::Lazy).await?;
                }
            }
            Err(err) => tracing::warn!(shipment = %shipment.id(), cause = %err, "stage no longer applies"),
        }
        self.follow_up(myself, state).await
    }

    async fn cancel(
        &self,
        state: &mut State,
        reply: RpcReplyPort<Result<Shipment, ShipmentError>>,
        now: crate::events::Timestamp,
    ) -> Result<(), ActorProcessingErr> {
        let shipment = state.get()?.clone();
        match shipment.advance(ShipmentStage::Cancelled, "order cancelled", None, now) {
            Ok(next) => {
                if next != shipment {
                    self.save(state, next.clone(), Vec::new(), Answer::AfterDurable, Urgency::Now).await?;
                }
                let _ = reply.send(Ok(next));
            }
            Err(err) => {
                let _ = reply.send(Err(err));
            }
        }
        Ok(())
    }
}
