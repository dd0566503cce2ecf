// Browser tests of the storefront and the operations console, in headless
// Chromium driven by playwright-core. Started by tests/it/browser.rs against
// a real `orderdock serve` on a loopback port:
//
//   node run.mjs shop    <base-url> <data-dir> <screenshot-dir>   (serve --autopilot --demo)
//   node run.mjs console <base-url> <data-dir> <screenshot-dir>   (serve, manual warehouse)
//
// Exits 0 when every step held; otherwise prints the failed step and exits 1.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [scenario, base, dataDir, shots] = process.argv.slice(2);
const STEP_TIMEOUT_MS = 30_000;
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--no-first-run"];

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function api(path, key, options = {}) {
  const headers = Object.assign({ "Content-Type": "application/json", Authorization: `Bearer ${key}` }, options.headers || {});
  const response = await fetch(base + path, Object.assign({}, options, { headers }));
  const body = await response.json().catch(() => ({}));
  check(response.ok, `${options.method || "GET"} ${path}: HTTP ${response.status} ${JSON.stringify(body)}`);
  return body;
}

const statusOf = (page, selector) => page.locator(selector).getAttribute("data-status");

async function waitForStatus(page, selector, wanted, what) {
  await page.waitForFunction(([sel, list]) => list.includes(document.querySelector(sel)?.dataset.status), [selector, wanted],
    { timeout: STEP_TIMEOUT_MS }).catch(async () => {
    throw new Error(`${what}: wanted ${wanted.join(" or ")}, saw ${await statusOf(page, selector)}`);
  });
}

async function checkout(page) {
  await page.goto(`${base}/cart`);
  await page.getByLabel("Full name").fill("Ada Lovelace");
  await page.getByLabel("Street address").fill("12 St James's Square");
  await page.getByLabel("City").fill("London");
  await page.getByLabel("Postal code").fill("SW1Y 4JH");
  await page.getByLabel("Country (two letters)").fill("GB");
  await page.getByLabel("Card").selectOption("tok_visa");
}

// A customer searches, adds to cart, checks out and watches the order reach `delivered` (autopilot).
async function shop(browser) {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  await page.goto(base + "/");
  await page.getByLabel("Search products").fill("tea");
  await page.getByRole("button", { name: "Search" }).click();
  await page.waitForURL(/\?q=tea/);
  const names = await page.locator("#product-list h2").allTextContents();
  check(names.includes("Sencha green tea"), `search for tea found ${names}`);
  check(!names.includes("Enamel mug"), `search for tea also found the mug: ${names}`);
  await page.screenshot({ path: join(shots, "storefront.png"), fullPage: true });

  await page.getByRole("link", { name: "Sencha green tea" }).click();
  await page.waitForURL(/\/products\/TEA-SENCHA$/);
  const available = Number(await page.locator("#availability").textContent());
  check(available > 0, `availability shown: ${available}`);
  await page.getByLabel("Quantity").fill("2");
  await page.getByRole("button", { name: "Add to cart" }).click();
  await page.locator("#added").filter({ hasText: "2 added" }).waitFor();
  check((await page.locator("#cart-count").textContent()) === "2", "the cart counts 2 items");
  await page.screenshot({ path: join(shots, "product.png"), fullPage: true });

  await page.goto(`${base}/signin`);
  await page.getByRole("button", { name: "Sign in as the demo customer" }).click();
  await page.locator("#signed-in").waitFor({ state: "visible" });
  await page.screenshot({ path: join(shots, "signin.png"), fullPage: true });

  await checkout(page);
  check((await page.locator("#cart-total").textContent()) === "18.00 EUR", "cart total is 2 × 9.00 EUR");
  await page.screenshot({ path: join(shots, "cart.png"), fullPage: true });
  await page.getByRole("button", { name: "Place order" }).click();
  await page.waitForURL(/\/orders\/ord_[^/?]+\?placed=1$/, { timeout: STEP_TIMEOUT_MS });
  await page.locator("#confirmation").waitFor({ state: "visible" });
  await waitForStatus(page, "#order-status", ["delivered"], "the tracking page reaches delivered");
  const steps = await page.locator("#order-timeline li").evaluateAll((items) => items.map((li) => li.dataset.step));
  for (const step of ["order_placed", "stock_reserved", "payment_captured", "packed", "shipment_delivered"]) {
    check(steps.includes(step), `timeline has ${step}: ${steps}`);
  }
  check(await page.locator("#order-shipments .shipment[data-status=delivered]").count() >= 1, "a delivered shipment is shown");
  await page.screenshot({ path: join(shots, "tracking.png"), fullPage: true });
  const orderId = await page.locator("#order").getAttribute("data-order");

  await page.goto(`${base}/orders`);
  await page.locator(`#order-list a[href="/orders/${orderId}"]`).waitFor();
  await page.screenshot({ path: join(shots, "orders.png"), fullPage: true });

  const after = await browser.newPage();
  await after.goto(`${base}/products/TEA-SENCHA`);
  const later = Number(await after.locator("#availability").textContent());
  check(later <= available - 2, `availability fell by the 2 units ordered: ${available} → ${later}`);
  console.log(`shop: searched, ordered 2 units, tracked to delivered through ${steps.length} steps`);
}

// An operator confirms a pick and a pack in manual mode while the customer's
// page updates; then a receipt shows in the console's stock table.
async function operations(browser) {
  const admin = readFileSync(join(dataDir, "admin.key"), "utf8").trim();
  await api("/v1/products", admin, { method: "POST", body: JSON.stringify({ sku: "LAMP-DESK", name: "Desk lamp", description: "A brass desk lamp.", price: { amount: 4500, currency: "EUR" } }) });
  await api("/v1/warehouses", admin, { method: "POST", body: JSON.stringify({ id: "wh-main", name: "Main", priority: 1, bins: ["L-01"] }) });
  await api("/v1/inventory/receipts", admin, { method: "POST", headers: { "Idempotency-Key": "browser-receipt-1" },
    body: JSON.stringify({ warehouse_id: "wh-main", bin: "L-01", sku: "LAMP-DESK", quantity: 5 }) });
  const customer = await api("/v1/customers", admin, { method: "POST", body: JSON.stringify({ name: "Grace", email: "grace@example.com" }) });

  const shopper = await browser.newPage({ viewport: { width: 1000, height: 900 } });
  await shopper.goto(`${base}/signin`);
  await shopper.getByLabel("Your API key").fill(customer.api_key);
  await shopper.getByRole("button", { name: "Sign in", exact: true }).click();
  await shopper.locator("#signed-in").waitFor({ state: "visible" });
  await shopper.goto(`${base}/products/LAMP-DESK`);
  await shopper.getByRole("button", { name: "Add to cart" }).click();
  await checkout(shopper);
  await shopper.getByRole("button", { name: "Place order" }).click();
  await shopper.waitForURL(/\/orders\/ord_/, { timeout: STEP_TIMEOUT_MS });
  const orderId = await shopper.locator("#order").getAttribute("data-order");
  await waitForStatus(shopper, "#order-fulfillment", ["released"], "the order is released to the warehouse");

  const operator = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  await operator.goto(`${base}/console`);
  await operator.getByLabel("Operator or admin API key").fill(admin);
  await operator.getByRole("button", { name: "Sign in" }).click();
  const fulfillmentId = `ful_${orderId.slice("ord_".length)}`;
  const task = operator.locator(`.task[data-order="${fulfillmentId}"]`);
  await task.waitFor({ timeout: STEP_TIMEOUT_MS });
  await task.getByRole("button", { name: "Confirm pick" }).click();
  await waitForStatus(shopper, "#order-fulfillment", ["picking"], "the customer's page shows the pick");
  const pack = operator.locator(`.task[data-pack="${fulfillmentId}"]`);
  await pack.waitFor({ timeout: STEP_TIMEOUT_MS });
  await pack.getByRole("button", { name: "Pack" }).click();
  await waitForStatus(shopper, "#order-fulfillment", ["packed", "shipped"], "the customer's page shows the pack");
  await shopper.locator("#order-shipments .shipment").first().waitFor({ timeout: STEP_TIMEOUT_MS });
  await shopper.screenshot({ path: join(shots, "tracking-manual.png"), fullPage: true });

  await operator.getByLabel("Order id").fill(orderId);
  await operator.getByRole("button", { name: "Show" }).click();
  await operator.locator("#order-detail li[data-step=packed]").first().waitFor({ timeout: STEP_TIMEOUT_MS });

  const onHand = operator.locator('#stock-table tr[data-sku="LAMP-DESK"] .on-hand');
  await operator.waitForFunction(() => document.querySelector('#stock-table tr[data-sku="LAMP-DESK"] .on-hand')?.textContent === "5");
  await api("/v1/inventory/receipts", admin, { method: "POST", headers: { "Idempotency-Key": "browser-receipt-2" },
    body: JSON.stringify({ warehouse_id: "wh-main", bin: "L-01", sku: "LAMP-DESK", quantity: 7 }) });
  await operator.waitForFunction(() => document.querySelector('#stock-table tr[data-sku="LAMP-DESK"] .on-hand')?.textContent === "12",
    null, { timeout: STEP_TIMEOUT_MS }).catch(async () => { throw new Error(`console stock after the receipt: ${await onHand.textContent()}`); });
  const placed = await operator.locator('#status-table tr[data-status]').count();
  check(placed >= 1, "the console counts orders by status");
  await operator.screenshot({ path: join(shots, "console.png"), fullPage: true });
  console.log(`console: picked and packed ${orderId}; the customer's page followed; a receipt of 7 showed in the stock table`);
}

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: CHROMIUM_ARGS });
try {
  if (scenario === "shop") await shop(browser);
  else if (scenario === "console") await operations(browser);
  else throw new Error(`unknown scenario ${scenario}`);
} catch (err) {
  console.error(`FAILED (${scenario}): ${err.message}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
