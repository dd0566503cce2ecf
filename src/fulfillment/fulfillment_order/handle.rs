//! The typed client of fulfillment order actors.

use std::sync::Arc;

use super::actor::{FulfillmentOrderMsg, FulfillmentOrderSpec};
use super::state::{FulfillmentOrder, NewFulfillmentOrder};
use crate::actors::{call, CallError, CALL_TIMEOUT};
use crate::events::bus::{Delivery, DeliveryError};
use crate::events::{EventEnvelope, FulfillmentOrderId, PickTaskId, ShipmentId};
use crate::fulfillment::shipment::state::ShipmentStage;
use crate::fulfillment::{Deps, FulfillmentError};
use crate::persistence::KeyedRecord;

/// Talks to fulfillment order actors.
#[derive(Debug, Clone)]
pub struct FulfillmentOrderHandle {
    deps: Arc<Deps>,
}

impl FulfillmentOrderHandle {
    pub(crate) fn new(deps: Arc<Deps>) -> Self {
        Self { deps }
    }

    async fn ask<T: Send + 'static>(
        &self,
        id: FulfillmentOrderId,
        vacant_ok: bool,
        build: impl Fn(ractor::RpcReplyPort<T>) -> FulfillmentOrderMsg,
    ) -> Result<T, CallError> {
        let spec = FulfillmentOrderSpec { deps: self.deps.clone() };
        call(&spec, self.deps.fulfillment_orders()?, &id, vacant_ok, CALL_TIMEOUT, build).await
    }

    /// The running actor of fulfillment order `id`, if it is live: for
    /// fault-injection tests (killing it as a panic would). Not a way to
    /// talk to the order.
    #[doc(hidden)]
    pub fn running_actor(&self, id: FulfillmentOrderId) -> Option<ractor::ActorCell> {
        self.deps.live_orders.get(&id).map(|actor| actor.get_cell())
    }

    /// Delivers an integration event to the fulfillment order it concerns.
    ///
    /// # Errors
    /// [`DeliveryError`]: not ready (retry later), unavailable, rejected.
    pub async fn deliver(&self, envelope: EventEnvelope) -> Result<Delivery, DeliveryError> {
        let id = FulfillmentOrderId::for_order(envelope.order_id);
        match self.ask(id, true, |reply| FulfillmentOrderMsg::Deliver(envelope.clone(), reply)).await {
            Ok(result) => result,
            Err(err) => Err(DeliveryError::Unavailable(err.to_string())),
        }
    }

    /// Takes in an order from another channel.
    ///
    /// # Errors
    /// [`FulfillmentError`].
    pub async fn create(
        &self,
        new: NewFulfillmentOrder,
        record: Option<KeyedRecord>,
    ) -> Result<FulfillmentOrder, FulfillmentError> {
        let id = new.id;
        Ok(self.ask(id, true, |reply| FulfillmentOrderMsg::Create(new.clone(), record.clone(), reply)).await??)
    }

    /// The fulfillment order `id`, if it exists.
    ///
    /// # Errors
    /// [`FulfillmentError::Call`].
    pub async fn get(&self, id: FulfillmentOrderId) -> Result<Option<FulfillmentOrder>, FulfillmentError> {
        match self.ask(id, false, FulfillmentOrderMsg::Get).await {
            Err(CallError::NotFound) => Ok(None),
            other => Ok(other?),
        }
    }

    /// A picker confirms task `task` with `picked` units found (fewer than asked is a short pick).
    ///
    /// # Errors
    /// [`FulfillmentError`]: unknown task, over-pick, wrong status, call failure.
    pub async fn confirm_pick(&self, task: PickTaskId, picked: u32) -> Result<FulfillmentOrder, FulfillmentError> {
        Ok(self
            .ask(task.fulfillment_order, false, |reply| FulfillmentOrderMsg::ConfirmPick {
                index: task.index,
                picked,
                reply,
            })
            .await??)
    }

    /// A packer packs the order into one shipment per warehouse.
    ///
    /// # Errors
    /// [`FulfillmentError`]: picks still open, wrong status, call failure.
    pub async fn pack(&self, id: FulfillmentOrderId) -> Result<FulfillmentOrder, FulfillmentError> {
        Ok(self.ask(id, false, FulfillmentOrderMsg::Pack).await??)
    }

    /// A shipment reports a stage (its own actor calls this, from a task).
    ///
    /// # Errors
    /// [`FulfillmentError`]: e.g. dispatch refused because the order was cancelled.
    pub async fn shipment_update(
        &self,
        id: FulfillmentOrderId,
        shipment: ShipmentId,
        stage: ShipmentStage,
        tracking_number: Option<String>,
    ) -> Result<(), FulfillmentError> {
        Ok(self
            .ask(id, false, |reply| FulfillmentOrderMsg::ShipmentUpdate {
                shipment,
                stage,
                tracking_number: tracking_number.clone(),
                reply,
            })
            .await??)
    }
}
