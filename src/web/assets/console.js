// The operations console: signs in with an operator or admin key (kept in
// localStorage), then refreshes every second from /v1/console/summary,
// /v1/stock and each warehouse's pick tasks and pack queue.
"use strict";

KEY = "orderdock.console-key";
const REFRESH_MS = 1000;

function chart(buckets, width) {
  const series = [["placed", "#1f5fbf"], ["delivered", "#1d7a46"], ["cancelled", "#b3261e"]];
  const top = Math.max(1, ...buckets.flatMap((b) => series.map(([name]) => b[name])));
  const w = 600; const h = 140; const step = w / buckets.length; const bar = step / (series.length + 1);
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${h + 16}`);
  svg.setAttribute("preserveAspectRatio", "none");
  buckets.forEach((bucket, i) => {
    series.forEach(([name, color], j) => {
      const value = bucket[name];
      if (!value) return;
      const rect = document.createElementNS(ns, "rect");
      const height = (value / top) * h;
      rect.setAttribute("x", String(i * step + j * bar));
      rect.setAttribute("y", String(h - height));
      rect.setAttribute("width", String(bar));
      rect.setAttribute("height", String(height));
      rect.setAttribute("fill", color);
      const title = document.createElementNS(ns, "title");
      title.textContent = `${when(bucket.start)}: ${value} ${name} in ${width} s`;
      rect.append(title);
      svg.append(rect);
    });
  });
  const label = document.createElementNS(ns, "text");
  label.setAttribute("x", "0"); label.setAttribute("y", String(h + 14)); label.setAttribute("font-size", "12");
  label.textContent = `peak ${top} per ${width} s`;
  svg.append(label);
  return svg;
}

function renderSummary(summary) {
  const statuses = Object.entries(summary.orders_by_status);
  $("#status-table tbody").replaceChildren(...(statuses.length ? statuses.map(([status, count]) =>
    el("tr", { "data-status": status }, el("td", { text: words(status) }), el("td", { class: "num", text: String(count) }))) : [el("tr", {}, el("td", { colspan: "2", text: "No orders yet." }))]));
  const open = summary.open_sagas;
  $("#open-sagas").textContent = `Open sagas: ${open.orders} orders, ${open.fulfillment_orders} fulfillment orders, ${open.shipments} shipments.` +
    (summary.counts_partial ? ` Counts cover the first ${summary.orders_counted} orders.` : "");
  $("#throughput-chart").replaceChildren(chart(summary.throughput, summary.bucket_secs));
  $("#outbox-lag").textContent = `E-commerce → fulfillment: ${summary.outbox.ecommerce} events; fulfillment → e-commerce: ${summary.outbox.fulfillment} events.`;
  $("#stuck-list").replaceChildren(...(summary.stuck.length ? summary.stuck.map((s) => el("li", {},
    el("a", { href: "#", "data-order": s.order_id, text: s.order_id }),
    ` ${words(s.status)} since ${when(s.updated_at)}` + (s.owed_payments.length ? `; retrying ${s.owed_payments.join(", ")}` : ""))) : [el("li", { text: "None." })]));
  $("#event-list").replaceChildren(...summary.recent_events.map((e) => el("li", {},
    `${when(e.occurred_at)} `, el("strong", { text: words(e.kind) }), ` from ${e.source} for `, el("a", { href: "#", "data-order": e.order_id, text: e.order_id }),
    e.duplicate ? " (redelivery, ignored)" : "")));
  $("#step-list").replaceChildren(...summary.recent_steps.map((s) => el("li", { class: s.compensation ? "compensation" : "" },
    `${when(s.at)} `, el("strong", { text: words(s.step) }), ` (${s.context}) `, el("a", { href: "#", "data-order": s.order_id, text: s.order_id }))));
}

function renderStock(stock) {
  const rows = [];
  for (const warehouse of stock.warehouses) {
    for (const bin of warehouse.bins) {
      for (const level of bin.skus) {
        rows.push(el("tr", { "data-warehouse": warehouse.id, "data-bin": bin.bin, "data-sku": level.sku },
          el("td", { text: warehouse.name }), el("td", { text: bin.bin }), el("td", { text: level.sku }),
          el("td", { class: "num on-hand", text: String(level.on_hand) }), el("td", { class: "num reserved", text: String(level.reserved) }),
          el("td", { class: "num picked", text: String(level.picked) }), el("td", { class: "num available", text: String(level.available) })));
      }
    }
  }
  $("#stock-table tbody").replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: "7", text: "No stock received yet." }))]));
}

// Rebuilding the work list on every refresh would steal focus from a picker
// typing a quantity: it is rebuilt only when the tasks change.
let lastWork = "";
function renderWork(queues) {
  const signature = JSON.stringify(queues);
  if (signature === lastWork) return;
  lastWork = signature;
  const parts = [];
  for (const { warehouse, tasks, ready } of queues) {
    parts.push(el("h3", { text: `${warehouse.name} (${warehouse.id})` }));
    if (!tasks.length && !ready.length) parts.push(el("p", { text: "Nothing to pick or pack." }));
    for (const task of tasks) {
      const input = el("input", { type: "number", min: "0", max: String(task.quantity), value: String(task.quantity), id: `qty-${task.id}` });
      const confirm = el("button", { type: "button", "data-task": task.id, class: "confirm-pick", text: "Confirm pick" });
      confirm.addEventListener("click", () => act(confirm, `/v1/pick-tasks/${task.id}/confirm`, { picked: Number(input.value) }));
      const short = el("button", { type: "button", class: "secondary short-pick", "data-task": task.id, text: "Short pick" });
      short.addEventListener("click", () => {
        if (Number(input.value) >= task.quantity) input.value = String(Math.max(0, task.quantity - 1));
        act(short, `/v1/pick-tasks/${task.id}/confirm`, { picked: Number(input.value) });
      });
      parts.push(el("div", { class: "task", "data-task": task.id, "data-order": task.fulfillment_order_id },
        el("span", { text: `Pick ${task.quantity} × ${task.sku} from bin ${task.bin} for ${task.fulfillment_order_id}` }),
        el("label", { for: `qty-${task.id}`, text: "Units found" }), input, confirm, short));
    }
    for (const order of ready) {
      const pack = el("button", { type: "button", class: "pack", "data-fulfillment-order": order.fulfillment_order_id, text: "Pack" });
      pack.addEventListener("click", () => act(pack, `/v1/fulfillment-orders/${order.fulfillment_order_id}/pack`, {}));
      parts.push(el("div", { class: "task", "data-pack": order.fulfillment_order_id },
        el("span", { text: `Pack ${order.units} units of ${order.fulfillment_order_id} (order ${order.order_id})` }), pack));
    }
  }
  $("#work").replaceChildren(...parts);
}

async function act(button, path, body) {
  button.disabled = true;
  try {
    await api(path, { method: "POST", body: JSON.stringify(body) });
    lastWork = "";
    await refresh();
  } catch (err) {
    $("#console-error").textContent = `${button.textContent} failed: ${err.message}`;
    button.disabled = false;
  }
}

async function showOrder(id) {
  const detail = $("#order-detail");
  try {
    const order = await api(`/v1/orders/${encodeURIComponent(id)}`);
    detail.replaceChildren(
      el("p", {}, el("strong", { text: order.id }), " ", el("span", { class: `badge ${order.status}`, id: "detail-status", text: words(order.status) }),
        `; payment ${order.payment.status}; fulfillment ${words(order.fulfillment.status)}`),
      el("ol", { class: "timeline" }, ...order.timeline.map((s) => el("li", { class: s.compensation ? "compensation" : "", "data-step": s.step },
        `${when(s.at)} `, el("strong", { text: words(s.step) }), ` (${s.context}) ${s.detail}`))));
  } catch (err) {
    detail.replaceChildren(el("p", { class: "error", text: err.status === 404 ? `No order ${id}.` : err.message }));
  }
}

let shown = null;
async function refresh() {
  try {
    const [summary, stock] = await Promise.all([api("/v1/console/summary"), api("/v1/stock")]);
    renderSummary(summary);
    renderStock(stock);
    const queues = await Promise.all(stock.warehouses.map(async (warehouse) => ({
      warehouse,
      tasks: (await api(`/v1/warehouses/${warehouse.id}/pick-tasks`)).items,
      ready: (await api(`/v1/warehouses/${warehouse.id}/ready-to-pack`)).items,
    })));
    renderWork(queues);
    if (shown) await showOrder(shown);
    $("#console-updated").textContent = `Updated ${when(Date.now())}.`;
    $("#console-error").textContent = "";
  } catch (err) {
    if (err.status === 401 || err.status === 403) { signOut(); $("#console-error").textContent = "That key may not use the console."; return; }
    $("#console-updated").textContent = `Update failed (${err.message}); retrying.`;
  }
}

let timer = null;
function signedIn() {
  $("#console-signin").hidden = true;
  $("#console-body").hidden = false;
  $("#console-signout").hidden = false;
  refresh();
  timer = setInterval(refresh, REFRESH_MS);
}
function signOut() {
  localStorage.removeItem(KEY);
  clearInterval(timer);
  $("#console-signin").hidden = false;
  $("#console-body").hidden = true;
  $("#console-signout").hidden = true;
}

$("#console-signin").addEventListener("submit", (event) => {
  event.preventDefault();
  localStorage.setItem(KEY, $("#console-key").value.trim());
  signedIn();
});
$("#console-signout").addEventListener("click", signOut);
$("#order-search").addEventListener("submit", (event) => { event.preventDefault(); shown = $("#order-id").value.trim(); showOrder(shown); });
document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-order]");
  if (!link) return;
  event.preventDefault();
  shown = link.dataset.order;
  $("#order-id").value = shown;
  showOrder(shown);
});
if (apiKey()) signedIn();
