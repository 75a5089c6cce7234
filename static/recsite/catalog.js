// The catalog grid: keyset pages of GET /api/items/, searched and filtered on
// the server, kept live by /ws/sync/.
//
// The sync rules (snapshot, resume after its seq, apply applied+1 only, reset
// reloads) live in the sync app's client, static/sync/stream.js. Here the
// "snapshot" is the first page of what the visitor asked for: its seq is where
// the stream resumes, so first paint needs one small request whatever the
// catalog size. Further pages load as the visitor scrolls (or presses "Show
// more"); at most MAX_PAGES pages are in the DOM, the earliest dropped as new
// ones arrive and reloaded with "Show earlier items", so the page stays light
// at a million items and on a phone.
//
// The socket follows a shape (docs/protocol.md, "Shapes"): the category and
// search shown, the range of ids of the pages in the DOM (min_id/max_id), and
// `also_ids`, the items the rest of the page shows (recommendations, their
// "because" links, the activity strip, the open dialog), read from the DOM
// whenever it changes. Nothing else of the catalog reaches this page. When
// the panels show new items, their current state is loaded with
// GET /api/items/?ids= and the shape replaced without reloading the grid; a
// page loaded by scrolling widens the shape the same way. Each loaded copy
// remembers the seq it reflects (`floor`), so the older changes the server
// replays from `applied` do not undo it.
//
// Changes apply to what is shown, filtered here the way the server filters:
// an item in the shown id range that now matches appears, one that leaves
// the shape (`leave`) or no longer matches goes. Changes of the panels' items
// are announced ("itemchange"; "itemremove" when one leaves the catalog) so
// the recommendations and the detail dialog stay current.

import { requestJSON, debounce, reducedMotion } from "./api.js";
import { SyncStream } from "../sync/stream.js";
import { Q_MAX, fetchIds, panelIds, shapeOf } from "./catalog_shape.js";

const PAGE_SIZE = 48;
const MAX_PAGES = 5; // at most 240 cards in the DOM
const KNOWN_MAX = 5000; // items remembered for get(id): pages seen, changes seen

function fold(text) {
  return String(text || "")
    .toLowerCase()
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "");
}

function words(text) {
  return fold(text).split(/[^\p{L}\p{N}_]+/u).filter(Boolean);
}

function formatPrice(value) {
  const n = Number(value);
  return Number.isFinite(n) ? n.toLocaleString(undefined, { style: "currency", currency: "USD" }) : "";
}

export class Catalog extends EventTarget {
  /** `panels`: the part of the page whose items (outside the grid) are followed too. */
  constructor(root, { panels = document.body } = {}) {
    super();
    this.root = root;
    this.panels = panels;
    this.grid = root.querySelector("[data-testid='catalog']");
    this.search = root.querySelector("#catalog-search");
    this.category = root.querySelector("#catalog-category");
    this.count = root.querySelector("[data-field='count']");
    this.more = root.querySelector("[data-action='more']");
    this.empty = root.querySelector("[data-field='empty']");
    this.earlier = document.createElement("button");
    this.earlier.type = "button";
    this.earlier.className = "button more earlier";
    this.earlier.textContent = "Show earlier items";
    this.earlier.hidden = true;
    this.grid.before(this.earlier);

    this.known = new Map(); // id -> item, for get(id)
    this.shown = new Map(); // id -> item in the DOM window
    this.cards = new Map(); // id -> <li>
    this.categories = []; // [{id, name, slug}]
    // Page k holds the matches with bounds[k] < id <= bounds[k + 1]; bounds[0]
    // is null (the start); pages lo..hi are shown; `end` when hi is the last.
    this.bounds = [null];
    this.lo = 0;
    this.hi = 0;
    this.end = true;
    this.view = 0; // bumps with each first page: late pages of an older view are dropped
    this.loading = false;
    this.reloading = false;
    this.filter = { q: "", category: "" };
    this.followed = new Set(); // ids the other panels show: the shape's also_ids
    this.floor = new Map(); // id -> seq its loaded copy reflects
    this.shapeKey = "";
    this.following = false;

    // The real shape is set by each snapshot load (it knows the pages).
    this.stream = new SyncStream({ shape: { model: "item" }, loadSnapshot: () => this._loadFirstPage() });
    this.stream.addEventListener("change", (event) => this._change(event.detail));
    this.stream.addEventListener("snapshoterror", (event) => {
      this.empty.hidden = false;
      this.empty.textContent = "Could not load the catalog. Retrying…";
      console.warn("catalog page failed:", event.detail.error.message);
    });
    this.stream.addEventListener("snapshot", () => {
      this._snapshotLoaded();
      this._followSoon(); // panels that changed while it loaded
    });

    this.search.addEventListener("input", debounce(() => this._refilter(), 250));
    this.category.addEventListener("change", () => this._refilter());
    this.more.addEventListener("click", () => this.loadNext());
    this.earlier.addEventListener("click", () => this.loadEarlier());
    if ("IntersectionObserver" in window) {
      // Infinite scroll: the next page loads before "Show more" comes into view.
      new IntersectionObserver(
        (entries) => {
          if (entries.some((e) => e.isIntersecting) && !this.more.hidden) this.loadNext();
        },
        { rootMargin: "600px 0px" },
      ).observe(this.more);
    }
    this.grid.addEventListener("click", (event) => {
      const card = event.target.closest("[data-item-id]");
      if (card && this.grid.contains(card)) this._open(Number(card.dataset.itemId));
    });
    this.grid.addEventListener("keydown", (event) => this._arrowKeys(event));
  }

  /** Return the item with `id` if this page has seen it (shown, loaded or changed). */
  get(id) {
    return this.shown.get(id) || this.known.get(id);
  }

  /** Return the item with `id` from the server (null when it does not exist). */
  async fetch(id) {
    try {
      const item = await requestJSON(`/api/items/${Number(id)}/`);
      if (item.active === false) return null;
      this._remember(item);
      return item;
    } catch (error) {
      if (error.status === 404) return null;
      throw error;
    }
  }

  /** The seq of the last change shown (the first page's until one arrives). */
  get applied() {
    return this.stream.applied;
  }

  get lastChangeAt() {
    return this.stream.lastChangeAt;
  }

  // --- loading --------------------------------------------------------------

  /** Load the first page of the current filter; retry with backoff until it works. */
  async loadSnapshot() {
    await this.stream.loadSnapshot();
  }

  _url(after, limit = PAGE_SIZE) {
    const params = new URLSearchParams({ limit: String(limit) });
    if (this.filter.q) params.set("q", this.filter.q.slice(0, Q_MAX));
    if (this.filter.category) params.set("category", this.filter.category);
    if (after != null) params.set("cursor", after);
    return `/api/items/?${params}`;
  }

  /**
   * The stream's snapshot callback: show the first page alone, load the
   * panels' items beside it; set the shape; return the older of the two seqs
   * (the server replays from there, the floors drop what a copy has).
   */
  async _loadFirstPage() {
    this.reloading = true;
    this.root.setAttribute("aria-busy", "true");
    const categories = this.categories.length ? null : this._loadCategories();
    const followed = panelIds(this.panels, this.grid);
    const panelLoad = followed.size ? fetchIds([...followed]) : null;
    let page;
    for (;;) {
      // Typing on while a page loads: load again for what the boxes say now.
      const asked = this._url(null);
      page = await requestJSON(asked);
      if (asked === this._url(null)) break;
    }
    await categories;
    this.view += 1; // pages still loading for the previous view are dropped
    this.bounds = [null, page.next];
    this.lo = 0;
    this.hi = 0;
    this.end = page.next == null;
    this.shown = new Map();
    this.floor = new Map();
    for (const item of page.items) {
      this._show(item);
      this._raise(item.id, page.seq);
    }
    for (const id of this.cards.keys()) if (!this.shown.has(id)) this.cards.delete(id);
    let seq = page.seq;
    if (panelLoad) {
      const snap = await panelLoad;
      this._applyIds([...followed], snap);
      seq = Math.min(seq, snap.seq);
    }
    this.followed = followed;
    this.stream.shape = shapeOf(this);
    this.shapeKey = JSON.stringify(this.stream.shape);
    return seq;
  }

  /** Take the loaded copies of `ids` (missing: left the catalog); tell the panels. */
  _applyIds(ids, snap) {
    const found = new Map(snap.items.map((item) => [item.id, item]));
    for (const id of ids) {
      this._raise(id, snap.seq);
      const item = found.get(id);
      if (item) {
        const had = this.get(id);
        this._remember(item);
        // Only news reaches the panels: a copy this page holds already is
        // what they show.
        if (had && had.updated === item.updated && had.title === item.title) continue;
        this.dispatchEvent(new CustomEvent("itemchange", { detail: { id, item, isNew: false } }));
      } else {
        this.known.delete(id);
        this.dispatchEvent(new CustomEvent("itemremove", { detail: { id } }));
      }
    }
  }

  _raise(id, seq) {
    const floor = this.floor.get(id);
    if (floor === undefined || floor < seq) this.floor.set(id, seq);
  }

  _followSoon() {
    clearTimeout(this._followTimer);
    this._followTimer = setTimeout(() => this._follow(), 150);
  }

  /** Follow what the panels show now: load the new items, then replace the shape. */
  async _follow() {
    if (this.following) {
      this.followAgain = true;
      return;
    }
    // A reload reads the panels itself and calls back here when done.
    if (this.stream.reloading || this.stream.applied < 0 || !this.stream.socket) return;
    this.following = true;
    try {
      const ids = panelIds(this.panels, this.grid);
      const added = [...ids].filter((id) => !this.followed.has(id));
      if (added.length) {
        const snap = await fetchIds(added);
        if (this.stream.reloading) return;
        this._applyIds(added, snap);
      }
      this.followed = ids;
      this._reshape();
    } catch (error) {
      console.warn("following the panels' items failed:", error.message);
      this._followSoon();
    } finally {
      this.following = false;
      if (this.followAgain) {
        this.followAgain = false;
        this._followSoon();
      }
    }
  }

  /** Subscribe to the current shape if it changed, keeping what is loaded. */
  _reshape() {
    if (this.stream.reloading || !this.stream.socket) return;
    const shape = shapeOf(this);
    const key = JSON.stringify(shape);
    if (key === this.shapeKey) return;
    this.shapeKey = key;
    // Copies of items no longer followed would go stale; floors at or below
    // `applied` can no longer matter (only later changes arrive).
    for (const id of this.known.keys()) if (!this.shown.has(id) && !this.followed.has(id)) this.known.delete(id);
    for (const [id, seq] of this.floor) if (seq <= this.stream.applied) this.floor.delete(id);
    this.stream.setShape(shape, { reload: false });
  }

  _snapshotLoaded() {
    this.reloading = false;
    this.root.removeAttribute("aria-busy");
    this.root.dataset.seq = String(this.applied);
    this.render();
    this.dispatchEvent(new CustomEvent("snapshot", { detail: { seq: this.applied } }));
  }

  async _loadCategories() {
    try {
      this.categories = await requestJSON("/api/categories/");
    } catch (error) {
      console.warn("categories failed:", error.message);
      return;
    }
    const current = this.category.value;
    const options = [new Option("All categories", "")];
    for (const c of this.categories) options.push(new Option(c.name, String(c.id)));
    this.category.replaceChildren(...options);
    this.category.value = this.categories.some((c) => String(c.id) === current) ? current : "";
  }

  /** The search box or category changed: start over from the first matching page. */
  async _refilter() {
    const filter = { q: this.search.value.trim(), category: this.category.value };
    if (filter.q === this.filter.q && filter.category === this.filter.category) return;
    this.filter = filter;
    // A load in flight notices the new filter itself (see _loadFirstPage).
    if (this.stream.reloading) return;
    await this.stream.loadSnapshot();
    this.shapeKey = JSON.stringify(this.stream.shape);
    this.stream.resubscribe();
  }

  /** Append the next page (dropping the earliest beyond MAX_PAGES). */
  async loadNext() {
    if (this.loading || this.reloading || this.end) return;
    this.loading = true;
    const view = this.view;
    try {
      const after = this.bounds[this.hi + 1];
      const page = await requestJSON(this._url(after));
      if (view !== this.view || after !== this.bounds[this.hi + 1]) return;
      this.hi += 1;
      this.bounds[this.hi + 1] = page.next;
      this.end = page.next == null;
      for (const item of page.items) {
        this._show(item);
        this._raise(item.id, page.seq);
      }
      if (this.hi - this.lo + 1 > MAX_PAGES) {
        this._hideThrough(Number(this.bounds[this.lo + 1]));
        this.lo += 1;
      }
      this.render();
      this._reshape();
    } catch (error) {
      console.warn("catalog page failed:", error.message);
    } finally {
      this.loading = false;
    }
  }

  /** Reload the page before the first one shown (dropping the last beyond MAX_PAGES). */
  async loadEarlier() {
    if (this.loading || this.reloading || this.lo === 0) return;
    this.loading = true;
    const view = this.view;
    try {
      const k = this.lo - 1;
      const upTo = Number(this.bounds[this.lo]);
      // Twice a page: items added since keep the page reaching its old end.
      const page = await requestJSON(this._url(this.bounds[k], PAGE_SIZE * 2));
      if (view !== this.view || k !== this.lo - 1) return;
      for (const item of page.items) {
        if (item.id > upTo) continue;
        this._show(item);
        this._raise(item.id, page.seq);
      }
      this.lo = k;
      if (this.hi - this.lo + 1 > MAX_PAGES) {
        this._hideAfter(Number(this.bounds[this.hi]));
        this.hi -= 1;
        this.end = false;
      }
      this.render();
      this._reshape();
    } catch (error) {
      console.warn("catalog page failed:", error.message);
    } finally {
      this.loading = false;
    }
  }

  _remember(item) {
    this.known.delete(item.id);
    this.known.set(item.id, item);
    if (this.known.size > KNOWN_MAX) this.known.delete(this.known.keys().next().value);
  }

  _show(item) {
    this._remember(item);
    this.shown.set(item.id, item);
    const card = this.cards.get(item.id);
    if (card) this._fillCard(card, item);
  }

  _hideThrough(lastId) {
    for (const id of [...this.shown.keys()]) if (id <= lastId) this._forget(id);
  }

  _hideAfter(lastId) {
    for (const id of [...this.shown.keys()]) if (id > lastId) this._forget(id);
  }

  _forget(id) {
    this.shown.delete(id);
    this.cards.delete(id);
  }

  // --- live changes -----------------------------------------------------------

  /** Follow `socket` (a ReconnectingSocket on /ws/sync/) from the first page's seq. */
  attach(socket) {
    this.stream.attach(socket);
    // The panels' items come and go with their own sockets and clicks.
    new MutationObserver(() => this._followSoon()).observe(this.panels, {
      subtree: true,
      childList: true,
      attributes: true,
      attributeFilter: ["data-item-id", "data-because-item", "data-activity-item", "open"],
    });
    this._followSoon();
  }

  /** Whether `item` passes the current filter, as the server decides it. */
  _matches(item) {
    if (this.filter.category && String(item.category_id) !== this.filter.category) return false;
    const wanted = words(this.filter.q);
    if (!wanted.length) return true;
    const have = item._words || (item._words = words(`${item.title} ${(item.tags || []).join(" ")}`));
    return wanted.every((w) => have.some((h) => h.startsWith(w)));
  }

  /** Whether `id` falls inside the pages shown (so a new match belongs on screen). */
  _inWindow(id) {
    const low = this.bounds[this.lo];
    if (low != null && id <= Number(low)) return false;
    if (this.end) return true;
    return id <= Number(this.bounds[this.hi + 1]);
  }

  /** Show one change, handed over by the stream in seq order. */
  _change(message) {
    this.root.dataset.seq = String(message.seq);
    if (message.model !== "item") return;
    const id = Number(message.id);
    const floor = this.floor.get(id);
    if (floor !== undefined && message.seq <= floor) return; // the copy shown is newer
    const data = message.data;
    if (message.op === "leave" && !this.followed.has(id)) {
      // Out of the grid's shape (another category, words, beyond the pages).
      this.known.delete(id);
      this._remove(id);
      return;
    }
    // A followed item leaves the shape only by leaving the catalog.
    if (message.op === "leave" || message.op === "delete" || !data || data.active === false) {
      this.known.delete(id);
      this._remove(id);
      this.dispatchEvent(new CustomEvent("itemremove", { detail: { id } }));
      return;
    }
    const wasShown = this.shown.has(id);
    const isNew = !wasShown && !this.known.has(id);
    this._remember(data);
    if (data.category_id != null && !this.categories.some((c) => c.id === data.category_id)) {
      this._loadCategoriesSoon();
    }
    if (this._matches(data) && (wasShown || this._inWindow(id))) {
      this._show(data);
      const card = this._card(id);
      this._fillCard(card, data);
      this.render();
      this._flash(card, wasShown ? "is-updated" : "is-added");
    } else if (wasShown) {
      this._remove(id); // it left the filter (category, words)
    }
    this.dispatchEvent(new CustomEvent("itemchange", { detail: { id, item: data, isNew } }));
  }

  _loadCategoriesSoon() {
    clearTimeout(this._categoriesTimer);
    this._categoriesTimer = setTimeout(() => this._loadCategories(), 500);
  }

  _remove(id) {
    if (!this.shown.has(id)) return;
    this.shown.delete(id);
    const card = this.cards.get(id);
    this.cards.delete(id);
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

  /** Put the shown items in the grid, in id order; keep focus where it was. */
  render() {
    const items = [...this.shown.values()].sort((a, b) => a.id - b.id);
    const focused = document.activeElement;
    this.grid.replaceChildren(...items.map((item) => this.cards.get(item.id) || this._fillAndGet(item)));
    if (focused && focused !== document.activeElement && this.grid.contains(focused)) focused.focus({ preventScroll: true });
    const filtered = Boolean(this.filter.q || this.filter.category);
    const all = this.lo === 0 && this.end;
    const noun = items.length === 1 ? "item" : "items";
    this.count.textContent = all
      ? `${items.length} ${filtered ? "matching " : ""}${noun}`
      : `Showing ${items.length} ${filtered ? "matching " : ""}${noun}`;
    this.more.hidden = this.end;
    this.more.textContent = "Show more";
    this.earlier.hidden = this.lo === 0;
    this.empty.hidden = items.length > 0 || this.reloading;
    if (!items.length) this.empty.textContent = filtered ? "No items match your search." : "The catalog is empty.";
  }

  _fillAndGet(item) {
    const card = this._card(item.id);
    this._fillCard(card, item);
    return card;
  }

  _open(id) {
    const item = this.get(id);
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
