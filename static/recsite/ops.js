// The operator view: live counters from /ws/ops/ with inline-SVG sparklines of
// the last few minutes. Metrics the page does not know yet are shown with
// their wire name, so a new server field appears without a front-end change.

import { ReconnectingSocket } from "./socket.js";
import { ConnectionIndicator } from "./connection.js";

const WINDOW_MS = 5 * 60 * 1000;
const W = 160;
const H = 36;

const METRICS = [
  ["connections", "Open sockets", "int"],
  ["processes", "Server processes", "int"],
  ["users", "Users online", "int"],
  ["events_per_sec", "Events / s", "rate"],
  ["push_p50_ms", "Event → push p50", "ms"],
  ["push_p99_ms", "Event → push p99", "ms"],
  ["recompute_ms", "Recompute time", "ms"],
  ["broadcast_failures", "Channel-layer failures", "int"],
  ["seq", "Change-log seq", "int"],
  ["ctr", "Click-through rate", "pct"],
  ["online_precision", "Online precision@k", "pct"],
  ["impressions", "Impressions", "int"],
];
// Fields that are not charted: the server's clock and the per-endpoint breakdown.
const NOT_CHARTED = new Set(["type", "at", "sockets"]);
const KNOWN = new Map(METRICS.map(([key, label, unit]) => [key, { label, unit }]));

function format(value, unit) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  switch (unit) {
    case "int":
      return Math.round(value).toLocaleString();
    case "ms":
      return `${value < 10 ? value.toFixed(2) : value.toFixed(1)} ms`;
    case "pct":
      return `${(value * 100).toFixed(1)} %`;
    case "rate":
      return value.toFixed(value < 10 ? 2 : 1);
    default:
      return Number.isInteger(value) ? value.toLocaleString() : value.toFixed(2);
  }
}

class Metric {
  constructor(key, label, unit, container) {
    this.key = key;
    this.unit = unit;
    this.samples = []; // [t, value]
    this.el = document.createElement("article");
    this.el.className = "metric";
    this.el.dataset.metric = key;
    const titleId = `metric-${key}`;
    this.el.setAttribute("aria-labelledby", titleId);
    this.el.innerHTML = `
      <h2 class="metric-label"></h2>
      <p class="metric-value" data-field="value">–</p>
      <svg class="spark" viewBox="0 0 ${W} ${H}" preserveAspectRatio="none" role="img">
        <title></title>
        <path class="spark-area" d=""></path>
        <polyline class="spark-line" points=""></polyline>
      </svg>
      <p class="metric-range" data-field="range"></p>`;
    this.el.querySelector("h2").id = titleId;
    this.el.querySelector("h2").textContent = label;
    this.value = this.el.querySelector("[data-field='value']");
    this.range = this.el.querySelector("[data-field='range']");
    this.title = this.el.querySelector("title");
    this.line = this.el.querySelector("polyline");
    this.area = this.el.querySelector("path");
    container.append(this.el);
  }

  push(t, value) {
    const previous = this.value.textContent;
    this.samples.push([t, value]);
    while (this.samples.length && this.samples[0][0] < t - WINDOW_MS) this.samples.shift();
    const text = format(value, this.unit);
    this.value.textContent = text;
    this.el.dataset.value = String(value);
    if (previous !== text) {
      this.value.classList.remove("tick");
      void this.value.offsetWidth;
      this.value.classList.add("tick");
    }
  }

  draw(now) {
    const pts = this.samples.filter(([, v]) => Number.isFinite(v));
    if (!pts.length) return;
    const values = pts.map(([, v]) => v);
    let lo = Math.min(...values);
    let hi = Math.max(...values);
    if (lo > 0 && this.unit !== "int") lo = 0;
    if (hi === lo) hi = lo + 1;
    // Until five minutes of samples exist the chart spans what there is.
    const start = Math.max(now - WINDOW_MS, pts[0][0]);
    const span = Math.max(now - start, 1000);
    const x = (t) => Math.max(0, ((t - start) / span) * W);
    const y = (v) => H - 2 - ((v - lo) / (hi - lo)) * (H - 4);
    const coords = pts.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`);
    this.line.setAttribute("points", coords.join(" "));
    const first = x(pts[0][0]).toFixed(1);
    const last = x(pts[pts.length - 1][0]).toFixed(1);
    this.area.setAttribute("d", `M${first},${H} L${coords.join(" L")} L${last},${H} Z`);
    const minV = Math.min(...values);
    const maxV = Math.max(...values);
    this.range.textContent = `5 min: ${format(minV, this.unit)} – ${format(maxV, this.unit)}`;
    this.title.textContent = `${this.key} over the last 5 minutes, from ${format(minV, this.unit)} to ${format(maxV, this.unit)}`;
  }
}

const root = document.getElementById("ops");
const grid = root.querySelector("[data-field='metrics']");
const updated = root.querySelector("[data-field='updated']");
const denied = root.querySelector("[data-field='denied']");
const metrics = new Map();
for (const [key, label, unit] of METRICS) metrics.set(key, new Metric(key, label, unit, grid));

function onStats(message) {
  const t = Date.now();
  for (const [key, value] of Object.entries(message)) {
    if (NOT_CHARTED.has(key) || typeof value !== "number") continue;
    let metric = metrics.get(key);
    if (!metric) {
      const known = KNOWN.get(key);
      metric = new Metric(key, known ? known.label : key.replaceAll("_", " "), known ? known.unit : "", grid);
      metrics.set(key, metric);
    }
    metric.push(t, value);
  }
  for (const metric of metrics.values()) metric.draw(t);
  const connections = metrics.get("connections");
  if (message.sockets && typeof message.sockets === "object" && connections) {
    const parts = Object.entries(message.sockets).map(([name, n]) => `${name} ${n}`);
    connections.range.textContent = parts.join(" · ");
  }
  root.dataset.updates = String(Number(root.dataset.updates || 0) + 1);
  updated.textContent = `Updated ${new Date(t).toLocaleTimeString()}`;
}

const indicator = new ConnectionIndicator(document.querySelector("[data-testid='connection']"));
const socket = new ReconnectingSocket("/ws/ops/", { watchdogMs: 20000 });
socket.addEventListener("message", (event) => {
  if (event.detail.type === "stats") onStats(event.detail);
});
socket.addEventListener("statechange", () => {
  denied.hidden = socket.state !== "fatal";
});
indicator.watch(socket);
socket.start();
window.recsiteOps = { socket, metrics };

// --- experiments ---------------------------------------------------------------
// Every running experiment's per-variant figures from GET /ops/experiments/
// (the report of `online_report --experiment`), refreshed every 10 s. Each
// experiment is an <article data-experiment="NAME"> with one
// <tr data-variant="NAME"> per variant (cells carry data-field) and one
// <li data-variant data-metric> per difference to the baseline.

const EXPERIMENTS_PERIOD_MS = 10000;
const VARIANT_COLUMNS = [
  ["share", "Share", "share"],
  ["users", "Users", "int"],
  ["impressions", "Impressions", "int"],
  ["clicks", "Clicks", "int"],
  ["ctr", "CTR", "pct"],
  ["precision_at_k", "Precision@k", "pct"],
  ["carts", "Carts", "int"],
  ["cart_rate", "Cart rate", "pct"],
  ["purchases", "Purchases", "int"],
  ["purchase_rate", "Purchase rate", "pct"],
];
const DIFFERENCE_LABELS = {
  ctr: "CTR",
  precision_at_k: "Precision@k",
  cart_rate: "Cart rate",
  purchase_rate: "Purchase rate",
};

function signedPct(value) {
  const pct = value * 100;
  return `${pct >= 0 ? "+" : "−"}${Math.abs(pct).toFixed(2)} pt`;
}

function cell(tag, text, attrs = {}) {
  const el = document.createElement(tag);
  el.textContent = text;
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, value);
  return el;
}

function experimentArticle(report, confidence) {
  const article = document.createElement("article");
  article.className = "experiment";
  article.dataset.experiment = report.experiment;
  const heading = cell("h3", report.experiment);
  const period = cell(
    "p",
    `Since ${new Date(report.since).toLocaleString()} · baseline ${report.baseline} · k = ${report.k}`,
    { class: "muted small" },
  );
  const table = document.createElement("table");
  table.className = "experiment-table";
  const head = table.createTHead().insertRow();
  head.append(cell("th", "Variant", { scope: "col" }));
  for (const [, label] of VARIANT_COLUMNS) head.append(cell("th", label, { scope: "col" }));
  const body = table.createTBody();
  for (const variant of report.variants) {
    const row = body.insertRow();
    row.dataset.variant = variant.name;
    row.append(cell("th", variant.name, { scope: "row" }));
    for (const [key, , unit] of VARIANT_COLUMNS) {
      const value = variant[key];
      const text = unit === "share" ? `${Math.round(value * 100)} %` : format(value, unit === "pct" ? "pct" : "int");
      row.append(cell("td", text, { "data-field": key, "data-value": String(value) }));
    }
  }
  const scroller = document.createElement("div");
  scroller.className = "table-scroll";
  scroller.append(table);
  article.append(heading, period, scroller);
  for (const variant of report.variants.slice(1)) {
    const title = cell("h4", `${variant.name} − ${report.baseline} (${Math.round(confidence * 100)} % interval)`);
    const list = document.createElement("ul");
    list.className = "differences";
    for (const [metric, diff] of Object.entries(variant.vs_baseline)) {
      const li = document.createElement("li");
      li.dataset.variant = variant.name;
      li.dataset.metric = metric;
      li.dataset.difference = String(diff.difference);
      const known = diff.low !== null && diff.high !== null;
      if (known) {
        li.dataset.low = String(diff.low);
        li.dataset.high = String(diff.high);
        li.dataset.verdict = diff.low > 0 ? "better" : diff.high < 0 ? "worse" : "unclear";
      } else {
        li.dataset.verdict = "too-few";
      }
      const interval = known ? `[${signedPct(diff.low)}, ${signedPct(diff.high)}]` : "(too few users for an interval)";
      li.append(
        cell("span", DIFFERENCE_LABELS[metric] || metric, { class: "difference-label" }),
        cell("span", signedPct(diff.difference), { class: "difference-value" }),
        cell("span", interval, { class: "difference-interval muted" }),
      );
      list.append(li);
    }
    article.append(title, list);
  }
  return article;
}

const experiments = document.querySelector("[data-testid='experiments']");
const experimentList = experiments.querySelector("[data-field='list']");
const experimentsEmpty = experiments.querySelector("[data-field='empty']");
const experimentsError = experiments.querySelector("[data-field='error']");
const experimentsUpdated = experiments.querySelector("[data-field='updated']");

async function refreshExperiments() {
  let data;
  try {
    const response = await fetch("/ops/experiments/", {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
      cache: "no-store",
    });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    data = await response.json();
  } catch (error) {
    experimentsError.textContent = `Experiment figures unavailable (${error.message}); retrying.`;
    experimentsError.hidden = false;
    return;
  }
  experimentsError.hidden = true;
  const reports = Array.isArray(data.experiments) ? data.experiments : [];
  experimentList.replaceChildren(...reports.map((report) => experimentArticle(report, data.confidence)));
  experimentsEmpty.hidden = reports.length > 0;
  experiments.dataset.updates = String(Number(experiments.dataset.updates || 0) + 1);
  experimentsUpdated.textContent = `Updated ${new Date().toLocaleTimeString()}`;
}

refreshExperiments();
setInterval(() => {
  if (!document.hidden) refreshExperiments();
}, EXPERIMENTS_PERIOD_MS);
