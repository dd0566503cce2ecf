//! The web pages: the customer storefront at `/` and the operations console
//! at `/console`, server-rendered with maud, with a little plain JavaScript
//! for the cart, checkout and the live parts.
//!
//! The pages sit beside the JSON API in `crate::http` and talk to it like any
//! other client: the browser keeps the API key (customer, or operator/admin
//! on the console) and sends it as a bearer token; order tracking follows
//! `GET /v1/orders/{id}/stream`, the console polls `/v1/console/summary`,
//! `/v1/stock` and the warehouses' queues. Every asset is compiled into the
//! binary: nothing loads from another host.

mod console;
mod shop;

pub use shop::SEARCH_QUERY_LEN_MAX;

use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use maud::{html, Markup, DOCTYPE};

use crate::http::state::AppState;

const SITE_CSS: &str = include_str!("assets/site.css");
const COMMON_JS: &str = include_str!("assets/common.js");
const SHOP_JS: &str = include_str!("assets/shop.js");
const CONSOLE_JS: &str = include_str!("assets/console.js");

/// The storefront's pages (where e-commerce runs).
pub fn shop_router() -> Router<AppState> {
    shop::router()
}

/// The operations console's page (the `all` role).
pub fn console_router() -> Router<AppState> {
    console::router()
}

/// The stylesheet and scripts.
pub fn assets_router() -> Router<AppState> {
    Router::new()
        .route("/assets/site.css", get(|| asset("text/css; charset=utf-8", SITE_CSS)))
        .route("/assets/common.js", get(|| asset("text/javascript; charset=utf-8", COMMON_JS)))
        .route("/assets/shop.js", get(|| asset("text/javascript; charset=utf-8", SHOP_JS)))
        .route("/assets/console.js", get(|| asset("text/javascript; charset=utf-8", CONSOLE_JS)))
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

/// Which part of the site a page belongs to (its navigation and script).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Area {
    Shop,
    Console,
}

/// The frame of every page: head, header with navigation, main, script.
fn page(area: Area, page: &str, title: &str, main: Markup) -> Html<String> {
    let (script, brand, home) = match area {
        Area::Shop => ("/assets/shop.js", "Orderdock shop", "/"),
        Area::Console => ("/assets/console.js", "Orderdock console", "/console"),
    };
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (brand) }
                link rel="stylesheet" href="/assets/site.css";
            }
            body data-page=(page) {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href=(home) { (brand) }
                    nav aria-label="Main" {
                        @match area {
                            Area::Shop => {
                                a href="/" { "Products" }
                                a href="/cart" { "Cart " span #cart-count aria-label="items in cart" { "0" } }
                                a href="/orders" { "My orders" }
                                a #signin-link href="/signin" { "Sign in" }
                            }
                            Area::Console => {
                                a href="/console" { "Overview" }
                                a href="/" { "Storefront" }
                                button #console-signout type="button" hidden { "Sign out" }
                            }
                        }
                    }
                }
                main #main { (main) }
                script src="/assets/common.js" {}
                script src=(script) {}
            }
        }
    };
    Html(markup.into_string())
}

/// A sum of minor units as `12.00 EUR`.
fn money(amount: i64, currency: &str) -> String {
    format!("{}.{:02} {currency}", amount / 100, amount % 100)
}
