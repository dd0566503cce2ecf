//! The aggregate runtime: the one way every aggregate actor (order,
//! fulfillment order, bin, shipment) persists what it decided.
//!
//! # Decide → persist → swap → answer → act
//!
//! 1. **Decide.** The aggregate's pure `state.rs` returns a [`Transition`]:
//!    the next state, the events it lets leave and the saga steps it took.
//!    [`Live::decide`] checks the next state's invariants and keeps it as
//!    *decided*. Later decisions of the same handler build on it
//!    ([`Live::current`]) and join it: consecutive decisions are written as
//!    one change (one snapshot, every event and step in order).
//! 2. **Persist.** [`Live::persist`] queues the decided change in its
//!    context's writer: snapshot, open mark, outbox events, saga steps and an
//!    idempotency record in one atomic batch ([`Journal::queue`], the one
//!    commit path). An actor persists before it asks another actor to act on
//!    what it decided, so its plan is queued before their writes.
//! 3. **Swap.** Only then is the decided state the aggregate's state
//!    (what [`Live::current`] answers between handlers). Should the write fail, the handler returns the
//!    error, the actor stops and its supervisor restarts it from the last
//!    durable snapshot.
//! 4. **Answer**, after durable or after queued (below).
//! 5. **Act.** Once a change is durable, [`Live::land`] hands its events to
//!    the dispatcher and publishes its steps to watchers; the actor then
//!    performs what its state owes (a payment, a bin operation).
//!
//! # Two answers
//!
//! - **After durable** ([`Answer::AfterDurable`]): [`Live::land`] waits until
//!   every change of the actor is on disk, then the actor replies. Every
//!   answer to a person, a client, a channel or another process is of this kind.
//! - **After queued** ([`Answer::AfterQueued`]): the actor replies as soon as
//!   its change is queued. This is safe only when the asker is an actor of the
//!   same store that acts on the answer solely through a write of its own,
//!   queued later: the writer commits batches in queue order and, after its
//!   first failed commit, refuses every later batch (fail-stop), so that
//!   later write is durable only if this one is. Bins answer holds so,
//!   shipments their creation, and a fulfillment order a shipment's stage.
//!   A successor never starts from a snapshot older than an answer given: a
//!   bin, which never waits for its writes, is loaded only after the writer
//!   has settled ([`super::ChildSpec::RETURNS_BEFORE_DURABLE`]); the others
//!   land what they queued before they passivate, and any aggregate
//!   restarted after a failure is loaded after the writer settles.
//!
//! # Urgency
//!
//! A change is queued [`Urgency::Lazy`] (it may wait a moment to share an
//! fsync) unless someone outside the engine may wait on it: a person (the
//! handler asks for [`Urgency::Now`]), the receivers of the events it lets
//! leave, or a client whose idempotency record it carries.

use crate::events::{EventEnvelope, OrderId, SagaStep};
use crate::persistence::{codec, KeyedRecord, Pending, Store, StoreError, Urgency, WriteBatch, WriteOp};

use super::dispatcher::{outbox_ops, DispatcherHandle};
use super::saga_log::{self, Progress, Watch};

/// An aggregate as the runtime persists it. Each aggregate's format lives
/// in its own `snapshot.rs`; by default it is one snapshot row, postcard
/// behind [`Self::VERSION`].
pub trait Aggregate: serde::Serialize + serde::de::DeserializeOwned + Sized + Send + Sync + 'static {
    /// Record kind of its snapshots.
    const KIND: &'static str;
    /// Version byte of its snapshot row.
    const VERSION: u8;
    /// Whether recovery resumes it while it is not finished: it keeps an
    /// open mark from its creation until its saga ends.
    const RESUMES: bool = true;

    /// Its id in text form (the snapshot's key).
    fn key(&self) -> String;
    /// Adds the rows that store it to `batch` (by default its snapshot row).
    ///
    /// # Errors
    /// [`StoreError::Encode`].
    fn encode(&self, batch: &mut WriteBatch) -> Result<(), StoreError> {
        batch.push(snapshot_row(self)?);
        Ok(())
    }
    /// Decodes and checks its snapshot row (the one [`Self::encode`] writes by default).
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for bad bytes or a broken invariant.
    fn decode(key: &str, bytes: &[u8]) -> Result<Self, StoreError> {
        decode_row(format!("{} {key}", Self::KIND.replace('_', " ")), bytes)
    }
    /// Checks the invariants a snapshot must keep: before it is written and
    /// after it is read.
    ///
    /// # Errors
    /// The broken rule.
    fn check_invariants(&self) -> Result<(), String>;
    /// Whether its saga is over (recovery no longer resumes it).
    fn is_finished(&self) -> bool;
    /// The order whose saga log its steps join.
    fn order_id(&self) -> Option<OrderId>;
}

/// What a pure decision returns: the next state, the events to write to
/// the outbox with it and the saga steps it took.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a decision is applied by persisting it"]
pub struct Transition<A> {
    /// The aggregate after the decision.
    pub next: A,
    /// Events to write to the outbox with `next`.
    pub events: Vec<EventEnvelope>,
    /// Steps to append to the saga log.
    pub steps: Vec<SagaStep>,
}

impl<A> Transition<A> {
    /// A decision that only changes the state.
    pub fn to(next: A) -> Self {
        Self { next, events: Vec::new(), steps: Vec::new() }
    }

    /// This decision followed by the one `then` takes from its result: one
    /// transition, written as one change, with the events and steps of both in order.
    pub fn then(self, then: impl FnOnce(&A) -> Transition<A>) -> Transition<A> {
        let Transition { next, mut events, mut steps } = self;
        let after = then(&next);
        events.extend(after.events);
        steps.extend(after.steps);
        Transition { next: after.next, events, steps }
    }
}

/// When an actor may answer after a change (see the module's docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Once every change of the actor is on disk.
    AfterDurable,
    /// Once its change is queued in the writer.
    AfterQueued,
}

/// The writer side an aggregate actor commits through: its context's store,
/// the dispatcher its events leave by and the watchers of its saga steps.
#[derive(Debug, Clone)]
pub struct Journal {
    store: Store,
    dispatcher: DispatcherHandle,
    watch: Watch,
}

/// One aggregate's change as rows, ready to be queued: the rows that store
/// its new state, and what commits with them.
#[derive(Debug)]
pub struct Change {
    /// Record kind of the aggregate.
    pub kind: &'static str,
    /// The aggregate's key.
    pub key: String,
    /// The rows that store its new state (the batch the rest joins).
    pub rows: WriteBatch,
    /// Its open mark as it must be after the change, and as it was before it
    /// (`None` before: a new aggregate); `None`: it keeps no open mark.
    pub open: Option<(Option<bool>, bool)>,
    /// The order whose saga log `steps` join.
    pub order: Option<OrderId>,
    /// Events emitted.
    pub events: Vec<EventEnvelope>,
    /// Steps taken.
    pub steps: Vec<SagaStep>,
    /// The idempotency record of the request that caused the change, to commit with it.
    pub extra: Option<KeyedRecord>,
}

impl Change {
    /// A change that only rewrites rows of an aggregate that keeps no open
    /// mark and takes no saga step (a bin's hold).
    pub fn rows_only(kind: &'static str, key: String, rows: WriteBatch) -> Self {
        Self { kind, key, rows, open: None, order: None, events: Vec::new(), steps: Vec::new(), extra: None }
    }
}

/// Whether someone outside the engine may wait on a change that lets
/// `events` leave (their receivers) or carries `extra` (the client whose
/// idempotency record it is). Applying an event is not enough: its sender
/// is the engine's dispatcher, which only deletes the outbox row once answered.
fn needs_now(events: &[EventEnvelope], extra: Option<&KeyedRecord>) -> bool {
    !events.is_empty() || extra.is_some()
}

impl Journal {
    /// The journal of a context's `store`, `dispatcher` and `watch`.
    pub fn new(store: Store, dispatcher: DispatcherHandle, watch: Watch) -> Self {
        Self { store, dispatcher, watch }
    }

    /// The store it writes to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The dispatcher its events leave by.
    pub fn dispatcher(&self) -> &DispatcherHandle {
        &self.dispatcher
    }

    /// Queues `change` behind every batch queued before it, as `urgency`
    /// says, without waiting for it to be durable: a later batch of the same
    /// store lands only if this one did. A change that someone outside the
    /// engine may wait on may still be queued lazily when an urgent write of
    /// the same actor follows it ([`Live::send_off`]). Nothing leaves until
    /// [`Queued::land`].
    ///
    /// # Errors
    /// The store is closed, or a record cannot be encoded.
    pub async fn queue(&self, change: Change, urgency: Urgency) -> Result<Queued, StoreError> {
        let needs_now = needs_now(&change.events, change.extra.as_ref());
        let Change { kind, key, rows: mut batch, open, order, events, steps, extra } = change;
        if let Some((was, now)) = open {
            if let Some(op) = open_mark(kind, &key, was, now) {
                batch.push(op);
            }
        }
        outbox_ops(&mut batch, &events)?;
        if let (Some(order), Some(first)) = (order, steps.first()) {
            batch.push(saga_log::append(order, first.at, &steps)?);
        }
        debug_assert!(steps.is_empty() || order.is_some(), "saga steps need an order");
        if let Some(record) = extra {
            batch.push(record.write()?);
        }
        let pending = self.store.enqueue_as(batch, urgency).await?;
        Ok(Queued { pending, order, events, steps, needs_now, urgency })
    }

    /// Waits until every batch queued before the call is on disk (an empty
    /// urgent batch: it carries lazy ones queued before it).
    async fn settled(&self) -> Result<(), StoreError> {
        self.store.settled().await
    }
}

/// A change queued in the writer: its events leave and its steps are
/// published once it is durable.
#[derive(Debug)]
#[must_use = "a queued change is not durable until it lands"]
pub struct Queued {
    pending: Pending,
    order: Option<OrderId>,
    events: Vec<EventEnvelope>,
    steps: Vec<SagaStep>,
    needs_now: bool,
    urgency: Urgency,
}

impl Queued {
    /// Waits until the change is on disk, then hands its events to the
    /// dispatcher and publishes its steps to watchers.
    ///
    /// # Errors
    /// The commit failed: nothing was acknowledged and no event leaves.
    pub async fn land(self, journal: &Journal) -> Result<(), StoreError> {
        let Queued { pending, order, events, steps, .. } = self;
        pending.durable().await?;
        journal.dispatcher.enqueue(events);
        if let Some(order) = order {
            if journal.watch.receiver_count() > 0 {
                for step in steps {
                    // No watcher left is not an error.
                    let _ = journal.watch.send(Progress { order, step });
                }
            }
        }
        Ok(())
    }

    /// Leaves a change answered after queued to the asker's later write,
    /// which lands only if this one did (see the module's docs). It must let
    /// no event leave and take no step: nobody would hand them on.
    pub fn leave_to_asker(self) {
        debug_assert!(self.events.is_empty() && self.steps.is_empty(), "an unlanded change lets nothing leave");
    }
}

/// The write that keeps the set of open aggregates true after a change from
/// `was_finished` (`None`: a new aggregate) to `finished`, if any: an
/// aggregate is marked open once, when it is created, and closed once, when
/// its saga ends, not on every change.
pub fn open_mark(kind: &'static str, key: &str, was_finished: Option<bool>, finished: bool) -> Option<WriteOp> {
    if was_finished == Some(finished) {
        return None;
    }
    Some(if finished {
        WriteOp::MarkClosed { kind, id: key.to_owned() }
    } else {
        WriteOp::MarkOpen { kind, id: key.to_owned() }
    })
}

/// The one row of an aggregate stored whole: its snapshot behind `A::VERSION`
/// (the usual body of [`Aggregate::encode`]).
///
/// # Errors
/// [`StoreError::Encode`].
pub fn snapshot_row<A: Aggregate>(aggregate: &A) -> Result<WriteOp, StoreError> {
    Ok(WriteOp::PutSnapshot { kind: A::KIND, id: aggregate.key(), bytes: codec::encode(A::VERSION, aggregate)? })
}

/// Decodes a snapshot row written by [`snapshot_row`] and checks the
/// aggregate's invariants; `what` names it for the error.
///
/// # Errors
/// [`StoreError::Corrupt`] for bad bytes or a broken invariant.
pub fn decode_row<A: Aggregate>(what: String, bytes: &[u8]) -> Result<A, StoreError> {
    let aggregate: A = codec::decode(A::VERSION, &what, bytes)?;
    aggregate.check_invariants().map_err(|detail| StoreError::Corrupt { what, detail })?;
    Ok(aggregate)
}

/// Reads the snapshot of `A` with key `id` from `store` (the usual body of
/// [`super::ChildSpec::load`]).
///
/// # Errors
/// A storage failure or a corrupt snapshot.
pub fn load<A: Aggregate>(store: &Store, id: &impl std::fmt::Display) -> Result<Option<A>, StoreError> {
    let key = id.to_string();
    store.snapshot(A::KIND, &key)?.map(|bytes| A::decode(&key, &bytes)).transpose()
}

/// Decisions not yet persisted: the latest next state and everything the
/// decisions since the last write said.
#[derive(Debug)]
struct Decided<A> {
    next: A,
    events: Vec<EventEnvelope>,
    steps: Vec<SagaStep>,
    extra: Option<KeyedRecord>,
}

/// An aggregate actor's state: the aggregate (`None` while vacant), what it
/// decided and has not yet persisted, its changes queued and not yet known
/// durable, the actor's own bookkeeping, and `T`: what the actor holds for
/// a moment and never stores (an order's placement while its payment is
/// authorized). Nothing else lives here.
#[derive(Debug)]
pub struct Live<A, T = ()> {
    persisted: Option<A>,
    decided: Option<Box<Decided<A>>>,
    /// Changes queued and not yet known durable, oldest first.
    queued: Vec<Queued>,
    /// When the actor last handled a message.
    pub touched: std::time::Instant,
    /// Consecutive failed attempts of the effect being retried.
    pub attempts: u32,
    /// Whether an effect is under way (its answer comes back as a message).
    pub in_flight: bool,
    /// The long timer armed (a reservation's expiry), cancelled when a new
    /// one is armed or the actor stops: a stopped actor leaves no sleeping
    /// task behind holding its mailbox.
    timer: Option<tokio::task::AbortHandle>,
    /// What the actor holds for a moment and never stores.
    pub transient: T,
}

impl<A, T> Drop for Live<A, T> {
    fn drop(&mut self) {
        if let Some(timer) = self.timer.take() {
            timer.abort();
        }
    }
}

impl<A, T: Default> Live<A, T> {
    /// A live actor state around `aggregate`, as loaded.
    pub fn new(aggregate: Option<A>) -> Self {
        Self {
            transient: T::default(),
            persisted: aggregate,
            decided: None,
            queued: Vec::new(),
            touched: std::time::Instant::now(),
            attempts: 0,
            in_flight: false,
            timer: None,
        }
    }
}

impl<A, T> Live<A, T> {
    /// The aggregate as last decided: what the handler's next decision builds on.
    pub fn current(&self) -> Option<&A> {
        self.decided.as_ref().map(|decided| &decided.next).or(self.persisted.as_ref())
    }

    /// [`Self::current`], for an actor that always has its aggregate.
    ///
    /// # Errors
    /// The actor has none (a broken invariant of the actor).
    pub fn get(&self) -> Result<&A, ractor::ActorProcessingErr> {
        self.current().ok_or_else(|| "aggregate actor without its aggregate".into())
    }

    /// The persisted aggregate, for a change made in place after its write
    /// was queued (a bin's hold: see `fulfillment::bin`).
    pub fn persisted_mut(&mut self) -> Option<&mut A> {
        debug_assert!(self.decided.is_none(), "an in-place change follows the decisions before it");
        self.persisted.as_mut()
    }

    /// Keeps `timer` as the actor's one long timer, cancelling the previous one.
    pub fn arm<R>(&mut self, timer: &tokio::task::JoinHandle<R>) {
        if let Some(previous) = self.timer.replace(timer.abort_handle()) {
            previous.abort();
        }
    }

    /// Cancels the long timer, if one is armed: an actor that no longer
    /// needs it does not keep a sleeping task (and its memory) for it.
    pub fn disarm(&mut self) {
        if let Some(timer) = self.timer.take() {
            timer.abort();
        }
    }

    /// Whether the actor has been idle for at least `idle`.
    pub fn idle_for(&self, idle: std::time::Duration) -> bool {
        self.touched.elapsed() >= idle
    }
}

impl<A: Aggregate, T> Live<A, T> {
    /// Decide: checks `transition`'s next state and keeps it, with its
    /// events and steps, for the next [`Self::persist`].
    ///
    /// # Errors
    /// The next state breaks an invariant (a bug: the actor stops).
    pub fn decide(&mut self, transition: Transition<A>) -> Result<(), ractor::ActorProcessingErr> {
        self.join(transition, None)
    }

    /// [`Self::decide`] with the idempotency record of the request that
    /// caused it, to commit with the change. A change carries one: the
    /// decisions before it are persisted first if they carry one already.
    ///
    /// # Errors
    /// As [`Self::decide`], or a failed write.
    pub async fn decide_with(
        &mut self,
        journal: &Journal,
        transition: Transition<A>,
        extra: Option<KeyedRecord>,
    ) -> Result<(), ractor::ActorProcessingErr> {
        if extra.is_some() && self.decided.as_ref().is_some_and(|decided| decided.extra.is_some()) {
            self.persist(journal, Urgency::Lazy).await?;
        }
        self.join(transition, extra)
    }

    fn join(
        &mut self,
        transition: Transition<A>,
        extra: Option<KeyedRecord>,
    ) -> Result<(), ractor::ActorProcessingErr> {
        let Transition { next, events, steps } = transition;
        next.check_invariants()?;
        match self.decided.as_mut() {
            Some(decided) => {
                decided.next = next;
                decided.events.extend(events);
                decided.steps.extend(steps);
                if extra.is_some() {
                    decided.extra = extra;
                }
            }
            None => self.decided = Some(Box::new(Decided { next, events, steps, extra })),
        }
        Ok(())
    }

    /// Persist and swap: queues what was decided as one change, as `urgency`
    /// says, and makes it the aggregate's state. Not awaited: see
    /// [`Self::land`].
    ///
    /// # Errors
    /// The store is closed, or the snapshot cannot be encoded.
    pub async fn persist(&mut self, journal: &Journal, urgency: Urgency) -> Result<(), StoreError> {
        let Some(decided) = self.decided.take() else { return Ok(()) };
        let Decided { next, events, steps, extra } = *decided;
        let mut rows = WriteBatch::new();
        next.encode(&mut rows)?;
        let open = A::RESUMES.then(|| (self.persisted.as_ref().map(A::is_finished), next.is_finished()));
        let change =
            Change { kind: A::KIND, key: next.key(), rows, open, order: next.order_id(), events, steps, extra };
        self.queued.push(journal.queue(change, urgency).await?);
        self.persisted = Some(next);
        Ok(())
    }

    /// Persists what is left of the decisions, at once when anyone may wait
    /// on any of the actor's changes (a person: `urgency` is
    /// [`Urgency::Now`]; the receivers of their events; a client). The first
    /// half of [`Self::land`], and all an *after queued* answer waits for.
    ///
    /// # Errors
    /// As [`Self::persist`], or the writer failed.
    pub async fn send_off(&mut self, journal: &Journal, urgency: Urgency) -> Result<(), StoreError> {
        let decided_needs_now = self.decided.as_ref().is_some_and(|d| needs_now(&d.events, d.extra.as_ref()));
        let wanted = urgency == Urgency::Now || decided_needs_now || self.queued.iter().any(|queued| queued.needs_now);
        let urgency = if wanted { Urgency::Now } else { Urgency::Lazy };
        if self.decided.is_some() {
            self.persist(journal, urgency).await?;
        } else if wanted && self.queued.last().is_some_and(|queued| queued.urgency == Urgency::Lazy) {
            // Nothing left to write: an empty urgent batch carries the lazy ones.
            journal.settled().await?;
        }
        Ok(())
    }

    /// The second half of [`Self::land`]: waits for the queued changes to be
    /// durable, then lets their events leave.
    ///
    /// # Errors
    /// A commit failed: nothing was acknowledged and no event leaves.
    pub async fn wait_landed(&mut self, journal: &Journal) -> Result<(), StoreError> {
        for queued in std::mem::take(&mut self.queued) {
            queued.land(journal).await?;
        }
        Ok(())
    }

    /// Persists what is left and waits until every change of the actor is
    /// durable, then lets their events leave: what an actor does before an
    /// *after durable* answer, and before it passivates.
    ///
    /// # Errors
    /// As [`Self::send_off`] and [`Self::wait_landed`].
    pub async fn land(&mut self, journal: &Journal, urgency: Urgency) -> Result<(), StoreError> {
        self.send_off(journal, urgency).await?;
        self.wait_landed(journal).await
    }

    /// What an actor does before it answers, as `answer` says.
    ///
    /// # Errors
    /// As [`Self::land`].
    pub async fn ready_to_answer(
        &mut self,
        journal: &Journal,
        answer: Answer,
        urgency: Urgency,
    ) -> Result<(), StoreError> {
        match answer {
            Answer::AfterDurable => self.land(journal, urgency).await,
            Answer::AfterQueued => self.send_off(journal, urgency).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_mark_is_written_when_the_aggregate_is_created_and_when_it_finishes() {
        assert!(matches!(open_mark("k", "a", None, false), Some(WriteOp::MarkOpen { .. })));
        assert!(matches!(open_mark("k", "a", None, true), Some(WriteOp::MarkClosed { .. })));
        assert!(open_mark("k", "a", Some(false), false).is_none());
        assert!(matches!(open_mark("k", "a", Some(false), true), Some(WriteOp::MarkClosed { .. })));
        assert!(open_mark("k", "a", Some(true), true).is_none());
    }
}
