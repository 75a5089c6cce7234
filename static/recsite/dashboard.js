// Entry point of the shopper dashboard: wires the catalog, the detail dialog,
// the recommendations panel, the placement panels (similar items in the
// dialog, what goes well with the cart, trending), the activity strip and the
// connection indicator.

import { ReconnectingSocket } from "./socket.js";
import { ConnectionIndicator } from "./connection.js";
import { Catalog } from "./catalog.js";
import { DetailDialog } from "./detail.js";
import { Recommendations } from "./recommendations.js";
import { PlacementPanel } from "./placements.js";
import { ActivityStrip } from "./activity.js";
import { ACTIONS, DEFAULT_PLACEMENT } from "./vocabulary.js";

const app = document.getElementById("dashboard");
const loginUrl = app.dataset.loginUrl || "/accounts/login/?next=/";

const indicator = new ConnectionIndicator(document.querySelector("[data-testid='connection']"));
const catalog = new Catalog(app.querySelector("[data-region='catalog']"));
const recs = new Recommendations(app.querySelector("[data-testid='recommendations']"));
const activity = new ActivityStrip(app.querySelector("[data-region='activity']"));
recs.titleOf = (id) => catalog.get(id)?.title;

/** A placement panel for the section `el` (its data-placement names the list). */
function placementPanel(el, options = {}) {
  return new PlacementPanel(el, { placement: el.dataset.placement, titleOf: recs.titleOf, ...options });
}
const dialogEl = document.getElementById("detail");
// Inside the dialog, whose own [data-field='title'] is the open item's.
const similar = placementPanel(dialogEl.querySelector("[data-testid='similar']"), { titleField: "item-title" });
// Shown once something in the list goes with what the shopper carted (an
// empty cart gets only fillers: nothing to show under "goes well with").
const complements = placementPanel(app.querySelector("[data-testid='complements']"), {
  shows: (items) => items.some((r) => Array.isArray(r.because) && r.because.length > 0),
});
const trending = placementPanel(app.querySelector("[data-testid='trending']"));
const placements = [similar, complements, trending];
const detail = new DetailDialog(dialogEl, { similar });

function titleOf(id) {
  const item = catalog.get(id);
  if (item) return item.title;
  for (const list of [recs, ...placements]) {
    const rec = list.shown.find((r) => r.id === id);
    if (rec) return rec.title;
  }
  return `#${id}`;
}

// Actions that put an item in the basket: a cart and anything stronger.
const CART_WEIGHT = ACTIONS.find((a) => a.name === "cart")?.weight ?? Infinity;
const BASKET_ACTIONS = new Set(ACTIONS.filter((a) => a.weight >= CART_WEIGHT).map((a) => a.name));

/**
 * Watch "goes well with your cart" once the shopper has a basket (a cart or
 * purchase in their activity): a watched list is recorded as shown, so one
 * nobody can see would skew the online figures.
 */
function followCart() {
  if (complements.watching) return;
  const actions = [...activity.list.querySelectorAll("li[data-action]")].map((li) => li.dataset.action);
  if (actions.some((action) => BASKET_ACTIONS.has(action))) complements.watch();
}

/** Send a browsing event and log it in the activity strip. */
function track(action, id) {
  const clientId = recs.send(action, id);
  if (clientId) activity.add(clientId, action, id, titleOf(id));
  followCart();
}

function openItem(id, { action, rec } = {}) {
  const item = catalog.get(id) || (rec ? { id, title: rec.title } : null);
  if (!item) return;
  detail.open(item);
  // The catalog holds the pages seen, not every item: ask for one it lacks.
  if (!catalog.get(id)) {
    catalog
      .fetch(id)
      .then((found) => {
        if (!detail.isOpen || detail.itemId !== id) return;
        if (found) detail.fill(found);
        else detail.markRemoved();
      })
      .catch(() => {});
  }
  if (action) track(action, id);
}

catalog.addEventListener("open", (e) => openItem(e.detail.id, { action: "view" }));
recs.addEventListener("open", (e) => openItem(e.detail.id, { action: "click", rec: e.detail.rec }));
for (const panel of placements) {
  panel.addEventListener("open", (e) => openItem(e.detail.id, { action: "click", rec: e.detail.rec }));
}
activity.addEventListener("open", (e) => openItem(e.detail.id, { action: "view" }));
detail.addEventListener("action", (e) => track(e.detail.action, e.detail.id));

recs.addEventListener("ack", (e) => {
  indicator.setRoundTrip(e.detail.rttMs);
  activity.acked(e.detail.id, e.detail.rttMs);
});
recs.addEventListener("eventerror", (e) => {
  if (e.detail.id != null) activity.failed(e.detail.id, e.detail.message);
});
recs.addEventListener("availability", (e) => {
  if (e.detail.available) {
    detail.setCanAct(true);
    return;
  }
  const link = document.createElement("a");
  link.href = loginUrl;
  link.textContent = "Log in";
  const hint = document.createDocumentFragment();
  hint.append(link, " to like items, fill a cart and get recommendations.");
  detail.setCanAct(false, hint);
});

catalog.addEventListener("itemchange", (e) => {
  recs.retitle(e.detail.id, e.detail.item.title);
  for (const panel of placements) panel.retitle(e.detail.id, e.detail.item.title);
  activity.retitle(e.detail.id, e.detail.item.title);
  if (detail.isOpen && detail.itemId === e.detail.id) detail.fill(e.detail.item);
});
catalog.addEventListener("itemremove", (e) => {
  recs.retract(e.detail.id);
  for (const panel of placements) panel.retract(e.detail.id);
  if (detail.isOpen && detail.itemId === e.detail.id) detail.markRemoved();
});

async function start() {
  // The stored activity survives reloads; load it alongside the catalog.
  activity.refresh().then(followCart);
  // Snapshot first, then the socket, which resumes after the snapshot's seq.
  await catalog.loadSnapshot();
  const syncSocket = new ReconnectingSocket("/ws/sync/", { watchdogMs: 45000 });
  catalog.attach(syncSocket);
  indicator.watch(syncSocket);
  syncSocket.start();

  const recsSocket = new ReconnectingSocket("/ws/recommendations/");
  recs.attach(recsSocket);
  for (const panel of placements) panel.attach(recsSocket);
  // The home page's list follows the shopper all along, the cart's once there
  // is a cart; the dialog watches its item's list while it is open.
  trending.watch();
  followCart();
  // Every tab of the shopper gets each new list, whichever tab sent the event
  // behind it: read the stored activity again then (once per burst).
  let activityTimer = 0;
  const refreshActivity = () => {
    clearTimeout(activityTimer);
    activityTimer = setTimeout(() => activity.refresh().then(followCart), 150);
  };
  recsSocket.addEventListener("message", (e) => {
    // Only the personal list follows the shopper's events; the placement
    // lists are pushed for other reasons too (rules, trending's clock).
    const m = e.detail;
    if (m && m.type === "recommendations" && (m.placement || DEFAULT_PLACEMENT) === DEFAULT_PLACEMENT) refreshActivity();
  });
  indicator.watch(recsSocket);
  recsSocket.start();

  // For debugging from the console and for end-to-end tests.
  window.recsite = { catalog, recs, similar, complements, trending, activity, indicator, syncSocket, recsSocket };
}

start();
