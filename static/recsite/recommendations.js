// The "for you" panel and the browsing-event queue of /ws/recommendations/.
//
// Events are sent with a unique client id and kept until the server acks
// them; after a reconnect every un-acked event is sent again with the same id
// (the server stores each id once). A recommendations message with a version
// lower than the one shown is stale and ignored; messages of other
// placements (lists a placement panel watches on the same socket) are not
// this panel's. The cards are drawn by RecList (rec_list.js). The version,
// the compute time and the score bars are developer figures: shown only when
// the panel has data-debug="true" (staff).

import { uniqueId } from "./api.js";
import { RecList } from "./rec_list.js";
import { DEFAULT_PLACEMENT } from "./vocabulary.js";

export class Recommendations extends EventTarget {
  constructor(section) {
    super();
    this.section = section;
    this.status = section.querySelector("[data-field='status']");
    this.meta = section.querySelector("[data-field='meta']");
    this.placeholder = section.querySelector("[data-field='placeholder']");
    this.loginPrompt = section.querySelector("[data-field='login']");
    this.version = -1;
    this.debug = section.dataset.debug === "true";
    this.shown = []; // [{id, title, score, reasons, because}]
    // Item id -> title, for the "because" links (the dashboard sets it from
    // its catalog); ids it cannot name are shown as "#id".
    this.titleOf = () => undefined;
    this.list = new RecList(section.querySelector("[data-field='list']"), { titleOf: (id) => this.titleOf(id) });
    this.list.addEventListener("open", (event) => this.dispatchEvent(new CustomEvent("open", { detail: event.detail })));
    this.pending = new Map(); // client id -> {id, action, item, sentAt, retryTimer}
    this.socket = null;
    this.available = null; // null: unknown yet, true: socket accepted, false: log in first
  }

  attach(socket) {
    this.socket = socket;
    socket.addEventListener("open", () => {
      this._setAvailable(true);
      // Resend in the original order; the server dedupes by id.
      for (const entry of this.pending.values()) if (!entry.retryTimer) this._transmit(entry);
    });
    socket.addEventListener("message", (event) => this.handle(event.detail));
    socket.addEventListener("statechange", () => {
      if (socket.state === "fatal" && socket.lastCloseCode === 4401) this._setAvailable(false);
    });
  }

  /** Queue a browsing event; return its client id (null when events cannot be sent). */
  send(action, itemId) {
    if (this.available === false) return null;
    const entry = { id: uniqueId("ev"), action, item: itemId, sentAt: 0, retryTimer: 0 };
    this.pending.set(entry.id, entry);
    this._transmit(entry);
    return entry.id;
  }

  _transmit(entry) {
    entry.sentAt = performance.now();
    this.socket.send({ type: "event", action: entry.action, item: entry.item, id: entry.id });
  }

  handle(message) {
    switch (message.type) {
      case "recommendations":
        if ((message.placement || DEFAULT_PLACEMENT) === DEFAULT_PLACEMENT) this.render(message);
        break;
      case "ack": {
        const entry = this.pending.get(message.id);
        if (!entry) break;
        this.pending.delete(message.id);
        clearTimeout(entry.retryTimer);
        const rttMs = performance.now() - entry.sentAt;
        this.dispatchEvent(new CustomEvent("ack", { detail: { id: message.id, rttMs, entry } }));
        break;
      }
      case "error":
        this._error(message);
        break;
      default:
        break;
    }
  }

  _error(message) {
    const entry = message.id != null ? this.pending.get(message.id) : null;
    if (message.code === "rate_limited" && entry) {
      const waitMs = Math.max(250, (Number(message.retry_after) || 1) * 1000);
      clearTimeout(entry.retryTimer);
      entry.retryTimer = setTimeout(() => {
        entry.retryTimer = 0;
        this._transmit(entry);
      }, waitMs);
      return;
    }
    if (entry) {
      this.pending.delete(message.id);
      clearTimeout(entry.retryTimer);
    }
    console.warn(`recommendations socket: ${message.code}: ${message.message}`);
    this.dispatchEvent(new CustomEvent("eventerror", { detail: { id: message.id, code: message.code, message: message.message, entry } }));
  }

  _setAvailable(available) {
    if (this.available === available) return;
    this.available = available;
    this.loginPrompt.hidden = available;
    this.section.dataset.available = String(available);
    if (!available) {
      this.placeholder.hidden = true;
      this.status.textContent = "Log in to get live recommendations.";
      for (const entry of this.pending.values()) clearTimeout(entry.retryTimer);
      this.pending.clear();
    }
    this.dispatchEvent(new CustomEvent("availability", { detail: { available } }));
  }

  /** Update the title shown for `id` after a catalog edit. */
  retitle(id, title) {
    this.list.retitle(id, title);
  }

  /** Retract `id` at once (the item was deactivated or deleted); the version stays. */
  retract(id) {
    if (!this.shown.some((r) => r.id === id)) return;
    this._apply(this.shown.filter((r) => r.id !== id), { announce: true });
  }

  render(message) {
    if (typeof message.version !== "number" || message.version <= this.version) return;
    this.version = message.version;
    this.section.dataset.version = String(message.version);
    this.section.dataset.computedMs = String(message.computed_ms ?? "");
    const when = new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
    const ms = Number(message.computed_ms);
    this.meta.textContent = this.debug
      ? `v${message.version} · updated ${when}${Number.isFinite(ms) ? ` · computed in ${ms.toFixed(1)} ms` : ""}`
      : `Updated ${when}`;
    this._apply(Array.isArray(message.items) ? message.items : [], { announce: true });
  }

  _apply(items, { announce }) {
    const before = new Set(this.list.shown.map((r) => r.id));
    const { retracted } = this.list.apply(items);
    this.shown = this.list.shown;
    this.placeholder.hidden = items.length > 0 || this.available === false;
    if (this.placeholder.hidden === false) this.placeholder.textContent = "Browse a few items to get recommendations.";
    if (announce) this._announce(items, retracted, before);
  }

  _announce(items, retracted, before) {
    const added = items.filter((r) => !before.has(r.id)).length;
    const parts = [];
    if (added) parts.push(`${added} new`);
    if (retracted.length) parts.push(`${retracted.length} removed`);
    const top = items[0] ? ` Top pick: ${items[0].title}.` : "";
    this.status.textContent = `Recommendations updated${parts.length ? `: ${parts.join(", ")}` : ""}.${top}`;
  }
}
