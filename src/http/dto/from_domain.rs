//! Responses built from the domain's values (orders, fulfillment orders,
//! shipments, saga steps).

use super::*;
use crate::ecommerce::order::Order;
use crate::engine::{FulfillmentView, OrderView};
use crate::events::SagaStep;
use crate::fulfillment::shipment::Shipment;
use crate::fulfillment::FulfillmentOrder;

/// Saga steps as the API shows them.
pub fn steps(timeline: &[SagaStep]) -> Vec<StepResponse> {
    timeline
        .iter()
        .map(|s| StepResponse {
            at: s.at.as_millis(),
            context: s.context.as_str().to_owned(),
            step: s.name.clone(),
            detail: s.detail.clone(),
            compensation: s.compensation,
        })
        .collect()
}

/// The shipment's public fields.
pub fn shipment(shipment: &Shipment) -> ShipmentResponse {
    ShipmentResponse {
        id: shipment.id().to_string(),
        warehouse_id: shipment.warehouse().to_string(),
        carrier: shipment.carrier().to_owned(),
        tracking_number: shipment.tracking_number().map(str::to_owned),
        status: shipment.stage().as_str().to_owned(),
        events: shipment
            .events()
            .iter()
            .map(|e| TrackingEventResponse {
                at: e.at.as_millis(),
                status: e.stage.as_str().to_owned(),
                detail: e.detail.clone(),
            })
            .collect(),
    }
}

/// The fulfillment order's public fields.
pub fn fulfillment(order: &FulfillmentOrder, shipments: &[Shipment]) -> FulfillmentResponse {
    FulfillmentResponse {
        status: order.status().as_str().to_owned(),
        id: Some(order.id().to_string()),
        channel: Some(format!("{:?}", order.channel()).to_lowercase()),
        shipments: order
            .shipments()
            .iter()
            .map(|record| match shipments.iter().find(|s| s.id() == record.id) {
                Some(found) => shipment(found),
                None => ShipmentResponse {
                    id: record.id.to_string(),
                    warehouse_id: record.warehouse.to_string(),
                    carrier: String::new(),
                    tracking_number: record.tracking_number.clone(),
                    status: record.stage.as_str().to_owned(),
                    events: Vec::new(),
                },
            })
            .collect(),
        pick_tasks: order
            .tasks()
            .iter()
            .filter_map(|task| {
                let item = order.plan().get(usize::from(task.index))?;
                Some(PickTaskResponse {
                    id: crate::events::PickTaskId { fulfillment_order: order.id(), index: task.index }.to_string(),
                    fulfillment_order_id: order.id().to_string(),
                    warehouse_id: item.bin.warehouse.to_string(),
                    bin: item.bin.code.to_string(),
                    sku: item.sku.to_string(),
                    quantity: item.units,
                    status: match (task.picked, task.held) {
                        (Some(_), _) => "picked",
                        (None, false) => "waiting",
                        (None, true) => "open",
                    }
                    .to_owned(),
                    picked: task.picked,
                })
            })
            .collect(),
        short: order.short().iter().map(|s| LineRequest { sku: s.sku.to_string(), quantity: s.units }).collect(),
    }
}

/// The order's public fields with its fulfillment side and timeline.
pub fn order(order: &Order, side: FulfillmentResponse, timeline: &[SagaStep]) -> OrderResponse {
    use crate::ecommerce::order::{OrderStatus, PaymentStatus};
    let cancel_reason = match order.status() {
        OrderStatus::Cancelled { reason } | OrderStatus::Refunded { reason } => Some(reason.as_str().to_owned()),
        _ => None,
    };
    let payment = order.payment();
    OrderResponse {
        id: order.id().to_string(),
        customer_id: order.customer_id().to_string(),
        status: order.status().as_str().to_owned(),
        cancel_reason,
        lines: order
            .lines()
            .iter()
            .map(|l| LineResponse {
                sku: l.sku.to_string(),
                quantity: l.quantity.get(),
                unit_price: l.unit_price.into(),
            })
            .collect(),
        total: order.total().into(),
        payment: PaymentResponse {
            status: match payment.status {
                PaymentStatus::Authorized => "authorized",
                PaymentStatus::Declined => "declined",
                PaymentStatus::Captured => "captured",
                PaymentStatus::Voided => "voided",
                PaymentStatus::Refunded => "refunded",
                PaymentStatus::ManualReview => "manual_review",
            }
            .to_owned(),
            captured: payment.captured.into(),
            refunded: payment.refunded.into(),
        },
        placed_at: order.placed_at().as_millis(),
        fulfillment: side,
        timeline: steps(timeline),
    }
}

/// A fulfillment side with only a status word.
pub fn fulfillment_status(status: &str) -> FulfillmentResponse {
    FulfillmentResponse {
        status: status.to_owned(),
        id: None,
        channel: None,
        shipments: vec![],
        pick_tasks: vec![],
        short: vec![],
    }
}

/// The unified view as a response.
pub fn order_view(view: &OrderView) -> OrderResponse {
    let side = match &view.fulfillment {
        FulfillmentView::Known { order: fo, shipments } => fulfillment(fo, shipments),
        FulfillmentView::Pending => fulfillment_status("pending"),
        FulfillmentView::Unavailable => fulfillment_status("unavailable"),
    };
    order(&view.order, side, &view.timeline)
}
