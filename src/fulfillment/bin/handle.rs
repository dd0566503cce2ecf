//! The typed client of bin actors.

use std::sync::Arc;

use super::actor::{BinMsg, BinSpec};
use super::state::{Bin, BinError};
use crate::actors::{call, CallError, CALL_TIMEOUT};
use crate::events::{BinId, ReservationId, Sku};
use crate::fulfillment::fulfillment_order::state::BinOp;
use crate::fulfillment::{Deps, FulfillmentError};
use crate::persistence::KeyedRecord;

/// Talks to bin actors.
#[derive(Debug, Clone)]
pub struct BinHandle {
    deps: Arc<Deps>,
}

impl BinHandle {
    pub(crate) fn new(deps: Arc<Deps>) -> Self {
        Self { deps }
    }

    async fn ask<T: Send + 'static>(
        &self,
        bin: &BinId,
        vacant_ok: bool,
        build: impl Fn(ractor::RpcReplyPort<T>) -> BinMsg,
    ) -> Result<T, CallError> {
        let spec = BinSpec { deps: self.deps.clone() };
        call(&spec, self.deps.bins()?, bin, vacant_ok, CALL_TIMEOUT, build).await
    }

    /// The live actor of `bin`, if any: for tests that kill it as a panic
    /// would.
    #[doc(hidden)]
    pub fn running_actor(&self, bin: &BinId) -> Option<ractor::ActorCell> {
        self.deps.live_bins.get(bin).map(|actor| actor.get_cell())
    }

    /// Puts `units` of `sku` into `bin` (which must belong to a known warehouse).
    ///
    /// # Errors
    /// [`FulfillmentError::UnknownBin`], a [`BinError`], or a call failure.
    pub async fn receive(&self, bin: &BinId, sku: &Sku, units: u32) -> Result<Bin, FulfillmentError> {
        self.receive_recorded(bin, sku, units, None).await
    }

    /// As [`BinHandle::receive`], committing `record` in the same transaction.
    ///
    /// # Errors
    /// As [`BinHandle::receive`].
    pub async fn receive_recorded(
        &self,
        bin: &BinId,
        sku: &Sku,
        units: u32,
        record: Option<KeyedRecord>,
    ) -> Result<Bin, FulfillmentError> {
        if !self.deps.directory.has_bin(bin) {
            return Err(FulfillmentError::UnknownBin(bin.clone()));
        }
        Ok(self
            .ask(bin, true, |reply| BinMsg::Receive { sku: sku.clone(), units, record: record.clone(), reply })
            .await??)
    }

    /// Counts `delta` units of `sku` in or out of `bin`.
    ///
    /// # Errors
    /// [`FulfillmentError::UnknownBin`], a [`BinError`], or a call failure.
    pub async fn adjust(&self, bin: &BinId, sku: &Sku, delta: i32) -> Result<Bin, FulfillmentError> {
        self.adjust_recorded(bin, sku, delta, None).await
    }

    /// As [`BinHandle::adjust`], committing `record` in the same transaction.
    ///
    /// # Errors
    /// As [`BinHandle::adjust`].
    pub async fn adjust_recorded(
        &self,
        bin: &BinId,
        sku: &Sku,
        delta: i32,
        record: Option<KeyedRecord>,
    ) -> Result<Bin, FulfillmentError> {
        if !self.deps.directory.has_bin(bin) {
            return Err(FulfillmentError::UnknownBin(bin.clone()));
        }
        Ok(self
            .ask(bin, true, |reply| BinMsg::Adjust { sku: sku.clone(), delta, record: record.clone(), reply })
            .await??)
    }

    /// Holds `units` of `sku` in `bin` under `id`.
    ///
    /// # Errors
    /// A call failure; the inner result carries the bin's refusal.
    pub async fn reserve(
        &self,
        bin: &BinId,
        id: ReservationId,
        sku: &Sku,
        units: u32,
    ) -> Result<Result<(), BinError>, CallError> {
        self.ask(bin, false, |reply| BinMsg::Reserve { id, sku: sku.clone(), units, reply }).await
    }

    /// Resolves reservation `id` in `bin`.
    ///
    /// # Errors
    /// A call failure; the inner result carries the bin's refusal.
    pub async fn resolve(&self, bin: &BinId, id: ReservationId, op: BinOp) -> Result<Result<(), BinError>, CallError> {
        match self.ask(bin, false, |reply| BinMsg::Resolve { id, op: op.clone(), reply }).await {
            // A bin that never existed holds no reservation: nothing to resolve.
            Err(CallError::NotFound) => Ok(Ok(())),
            other => other,
        }
    }

    /// Units of `sku` free to reserve in `bin`; `None` if the bin does not exist.
    ///
    /// # Errors
    /// A call failure.
    pub async fn available(&self, bin: &BinId, sku: &Sku) -> Result<Option<u32>, CallError> {
        match self.ask(bin, false, |reply| BinMsg::Available { sku: sku.clone(), reply }).await {
            Err(CallError::NotFound) => Ok(None),
            other => other.map(Some),
        }
    }

    /// The bin as it is, if it exists.
    ///
    /// # Errors
    /// A call failure.
    pub async fn get(&self, bin: &BinId) -> Result<Option<Bin>, CallError> {
        match self.ask(bin, false, BinMsg::Get).await {
            Err(CallError::NotFound) => Ok(None),
            other => other,
        }
    }
}
