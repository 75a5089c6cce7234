"""The action vocabulary: what a visitor can do with an item, and how much it says.

This is the one definition. The model's choices (``BrowsingEvent.action``),
wire validation of ``event`` frames, the HTTP API schema, the engine's
profile weights and reasons, and the dashboard's JavaScript (rendered into
the page by :func:`actions_payload`) all read it; nothing else spells the
list of actions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "ACTIONS",
    "ACTION_LABELS",
    "ACTION_NAMES",
    "ACTION_VERBS",
    "ACTION_WEIGHTS",
    "Action",
    "ActionName",
    "actions_payload",
]


@dataclass(frozen=True)
class Action:
    """One action a visitor can take.

    Attributes
    ----------
    name : str
        The wire and database value (``"cart"``).
    weight : float
        Strength of the signal; stored as ``BrowsingEvent.weight`` and raised
        to ``ScoreParams.action_power`` in the user's profile.
    label : str
        What staff read in the admin (``"add to cart"``).
    verb : str
        Past tense inside a reason: "Because you {verb} Toy Story".
    done : str
        What the shopper reads in their activity strip ("Added to cart").
    """

    name: str
    weight: float
    label: str
    verb: str
    done: str


#: Every action, weakest signal first.
ACTIONS: tuple[Action, ...] = (
    Action("view", 1.0, "view", "viewed", "Viewed"),
    Action("click", 1.5, "click", "opened", "Opened"),
    Action("like", 2.5, "like", "liked", "Liked"),
    Action("cart", 3.0, "add to cart", "added", "Added to cart"),
    Action("purchase", 4.0, "purchase", "bought", "Bought"),
)

#: Action names, weakest first.
ACTION_NAMES: tuple[str, ...] = tuple(a.name for a in ACTIONS)

#: The values a client may send, as a type for pydantic and ninja schemas
#: (``Literal["view", "click", …]``, built from ``ACTIONS``).
ActionName = Literal[ACTION_NAMES]  # type: ignore[valid-type]

#: Strength of each action, weakest first; stored as ``BrowsingEvent.weight``.
ACTION_WEIGHTS: dict[str, float] = {a.name: a.weight for a in ACTIONS}

#: Past-tense verb of each action, for "Because you liked Toy Story".
ACTION_VERBS: dict[str, str] = {a.name: a.verb for a in ACTIONS}

#: Human label of each action (model choices).
ACTION_LABELS: dict[str, str] = {a.name: a.label for a in ACTIONS}


def actions_payload() -> list[dict[str, object]]:
    """Return the vocabulary as JSON-ready rows for the page's JavaScript.

    Returns
    -------
    list of dict
        ``{"name", "weight", "label", "verb", "done"}`` per action, weakest
        first.
    """
    return [
        {
            "name": a.name,
            "weight": a.weight,
            "label": a.label,
            "verb": a.verb,
            "done": a.done,
        }
        for a in ACTIONS
    ]
