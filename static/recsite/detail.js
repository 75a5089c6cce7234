// The item detail dialog: opens in place, Escape or Close shuts it. While it
// is open it watches the "similar" list of its item (a PlacementPanel inside
// the dialog) and stops watching when it closes.

function formatPrice(value) {
  const n = Number(value);
  return Number.isFinite(n) ? n.toLocaleString(undefined, { style: "currency", currency: "USD" }) : "";
}

export class DetailDialog extends EventTarget {
  /**
   * @param {HTMLDialogElement} dialog
   * @param {object} [options]
   * @param {import("./placements.js").PlacementPanel} [options.similar] the
   *   panel of items like the open one
   */
  constructor(dialog, { similar = null } = {}) {
    super();
    this.dialog = dialog;
    this.similar = similar;
    this.itemId = null;
    this.canAct = true;
    this.like = dialog.querySelector("[data-action='like']");
    this.cart = dialog.querySelector("[data-action='cart']");
    this.hint = dialog.querySelector("[data-field='action-hint']");
    this.notice = dialog.querySelector("[data-field='notice']");
    dialog.querySelector("[data-action='close']").addEventListener("click", () => dialog.close());
    // A click on the backdrop (the dialog box itself, outside its content) closes it.
    dialog.addEventListener("click", (event) => {
      if (event.target === dialog) dialog.close();
    });
    dialog.addEventListener("close", () => {
      this.itemId = null;
      if (this.similar) this.similar.unwatch();
      if (this.returnFocus && this.returnFocus.isConnected) this.returnFocus.focus({ preventScroll: true });
    });
    this.like.addEventListener("click", () => this._act("like"));
    this.cart.addEventListener("click", () => this._act("cart"));
  }

  get isOpen() {
    return this.dialog.open;
  }

  /** Show `item` (an ITEM, or a {id, title} stub for a recommendation the grid lacks). */
  open(item) {
    this.returnFocus = document.activeElement;
    this.itemId = item.id;
    this.dialog.dataset.itemId = String(item.id);
    this.like.setAttribute("aria-pressed", "false");
    this.like.querySelector("[data-field='like-label']").textContent = "Like";
    this.cart.querySelector("[data-field='cart-label']").textContent = "Add to cart";
    this.notice.hidden = true;
    this.fill(item);
    this.setCanAct(this.canAct);
    if (!this.dialog.open) this.dialog.showModal();
    // Opening another item from inside the dialog swaps the list.
    if (this.similar) this.similar.watch(item.id);
    this.dialog.scrollTop = 0;
  }

  /** Refresh the content when the shown item changed on the server. */
  fill(item) {
    const set = (field, text) => {
      const el = this.dialog.querySelector(`[data-field='${field}']`);
      el.textContent = text || "";
      el.hidden = !text;
    };
    set("title", item.title);
    set("category", [item.category, item.year].filter(Boolean).join(" · "));
    set("price", item.price !== undefined ? formatPrice(item.price) : "");
    set("rating", item.rating ? `★ ${Number(item.rating).toFixed(1)} / 5` : "");
    set("description", item.description);
    const tags = this.dialog.querySelector("[data-field='tags']");
    tags.replaceChildren(
      ...(item.tags || []).map((tag) => {
        const li = document.createElement("li");
        li.textContent = tag;
        return li;
      }),
    );
    tags.hidden = !(item.tags || []).length;
  }

  /** Mark the shown item as gone (deactivated or deleted while open). */
  markRemoved() {
    this.notice.textContent = "This item is no longer available.";
    this.notice.hidden = false;
    this.like.disabled = this.cart.disabled = true;
  }

  setCanAct(canAct, hint = "") {
    this.canAct = canAct;
    this.like.disabled = this.cart.disabled = !canAct;
    this.hint.innerHTML = "";
    this.hint.hidden = canAct;
    if (!canAct && hint) this.hint.append(hint);
  }

  _act(action) {
    if (this.itemId === null) return;
    this.dispatchEvent(new CustomEvent("action", { detail: { action, id: this.itemId } }));
    if (action === "like") {
      this.like.setAttribute("aria-pressed", "true");
      this.like.querySelector("[data-field='like-label']").textContent = "Liked";
    } else {
      this.cart.querySelector("[data-field='cart-label']").textContent = "Added to cart";
    }
  }
}
