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
