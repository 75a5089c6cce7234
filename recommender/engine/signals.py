"""The blend: which signals make a user's score, and with what weight.

A user's score over the catalog is a weighted sum of named signals, each of
shape (n_items,) and scaled to at most 1:

* personal signals, computed per user from their history, in summation
  order (:data:`PERSONAL`): ``behaviour`` (item-to-item neighbours of the
  items in the profile) and ``content`` (feature similarity to the profile);
* shared signals, the same for everyone at a given hour: ``popularity`` (what
  is popular right now) and ``new`` (new arrivals).

Adding a scorer means: compute its (users x items) array in
``Engine._chunk_signals`` (and, for an item-to-item signal, its links in
:class:`ChunkSignals`), name it in :data:`PERSONAL`, give it a weight in
:class:`~recommender.engine.types.ScoreParams` and in :func:`blend_weights`.
Reasons and ``because`` ids read the same record, so a new signal explains
itself through the same path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from recommender.engine.types import ScoreParams

__all__ = [
    "PERSONAL",
    "SHARED",
    "Cells",
    "ChunkSignals",
    "blend_weights",
]

#: Per-user signals, in the order they are added to the shared base.
PERSONAL: tuple[str, ...] = ("behaviour", "content")

#: Signals shared by every user at one moment, summed first (the cached base).
SHARED: tuple[str, ...] = ("popularity", "new")


def blend_weights(params: ScoreParams, *, cold: bool) -> dict[str, float]:
    """Return the weight of every signal, personal first then shared.

    Parameters
    ----------
    params : ScoreParams
    cold : bool
        The user has no history: nothing personal to go on, so what is
        popular right now leads and new arrivals get a share of the list.

    Returns
    -------
    dict
        Signal name -> weight, in :data:`PERSONAL` + :data:`SHARED` order.
    """
    if cold:
        return {
            "behaviour": 0.0,
            "content": 0.0,
            "popularity": 1.0,
            "new": params.cold_new_weight,
        }
    return {
        "behaviour": params.behaviour_weight,
        "content": params.content_weight,
        "popularity": params.popularity_weight,
        "new": params.new_weight,
    }


#: Sparse cells ``(position, col, value)``, each ndarray of shape (n_cells,):
#: ``position`` indexes the user's distinct history items (int64), ``col`` a
#: catalog row or feature column (int32), ``value`` the amount (float32).
Cells = tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.float32]]


@dataclass(frozen=True)
class ChunkSignals:
    """The signals of a chunk of users scored together, and their sources.

    Users with a history ("warm") have personal signals; the others only the
    shared ones. Cells index the warm users' distinct history items
    concatenated in user order (``rows``): item ``i`` belongs to the warm
    user ``j`` with ``first_row[j] <= i < first_row[j + 1]``.

    Attributes
    ----------
    shared : list of (popularity, new)
        Per user of the chunk, each ndarray of shape (n_items,), float32.
    warm : ndarray of shape (n_warm,), int64
        Chunk indices of the users with a history, ascending.
    personal : dict of str to ndarray of shape (n_warm, n_items), float32
        Each personal signal of each warm user, in :data:`PERSONAL` order.
    rows : ndarray of shape (n_rows,), int64
        Catalog rows of the warm users' distinct history items.
    weights : ndarray of shape (n_rows,), float32
        Their profile weights.
    first_row : ndarray of shape (n_warm + 1,), int64
        Offsets of each warm user's items in ``rows``.
    links : dict of str to Cells
        Per item-to-item signal, every link from a history item (position
        into ``rows``), its value weighted by the profile; grouped by user.
    features : Cells
        Every feature cell of the history items (unweighted), grouped by user.
    """

    shared: list[tuple[NDArray[np.float32], NDArray[np.float32]]]
    warm: NDArray[np.int64]
    personal: dict[str, NDArray[np.float32]]
    rows: NDArray[np.int64]
    weights: NDArray[np.float32]
    first_row: NDArray[np.int64]
    links: dict[str, Cells]
    features: Cells

    @property
    def n_users(self) -> int:
        """Return how many users the chunk holds."""
        return len(self.shared)

    @classmethod
    def cold(
        cls,
        shared: list[tuple[NDArray[np.float32], NDArray[np.float32]]],
    ) -> ChunkSignals:
        """Return a chunk of users none of whom has a history."""
        none = np.empty(0, dtype=np.int64)
        cells: Cells = (none, np.empty(0, np.int32), np.empty(0, np.float32))
        return cls(
            shared=shared,
            warm=none,
            personal={},
            rows=none,
            weights=np.empty(0, np.float32),
            first_row=np.zeros(1, dtype=np.int64),
            links={"behaviour": cells},
            features=cells,
        )
