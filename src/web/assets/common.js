// What the storefront and the console share: DOM helpers, formatting and a
// JSON client of the API that sends the page's key (each page says which
// localStorage entry holds it) and turns problem+json answers into errors.
"use strict";

const $ = (selector, root = document) => root.querySelector(selector);
const when = (ms) => new Date(ms).toLocaleTimeString();
const words = (code) => code.replaceAll("_", " ");
const money = (amount, currency) => `${Math.floor(amount / 100)}.${String(amount % 100).padStart(2, "0")} ${currency}`;

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "text") node.textContent = value; else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}

// The localStorage entry holding this page's API key.
let KEY = "orderdock.customer-key";
const apiKey = () => localStorage.getItem(KEY);

async function api(path, options = {}) {
  const headers = Object.assign({ "Content-Type": "application/json" }, options.headers || {});
  if (apiKey()) headers.Authorization = `Bearer ${apiKey()}`;
  const response = await fetch(path, Object.assign({}, options, { headers }));
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(body.detail || body.title || `HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return body;
}
