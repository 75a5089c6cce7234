// The catalog grid, kept in sync with /ws/sync/.
//
// The sync rules (snapshot, resume after its seq, apply applied+1 only, reset
// reloads) live in the sync app's client, static/sync/stream.js; this module
// loads the snapshot for it and renders each change it hands over in order.

import { requestJSON, debounce, reducedMotion } from "./api.js";
import { SyncStream } from "../sync/stream.js";

const PAGE_SIZE = 600;

function fold(text) {
  return String(text || "")
    .toLowerCase()
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "");
}

function formatPrice(value) {
  const n = Number(value);
  return Number.isFinite(n) ? n.toLocaleString(undefined, { style: "currency", currency: "USD" }) : "";
}

export class Catalog extends EventTarget {
  constructor(root) {
    super();
    this.root = root;
    this.grid = root.querySelector("[data-testid='catalog']");
    this.search = root.querySelector("#catalog-search");
    this.category = root.querySelector("#catalog-category");
    this.count = root.querySelector("[data-field='count']");
    this.more = root.querySelector("[data-action='more']");
    this.empty = root.querySelector("[data-field='empty']");

    this.items = new Map(); // id -> ITEM
    this.cards = new Map(); // id -> <li>
    this.reloading = false;
    this.limit = PAGE_SIZE;
    this.stream = new SyncStream({ loadSnapshot: () => this._fetchSnapshot() });
    this.stream.addEventListener("change", (event) => this._change(event.detail));
    this.stream.addEventListener("snapshoterror", (event) => {
      this.empty.hidden = false;
      this.empty.textContent = "Could not load the catalog. Retrying…";
      console.warn("catalog snapshot failed:", event.detail.error.message);
    });
    this.stream.addEventListener("snapshot", () => this._snapshotLoaded());

    this.search.addEventListener(
      "input",
      debounce(() => {
        this.limit = PAGE_SIZE;
        this.render();
      }, 120),
    );
    this.category.addEventListener("change", () => {
      this.limit = PAGE_SIZE;
      this.render();
    });
    this.more.addEventListener("click", () => {
      this.limit += PAGE_SIZE;
      this.render();
    });
    this.grid.addEventListener("click", (event) => {
      const card = event.target.closest("[data-item-id]");
      if (card && this.grid.contains(card)) this._open(Number(card.dataset.itemId));
    });
    this.grid.addEventListener("keydown", (event) => this._arrowKeys(event));
  }

  get(id) {
    return this.items.get(id);
  }

  /** The seq of the last change shown (the snapshot's until one arrives). */
  get applied() {
    return this.stream.applied;
  }

  get lastChangeAt() {
    return this.stream.lastChangeAt;
  }

  // --- snapshot -------------------------------------------------------------

  /** Replace the grid with GET /api/items/; retry with backoff until it works. */
  async loadSnapshot() {
    await this.stream.loadSnapshot();
  }

  /** Load GET /api/items/ into the grid's items; return its seq (the stream's callback). */
  async _fetchSnapshot() {
    this.reloading = true;
    this.root.setAttribute("aria-busy", "true");
    const snapshot = await requestJSON("/api/items/");
    this.items = new Map(snapshot.items.filter((i) => i.active !== false).map((i) => [i.id, i]));
    // Cards are built lazily by render(); refresh the ones already built.
    for (const [id, card] of this.cards) {
      const item = this.items.get(id);
      if (item) this._fillCard(card, item);
      else this.cards.delete(id);
    }
    return snapshot.seq;
  }

  _snapshotLoaded() {
    this.reloading = false;
    this.root.removeAttribute("aria-busy");
    this.root.dataset.seq = String(this.applied);
    this._renderCategories();
    this.render();
    this.dispatchEvent(new CustomEvent("snapshot", { detail: { seq: this.applied } }));
  }

  // --- socket ---------------------------------------------------------------

  /** Follow `socket` (a ReconnectingSocket on /ws/sync/) from the loaded snapshot. */
  attach(socket) {
    this.stream.attach(socket);
  }

  /** Show one change, handed over by the stream in seq order. */
  _change(message) {
    this.root.dataset.seq = String(message.seq);
    if (message.model !== "item") return;
    const id = Number(message.id);
    const data = message.data;
    if (message.op === "delete" || !data || data.active === false) {
      this._remove(id);
    } else {
      this._upsert(id, data);
    }
  }

  _upsert(id, data) {
    const isNew = !this.items.has(id);
    const knownCategory = !data.category || [...this.items.values()].some((i) => i.category === data.category);
    this.items.set(id, data);
    const card = this._card(id);
    this._fillCard(card, data);
    if (!knownCategory) this._renderCategories();
    this.render();
    this._flash(card, isNew ? "is-added" : "is-updated");
    this.dispatchEvent(new CustomEvent("itemchange", { detail: { id, item: data, isNew } }));
  }

  _remove(id) {
    if (!this.items.has(id)) return;
    this.items.delete(id);
    const card = this.cards.get(id);
    this.cards.delete(id);
    this.dispatchEvent(new CustomEvent("itemremove", { detail: { id } }));
    if (!card) return;
    // Hide it from the hooks at once; let it fade out for the eye.
    const button = card.querySelector("[data-item-id]");
    button.removeAttribute("data-item-id");
    button.dataset.removedItemId = String(id);
    button.disabled = true;
    card.setAttribute("aria-hidden", "true");
    if (!card.isConnected || reducedMotion()) {
      card.remove();
      this.render();
      return;
    }
    card.classList.add("is-removed");
    setTimeout(() => {
      card.remove();
      this.render();
    }, 600);
  }

  _flash(card, className) {
    card.classList.remove("is-added", "is-updated");
    // Restart the animation even when the same item changes twice in a row.
    void card.offsetWidth;
    card.classList.add(className);
    clearTimeout(card._flashTimer);
    card._flashTimer = setTimeout(() => card.classList.remove(className), 2600);
  }

  // --- rendering ------------------------------------------------------------

  _card(id) {
    let card = this.cards.get(id);
    if (card) return card;
    card = document.createElement("li");
    card.className = "card-cell";
    card.innerHTML = `
      <button type="button" class="card" aria-haspopup="dialog">
        <span class="card-category" data-field="category"></span>
        <span class="card-title" data-field="title"></span>
        <span class="card-meta">
          <span class="card-price" data-field="price"></span>
          <span class="card-rating" data-field="rating"></span>
        </span>
        <span class="card-tags" data-field="tags"></span>
      </button>`;
    card.querySelector("button").dataset.itemId = String(id);
    this.cards.set(id, card);
    return card;
  }

  _fillCard(card, item) {
    const set = (field, text) => {
      const el = card.querySelector(`[data-field='${field}']`);
      if (el.textContent !== text) el.textContent = text;
    };
    set("title", item.title);
    set("category", [item.category, item.year].filter(Boolean).join(" · "));
    set("price", formatPrice(item.price));
    set("rating", item.rating ? `★ ${Number(item.rating).toFixed(1)}` : "");
    set("tags", (item.tags || []).slice(0, 3).join(" · "));
    const button = card.querySelector("button");
    button.setAttribute("aria-label", `${item.title}${item.category ? `, ${item.category}` : ""}, ${formatPrice(item.price)}`);
  }

  _renderCategories() {
    const current = this.category.value;
    const names = [...new Set([...this.items.values()].map((i) => i.category).filter(Boolean))].sort((a, b) =>
      a.localeCompare(b),
    );
    const options = [new Option("All categories", "")];
    for (const name of names) options.push(new Option(name, name));
    this.category.replaceChildren(...options);
    this.category.value = names.includes(current) ? current : "";
  }

  _matches() {
    const words = fold(this.search.value).split(/\s+/).filter(Boolean);
    const category = this.category.value;
    return (item) => {
      if (category && item.category !== category) return false;
      if (!words.length) return true;
      const haystack = item._haystack ||
        (item._haystack = fold([item.title, item.description, item.category, (item.tags || []).join(" "), item.year].join(" ")));
      return words.every((w) => haystack.includes(w));
    };
  }

  /** Show the items that match the search box and category filter. */
  render() {
    const match = this._matches();
    const visible = [...this.items.values()].filter(match).sort((a, b) => a.id - b.id);
    const shown = visible.slice(0, this.limit);
    const focused = document.activeElement;
    this.grid.replaceChildren(...shown.map((item) => this.cards.get(item.id) || this._fillAndGet(item)));
    if (focused && focused !== document.activeElement && this.grid.contains(focused)) focused.focus({ preventScroll: true });
    const total = this.items.size;
    this.count.textContent =
      visible.length === total ? `${total} items` : `${visible.length} of ${total} items`;
    this.more.hidden = visible.length <= shown.length;
    this.more.textContent = `Show ${Math.min(PAGE_SIZE, visible.length - shown.length)} more`;
    this.empty.hidden = visible.length > 0 || this.reloading;
    if (!visible.length) this.empty.textContent = total ? "No items match your search." : "The catalog is empty.";
  }

  _fillAndGet(item) {
    const card = this._card(item.id);
    this._fillCard(card, item);
    return card;
  }

  _open(id) {
    const item = this.items.get(id);
    if (item) this.dispatchEvent(new CustomEvent("open", { detail: { id, item } }));
  }

  /** Move focus between cards with the arrow keys (Home/End jump to the ends). */
  _arrowKeys(event) {
    const keys = ["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "Home", "End"];
    if (!keys.includes(event.key)) return;
    const buttons = [...this.grid.querySelectorAll("button[data-item-id]")];
    const index = buttons.indexOf(document.activeElement);
    if (index < 0) return;
    const top = buttons[0].getBoundingClientRect().top;
    let columns = buttons.findIndex((b) => b.getBoundingClientRect().top !== top);
    if (columns <= 0) columns = buttons.length;
    const step = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -columns, ArrowDown: columns }[event.key];
    let next = index + (step || 0);
    if (event.key === "Home") next = 0;
    if (event.key === "End") next = buttons.length - 1;
    next = Math.max(0, Math.min(buttons.length - 1, next));
    event.preventDefault();
    buttons[next].focus();
  }
}
