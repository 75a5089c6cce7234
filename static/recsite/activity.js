// "Your recent activity": the shopper's last browsing events, newest first.
// The list comes from the server (GET /api/activity/): on load, and again each
// time the recommendations socket pushes a new list (which every tab of the
// shopper receives after an event from any of them), so it survives reloads
// and stays the same in every tab. Events this tab sent show "sending…" until
// the server acks them, then "saved"; stored ones are matched by client id.

import { DONE as VERBS } from "./vocabulary.js";

// Inline SVG icons: emoji fonts are not on every machine.
const svg = (d) =>
  `<svg viewBox="0 0 24 24" width="18" height="18" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">${d}</svg>`;
const ICONS = {
  view: svg('<path d="M1 12s4-7 11-7 11 7 11 7-4 7-11 7S1 12 1 12z"/><circle cx="12" cy="12" r="3"/>'),
  click: svg('<path d="M7 17L17 7M8 7h9v9"/>'),
  like: svg('<path d="M20.8 4.6a5.5 5.5 0 0 0-7.8 0L12 5.7l-1-1.1a5.5 5.5 0 0 0-7.8 7.8L12 21l8.8-8.6a5.5 5.5 0 0 0 0-7.8z"/>'),
  cart: svg('<circle cx="9" cy="20" r="1.5"/><circle cx="18" cy="20" r="1.5"/><path d="M1 2h4l2.7 12.4a2 2 0 0 0 2 1.6h8.6a2 2 0 0 0 2-1.6L22 6H6"/>'),
  purchase: svg('<path d="M20 6L9 17l-5-5"/>'),
};
const MAX_ENTRIES = 12;

export class ActivityStrip extends EventTarget {
  constructor(section) {
    super();
    this.section = section;
    this.list = section.querySelector("[data-field='list']");
    this.empty = section.querySelector("[data-field='empty']");
    this.entries = new Map(); // client id -> <li>
    this.list.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-activity-item]");
      if (button) this.dispatchEvent(new CustomEvent("open", { detail: { id: Number(button.dataset.activityItem) } }));
    });
  }

  /** Fetch the stored events and show them; a failed fetch keeps what is shown. */
  async refresh() {
    const ticket = (this.refreshTicket = (this.refreshTicket || 0) + 1);
    let data;
    try {
      const response = await fetch("/api/activity/", {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (!response.ok) return;
      data = await response.json();
    } catch {
      return;
    }
    // An older answer arriving after a newer one must not win.
    if (ticket !== this.refreshTicket || !Array.isArray(data.events)) return;
    this.showStored(data.events);
  }

  /** Show the server's events (newest first) below this tab's unsaved ones. */
  showStored(events) {
    const stored = new Set(events.map((e) => e.id));
    // Sent from this tab and not stored yet (sending, or failed): keep on top.
    const unsaved = [...this.list.children].filter(
      (li) => li.dataset.state !== "saved" && !stored.has(li.dataset.clientId),
    );
    const entries = events.map((event) => {
      const li =
        (event.id && this.entries.get(event.id)) ||
        this._entry(event.id, event.action, event.item, event.title, new Date(event.created));
      if (li.dataset.state !== "saved") this._mark(li, "saved", "saved", "");
      return li;
    });
    this._show([...unsaved, ...entries]);
  }

  add(clientId, action, itemId, title) {
    this._show([this._entry(clientId, action, itemId, title, new Date()), ...this.list.children]);
  }

  _show(wanted) {
    // Move only what changed place: a re-inserted entry would replay its
    // slide-in animation.
    const keep = wanted.slice(0, MAX_ENTRIES);
    keep.forEach((li, index) => {
      if (this.list.children[index] !== li) this.list.insertBefore(li, this.list.children[index] || null);
    });
    while (this.list.children.length > keep.length) this.list.lastElementChild.remove();
    this.entries = new Map(keep.filter((li) => li.dataset.clientId).map((li) => [li.dataset.clientId, li]));
    this.empty.hidden = keep.length > 0;
    // The newest entry is first: keep it in view (scroll anchoring would
    // otherwise push it out to the left, under the heading).
    if (!this.list.contains(document.activeElement)) this.list.scrollLeft = 0;
  }

  _entry(clientId, action, itemId, title, time) {
    const li = document.createElement("li");
    li.className = "activity-entry is-pending";
    li.dataset.action = action;
    li.dataset.state = "pending";
    if (clientId) li.dataset.clientId = clientId;
    li.innerHTML = `
      <span class="activity-icon" aria-hidden="true"></span>
      <span class="activity-text">
        <span class="activity-verb"></span>
        <button type="button" class="link activity-title"></button>
      </span>
      <time class="activity-time"></time>
      <span class="activity-state" data-field="state">sending…</span>`;
    li.querySelector(".activity-icon").innerHTML = ICONS[action] || ICONS.view;
    li.querySelector(".activity-verb").textContent = VERBS[action] || action;
    const button = li.querySelector("button");
    button.textContent = title || `#${itemId}`;
    button.dataset.activityItem = String(itemId);
    const timeEl = li.querySelector("time");
    timeEl.dateTime = time.toISOString();
    timeEl.textContent = time.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    return li;
  }

  acked(clientId, rttMs) {
    this._state(clientId, "saved", "saved", `Saved in ${Math.round(rttMs)} ms`);
  }

  failed(clientId, message) {
    this._state(clientId, "failed", "not saved", message);
  }

  _state(clientId, state, text, title) {
    const li = this.entries.get(clientId);
    if (li) this._mark(li, state, text, title);
  }

  _mark(li, state, text, title) {
    li.dataset.state = state;
    li.classList.remove("is-pending", "is-saved", "is-failed");
    li.classList.add(`is-${state}`);
    const label = li.querySelector("[data-field='state']");
    label.textContent = text;
    label.title = title || "";
  }

  retitle(itemId, title) {
    for (const button of this.list.querySelectorAll(`button[data-activity-item='${itemId}']`)) button.textContent = title;
  }
}
