// One rendered list of recommended items: the "for you" panel and every
// placement panel (similar items, goes well with, trending) draw their cards
// with it, so a card looks, opens and explains itself the same everywhere.
//
// It marks what changed between two lists: new entries and entries that moved
// (with the distance); an entry that left fades out quietly where it was,
// without a rank. The first list after reset() is a baseline: no badges.
// Clicking a card dispatches "open" {id, rec}; a "because" link dispatches
// "open" {id} for the shopper's own item behind the card.

import { reducedMotion } from "./api.js";

const RETRACT_MS = 900;
const MOVE_MS = 380;

export class RecList extends EventTarget {
  /**
   * @param {HTMLOListElement} list the <ol> the cards go in
   * @param {object} options
   * @param {(id: number) => string | undefined} options.titleOf names the
   *   shopper's own items in "because" links ("#id" when unknown)
   * @param {string} options.titleField the data-field of a card's title:
   *   "title" unless the list sits inside an element whose own
   *   [data-field='title'] must stay unique (the item dialog)
   */
  constructor(list, { titleOf = () => undefined, titleField = "title" } = {}) {
    super();
    this.list = list;
    this.titleOf = titleOf;
    this.titleField = titleField;
    this.shown = []; // [{id, title, score, reasons, because}]
    this.els = new Map(); // id -> <li>
    this.rendered = false;
    this.list.addEventListener("click", (event) => {
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

  /** Forget what is shown: the next list is a new baseline (another subject). */
  reset() {
    this.shown = [];
    this.els.clear();
    this.list.replaceChildren();
    this.rendered = false;
  }

  /** Update the title shown for `id` after a catalog edit. */
  retitle(id, title) {
    const rec = this.shown.find((r) => r.id === id);
    if (rec) rec.title = title;
    const li = this.els.get(id);
    if (li) li.querySelector(`[data-field='${this.titleField}']`).textContent = title;
  }

  has(id) {
    return this.shown.some((r) => r.id === id);
  }

  /**
   * Show `items` (best first); return what changed: {added, retracted}.
   * @param {Array<{id:number,title:string,score:number,reasons:string[],because:number[]}>} items
   */
  apply(items) {
    // The first list of a subject is a baseline, not a change: no badges.
    const baseline = !this.rendered;
    this.rendered = true;
    const before = new Map(this.shown.map((r, i) => [r.id, i]));
    const firstTops = new Map();
    const animate = !reducedMotion() && this.list.isConnected && this.list.getClientRects().length > 0;
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
    // At phone width lists scroll sideways; show the new top pick unless
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
    return { added: items.filter((r) => !before.has(r.id)).length, retracted };
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
            <span class="rec-title" data-field="${this.titleField}"></span>
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
    li.querySelector(`[data-field='${this.titleField}']`).textContent = rec.title;
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
    // Links to the shopper's own items behind this one (outside the card's
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
