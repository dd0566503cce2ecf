//! The operations console: orders by status and throughput, order search
//! with the saga timeline, stock per warehouse and bin, warehouse work
//! (confirm pick, short pick, pack), outbox lag, recent integration events,
//! and sagas that are stuck or retrying. Operators and admins sign in with
//! their API key; the page updates itself every second.

use axum::response::Html;
use axum::routing::get;
use axum::Router;
use maud::html;

use super::{page, Area};
use crate::http::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/console", get(console))
}

async fn console() -> Html<String> {
    page(
        Area::Console,
        "console",
        "Operations",
        html! {
            h1 { "Operations" }
            form #console-signin {
                label for="console-key" { "Operator or admin API key" }
                input #console-key type="password" autocomplete="current-password" required;
                button type="submit" { "Sign in" }
                p #console-error.error role="alert" {}
            }
            div #console-body hidden {
                p #console-updated role="status" {}
                div.grid {
                    section aria-labelledby="h-orders" {
                        h2 #h-orders { "Orders by status" }
                        table #status-table { caption.visually-hidden { "Orders by status" } thead { tr { th scope="col" { "Status" } th scope="col" { "Orders" } } } tbody {} }
                        p #open-sagas {}
                    }
                    section aria-labelledby="h-throughput" {
                        h2 #h-throughput { "Throughput, last 5 minutes" }
                        div #throughput-chart role="img" aria-label="Orders placed and delivered per 10 seconds" {}
                        p.legend { span.key-placed { "■ placed" } " " span.key-delivered { "■ delivered" } " " span.key-cancelled { "■ cancelled" } }
                    }
                    section aria-labelledby="h-outbox" {
                        h2 #h-outbox { "Outbox lag" }
                        p #outbox-lag {}
                    }
                }
                section aria-labelledby="h-search" {
                    h2 #h-search { "Find an order" }
                    form #order-search role="search" {
                        label for="order-id" { "Order id" }
                        input #order-id placeholder="ord_…" required;
                        button type="submit" { "Show" }
                    }
                    div #order-detail {}
                }
                section aria-labelledby="h-work" {
                    h2 #h-work { "Warehouse work" }
                    div #work {}
                }
                section aria-labelledby="h-stock" {
                    h2 #h-stock { "Stock" }
                    table #stock-table {
                        caption.visually-hidden { "Stock per warehouse and bin" }
                        thead { tr { th scope="col" { "Warehouse" } th scope="col" { "Bin" } th scope="col" { "SKU" } th scope="col" { "On hand" } th scope="col" { "Reserved" } th scope="col" { "Picked" } th scope="col" { "Available" } } }
                        tbody {}
                    }
                }
                div.grid {
                    section aria-labelledby="h-stuck" {
                        h2 #h-stuck { "Stuck or retrying" }
                        ul #stuck-list {}
                    }
                    section aria-labelledby="h-events" {
                        h2 #h-events { "Recent integration events" }
                        ol #event-list.log {}
                    }
                    section aria-labelledby="h-steps" {
                        h2 #h-steps { "Recent saga steps" }
                        ol #step-list.log {}
                    }
                }
            }
        },
    )
}
