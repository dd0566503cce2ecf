//! The order actor: runs the customer's side of one order's saga.
//!
//! Handler order: decide (pure), persist (snapshot + outbox + saga steps +
//! inbox in one batch), swap, reply, then act. Payment operations owed are
//! part of the persisted order; the actor performs the first one in a task
//! (the gateway is I/O) and gets its answer back as a message, retrying
//! unavailable gateways with backoff under the same idempotency key.
//!
//! One exception saves a commit per order: the capture owed once stock is
//! reserved starts before the receipt of that event is written, and if the
//! gateway answers within [`CAPTURE_INLINE_WAIT`] the receipt and the
//! capture are written together. Nothing is acknowledged or lets an event
//! leave before that write is durable; a crash before it redelivers the
//! event, and the capture, retried under the same key, charges once.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use super::state::{Authorized, CancelOutcome, NewOrder, Order, OrderError, PaymentOp, Placement, Transition};
use crate::actors::{aggregate, backoff, idle_check_interval, ChildSpec, Children, Live};
use crate::ecommerce::payments::{AuthorizationId, PaymentError};
use crate::ecommerce::Deps;
use crate::events::bus::{Delivery, DeliveryError};
use crate::events::{EventEnvelope, OrderId};
use crate::persistence::{KeyedRecord, StoreError, Urgency};

/// Longest an order waits, while it applies `stock_reserved`, for the
/// capture it then owes, to write both as one change. A slower gateway
/// answers later as a message, as any payment operation does.
pub const CAPTURE_INLINE_WAIT: std::time::Duration = std::time::Duration::from_millis(20);

/// A payment operation and the gateway's answer to it.
type PaymentAnswer = (PaymentOp, Result<(), PaymentError>);

/// Makes the write to commit with a new order from the order as placed (an
/// HTTP request's idempotency record, its response included): the order and
/// its answer then take one transaction, one fsync.
#[derive(Clone)]
pub struct PlacedRecord(Arc<MakeRecord>);

/// The function inside a [`PlacedRecord`].
type MakeRecord = dyn Fn(&Order) -> Result<KeyedRecord, StoreError> + Send + Sync;

impl PlacedRecord {
    /// A record made by `make`.
    pub fn new(make: impl Fn(&Order) -> Result<KeyedRecord, StoreError> + Send + Sync + 'static) -> Self {
        Self(Arc::new(make))
    }

    /// The write for `order`.
    ///
    /// # Errors
    /// What `make` returns (a record that cannot be encoded).
    pub fn make(&self, order: &Order) -> Result<KeyedRecord, StoreError> {
        (self.0)(order)
    }
}

impl std::fmt::Debug for PlacedRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PlacedRecord")
    }
}

/// Messages to an order.
#[derive(Debug)]
pub enum OrderMsg {
    /// Place it (a repeat answers with the order as it is).
    Place {
        /// The priced order.
        new: NewOrder,
        /// The payment token to authorize.
        token: String,
        /// Makes the write to commit with the order (the request's idempotency record).
        record: Option<PlacedRecord>,
        /// The order once durable, and whether this message placed it (not an earlier one).
        reply: RpcReplyPort<Result<(Order, bool), OrderError>>,
    },
    /// An integration event from fulfillment.
    Deliver(EventEnvelope, RpcReplyPort<Result<Delivery, DeliveryError>>),
    /// The customer asks to cancel.
    Cancel(RpcReplyPort<Result<(CancelOutcome, Order), OrderError>>),
    /// The order as it is.
    Get(RpcReplyPort<Option<Order>>),
    /// Ask the gateway to authorize the placement's payment (again).
    Authorize,
    /// The gateway answered the placement's authorization.
    Authorized(Result<AuthorizationId, PaymentError>),
    /// The gateway answered a payment operation.
    PaymentAnswered(PaymentOp, Result<(), PaymentError>),
    /// Carry on with whatever is owed.
    Resume,
    /// Passivate if idle.
    Idle,
}

/// The order actor.
#[derive(Debug)]
pub struct OrderActor {
    deps: Arc<Deps>,
}

/// The supervisor's view of orders.
#[derive(Debug)]
pub struct OrderSpec {
    pub(crate) deps: Arc<Deps>,
}

impl ChildSpec for OrderSpec {
    type Id = OrderId;
    type Actor = OrderActor;
    type Args = Option<Order>;
    const KIND: &'static str = super::snapshot::KIND;

    fn children(&self) -> &Children<Self> {
        &self.deps.live_orders
    }

    fn actor(&self) -> OrderActor {
        OrderActor { deps: self.deps.clone() }
    }

    fn load(&self, id: &OrderId) -> Result<Option<Option<Order>>, StoreError> {
        Ok(aggregate::load(&self.deps.store, id)?.map(Some))
    }

    fn vacant(&self, _id: &OrderId) -> Option<Order> {
        None
    }

    fn store(&self) -> &crate::persistence::Store {
        &self.deps.store
    }

    fn idle_check(&self) -> Option<crate::actors::supervisor::IdleCheck<Self>> {
        Some((idle_check_interval(self.deps.idle_after), || OrderMsg::Idle))
    }
}

/// An order's placement while its payment is authorized: the askers wait,
/// and messages for the order that arrive meanwhile are handled once it is placed.
#[derive(Debug)]
pub struct Placing {
    placement: Placement,
    token: String,
    record: Option<PlacedRecord>,
    replies: Vec<RpcReplyPort<Result<(Order, bool), OrderError>>>,
    deferred: Vec<OrderMsg>,
}

type State = Live<Order, Option<Box<Placing>>>;

impl OrderActor {
    /// Decides, persists and swaps in a transition, and waits until it is
    /// durable (an order answers after durable); `urgency` is
    /// [`Urgency::Now`] when a person waits on the answer. An event the
    /// transition applied is recorded in the order itself (`Order::has_applied`).
    async fn save(
        &self,
        state: &mut State,
        transition: Transition,
        urgency: Urgency,
    ) -> Result<(), ActorProcessingErr> {
        self.save_with(state, transition, None, urgency).await
    }

    async fn save_with(
        &self,
        state: &mut State,
        transition: Transition,
        extra: Option<KeyedRecord>,
        urgency: Urgency,
    ) -> Result<(), ActorProcessingErr> {
        let journal = &self.deps.journal;
        state.decide_with(journal, transition, extra).await?;
        state.land(journal, urgency).await?;
        Ok(())
    }

    /// Starts the first owed payment operation, unless one is under way.
    fn pay(&self, myself: &ActorRef<OrderMsg>, state: &mut State) {
        if state.in_flight {
            return;
        }
        let Some(call) = state.current().and_then(|order| self.payment_call(order)) else { return };
        state.in_flight = true;
        answer_later(async move { Some(call.await) }, myself);
    }

    /// `order`'s first owed payment operation, as a call to the gateway to
    /// run in a task (the gateway is I/O).
    fn payment_call(&self, order: &Order) -> Option<impl std::future::Future<Output = PaymentAnswer> + Send + 'static> {
        let op = order.pending_payments().first().cloned()?;
        let gateway = self.deps.gateway.clone();
        let key = op.key(order.id());
        let total = order.total();
        let authorization = order.payment().authorization.clone();
        Some(async move {
            let Some(authorization) = authorization else {
                // Nothing was ever authorized: there is nothing to capture, void or refund.
                return (op, Err(PaymentError::Declined("no authorization".to_owned())));
            };
            let result = match &op {
                PaymentOp::Capture => gateway.capture(key, authorization, total).await,
                PaymentOp::Void => gateway.void(key, authorization).await,
                PaymentOp::Refund { amount, .. } => gateway.refund(key, authorization, *amount).await,
            };
            (op, result)
        })
    }

    /// Applies a delivered event. When it leaves a capture owed, starts it
    /// and waits up to [`CAPTURE_INLINE_WAIT`] for a definite answer to write
    /// with the event's receipt; otherwise the answer comes as a message.
    async fn apply_event(
        &self,
        myself: &ActorRef<OrderMsg>,
        state: &mut State,
        envelope: &EventEnvelope,
        now: crate::events::Timestamp,
    ) -> Result<(), ActorProcessingErr> {
        let order = state.get()?;
        let mut transition = order.apply(envelope, now);
        let owes_capture = transition.next.pending_payments().first() == Some(&PaymentOp::Capture);
        let mut later = None;
        if owes_capture && !state.in_flight {
            if let Some(call) = self.payment_call(&transition.next) {
                // A gateway that answers at once (the simulated one) needs
                // no task and no timer; any other runs in a task, so that a
                // slow answer keeps coming after the wait.
                let mut call = Box::pin(call);
                let answered = match futures_util::FutureExt::now_or_never(&mut call) {
                    Some(answer) => Some(Ok(answer)),
                    None => {
                        let mut answer = tokio::spawn(call);
                        match tokio::time::timeout(CAPTURE_INLINE_WAIT, &mut answer).await {
                            Ok(Ok(answer)) => Some(Ok(answer)),
                            Ok(Err(_)) => None,
                            Err(_) => Some(Err(answer)),
                        }
                    }
                };
                match answered {
                    Some(Ok((op, result))) if !matches!(result, Err(PaymentError::Unavailable(_))) => {
                        transition = transition.then(|next| next.payment_result(&op, result, now));
                    }
                    // Unavailable: retried with backoff, as any payment operation.
                    Some(Ok((op, result))) => later = Some(Ok((op, result))),
                    Some(Err(answer)) => later = Some(Err(answer)),
                    None => {}
                }
            }
        }
        self.save(state, transition, Urgency::Lazy).await?;
        match later {
            Some(Ok((op, result))) => {
                state.in_flight = true;
                myself.cast(OrderMsg::PaymentAnswered(op, result))?;
            }
            Some(Err(answer)) => {
                state.in_flight = true;
                answer_later(async move { answer.await.ok() }, myself);
            }
            None => {}
        }
        Ok(())
    }
}

/// Runs `answer` in a task and hands the payment operation's answer to the
/// order as a message when it comes (`None`: it never will).
fn answer_later(
    answer: impl std::future::Future<Output = Option<PaymentAnswer>> + Send + 'static,
    myself: &ActorRef<OrderMsg>,
) {
    let myself = myself.clone();
    tokio::spawn(async move {
        if let Some((op, result)) = answer.await {
            let _ = myself.cast(OrderMsg::PaymentAnswered(op, result));
        }
    });
}

impl Actor for OrderActor {
    type Msg = OrderMsg;
    type State = State;
    type Arguments = Option<Order>;

    async fn pre_start(&self, myself: ActorRef<OrderMsg>, order: Option<Order>) -> Result<State, ActorProcessingErr> {
        if order.as_ref().is_some_and(|o| !o.is_finished()) {
            myself.cast(OrderMsg::Resume)?;
        }
        Ok(Live::new(order))
    }

    async fn handle(
        &self,
        myself: ActorRef<OrderMsg>,
        message: OrderMsg,
        state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        // Boxed: an idle actor's task then holds a pointer, not the
        // largest state of this future.
        crate::actors::boxed(async move {
            if !matches!(message, OrderMsg::Idle) {
                state.touched = std::time::Instant::now();
            }
            let now = self.deps.clock.now();
            match message {
                OrderMsg::Place { new, token, record, reply } => {
                    self.place(&myself, state, new, token, record, reply).await?;
                }
                OrderMsg::Authorize => self.authorize(&myself, state, now).await?,
                OrderMsg::Authorized(result) => self.authorized(&myself, state, result, now).await?,
                message @ (OrderMsg::Deliver(..) | OrderMsg::Cancel(_) | OrderMsg::Get(_))
                    if state.transient.is_some() =>
                {
                    if let Some(placing) = state.transient.as_mut() {
                        placing.deferred.push(message);
                    }
                }
                OrderMsg::Deliver(envelope, reply) => self.deliver(&myself, state, envelope, reply, now).await?,
                OrderMsg::Cancel(reply) => self.cancel(&myself, state, reply, now).await?,
                OrderMsg::Get(reply) => {
                    let _ = reply.send(state.current().cloned());
                }
                OrderMsg::PaymentAnswered(op, result) => self.payment_answered(&myself, state, op, result, now).await?,
                OrderMsg::Resume => self.pay(&myself, state),
                OrderMsg::Idle => {
                    let busy = state.in_flight
                        || state.transient.is_some()
                        || state.current().is_some_and(|o| !o.pending_payments().is_empty());
                    if state.current().is_none() || (!busy && state.idle_for(self.deps.idle_after)) {
                        myself.stop(Some("passivated".to_owned()));
                    }
                }
            }
            Ok(())
        })
        .await
    }
}

impl OrderActor {
    /// Starts placing `new`: its payment is authorized first; a repeat
    /// while it is under way waits for the same outcome.
    async fn place(
        &self,
        myself: &ActorRef<OrderMsg>,
        state: &mut State,
        new: NewOrder,
        token: String,
        record: Option<PlacedRecord>,
        reply: RpcReplyPort<Result<(Order, bool), OrderError>>,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(order) = state.current() {
            let _ = reply.send(Ok((order.clone(), false)));
            return Ok(());
        }
        if let Some(placing) = state.transient.as_mut() {
            placing.replies.push(reply);
            return Ok(());
        }
        let placement = Placement::new(new);
        state.transient =
            Some(Box::new(Placing { placement, token, record, replies: vec![reply], deferred: Vec::new() }));
        self.authorize(myself, state, self.deps.clock.now()).await
    }

    /// Asks the gateway to authorize the placement's payment. A gateway
    /// that answers at once (the simulated one) is answered here; any other
    /// runs in a task and its answer comes back as [`OrderMsg::Authorized`],
    /// so no handler waits for the gateway.
    async fn authorize(
        &self,
        myself: &ActorRef<OrderMsg>,
        state: &mut State,
        now: crate::events::Timestamp,
    ) -> Result<(), ActorProcessingErr> {
        let Some(placing) = state.transient.as_ref() else { return Ok(()) };
        let gateway = self.deps.gateway.clone();
        let (key, token) = (placing.placement.gateway_key(), placing.token.clone());
        let total = placing.placement.order().total();
        let mut call = Box::pin(async move { gateway.authorize(key, token, total).await });
        if let Some(result) = futures_util::FutureExt::now_or_never(&mut call) {
            return self.authorized(myself, state, result, now).await;
        }
        let myself = myself.clone();
        tokio::spawn(async move {
            let result = call.await;
            let _ = myself.cast(OrderMsg::Authorized(result));
        });
        Ok(())
    }

    /// The gateway answered the authorization: ask again after a backoff
    /// (unavailable), or place the order, answer everyone who asked for it
    /// and handle what waited for it.
    async fn authorized(
        &self,
        myself: &ActorRef<OrderMsg>,
        state: &mut State,
        result: Result<AuthorizationId, PaymentError>,
        now: crate::events::Timestamp,
    ) -> Result<(), ActorProcessingErr> {
        let Some(placing) = state.transient.as_mut() else { return Ok(()) };
        let authorization = match placing.placement.answered(result) {
            Authorized::Retry { attempt } => {
                tracing::debug!(order = %placing.placement.order().id(), attempt, "authorization retry");
                myself.send_after(backoff(attempt), || OrderMsg::Authorize);
                return Ok(());
            }
            Authorized::Decided(authorization) => authorization,
        };
        let Some(placing) = state.transient.take() else { return Ok(()) };
        let Placing { placement, record, replies, deferred, .. } = *placing;
        let transition = placement.place(authorization, now);
        let record = record.map(|record| record.make(&transition.next)).transpose()?;
        self.save_with(state, transition, record, Urgency::Now).await?;
        let order = state.get()?;
        for (n, reply) in replies.into_iter().enumerate() {
            let _ = reply.send(Ok((order.clone(), n == 0)));
        }
        for message in deferred {
            myself.cast(message)?;
        }
        Ok(())
    }

    async fn deliver(
        &self,
        myself: &ActorRef<OrderMsg>,
        state: &mut State,
        envelope: EventEnvelope,
        reply: RpcReplyPort<Result<Delivery, DeliveryError>>,
        now: crate::events::Timestamp,
    ) -> Result<(), ActorProcessingErr> {
        let Some(order) = state.current() else {
            let _ = reply.send(Err(DeliveryError::Rejected(format!("no order {}", envelope.order_id))));
            myself.stop(None);
            return Ok(());
        };
        if order.has_applied(envelope.event_id) {
            let _ = reply.send(Ok(Delivery::Duplicate));
            return Ok(());
        }
        self.apply_event(myself, state, &envelope, now).await?;
        let _ = reply.send(Ok(Delivery::Applied));
        self.pay(myself, state);
        Ok(())
    }

    async fn cancel(
        &self,
        myself: &ActorRef<OrderMsg>,
        state: &mut State,
        reply: RpcReplyPort<Result<(CancelOutcome, Order), OrderError>>,
        now: crate::events::Timestamp,
    ) -> Result<(), ActorProcessingErr> {
        let order = state.get()?.clone();
        match order.request_cancel(now) {
            Ok((outcome, transition)) => {
                if transition.next != order {
                    self.save(state, transition, Urgency::Now).await?;
                }
                let _ = reply.send(Ok((outcome, state.get()?.clone())));
                self.pay(myself, state);
            }
            Err(err) => {
                let _ = reply.send(Err(err));
            }
        }
        Ok(())
    }

    async fn payment_answered(
        &self,
        myself: &ActorRef<OrderMsg>,
        state: &mut State,
        op: PaymentOp,
        result: Result<(), PaymentError>,
        now: crate::events::Timestamp,
    ) -> Result<(), ActorProcessingErr> {
        state.in_flight = false;
        let Some(order) = state.current().cloned() else { return Ok(()) };
        if let Err(PaymentError::Unavailable(why)) = &result {
            tracing::debug!(order = %order.id(), %why, "payment gateway unavailable; retrying");
            let delay = backoff(state.attempts);
            state.attempts = state.attempts.saturating_add(1);
            myself.send_after(delay, || OrderMsg::Resume);
            return Ok(());
        }
        state.attempts = 0;
        let transition = order.payment_result(&op, result, now);
        if transition.next != order {
            self.save(state, transition, Urgency::Lazy).await?;
        }
        self.pay(myself, state);
        Ok(())
    }
}
