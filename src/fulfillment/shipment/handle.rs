//! The typed client of shipment actors.

use std::sync::Arc;

use super::actor::{ShipmentMsg, ShipmentSpec};
use super::state::{NewShipment, Shipment, ShipmentStage};
use crate::actors::{call, CallError, CALL_TIMEOUT};
use crate::events::ShipmentId;
use crate::fulfillment::{Deps, FulfillmentError};

/// Talks to shipment actors.
#[derive(Debug, Clone)]
pub struct ShipmentHandle {
    deps: Arc<Deps>,
}

impl ShipmentHandle {
    pub(crate) fn new(deps: Arc<Deps>) -> Self {
        Self { deps }
    }

    async fn ask<T: Send + 'static>(
        &self,
        id: ShipmentId,
        vacant_ok: bool,
        build: impl Fn(ractor::RpcReplyPort<T>) -> ShipmentMsg,
    ) -> Result<T, CallError> {
        let spec = ShipmentSpec { deps: self.deps.clone() };
        call(&spec, self.deps.shipments()?, &id, vacant_ok, CALL_TIMEOUT, build).await
    }

    /// Creates a shipment (a repeat returns the existing one).
    ///
    /// # Errors
    /// [`FulfillmentError::Call`].
    pub async fn create(&self, new: NewShipment) -> Result<Shipment, FulfillmentError> {
        let id = new.id;
        Ok(self.ask(id, true, |reply| ShipmentMsg::Create(new.clone(), reply)).await?)
    }

    /// Records a carrier tracking event (it takes effect once the fulfillment order agrees).
    ///
    /// # Errors
    /// [`FulfillmentError::Shipment`] for a stage that cannot follow; [`FulfillmentError::Call`].
    pub async fn track(
        &self,
        id: ShipmentId,
        stage: ShipmentStage,
        detail: &str,
    ) -> Result<Shipment, FulfillmentError> {
        Ok(self.ask(id, false, |reply| ShipmentMsg::Track { stage, detail: detail.to_owned(), reply }).await??)
    }

    /// Cancels a shipment that has not left.
    ///
    /// # Errors
    /// [`FulfillmentError::Shipment`] once it has left; [`FulfillmentError::Call`].
    pub async fn cancel(&self, id: ShipmentId) -> Result<Shipment, FulfillmentError> {
        Ok(self.ask(id, false, ShipmentMsg::Cancel).await??)
    }

    /// The shipment `id`, if it exists.
    ///
    /// # Errors
    /// [`FulfillmentError::Call`].
    pub async fn get(&self, id: ShipmentId) -> Result<Option<Shipment>, FulfillmentError> {
        match self.ask(id, false, ShipmentMsg::Get).await {
            Err(CallError::NotFound) => Ok(None),
            other => Ok(other?),
        }
    }
}
