// A placement panel: one list besides "for you" — similar items in the item
// dialog, what goes well with the cart, what is trending — watched on the
// recommendations socket and redrawn whenever the server pushes it again (a
// staff rule, a catalog edit, the shopper's own cart, shoppers coming and
// going).
//
// Protocol (docs/merchandising.md): the panel sends
// {"type":"watch","placement":P,"item":ID,"id":…} and gets an ack, then the
// list; every later push carries the same placement and item with a higher
// version. The server forgets a socket's watches when it closes, so the panel
// watches again after every reconnect. Versions count per watch: anything
// that arrives before the ack of the panel's latest watch belongs to an
// earlier one and is ignored, as is a list about another item.
//
// The section carries the test hooks: data-testid, data-placement, data-item
// (the item the list is about), data-version, data-state
// ("idle" | "loading" | "ready" | "unavailable") and one
// [data-item-id] card per entry (rec_list.js), its reasons in
// [data-field='reasons']. Inside the item dialog a card's title is
// [data-field='item-title'], so the dialog's own title field stays unique.

import { uniqueId } from "./api.js";
import { RecList } from "./rec_list.js";
import { PLACEMENTS } from "./vocabulary.js";

/** Not watching: distinct from null, which watches a placement without an item. */
const NOT_WATCHING = undefined;

export class PlacementPanel extends EventTarget {
  /**
   * @param {HTMLElement} section the panel (its [data-field='list'] holds the cards)
   * @param {object} options
   * @param {string} options.placement a placement name of the vocabulary
   * @param {(id: number) => string | undefined} [options.titleOf]
   * @param {(items: object[]) => boolean} [options.shows] whether a list is
   *   worth showing (default: it has entries); the panel hides otherwise
   * @param {string} [options.empty] the text while a watched list is empty
   * @param {string} [options.titleField] see RecList
   */
  constructor(section, { placement, titleOf, shows, empty = "Nothing to suggest yet.", titleField }) {
    super();
    this.section = section;
    this.placement = placement;
    this.label = PLACEMENTS[placement] || placement;
    this.shows = shows || ((items) => items.length > 0);
    this.emptyText = empty;
    this.status = section.querySelector("[data-field='status']");
    this.placeholder = section.querySelector("[data-field='placeholder']");
    this.list = new RecList(section.querySelector("[data-field='list']"), { titleOf, titleField });
    this.list.addEventListener("open", (event) => this.dispatchEvent(new CustomEvent("open", { detail: event.detail })));
    this.socket = null;
    this.item = NOT_WATCHING;
    this.version = 0;
    this.awaiting = null; // id of the watch frame whose ack has not come yet
    this._setState("idle");
  }

  get watching() {
    return this.item !== NOT_WATCHING;
  }

  get shown() {
    return this.list.shown;
  }

  attach(socket) {
    this.socket = socket;
    socket.addEventListener("open", () => {
      if (this.watching) this._sendWatch();
    });
    socket.addEventListener("message", (event) => this.handle(event.detail));
  }

  /** Watch the list about `item` (null: the placement's own subject, e.g. the cart). */
  watch(item = null) {
    if (this.watching && this.item === item) return;
    if (this.watching) this._sendUnwatch();
    this.item = item;
    this.section.dataset.item = item === null ? "" : String(item);
    this.list.reset();
    this.section.dataset.version = "";
    this._setState("loading");
    this._sendWatch();
  }

  /** Stop watching (the dialog closed); the panel empties and hides. */
  unwatch() {
    if (!this.watching) return;
    this._sendUnwatch();
    this.item = NOT_WATCHING;
    this.awaiting = null;
    delete this.section.dataset.item;
    this.section.dataset.version = "";
    this.list.reset();
    this._setState("idle");
  }

  /** Update a title after a catalog edit. */
  retitle(id, title) {
    this.list.retitle(id, title);
  }

  /** Drop `id` at once (deactivated or deleted); the server's next push follows. */
  retract(id) {
    if (!this.list.has(id)) return;
    this._show(this.list.shown.filter((r) => r.id !== id));
  }

  handle(message) {
    if (!this.watching) return;
    if (message.type === "ack" && message.id === this.awaiting) {
      this.awaiting = null;
      this.version = 0;
      return;
    }
    if (message.type === "error" && message.id != null && message.id === this.awaiting) {
      // The item left the catalog, or the socket watches too many lists.
      this.awaiting = null;
      this.list.reset();
      this._setState("unavailable");
      return;
    }
    if (message.type !== "recommendations" || message.placement !== this.placement) return;
    if (this.awaiting !== null) return; // an answer to an earlier watch
    const about = message.item === undefined ? null : message.item;
    if (this.item !== null && about !== this.item) return;
    if (typeof message.version !== "number" || message.version <= this.version) return;
    this.version = message.version;
    this.section.dataset.version = String(message.version);
    // "Because of" the item the list is about says nothing its heading
    // does not: only other items are linked.
    const items = (Array.isArray(message.items) ? message.items : []).map((r) =>
      this.item !== null && Array.isArray(r.because) ? { ...r, because: r.because.filter((id) => id !== this.item) } : r,
    );
    const before = this.list.shown.length;
    const { added, retracted } = this._show(items);
    if (before) {
      const parts = [];
      if (added) parts.push(`${added} new`);
      if (retracted.length) parts.push(`${retracted.length} removed`);
      this.status.textContent = `${this.label} updated${parts.length ? `: ${parts.join(", ")}` : ""}.`;
    }
    this.dispatchEvent(new CustomEvent("update", { detail: { items } }));
  }

  _show(items) {
    const changes = this.list.apply(items);
    this._setState("ready");
    return changes;
  }

  _sendWatch() {
    const frame = { type: "watch", placement: this.placement, id: uniqueId("watch") };
    if (this.item !== null) frame.item = this.item;
    // Not open: the "open" handler watches again once the socket is back.
    this.awaiting = this._send(frame) ? frame.id : null;
  }

  _sendUnwatch() {
    const frame = { type: "unwatch", placement: this.placement, id: uniqueId("unwatch") };
    if (this.item !== null) frame.item = this.item;
    this._send(frame);
  }

  _send(frame) {
    return this.socket !== null && this.socket.send(frame);
  }

  _setState(state) {
    this.section.dataset.state = state;
    const items = this.list.shown;
    const worth = state === "ready" && this.shows(items);
    if (this.placeholder) {
      this.placeholder.hidden = state !== "loading" && !(state === "ready" && !items.length);
      this.placeholder.textContent = state === "loading" ? "Loading…" : this.emptyText;
    }
    // Hidden until there is a list worth showing: a panel never shows up
    // empty-handed beside the shopper's own list.
    this.section.hidden = !(worth || (state === "loading" && this.section.dataset.keepWhileLoading === "true"));
  }
}
