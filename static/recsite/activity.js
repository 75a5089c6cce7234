// "Your recent activity": the last browsing events of this tab, newest first,
// each marked sending / saved / failed as the server answers.

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

  add(clientId, action, itemId, title) {
    const li = document.createElement("li");
    li.className = "activity-entry is-pending";
    li.dataset.action = action;
    li.dataset.state = "pending";
    const time = new Date();
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
    if (clientId) this.entries.set(clientId, li);
    this.list.prepend(li);
    while (this.list.children.length > MAX_ENTRIES) {
      const last = this.list.lastElementChild;
      for (const [key, el] of this.entries) if (el === last) this.entries.delete(key);
      last.remove();
    }
    this.empty.hidden = true;
  }

  acked(clientId, rttMs) {
    this._state(clientId, "saved", "saved", `Saved in ${Math.round(rttMs)} ms`);
  }

  failed(clientId, message) {
    this._state(clientId, "failed", "not saved", message);
  }

  _state(clientId, state, text, title) {
    const li = this.entries.get(clientId);
    if (!li) return;
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
