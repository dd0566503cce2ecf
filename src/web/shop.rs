//! The storefront: products with search, a product page with live
//! availability, the cart and checkout, sign-in, the customer's orders and
//! the live tracking page of one order.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use maud::html;
use serde::Deserialize;

use super::{money, page, Area};
use crate::http::state::AppState;

/// Longest search query the storefront takes, in characters.
pub const SEARCH_QUERY_LEN_MAX: usize = 200;

/// Payment tokens the simulated gateway knows, as offered at checkout.
const TEST_TOKENS: [(&str, &str); 4] = [
    ("tok_visa", "Test card: approved"),
    ("tok_decline", "Test card: declined at authorization"),
    ("tok_decline_capture", "Test card: declined at capture"),
    ("tok_flaky", "Test card: gateway fails twice, then approves"),
];

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(products))
        .route("/products/{sku}", get(product))
        .route("/cart", get(cart))
        .route("/signin", get(signin))
        .route("/orders", get(orders))
        .route("/orders/{id}", get(order))
}

#[derive(Debug, Deserialize)]
struct SearchQuery {
    #[serde(default)]
    q: String,
}

async fn products(State(state): State<AppState>, query: Result<Query<SearchQuery>, QueryRejection>) -> Response {
    let q = query.map(|Query(query)| query.q).unwrap_or_default();
    let q: String = q.chars().take(SEARCH_QUERY_LEN_MAX).collect();
    let found = state.node.ecommerce().map(|e| e.catalog().search(&q)).unwrap_or_default();
    page(
        Area::Shop,
        "products",
        "Products",
        html! {
            h1 { "Products" }
            form.search role="search" action="/" method="get" {
                label for="q" { "Search products" }
                input #q type="search" name="q" value=(q) placeholder="mug, tea, …";
                button type="submit" { "Search" }
            }
            @if found.is_empty() {
                p #no-results { "No product matches." }
            }
            ul.products #product-list {
                @for product in &found {
                    li.product data-sku=(product.sku) {
                        h2 { a href={ "/products/" (product.sku) } { (product.name) } }
                        p.description { (product.description) }
                        p.price { (money(product.price.amount(), &product.price.currency().to_string())) }
                        button.add type="button" data-sku=(product.sku) data-name=(product.name)
                            data-amount=(product.price.amount()) data-currency=(product.price.currency().to_string()) {
                            "Add to cart" span.visually-hidden { ": " (product.name) }
                        }
                    }
                }
            }
        },
    )
    .into_response()
}

async fn product(State(state): State<AppState>, Path(sku): Path<String>) -> Response {
    let found = crate::events::Sku::parse(&sku).ok().and_then(|sku| state.node.ecommerce()?.catalog().get(&sku));
    let Some(product) = found else {
        return (StatusCode::NOT_FOUND, not_found("No such product.")).into_response();
    };
    // Unknown while fulfillment does not answer: the page's script keeps asking.
    let available = state.node.available(&product.sku).await.map(|n| n.to_string()).unwrap_or_else(|_| "…".into());
    page(
        Area::Shop,
        "product",
        &product.name,
        html! {
            article.product-page data-sku=(product.sku) {
                h1 { (product.name) }
                p.description { (product.description) }
                p.price { (money(product.price.amount(), &product.price.currency().to_string())) }
                p { "In stock: " output #availability aria-live="polite" { (available) } }
                form #add-form {
                    label for="quantity" { "Quantity" }
                    input #quantity type="number" name="quantity" min="1" max="1000" value="1" required;
                    button.add type="submit" data-sku=(product.sku) data-name=(product.name)
                        data-amount=(product.price.amount()) data-currency=(product.price.currency().to_string()) {
                        "Add to cart"
                    }
                }
                p #added role="status" {}
            }
        },
    )
    .into_response()
}

async fn cart() -> Html<String> {
    page(
        Area::Shop,
        "cart",
        "Cart",
        html! {
            h1 { "Cart" }
            table #cart-table {
                caption.visually-hidden { "Items in your cart" }
                thead { tr { th scope="col" { "Product" } th scope="col" { "Quantity" } th scope="col" { "Price" } th scope="col" { span.visually-hidden { "Remove" } } } }
                tbody {}
                tfoot { tr { th scope="row" colspan="2" { "Total" } td #cart-total {} td {} } }
            }
            p #cart-empty hidden { "Your cart is empty. " a href="/" { "Browse products" } }
            form #checkout-form {
                h2 { "Checkout" }
                fieldset {
                    legend { "Ship to" }
                    label for="ship-name" { "Full name" }
                    input #ship-name name="name" autocomplete="name" required;
                    label for="ship-line1" { "Street address" }
                    input #ship-line1 name="line1" autocomplete="address-line1" required;
                    label for="ship-city" { "City" }
                    input #ship-city name="city" autocomplete="address-level2" required;
                    label for="ship-postal" { "Postal code" }
                    input #ship-postal name="postal_code" autocomplete="postal-code" required;
                    label for="ship-country" { "Country (two letters)" }
                    input #ship-country name="country" autocomplete="country" pattern="[A-Z]{2}" maxlength="2" value="GB" required;
                }
                fieldset {
                    legend { "Payment (simulated gateway)" }
                    label for="payment-token" { "Card" }
                    select #payment-token name="token" {
                        @for (token, label) in TEST_TOKENS {
                            option value=(token) { (label) }
                        }
                    }
                }
                button #place-order type="submit" { "Place order" }
                p #checkout-error.error role="alert" {}
            }
        },
    )
}

async fn signin(State(state): State<AppState>) -> Html<String> {
    let demo = state.config.demo_customer_key.clone();
    page(
        Area::Shop,
        "signin",
        "Sign in",
        html! {
            h1 { "Sign in" }
            form #signin-form {
                label for="api-key" { "Your API key" }
                input #api-key name="key" type="password" autocomplete="current-password" required;
                button type="submit" { "Sign in" }
                p #signin-error.error role="alert" {}
            }
            @if let Some(key) = demo {
                p { "This is a demo shop. " button #demo-signin type="button" data-key=(key) { "Sign in as the demo customer" } }
            }
            p #signed-in role="status" hidden { "Signed in. " button #signout type="button" { "Sign out" } }
        },
    )
}

async fn orders() -> Html<String> {
    page(
        Area::Shop,
        "orders",
        "My orders",
        html! {
            h1 { "My orders" }
            p #orders-signin hidden { a href="/signin" { "Sign in" } " to see your orders." }
            ul #order-list {}
        },
    )
}

async fn order(Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<crate::events::OrderId>() else {
        return (StatusCode::NOT_FOUND, not_found("No such order.")).into_response();
    };
    page(
        Area::Shop,
        "order",
        "Your order",
        html! {
            article #order data-order=(id) {
                h1 { "Order " code { (id) } }
                p #confirmation role="status" hidden { "Thank you: your order is placed." }
                p #order-error.error role="alert" {}
                dl.facts {
                    dt { "Status" } dd { strong #order-status aria-live="polite" { "loading…" } }
                    dt { "Payment" } dd #order-payment {}
                    dt { "Total" } dd #order-total {}
                    dt { "Fulfillment" } dd #order-fulfillment {}
                }
                h2 { "Items" }
                ul #order-lines {}
                h2 { "Shipments" }
                div #order-shipments { p { "None yet." } }
                h2 { "Timeline" }
                ol #order-timeline.timeline {}
                button #cancel-order type="button" hidden { "Cancel order" }
            }
        },
    )
    .into_response()
}

fn not_found(message: &str) -> Html<String> {
    page(
        Area::Shop,
        "not-found",
        "Not found",
        html! { h1 { "Not found" } p { (message) " " a href="/" { "Back to the products" } } },
    )
}
