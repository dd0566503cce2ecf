// The storefront's behaviour: cart (localStorage), sign-in (the customer's
// API key, kept in localStorage), checkout (POST /v1/orders with an
// Idempotency-Key), and the live tracking page (GET /v1/orders/{id}/stream).
"use strict";

const CART = "orderdock.cart";

const cart = () => { try { return JSON.parse(localStorage.getItem(CART)) || []; } catch { return []; } };
function saveCart(items) { localStorage.setItem(CART, JSON.stringify(items)); showCartCount(); }
function showCartCount() {
  const count = cart().reduce((n, line) => n + line.quantity, 0);
  const badge = $("#cart-count");
  if (badge) badge.textContent = String(count);
  const link = $("#signin-link");
  if (link) link.textContent = apiKey() ? "Account" : "Sign in";
}

function addToCart(button, quantity) {
  const items = cart();
  const sku = button.dataset.sku;
  const line = items.find((l) => l.sku === sku);
  if (line) line.quantity += quantity;
  else items.push({ sku, name: button.dataset.name, amount: Number(button.dataset.amount), currency: button.dataset.currency, quantity });
  saveCart(items);
}

function productsPage() {
  for (const button of document.querySelectorAll("button.add")) {
    button.addEventListener("click", () => {
      addToCart(button, 1);
      button.textContent = "Added ✓";
      setTimeout(() => { button.textContent = "Add to cart"; }, 1200);
    });
  }
}

function productPage() {
  const form = $("#add-form");
  const button = $("button.add", form);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const quantity = Math.max(1, Math.min(1000, Number($("#quantity").value) || 1));
    addToCart(button, quantity);
    $("#added").textContent = `${quantity} added to your cart.`;
  });
  const sku = $("article.product-page").dataset.sku;
  const refresh = async () => {
    try { $("#availability").textContent = String((await api(`/v1/products/${encodeURIComponent(sku)}/availability`)).available); } catch { /* keep the last figure */ }
  };
  setInterval(refresh, 2000);
}

function cartPage() {
  const render = () => {
    const items = cart();
    const body = $("#cart-table tbody");
    body.replaceChildren();
    let total = 0; let currency = "EUR";
    for (const line of items) {
      total += line.amount * line.quantity; currency = line.currency;
      const remove = el("button", { type: "button", class: "secondary", text: "Remove" });
      remove.append(el("span", { class: "visually-hidden", text: ` ${line.name}` }));
      remove.addEventListener("click", () => { saveCart(cart().filter((l) => l.sku !== line.sku)); render(); });
      body.append(el("tr", {}, el("td", { text: line.name }), el("td", { class: "num", text: String(line.quantity) }),
        el("td", { class: "num", text: money(line.amount * line.quantity, line.currency) }), el("td", {}, remove)));
    }
    $("#cart-total").textContent = money(total, currency);
    $("#cart-empty").hidden = items.length > 0;
    $("#checkout-form").hidden = items.length === 0;
  };
  render();
  $("#checkout-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = $("#checkout-error");
    error.textContent = "";
    if (!apiKey()) { location.href = "/signin?next=/cart"; return; }
    const form = new FormData(event.target);
    const order = {
      lines: cart().map((l) => ({ sku: l.sku, quantity: l.quantity })),
      ship_to: { name: form.get("name"), line1: form.get("line1"), city: form.get("city"), postal_code: form.get("postal_code"), country: form.get("country") },
      payment: { token: form.get("token") },
    };
    // One key per checkout attempt: a retry after a lost answer cannot order twice.
    const key = sessionStorage.getItem("orderdock.checkout-key") || crypto.randomUUID();
    sessionStorage.setItem("orderdock.checkout-key", key);
    const button = $("#place-order");
    button.disabled = true;
    try {
      const placed = await api("/v1/orders", { method: "POST", headers: { "Idempotency-Key": key }, body: JSON.stringify(order) });
      sessionStorage.removeItem("orderdock.checkout-key");
      saveCart([]);
      location.href = `/orders/${placed.id}?placed=1`;
    } catch (err) {
      if (err.status && err.status < 500) sessionStorage.removeItem("orderdock.checkout-key");
      error.textContent = `The order was not placed: ${err.message}`;
    } finally {
      button.disabled = false;
    }
  });
}

function signinPage() {
  const signedIn = () => { $("#signed-in").hidden = !apiKey(); showCartCount(); };
  const next = new URLSearchParams(location.search).get("next");
  const use = async (key) => {
    $("#signin-error").textContent = "";
    localStorage.setItem(KEY, key);
    try {
      await api("/v1/orders?limit=1");
      signedIn();
      if (next && next.startsWith("/")) location.href = next;
    } catch (err) {
      localStorage.removeItem(KEY);
      $("#signin-error").textContent = err.status === 401 ? "That key is not known." : `Sign-in failed: ${err.message}`;
      signedIn();
    }
  };
  $("#signin-form").addEventListener("submit", (event) => { event.preventDefault(); use($("#api-key").value.trim()); });
  const demo = $("#demo-signin");
  if (demo) demo.addEventListener("click", () => use(demo.dataset.key));
  $("#signout").addEventListener("click", () => { localStorage.removeItem(KEY); signedIn(); });
  signedIn();
}

async function ordersPage() {
  if (!apiKey()) { $("#orders-signin").hidden = false; return; }
  const list = $("#order-list");
  let cursor = null;
  do {
    const page = await api(`/v1/orders?limit=100${cursor ? `&cursor=${cursor}` : ""}`);
    for (const order of page.items.reverse()) {
      list.append(el("li", {}, el("a", { href: `/orders/${order.id}`, text: order.id }), ` — ${order.status}, ${money(order.total.amount, order.total.currency)}`));
    }
    cursor = page.next_cursor;
  } while (cursor);
  if (!list.children.length) list.append(el("li", { text: "No orders yet." }));
}

function renderOrder(order) {
  const status = $("#order-status");
  status.textContent = words(order.status) + (order.cancel_reason ? ` (${words(order.cancel_reason)})` : "");
  status.dataset.status = order.status;
  status.className = `badge ${order.status}`;
  const payment = order.payment;
  $("#order-payment").textContent = `${payment.status}; captured ${money(payment.captured.amount, payment.captured.currency)}, refunded ${money(payment.refunded.amount, payment.refunded.currency)}`;
  $("#order-total").textContent = money(order.total.amount, order.total.currency);
  const fulfillment = $("#order-fulfillment");
  fulfillment.textContent = words(order.fulfillment.status);
  fulfillment.dataset.status = order.fulfillment.status;
  $("#order-lines").replaceChildren(...order.lines.map((l) => el("li", { text: `${l.quantity} × ${l.sku} at ${money(l.unit_price.amount, l.unit_price.currency)}` })));
  const shipments = order.fulfillment.shipments;
  $("#order-shipments").replaceChildren(...(shipments.length ? shipments.map((s) => el("div", { class: "shipment", "data-status": s.status },
    el("p", {}, el("strong", { text: `Shipment ${s.id}` }), ` from ${s.warehouse_id} by ${s.carrier}: `, el("span", { class: "badge", text: words(s.status) }),
      s.tracking_number ? ` — tracking ${s.tracking_number}` : ""),
    el("ol", {}, ...s.events.map((e) => el("li", { text: `${when(e.at)} ${words(e.status)}: ${e.detail}` }))))) : [el("p", { text: "None yet." })]));
  $("#order-timeline").replaceChildren(...order.timeline.map((step) => el("li", { class: step.compensation ? "compensation" : "", "data-step": step.step },
    `${when(step.at)} `, el("strong", { text: words(step.step) }), ` (${step.context}) ${step.detail}`)));
  const cancellable = ["placed", "stock_confirmed", "paid", "in_fulfillment"].includes(order.status);
  $("#cancel-order").hidden = !cancellable;
}

// Reads an event stream with fetch (EventSource cannot send the API key).
async function follow(path, onEvent) {
  for (;;) {
    try {
      const response = await fetch(path, { headers: { Authorization: `Bearer ${apiKey()}` } });
      if (!response.ok) { const error = new Error(`HTTP ${response.status}`); error.status = response.status; throw error; }
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const chunk = buffer.slice(0, end); buffer = buffer.slice(end + 2);
          let name = "message"; const data = [];
          for (const line of chunk.split("\n")) {
            if (line.startsWith("event:")) name = line.slice(6).trim();
            else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
          }
          if (data.length) onEvent(name, data.join("\n"));
        }
      }
    } catch (err) {
      if (err.status === 401 || err.status === 403 || err.status === 404) throw err;
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

async function orderPage() {
  const id = $("#order").dataset.order;
  if (new URLSearchParams(location.search).has("placed")) $("#confirmation").hidden = false;
  if (!apiKey()) { $("#order-error").textContent = "Sign in to see this order."; return; }
  $("#cancel-order").addEventListener("click", async () => {
    try {
      const answer = await api(`/v1/orders/${id}/cancel`, { method: "POST", headers: { "Idempotency-Key": crypto.randomUUID() }, body: "{}" });
      renderOrder(answer.order);
    } catch (err) { $("#order-error").textContent = `Not cancelled: ${err.message}`; }
  });
  try {
    await follow(`/v1/orders/${id}/stream`, (name, data) => { if (name === "order") renderOrder(JSON.parse(data)); });
  } catch (err) {
    $("#order-error").textContent = err.status === 404 ? "No such order on this account." : `Cannot follow the order: ${err.message}`;
  }
}

showCartCount();
const pages = { products: productsPage, product: productPage, cart: cartPage, signin: signinPage, orders: ordersPage, order: orderPage };
const start = pages[document.body.dataset.page];
if (start) start();
