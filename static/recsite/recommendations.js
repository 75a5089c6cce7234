// The recommendations panel and the browsing-event queue of /ws/recommendations/.
//
// Events are sent with a unique client id and kept until the server acks
// them; after a reconnect every un-acked event is sent again with the same id
// (the server stores each id once). A recommendations message with a version
// lower than the one shown is stale and ignored. The panel marks what changed:
// new entries and entries that moved (with the distance); an entry that left
// the list fades out quietly where it was, without a rank. The version, the
// compute time and the score bars are developer figures: shown only when the
// panel has data-debug="true" (staff).

import { uniqueId, reducedMotion } from "./api.js";

const RETRACT_MS = 900;
const MOVE_MS = 380;

export class Recommendations extends EventTarget {
  constructor(section) {
    super();
    this.section = section;
    this.list = section.querySelector("[data-field='list']");
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
    this.els = new Map(); // id -> <li>
    this.pending = new Map(); // client id -> {id, action, item, sentAt, retryTimer}
    this.socket = null;
    this.available = null; // null: unknown yet, true: socket accepted, false: log in first
    this.list.addEventListener("click", (event) => {
      // A "because" link opens the user's own item that led to this one.
      const link = event.target.closest("button[data-because-item]");
      if (link) {
        this.dispatchEvent(new CustomEvent("open", { detail: { id: Number(link.dataset.becauseItem) } }));
        return;
      }
      const li = event.target.closest("li[data-item-id]");
      if (li) {
        const id = Number(li.dataset.itemId);
        const rec = this.shown.find((r) => r.id === id);
        this.dispatchEvent(new CustomEvent("open", { detail: { id, rec } }));
      }
    });
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
        this.render(message);
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
    const li = this.els.get(id);
    const rec = this.shown.find((r) => r.id === id);
    if (rec) rec.title = title;
    if (li) li.querySelector("[data-field='title']").textContent = title;
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
    // The first list of the page is a baseline, not a change: no badges.
    const baseline = !this.rendered;
    this.rendered = true;
    const before = new Map(this.shown.map((r, i) => [r.id, i]));
    const firstTops = new Map();
    const animate = !reducedMotion() && this.list.isConnected;
    if (animate) for (const [id, li] of this.els) firstTops.set(id, li.getBoundingClientRect().top);
    const maxScore = Math.max(1e-9, ...items.map((r) => Number(r.score) || 0));
    const next = items.map((rec, index) => {
      const li = this.els.get(rec.id) || this._create(rec.id);
      this._fill(li, rec, index, maxScore);
      li.classList.remove("is-new", "is-moved", "is-up", "is-down");
      const badge = li.querySelector("[data-field='change']");
      const was = before.get(rec.id);
      if (baseline) {
        li.dataset.change = "same";
        badge.textContent = "";
      } else if (was === undefined) {
        li.classList.add("is-new");
        li.dataset.change = "new";
        badge.textContent = "New";
      } else if (was !== index) {
        li.classList.add("is-moved", was > index ? "is-up" : "is-down");
        li.dataset.change = was > index ? "up" : "down";
        badge.textContent = was > index ? `▲ ${was - index}` : `▼ ${index - was}`;
        badge.setAttribute("aria-label", was > index ? `up ${was - index}` : `down ${index - was}`);
      } else {
        li.dataset.change = "same";
        badge.textContent = "";
      }
      badge.hidden = !badge.textContent;
      return li;
    });
    const nextIds = new Set(items.map((r) => r.id));
    const retracted = this.shown.filter((r) => !nextIds.has(r.id));
    const ordered = [...next];
    for (const rec of retracted) {
      const li = this.els.get(rec.id);
      this.els.delete(rec.id);
      if (!li) continue;
      // Out of the hooks at once (tests and assistive tech see the new list),
      // but left in place a moment, struck through, for the eye.
      li.removeAttribute("data-item-id");
      li.dataset.retractedItemId = String(rec.id);
      li.classList.remove("is-new", "is-moved", "is-up", "is-down");
      li.classList.add("is-retracted");
      li.setAttribute("aria-hidden", "true");
      li.inert = true;
      // It no longer has a place in the list: no rank (the new entry at its
      // place has it) and no badge; it only fades out.
      li.querySelector("[data-field='rank']").textContent = "";
      const badge = li.querySelector("[data-field='change']");
      badge.textContent = "";
      badge.hidden = true;
      if (animate) {
        ordered.splice(Math.min(before.get(rec.id), ordered.length), 0, li);
        setTimeout(() => li.remove(), RETRACT_MS);
      }
    }
    const focused = document.activeElement;
    this.list.setAttribute("aria-busy", "true");
    this.list.replaceChildren(...ordered);
    if (focused && this.list.contains(focused) && document.activeElement !== focused) focused.focus({ preventScroll: true });
    this.list.setAttribute("aria-busy", "false");
    // At phone width the list scrolls sideways; show the new top pick unless
    // the visitor is working inside the list.
    if (this.list.scrollLeft && !this.list.contains(document.activeElement)) this.list.scrollLeft = 0;
    if (animate && !baseline) {
      for (const li of next) {
        const first = firstTops.get(Number(li.dataset.itemId));
        if (first === undefined) {
          li.animate(
            [
              { opacity: 0, transform: "translateX(16px) scale(0.97)" },
              { opacity: 1, transform: "none" },
            ],
            { duration: MOVE_MS, easing: "cubic-bezier(.2,.7,.3,1)" },
          );
          continue;
        }
        const dy = first - li.getBoundingClientRect().top;
        if (Math.abs(dy) > 1) {
          li.animate([{ transform: `translateY(${dy}px)` }, { transform: "none" }], {
            duration: MOVE_MS,
            easing: "cubic-bezier(.2,.7,.3,1)",
          });
        }
      }
    }
    this.shown = items.map((r) => ({ ...r }));
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

  _create(id) {
    const li = document.createElement("li");
    li.className = "rec";
    li.dataset.itemId = String(id);
    li.innerHTML = `
      <button type="button" class="rec-open" aria-haspopup="dialog">
        <span class="rec-rank" data-field="rank"></span>
        <span class="rec-body">
          <span class="rec-head">
            <span class="rec-title" data-field="title"></span>
            <span class="rec-change" data-field="change" hidden></span>
          </span>
          <span class="rec-score" data-debug-only><span class="rec-score-bar" aria-hidden="true"><span data-field="score"></span></span><span class="rec-score-value" data-field="score-value"></span></span>
          <ul class="rec-reasons" data-field="reasons"></ul>
        </span>
      </button>
      <p class="rec-because muted" data-field="because" hidden></p>`;
    this.els.set(id, li);
    return li;
  }

  _fill(li, rec, index, maxScore) {
    li.querySelector("[data-field='rank']").textContent = String(index + 1);
    li.querySelector("[data-field='title']").textContent = rec.title;
    const score = Math.max(0, Number(rec.score) || 0);
    li.querySelector("[data-field='score']").style.width = `${Math.round((score / maxScore) * 100)}%`;
    li.querySelector("[data-field='score-value']").textContent = `score ${score.toFixed(2)}`;
    li.dataset.score = String(rec.score);
    const reasons = li.querySelector("[data-field='reasons']");
    const texts = Array.isArray(rec.reasons) ? rec.reasons : [];
    const same =
      reasons.children.length === texts.length && texts.every((t, i) => reasons.children[i].textContent === t);
    if (!same) {
      reasons.replaceChildren(
        ...texts.map((text) => {
          const item = document.createElement("li");
          item.textContent = text;
          return item;
        }),
      );
    }
    this._fillBecause(li.querySelector("[data-field='because']"), rec);
    li.querySelector("button").setAttribute(
      "aria-label",
      `${index + 1}. ${rec.title}${texts.length ? ` — ${texts.join("; ")}` : ""}`,
    );
  }

  _fillBecause(el, rec) {
    // Links to the user's own items behind this one (outside the card's
    // button: interactive content cannot nest).
    const ids = Array.isArray(rec.because) ? rec.because.map(Number) : [];
    const key = ids.join(",");
    if (el.dataset.ids === key) return;
    el.dataset.ids = key;
    el.hidden = ids.length === 0;
    if (!ids.length) {
      el.replaceChildren();
      return;
    }
    const parts = ["Because of "];
    ids.forEach((id, i) => {
      const link = document.createElement("button");
      link.type = "button";
      link.className = "link";
      link.dataset.becauseItem = String(id);
      link.textContent = this.titleOf(id) || `#${id}`;
      parts.push(link, i < ids.length - 1 ? ", " : "");
    });
    el.replaceChildren(...parts);
  }
}
