// What the catalog grid's socket follows: the shape of the page (see
// catalog.js and docs/protocol.md, "Shapes").

import { requestJSON } from "./api.js";

// Items of the other panels a shape lists: a subscribe frame stays well under
// the server's 4 KB frame limit (WS_MAX_FRAME_BYTES).
const FOLLOW_MAX = 300;
const PANEL_ITEMS = "[data-item-id], [data-because-item], [data-activity-item]";
export const Q_MAX = 200; // characters of a search the API and a shape accept

/** The shape a catalog shows: its filter, its pages' id range, the panels' ids. */
export function shapeOf({ filter, bounds, lo, hi, end, followed }) {
  const shape = { model: "item" };
  if (filter.category) shape.category = Number(filter.category);
  if (filter.q) shape.q = filter.q.slice(0, Q_MAX);
  const low = bounds[lo];
  if (low != null) shape.min_id = Number(low) + 1;
  if (!end) shape.max_id = Number(bounds[hi + 1]);
  if (followed.size) shape.also_ids = [...followed].sort((a, b) => a - b);
  return shape;
}

/** The ids of the items shown in `panels` outside `grid` (an open dialog's included). */
export function panelIds(panels, grid) {
  const ids = new Set();
  for (const el of panels.querySelectorAll(PANEL_ITEMS)) {
    if (grid.contains(el)) continue;
    const dialog = el.closest("dialog");
    if (dialog && !dialog.open) continue;
    const id = Number(el.dataset.itemId ?? el.dataset.becauseItem ?? el.dataset.activityItem);
    if (Number.isSafeInteger(id) && id > 0) ids.add(id);
    if (ids.size >= FOLLOW_MAX) break;
  }
  return ids;
}

/** Return {seq, items} of GET /api/items/?ids=… (the active ones of `ids`). */
export async function fetchIds(ids) {
  const params = new URLSearchParams({ ids: ids.join(","), limit: "500" });
  return requestJSON(`/api/items/?${params}`);
}
