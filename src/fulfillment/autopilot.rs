//! The autopilot: simulated warehouse operators (`fulfillment.autopilot`).
//!
//! When a payment is captured, they pick every held task in full and pack at
//! once, through the same decisions a person's `confirm_pick` and `pack`
//! make, in the same transition as the capture's receipt: e-commerce hears
//! only `packed`, not `released` and `picking` at the same instant (each
//! would cost a delivery and a commit on its side and tell the customer
//! nothing). The simulated carrier is [`super::carriers`].

use crate::actors::Transition;
use crate::events::{EventEnvelope, IntegrationEvent, Timestamp};
use crate::fulfillment::fulfillment_order::{
    FulfillmentOrder, FulfillmentOrderError, FulfillmentStatus, ShortPickPolicy,
};

/// Applies an event with the warehouse on autopilot: a captured payment
/// releases the order, and the operators pick and pack it
/// ([`pick_all_and_pack`]); anything else applies as
/// [`FulfillmentOrder::apply`] does.
pub fn apply(
    order: &FulfillmentOrder,
    envelope: &EventEnvelope,
    policy: ShortPickPolicy,
    now: Timestamp,
) -> Transition<FulfillmentOrder> {
    let releases = matches!(
        (&envelope.event, order.status()),
        (IntegrationEvent::PaymentCaptured { .. }, FulfillmentStatus::Reserved)
    );
    if !releases {
        return order.apply(envelope, now);
    }
    let quiet = order.apply_announcing(envelope, now, false);
    match pick_all_and_pack(&quiet.next, policy, now) {
        Ok(packed) => {
            let mut steps = quiet.steps;
            steps.extend(packed.steps);
            Transition { next: packed.next, events: packed.events, steps }
        }
        // Nothing to pack yet: release as usual, announced.
        Err(_) => order.apply(envelope, now),
    }
}

/// The operators' whole job at once: every held open task picked in full,
/// then packed.
///
/// # Errors
/// As [`FulfillmentOrder::confirm_pick`] and [`FulfillmentOrder::pack`] (tasks still open).
pub fn pick_all_and_pack(
    order: &FulfillmentOrder,
    policy: ShortPickPolicy,
    now: Timestamp,
) -> Result<Transition<FulfillmentOrder>, FulfillmentOrderError> {
    let mut next = order.clone();
    let mut steps = Vec::new();
    for task in order.tasks().iter().filter(|t| t.picked.is_none() && t.held) {
        let units = order.plan().get(usize::from(task.index)).map_or(0, |p| p.units);
        let picked = next.pick(task.index, units, policy, now, false)?;
        next = picked.next;
        steps.extend(picked.steps);
    }
    let packed = next.pack(now)?;
    steps.extend(packed.steps);
    Ok(Transition { next: packed.next, events: packed.events, steps })
}
