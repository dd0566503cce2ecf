//! The bin actor: one per warehouse bin, the only writer of its stock.
//!
//! Each command is decided by [`Bin`]'s pure functions, persisted (one
//! snapshot write through the group-commit writer), swapped in and then
//! answered. Receipts and adjustments (asked by people) are answered once
//! durable. Reservations and their resolutions (asked by fulfillment
//! orders) are answered once *queued*: the writer commits in queue order and
//! stops at its first failure, and the fulfillment order acts on the answer
//! only through a write of its own, queued later — so a hot bin serves its
//! orders at memory speed, not one fsync each. A bin is loaded only after
//! the writer has settled ([`ChildSpec::RETURNS_BEFORE_DURABLE`]), so a
//! respawned bin never reads a snapshot older than its last answer.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use super::state::{Bin, BinError};
use crate::actors::{idle_check_interval, ChildSpec, Live};
use crate::events::{BinId, ReservationId, Sku};
use crate::fulfillment::fulfillment_order::state::BinOp;
use crate::fulfillment::Deps;
use crate::persistence::{codec, StoreError, Urgency, WriteBatch, WriteOp};

/// Record kind of bin snapshots.
pub const BIN_KIND: &str = "bin";
const BIN_VERSION: u8 = 1;

/// Encodes a bin snapshot.
///
/// # Errors
/// [`StoreError::Encode`].
pub fn encode(bin: &Bin) -> Result<Vec<u8>, StoreError> {
    codec::encode(BIN_VERSION, bin)
}

/// Decodes and checks a bin snapshot.
///
/// # Errors
/// [`StoreError::Corrupt`] for bad bytes or a broken invariant.
pub fn decode(id: &str, bytes: &[u8]) -> Result<Bin, StoreError> {
    let bin: Bin = codec::decode(BIN_VERSION, &format!("bin {id}"), bytes)?;
    bin.check_invariants().map_err(|err| StoreError::Corrupt { what: format!("bin {id}"), detail: err.to_string() })?;
    Ok(bin)
}

/// Messages to a bin.
#[derive(Debug)]
pub enum BinMsg {
    /// Put units in.
    Receive {
        /// SKU.
        sku: Sku,
        /// Units.
        units: u32,
        /// A write to commit with the change (an idempotency record).
        record: Option<WriteOp>,
        /// The bin after the receipt.
        reply: RpcReplyPort<Result<Bin, BinError>>,
    },
    /// Count units in or out.
    Adjust {
        /// SKU.
        sku: Sku,
        /// Signed units.
        delta: i32,
        /// A write to commit with the change (an idempotency record).
        record: Option<WriteOp>,
        /// The bin after the adjustment.
        reply: RpcReplyPort<Result<Bin, BinError>>,
    },
    /// Hold units.
    Reserve {
        /// The reservation.
        id: ReservationId,
        /// SKU.
        sku: Sku,
        /// Units.
        units: u32,
        /// Whether it is held.
        reply: RpcReplyPort<Result<(), BinError>>,
    },
    /// Resolve a reservation.
    Resolve {
        /// The reservation.
        id: ReservationId,
        /// How.
        op: BinOp,
        /// Whether it is done.
        reply: RpcReplyPort<Result<(), BinError>>,
    },
    /// Units of a SKU free to reserve (what allocation needs, without copying the bin).
    Available {
        /// SKU.
        sku: Sku,
        /// Units free.
        reply: RpcReplyPort<u32>,
    },
    /// The bin as it is.
    Get(RpcReplyPort<Option<Bin>>),
    /// Passivate if idle.
    Idle,
}

/// How long a bin waits for its write before it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// Until it is on disk (people's commands).
    Durable,
    /// Until it is queued in the writer, lazily (a fulfillment order's
    /// holds: the order's own write follows and decides when they commit).
    Queued,
}

/// The bin actor.
#[derive(Debug)]
pub struct BinActor {
    deps: Arc<Deps>,
}

/// The bin supervisor's view of its children.
#[derive(Debug)]
pub struct BinSpec {
    pub(crate) deps: Arc<Deps>,
}

impl ChildSpec for BinSpec {
    type Id = BinId;
    type Actor = BinActor;
    type Args = Option<Bin>;
    const KIND: &'static str = BIN_KIND;

    fn name(&self, id: &BinId) -> String {
        format!("{}:{}", self.deps.scope, id.actor_name())
    }

    fn actor(&self) -> BinActor {
        BinActor { deps: self.deps.clone() }
    }

    fn load(&self, id: &BinId) -> Result<Option<Option<Bin>>, StoreError> {
        Ok(crate::actors::supervisor::read_snapshot(&self.deps.store, BIN_KIND, id, decode)?.map(Some))
    }

    fn vacant(&self, id: &BinId) -> Option<Bin> {
        Some(Bin::new(id.clone()))
    }

    fn store(&self) -> &crate::persistence::Store {
        &self.deps.store
    }

    const RETURNS_BEFORE_DURABLE: bool = true;
}

impl BinActor {
    async fn save(&self, next: &Bin, record: Option<WriteOp>, wait: Wait) -> Result<(), ActorProcessingErr> {
        next.check_invariants()?;
        let mut batch = WriteBatch::new();
        batch.push(WriteOp::PutSnapshot { kind: BIN_KIND, id: next.id().to_string(), bytes: encode(next)? });
        if let Some(record) = record {
            batch.push(record);
        }
        // A hold or pick is followed by its order's own write, which decides how soon they commit.
        let urgency = if wait == Wait::Durable { Urgency::Now } else { Urgency::Lazy };
        let pending = self.deps.store.enqueue_as(batch, urgency).await?;
        if wait == Wait::Durable {
            pending.durable().await?;
        }
        Ok(())
    }

    /// After a fulfillment order's hold or pick was decided in place
    /// (`Bin::*_in_place`: a bin keeps every picked hold until its shipment
    /// leaves, so copying it per command costs as much as it is large):
    /// queue the write if it changed, reply. Should the write fail, the
    /// handler fails and the bin restarts from its last snapshot.
    async fn changed_in_place(
        &self,
        state: &mut Live<Bin>,
        outcome: Result<bool, BinError>,
        reply: RpcReplyPort<Result<(), BinError>>,
    ) -> Result<(), ActorProcessingErr> {
        match outcome {
            Ok(changed) => {
                if changed {
                    let bin = state.aggregate.as_ref().ok_or("bin actor without a bin")?;
                    self.save(bin, None, Wait::Queued).await?;
                }
                let _ = reply.send(Ok(()));
            }
            Err(err) => {
                let _ = reply.send(Err(err));
            }
        }
        Ok(())
    }

    /// A person's command (stock received or adjusted): decide, persist
    /// durably (if changed, or to keep `record`), swap, reply with the bin.
    async fn change(
        &self,
        state: &mut Live<Bin>,
        decided: Result<Bin, BinError>,
        record: Option<WriteOp>,
        reply: RpcReplyPort<Result<Bin, BinError>>,
    ) -> Result<(), ActorProcessingErr> {
        let Some(current) = state.aggregate.as_ref() else {
            return Err("bin actor without a bin".into());
        };
        match decided {
            Ok(next) => {
                if &next != current || record.is_some() {
                    self.save(&next, record, Wait::Durable).await?;
                }
                state.aggregate = Some(next.clone());
                let _ = reply.send(Ok(next));
            }
            Err(err) => {
                let _ = reply.send(Err(err));
            }
        }
        Ok(())
    }
}

impl Actor for BinActor {
    type Msg = BinMsg;
    type State = Live<Bin>;
    type Arguments = Option<Bin>;

    async fn pre_start(&self, myself: ActorRef<BinMsg>, bin: Option<Bin>) -> Result<Live<Bin>, ActorProcessingErr> {
        ractor::time::send_interval(idle_check_interval(self.deps.config.idle_after), myself.get_cell(), || {
            BinMsg::Idle
        });
        Ok(Live::new(bin))
    }

    async fn handle(
        &self,
        myself: ActorRef<BinMsg>,
        message: BinMsg,
        state: &mut Live<Bin>,
    ) -> Result<(), ActorProcessingErr> {
        // Boxed: an idle actor's task then holds a pointer, not the
        // largest state of this future (see BENCHMARKS.md, memory).
        crate::actors::boxed(async move {
            if !matches!(message, BinMsg::Idle) {
                state.touched = std::time::Instant::now();
            }
            let Some(bin) = state.aggregate.as_ref() else {
                return Err("bin actor without a bin".into());
            };
            match message {
                BinMsg::Receive { sku, units, record, reply } => {
                    let decided = bin.receive(&sku, units);
                    let id = bin.id().clone();
                    self.change(state, decided, record, reply).await?;
                    self.deps.directory.note_stock(&id, &sku);
                }
                BinMsg::Adjust { sku, delta, record, reply } => {
                    let decided = bin.adjust(&sku, delta);
                    self.change(state, decided, record, reply).await?;
                }
                BinMsg::Reserve { id, sku, units, reply } => {
                    let bin = state.aggregate.as_mut().ok_or("bin actor without a bin")?;
                    let outcome = bin.reserve_in_place(id, &sku, units);
                    self.changed_in_place(state, outcome, reply).await?;
                }
                BinMsg::Resolve { id, op, reply } => {
                    let bin = state.aggregate.as_mut().ok_or("bin actor without a bin")?;
                    let outcome = match op {
                        BinOp::Release => Ok(bin.release_in_place(id)),
                        BinOp::Expire => Ok(bin.expire_in_place(id)),
                        BinOp::Pick { units } => bin.pick_in_place(id, units),
                        BinOp::Restock => Ok(bin.restock_in_place(id)),
                        BinOp::Ship => Ok(bin.ship_in_place(id)),
                    };
                    self.changed_in_place(state, outcome, reply).await?;
                }
                BinMsg::Available { sku, reply } => {
                    let _ = reply.send(bin.level(&sku).available());
                }
                BinMsg::Get(reply) => {
                    let _ = reply.send(Some(bin.clone()));
                }
                BinMsg::Idle => {
                    if state.idle_for(self.deps.config.idle_after) {
                        myself.stop(Some("passivated".to_owned()));
                    }
                }
            }
            Ok(())
        })
        .await
    }
}
