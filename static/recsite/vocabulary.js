// The action vocabulary (view, click, like, cart, purchase: names, weights and
// labels), read from the page: the server renders the one definition
// (recommender/engine/actions.py) into <script id="recsite-actions">, so the
// JavaScript never spells its own copy.

function read() {
  const el = document.getElementById("recsite-actions");
  try {
    return el ? JSON.parse(el.textContent) : [];
  } catch {
    return [];
  }
}

/** Every action, weakest first: [{name, weight, label, verb, done}]. */
export const ACTIONS = read();

/** Action name -> what the shopper reads in the activity strip ("Added to cart"). */
export const DONE = Object.fromEntries(ACTIONS.map((a) => [a.name, a.done]));
