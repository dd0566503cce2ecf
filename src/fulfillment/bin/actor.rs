//! The bin actor: one per warehouse bin, the only writer of its stock.
//!
//! Each command is decided by [`Bin`]'s pure functions, persisted through
//! the aggregate runtime, swapped in and then answered. Receipts and
//! adjustments (asked by people) are answered after durable. Reservations
//! and their resolutions (asked by fulfillment orders) are decided as a
//! [`HoldChange`] and answered after queued ([`crate::actors::aggregate`]
//! says why that is safe), so a hot bin serves its orders at memory speed,
//! not one fsync each.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use super::snapshot::{self, KIND};
use super::state::{Bin, BinError, HoldChange};
use crate::actors::aggregate::Change;
use crate::actors::{idle_check_interval, ChildSpec, Children, Live, Transition};
use crate::events::{BinId, ReservationId, Sku};
use crate::fulfillment::fulfillment_order::state::BinOp;
use crate::fulfillment::Deps;
use crate::persistence::{KeyedRecord, StoreError, Urgency, WriteBatch};

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
        record: Option<KeyedRecord>,
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
        record: Option<KeyedRecord>,
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
    const KIND: &'static str = KIND;

    fn children(&self) -> &Children<Self> {
        &self.deps.live_bins
    }

    fn actor(&self) -> BinActor {
        BinActor { deps: self.deps.clone() }
    }

    fn load(&self, id: &BinId) -> Result<Option<Option<Bin>>, StoreError> {
        let loaded = self.deps.loaded_bins.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(id);
        if let Some(bin) = loaded {
            return Ok(Some(Some(bin)));
        }
        Ok(self
            .deps
            .store
            .record(KIND, &id.to_string())?
            .map(|record| snapshot::decode_record(&record))
            .transpose()?
            .map(Some))
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
    /// A fulfillment order's hold or pick, decided as a change: persisted
    /// (queued lazily: the order's own write follows and decides when they
    /// commit), swapped in, answered after queued. Should the write fail, the
    /// handler fails and the bin restarts from its last snapshot.
    async fn hold(
        &self,
        state: &mut Live<Bin>,
        decided: Result<Option<HoldChange>, BinError>,
        reply: RpcReplyPort<Result<(), BinError>>,
    ) -> Result<(), ActorProcessingErr> {
        match decided {
            Ok(Some(change)) => {
                change.level.check()?;
                let bin = state.get()?;
                let mut rows = WriteBatch::new();
                snapshot::change_rows(bin, &change, &mut rows)?;
                let write = Change::rows_only(KIND, bin.id().to_string(), rows);
                self.deps.journal.queue(write, Urgency::Lazy).await?.leave_to_asker();
                state.persisted_mut().ok_or("bin actor without a bin")?.apply(change);
                let _ = reply.send(Ok(()));
            }
            Ok(None) => {
                let _ = reply.send(Ok(()));
            }
            Err(err) => {
                let _ = reply.send(Err(err));
            }
        }
        Ok(())
    }

    /// A person's command (stock received or adjusted): decide, persist
    /// (if changed, or to keep `record`), swap, answer after durable.
    async fn change(
        &self,
        state: &mut Live<Bin>,
        decided: Result<Bin, BinError>,
        record: Option<KeyedRecord>,
        reply: RpcReplyPort<Result<Bin, BinError>>,
    ) -> Result<(), ActorProcessingErr> {
        let current = state.get()?;
        match decided {
            Ok(next) => {
                if &next != current || record.is_some() {
                    let journal = &self.deps.journal;
                    state.decide_with(journal, Transition::to(next.clone()), record).await?;
                    state.land(journal, Urgency::Now).await?;
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
        // largest state of this future.
        crate::actors::boxed(async move {
            if !matches!(message, BinMsg::Idle) {
                state.touched = std::time::Instant::now();
            }
            let bin = state.get()?;
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
                    let decided = bin.reserve_change(id, &sku, units);
                    self.hold(state, decided, reply).await?;
                }
                BinMsg::Resolve { id, op, reply } => {
                    let decided = match op {
                        BinOp::Release => Ok(bin.release_change(id)),
                        BinOp::Expire => Ok(bin.expire_change(id)),
                        BinOp::Pick { units } => bin.pick_change(id, units),
                        BinOp::Restock => Ok(bin.restock_change(id)),
                        BinOp::Ship => Ok(bin.ship_change(id)),
                    };
                    self.hold(state, decided, reply).await?;
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
