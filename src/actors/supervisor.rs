//! A supervisor per aggregate kind: spawns children on demand from their last
//! snapshot, restarts failed children from it within a restart budget, and
//! forgets children that stopped (finished or passivated).
//!
//! Callers do not message the supervisor for every command: [`call`] first
//! looks the child up in its kind's [`Children`] by id and only asks the
//! supervisor to spawn it when it is not running.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Display;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use ractor::rpc::CallResult;
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, ActorStatus, RpcReplyPort, SupervisionEvent};

use super::CallError;
use crate::persistence::StoreError;

/// Restarts allowed per supervisor within [`RESTART_WINDOW`] before it escalates.
pub const RESTARTS_MAX: usize = 20;
/// The window over which [`RESTARTS_MAX`] is counted.
pub const RESTART_WINDOW: Duration = Duration::from_secs(10);
/// How long a caller waits for the supervisor to spawn a child.
pub const SPAWN_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts of one call when the child stops under it (passivation, restart).
pub const CALL_ATTEMPTS_MAX: u32 = 5;

/// The message type of a spec's child actor.
pub type ChildMsg<S> = <<S as ChildSpec>::Actor as Actor>::Msg;

/// How often children are asked whether they are idle, and the question.
pub type IdleCheck<S> = (Duration, fn() -> ChildMsg<S>);

/// What a supervisor knows about the children it looks after.
pub trait ChildSpec: Send + Sync + 'static {
    /// The aggregate's id.
    type Id: Clone + Ord + Display + Send + Sync + 'static;
    /// The child actor.
    type Actor: Actor<Arguments = Self::Args>;
    /// What a child starts from: a loaded snapshot or a vacant aggregate.
    type Args: Send + 'static;

    /// The kind's name, for logs.
    const KIND: &'static str;

    /// The kind's live children, shared by its supervisor and its callers.
    fn children(&self) -> &Children<Self>
    where
        Self: Sized;
    /// A fresh actor value (its read-only dependencies).
    fn actor(&self) -> Self::Actor;
    /// Loads `id`'s start arguments from its snapshot; `None` when it has none.
    /// Runs on the supervisor's thread: one short read.
    ///
    /// # Errors
    /// A storage failure or a corrupt snapshot.
    fn load(&self, id: &Self::Id) -> Result<Option<Self::Args>, StoreError>;
    /// Start arguments for an aggregate that does not exist yet.
    fn vacant(&self, id: &Self::Id) -> Self::Args;
    /// The store the children write to.
    fn store(&self) -> &crate::persistence::Store;
    /// Whether a child may finish handling a message while its write is
    /// still queued ([`crate::persistence::Store::enqueue`]), as a bin does
    /// after answering a hold. Such a child is loaded only after the writer
    /// has settled, so a respawned one never starts from a snapshot older
    /// than its last answer. (Other children wait for their writes before
    /// they passivate — a shipment before a handler returns, but for the
    /// write of a carrier stage its fulfillment order recorded first, which
    /// it awaits only before passivating; they settle only when restarted
    /// after a failure.)
    const RETURNS_BEFORE_DURABLE: bool = false;

    /// How often the supervisor asks its children whether they are idle, and
    /// the message it sends them (`None`: children never passivate). One
    /// timer per supervisor instead of one per child; a child that a caller
    /// reached within that period is not asked (see [`Children::get`]).
    fn idle_check(&self) -> Option<IdleCheck<Self>>
    where
        Self: Sized,
    {
        None
    }
}

/// The live children of one kind, by id: a caller finds a running child
/// here without a message to the supervisor, a formatted name or ractor's
/// process-wide registry. Only the supervisor adds entries (when it spawns
/// a child) and removes them (when it hears that the child stopped). A
/// child whose processing loop has ended (status `Stopping` or later) is
/// not found even while it is still listed, so its supervisor may spawn
/// its successor — as ractor's registry frees an actor's name at that same
/// point.
///
/// Each entry also keeps when a caller last found the child here: the
/// supervisor's idle sweep asks only the children nobody called for a whole
/// sweep period, instead of sending every live child a message at once (a
/// burst of work that grows with the live children and stalls every other
/// task). An ordered map, not a hash map: it grows a
/// node at a time, where a hash map doubles and rehashes every entry under
/// the write lock that every caller's lookup waits behind.
pub struct Children<S: ChildSpec> {
    live: RwLock<BTreeMap<S::Id, Child<S>>>,
    /// The zero of the entries' times.
    origin: Instant,
}

/// A live child and when a caller last reached it (milliseconds since
/// [`Children::origin`]).
struct Child<S: ChildSpec> {
    actor: ActorRef<ChildMsg<S>>,
    called: AtomicU64,
}

impl<S: ChildSpec> Children<S> {
    /// No children.
    pub fn new() -> Self {
        Self { live: RwLock::new(BTreeMap::new()), origin: Instant::now() }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Child `id`, if its processing loop still runs; notes that a caller
    /// reached it now.
    pub fn get(&self, id: &S::Id) -> Option<ActorRef<ChildMsg<S>>> {
        self.get_at(id, self.now())
    }

    fn get_at(&self, id: &S::Id, now: u64) -> Option<ActorRef<ChildMsg<S>>> {
        let children = self.live.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let child = children.get(id).filter(|child| child.actor.get_status() < ActorStatus::Stopping)?;
        child.called.store(now, Ordering::Relaxed);
        Some(child.actor.clone())
    }

    fn insert(&self, id: S::Id, actor: ActorRef<ChildMsg<S>>) {
        let child = Child { actor, called: AtomicU64::new(self.now()) };
        self.live.write().unwrap_or_else(std::sync::PoisonError::into_inner).insert(id, child);
    }

    /// Runs `visit` on every listed child that no caller reached during the
    /// last `quiet` (at `now`).
    fn each_quiet(&self, quiet: Duration, now: u64, mut visit: impl FnMut(&ActorRef<ChildMsg<S>>)) {
        let quiet = u64::try_from(quiet.as_millis()).unwrap_or(u64::MAX);
        let children = self.live.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        for child in children.values() {
            if now.saturating_sub(child.called.load(Ordering::Relaxed)) >= quiet {
                visit(&child.actor);
            }
        }
    }

    /// Forgets child `id` if it is still the actor `actor` (a restarted
    /// child has a new actor id and stays).
    fn remove(&self, id: &S::Id, actor: ActorId) {
        let mut children = self.live.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if children.get(id).is_some_and(|child| child.actor.get_id() == actor) {
            children.remove(id);
        }
    }
}

impl<S: ChildSpec> Default for Children<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: ChildSpec> std::fmt::Debug for Children<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let listed = self.live.read().map_or(0, |children| children.len());
        write!(f, "Children<{}>({listed} listed)", S::KIND)
    }
}

/// Why a child could not be spawned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// No snapshot, and the caller did not ask for a vacant aggregate.
    #[error("not found")]
    NotFound,
    /// The snapshot could not be read.
    #[error("storage failure: {0}")]
    Store(String),
    /// ractor refused to spawn.
    #[error("spawn failed: {0}")]
    Spawn(String),
}

/// Messages to a supervisor.
pub enum SupervisorMsg<S: ChildSpec> {
    /// Returns the running child `id`, spawning it from its snapshot (or vacant, if `vacant_ok`).
    Spawn {
        /// The child.
        id: S::Id,
        /// Whether to start a vacant aggregate when there is no snapshot.
        vacant_ok: bool,
        /// The answer.
        reply: RpcReplyPort<Result<ActorRef<<S::Actor as Actor>::Msg>, SpawnError>>,
    },
    /// How many children are alive.
    Count(RpcReplyPort<usize>),
    /// Time to ask every live child whether it is idle.
    Sweep,
}

impl<S: ChildSpec> std::fmt::Debug for SupervisorMsg<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SupervisorMsg::Spawn { id, .. } => write!(f, "Spawn({id})"),
            SupervisorMsg::Count(_) => f.write_str("Count"),
            SupervisorMsg::Sweep => f.write_str("Sweep"),
        }
    }
}

/// The supervisor actor of one kind.
pub struct Supervisor<S: ChildSpec> {
    spec: Arc<S>,
}

impl<S: ChildSpec> std::fmt::Debug for Supervisor<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Supervisor<{}>", S::KIND)
    }
}

impl<S: ChildSpec> Supervisor<S> {
    /// A supervisor for `spec`'s children.
    pub fn new(spec: Arc<S>) -> Self {
        Self { spec }
    }
}

/// A supervisor's bookkeeping.
#[derive(Debug)]
pub struct SupervisorState<S: ChildSpec> {
    /// The id of each child actor not yet known to have stopped (the
    /// actors themselves are in the kind's [`Children`]). Ordered, as
    /// [`Children`] is, so that it never rehashes all at once.
    children: BTreeMap<ActorId, S::Id>,
    restarts: VecDeque<Instant>,
}

impl<S: ChildSpec> Supervisor<S> {
    async fn load(&self, id: &S::Id, restart: bool) -> Result<Option<S::Args>, SpawnError> {
        if S::RETURNS_BEFORE_DURABLE || restart {
            self.spec.store().settled().await.map_err(|err| SpawnError::Store(err.to_string()))?;
        }
        // Inline, not on a blocking thread: one snapshot is a short MVCC read
        // that never waits for the writer, cheaper than the thread hop.
        self.spec.load(id).map_err(|err| SpawnError::Store(err.to_string()))
    }

    async fn start_child(
        &self,
        myself: &ActorRef<SupervisorMsg<S>>,
        state: &mut SupervisorState<S>,
        id: S::Id,
        args: S::Args,
    ) -> Result<ActorRef<<S::Actor as Actor>::Msg>, SpawnError> {
        let (child, _) = Actor::spawn_linked(None, self.spec.actor(), args, myself.get_cell())
            .await
            .map_err(|err| SpawnError::Spawn(err.to_string()))?;
        state.children.insert(child.get_id(), id.clone());
        self.spec.children().insert(id, child.clone());
        Ok(child)
    }
}

impl<S: ChildSpec> Actor for Supervisor<S> {
    type Msg = SupervisorMsg<S>;
    type State = SupervisorState<S>;
    type Arguments = ();

    async fn pre_start(&self, myself: ActorRef<Self::Msg>, _args: ()) -> Result<Self::State, ActorProcessingErr> {
        if let Some((every, _)) = self.spec.idle_check() {
            ractor::time::send_interval(every, myself.get_cell(), || SupervisorMsg::<S>::Sweep);
        }
        Ok(SupervisorState { children: BTreeMap::new(), restarts: VecDeque::new() })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SupervisorMsg::Spawn { id, vacant_ok, reply } => {
                if let Some(child) = self.spec.children().get(&id) {
                    let _ = reply.send(Ok(child));
                    return Ok(());
                }
                let result = match self.load(&id, false).await {
                    Ok(Some(args)) => self.start_child(&myself, state, id, args).await,
                    Ok(None) if vacant_ok => {
                        let args = self.spec.vacant(&id);
                        self.start_child(&myself, state, id, args).await
                    }
                    Ok(None) => Err(SpawnError::NotFound),
                    Err(err) => Err(err),
                };
                let _ = reply.send(result);
            }
            SupervisorMsg::Count(reply) => {
                let _ = reply.send(state.children.len());
            }
            SupervisorMsg::Sweep => {
                if let Some((every, idle)) = self.spec.idle_check() {
                    // Only children no caller reached for a whole period are
                    // asked; each still decides for itself (its own timers and
                    // answers do not pass through here). A child that is
                    // stopping no longer takes messages; that is fine.
                    let children = self.spec.children();
                    children.each_quiet(every, children.now(), |child| {
                        let _ = child.cast(idle());
                    });
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorTerminated(cell, _, _) => {
                if let Some(id) = state.children.remove(&cell.get_id()) {
                    self.spec.children().remove(&id, cell.get_id());
                }
            }
            SupervisionEvent::ActorFailed(cell, cause) => {
                let Some(id) = state.children.remove(&cell.get_id()) else {
                    return Ok(());
                };
                self.spec.children().remove(&id, cell.get_id());
                let now = Instant::now();
                while state.restarts.front().is_some_and(|at| now.duration_since(*at) > RESTART_WINDOW) {
                    state.restarts.pop_front();
                }
                state.restarts.push_back(now);
                if state.restarts.len() > RESTARTS_MAX {
                    tracing::error!(kind = S::KIND, %id, %cause, "restart budget exhausted; escalating");
                    return Err(format!("{}: more than {RESTARTS_MAX} restarts in {RESTART_WINDOW:?}", S::KIND).into());
                }
                tracing::warn!(kind = S::KIND, %id, %cause, "child failed; restarting from its snapshot");
                match self.load(&id, true).await {
                    Ok(Some(args)) => {
                        if let Err(err) = self.start_child(&myself, state, id.clone(), args).await {
                            // The next caller spawns it again on demand.
                            tracing::warn!(kind = S::KIND, %id, cause = %err, "restart deferred");
                        }
                    }
                    Ok(None) => {}
                    Err(err) => tracing::error!(kind = S::KIND, %id, cause = %err, "cannot reload snapshot"),
                }
            }
            SupervisionEvent::ActorStarted(_) | SupervisionEvent::ProcessGroupChanged(_) => {}
        }
        Ok(())
    }
}

/// How long [`live_children`] waits for the supervisor's answer.
pub const COUNT_TIMEOUT: Duration = Duration::from_secs(5);

/// How many children `supervisor` has alive (0 when it is gone or does not answer).
pub async fn live_children<S: ChildSpec>(supervisor: Result<&ActorRef<SupervisorMsg<S>>, CallError>) -> usize {
    let Ok(supervisor) = supervisor else { return 0 };
    match supervisor.call(SupervisorMsg::Count, Some(COUNT_TIMEOUT)).await {
        Ok(CallResult::Success(count)) => count,
        Ok(CallResult::Timeout | CallResult::SenderError) | Err(_) => 0,
    }
}

/// Stops `supervisor`'s children, waiting up to `grace` for them, then the supervisor.
pub async fn stop_tree<S: ChildSpec>(supervisor: Result<&ActorRef<SupervisorMsg<S>>, CallError>, grace: Duration) {
    if let Ok(supervisor) = supervisor {
        let _ = supervisor.stop_children_and_wait(None, Some(grace)).await;
        supervisor.stop(None);
    }
}

/// Spawns the open aggregates of `S::KIND` that have work of their own:
/// reads every open snapshot in one read transaction, decodes each with
/// `decode` and spawns the ids `owing` picks; the others wake on their next
/// message. Returns (open, resumed).
///
/// # Errors
/// [`CallError::Store`] when the snapshots cannot be read; a spawn failure.
pub async fn resume_owing<S: ChildSpec, T: 'static>(
    spec: &S,
    supervisor: &ActorRef<SupervisorMsg<S>>,
    store: &crate::persistence::Store,
    decode: fn(&str, &[u8]) -> Result<T, StoreError>,
    owing: impl Fn(&T) -> Option<S::Id> + Send + 'static,
) -> Result<(usize, usize), CallError> {
    let store = store.clone();
    let (open, owing) = tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
        let open = store.open_snapshots(S::KIND)?;
        let mut ids = Vec::new();
        for (id, bytes) in &open {
            ids.extend(owing(&decode(id, bytes)?));
        }
        Ok((open.len(), ids))
    })
    .await
    .map_err(|err| CallError::Store(err.to_string()))?
    .map_err(|err| CallError::Store(err.to_string()))?;
    for id in &owing {
        child(spec, supervisor, id, false).await?;
    }
    Ok((open, owing.len()))
}

/// The running child `id`, spawned if needed.
///
/// # Errors
/// [`CallError::NotFound`] when it has no snapshot and `vacant_ok` is false.
pub async fn child<S: ChildSpec>(
    spec: &S,
    supervisor: &ActorRef<SupervisorMsg<S>>,
    id: &S::Id,
    vacant_ok: bool,
) -> Result<ActorRef<<S::Actor as Actor>::Msg>, CallError> {
    if let Some(child) = spec.children().get(id) {
        return Ok(child);
    }
    let answer = supervisor
        .call(|reply| SupervisorMsg::Spawn { id: id.clone(), vacant_ok, reply }, Some(SPAWN_TIMEOUT))
        .await
        .map_err(|_| CallError::Unavailable)?;
    match answer {
        CallResult::Success(Ok(child)) => Ok(child),
        CallResult::Success(Err(SpawnError::NotFound)) => Err(CallError::NotFound),
        CallResult::Success(Err(SpawnError::Store(cause))) => Err(CallError::Store(cause)),
        // ractor refused the spawn, or the supervisor is gone: the caller retries.
        CallResult::Success(Err(SpawnError::Spawn(_))) | CallResult::SenderError => Err(CallError::Unavailable),
        CallResult::Timeout => Err(CallError::Timeout),
    }
}

/// Sends a request to child `id` and waits up to `timeout` for its answer,
/// spawning the child if needed and trying again (up to [`CALL_ATTEMPTS_MAX`])
/// when it stops before answering.
///
/// # Errors
/// [`CallError`]: timeout, not found, unavailable after retries, storage failure.
pub async fn call<S: ChildSpec, T: Send + 'static>(
    spec: &S,
    supervisor: &ActorRef<SupervisorMsg<S>>,
    id: &S::Id,
    vacant_ok: bool,
    timeout: Duration,
    build: impl Fn(RpcReplyPort<T>) -> <S::Actor as Actor>::Msg,
) -> Result<T, CallError> {
    for attempt in 0..CALL_ATTEMPTS_MAX {
        let actor = match child(spec, supervisor, id, vacant_ok).await {
            Ok(actor) => actor,
            Err(CallError::Unavailable) => {
                tokio::time::sleep(super::backoff(attempt)).await;
                continue;
            }
            Err(err) => return Err(err),
        };
        match actor.call(&build, Some(timeout)).await {
            Ok(CallResult::Success(value)) => return Ok(value),
            Ok(CallResult::Timeout) => return Err(CallError::Timeout),
            // Stopped before answering: the command was not applied; go again.
            Ok(CallResult::SenderError) | Err(_) => tokio::task::yield_now().await,
        }
    }
    Err(CallError::Unavailable)
}

/// Sends a message to child `id` without waiting for an answer, spawning it if needed.
///
/// # Errors
/// As [`child`], or [`CallError::Unavailable`] if the child stopped.
pub async fn cast<S: ChildSpec>(
    spec: &S,
    supervisor: &ActorRef<SupervisorMsg<S>>,
    id: &S::Id,
    vacant_ok: bool,
    message: <S::Actor as Actor>::Msg,
) -> Result<(), CallError> {
    let actor = child(spec, supervisor, id, vacant_ok).await?;
    actor.cast(message).map_err(|_| CallError::Unavailable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persistence::Store;

    /// An actor with nothing to do.
    struct Idle;

    impl Actor for Idle {
        type Msg = ();
        type State = ();
        type Arguments = ();

        async fn pre_start(&self, _: ActorRef<()>, (): ()) -> Result<(), ActorProcessingErr> {
            Ok(())
        }
    }

    struct IdleSpec {
        store: Store,
        children: Children<IdleSpec>,
    }

    impl ChildSpec for IdleSpec {
        type Id = u32;
        type Actor = Idle;
        type Args = ();
        const KIND: &'static str = "idle";

        fn children(&self) -> &Children<Self> {
            &self.children
        }
        fn actor(&self) -> Idle {
            Idle
        }
        fn load(&self, _: &u32) -> Result<Option<()>, StoreError> {
            Ok(None)
        }
        fn vacant(&self, _: &u32) {}
        fn store(&self) -> &Store {
            &self.store
        }
    }

    /// A supervisor of idle children on a store of its own (kept in the temporary directory).
    async fn started() -> (tempfile::TempDir, Store, Arc<IdleSpec>, ActorRef<SupervisorMsg<IdleSpec>>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("idle.redb")).unwrap();
        let spec = Arc::new(IdleSpec { store: store.clone(), children: Children::new() });
        let (supervisor, _) = Actor::spawn(None, Supervisor::new(spec.clone()), ()).await.unwrap();
        (dir, store, spec, supervisor)
    }

    #[tokio::test]
    async fn the_sweep_skips_children_a_caller_reached_within_the_period() {
        let (_dir, store, spec, supervisor) = started().await;
        let (called, quiet) =
            (child(&*spec, &supervisor, &1, true).await.unwrap(), child(&*spec, &supervisor, &2, true).await.unwrap());
        let children = spec.children();
        let quiet_for = |now: u64| {
            let mut ids = Vec::new();
            children.each_quiet(Duration::from_millis(100), now, |c| ids.push(c.get_id()));
            ids.sort();
            ids
        };
        // Both called at 60 s (after their listing, whenever that was); child 1 again at 60.15 s.
        assert!(children.get_at(&1, 60_000).is_some() && children.get_at(&2, 60_000).is_some());
        assert_eq!(quiet_for(60_099), Vec::<ActorId>::new(), "nobody is quiet before a whole period");
        assert!(children.get_at(&1, 60_150).is_some());
        assert_eq!(quiet_for(60_200), vec![quiet.get_id()], "the child called at 60.15 s is skipped");
        let mut both = vec![called.get_id(), quiet.get_id()];
        both.sort();
        assert_eq!(quiet_for(60_250), both, "a whole period after its call, it is asked too");
        supervisor.stop(None);
        store.close();
    }

    /// Polls `done` for up to a second.
    async fn until<F: std::future::Future<Output = bool>>(mut done: impl FnMut() -> F) {
        for _ in 0..200 {
            if done().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn a_child_is_found_by_id_until_it_stops_and_its_successor_stays_listed() {
        let (_dir, store, spec, supervisor) = started().await;

        let first = child(&*spec, &supervisor, &7, true).await.unwrap();
        assert_eq!(spec.children().get(&7).map(|c| c.get_id()), Some(first.get_id()));
        assert!(spec.children().get(&8).is_none(), "never spawned");
        assert!(
            matches!(child(&*spec, &supervisor, &8, false).await, Err(CallError::NotFound)),
            "no snapshot, no vacant child"
        );

        first.stop(None);
        until(|| async { first.get_status() == ActorStatus::Stopped }).await;
        assert!(spec.children().get(&7).is_none(), "a stopped child is not found");

        let second = child(&*spec, &supervisor, &7, true).await.unwrap();
        assert_ne!(second.get_id(), first.get_id(), "a successor, not the stopped child");
        // Once the supervisor has heard of the first child's end (it then
        // counts one child), its successor must still be listed.
        until(|| async { live_children(Ok(&supervisor)).await == 1 }).await;
        assert_eq!(live_children(Ok(&supervisor)).await, 1);
        assert_eq!(spec.children().get(&7).map(|c| c.get_id()), Some(second.get_id()));

        second.stop(None);
        until(|| async { spec.children().live.read().unwrap().is_empty() }).await;
        assert!(spec.children().live.read().unwrap().is_empty(), "the supervisor unlists a stopped child");
        supervisor.stop(None);
        store.close();
    }
}
