// The vocabularies the page shares with the server, read from the page: the
// server renders the one definition of the actions (view, click, like, cart,
// purchase: recommender/engine/actions.py) into <script id="recsite-actions">
// and of the placements (for_you, similar, complements, trending:
// recommender/engine/placements.py) into <script id="recsite-placements">, so
// the JavaScript never spells its own copy.

function read(id, fallback) {
  const el = document.getElementById(id);
  try {
    return el ? JSON.parse(el.textContent) : fallback;
  } catch {
    return fallback;
  }
}

/** Every action, weakest first: [{name, weight, label, verb, done}]. */
export const ACTIONS = read("recsite-actions", []);

/** Action name -> what the shopper reads in the activity strip ("Added to cart"). */
export const DONE = Object.fromEntries(ACTIONS.map((a) => [a.name, a.done]));

const placements = read("recsite-placements", { labels: {} });

/** Placement name -> heading ("similar" -> "Similar items"). */
export const PLACEMENTS = placements.labels || {};

/** The placement a message that names none belongs to: the personal list. */
export const DEFAULT_PLACEMENT = placements.default;
