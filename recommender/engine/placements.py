"""The placements vocabulary: which list of recommendations a request asks for.

Defined once here; models' choices, wire validation, the HTTP API and the
page read it from this module.
"""

#: Placement name -> human label, default first.
PLACEMENTS: dict[str, str] = {
    "for_you": "For you",
    "similar": "Similar items",
    "complements": "Goes well with",
    "trending": "Trending now",
}

#: The placement a message or request means when it names none.
DEFAULT_PLACEMENT = "for_you"

#: Placements that are about one item (``"item"`` in the request).
ITEM_PLACEMENTS = frozenset({"similar", "complements"})
