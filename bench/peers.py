"""bench/peers: order-aware peers scored by the live engine's own code.

``bench/quality.py`` loads this file and scores each peer through the same
static and replay code as recsite (``evaluation_run``, ``replay_run``), so
the comparison differs only in the model, never in the protocol:

* **EASE with a live recency-weighted profile** (Steck 2019): EASE on the
  binary user x item matrix, every item kept (``min_item_events=1``); each
  user's profile weighs the event ``b`` events back by ``0.5 ** (b / 3)``
  and is rebuilt at every event, as the socket does;
* **SLIST** (Choi et al., WWW 2021): the closed form of
  :mod:`recommender.engine.sequence` over every item, with the parameters
  ``peers/order-aware.md`` of the shared data set reports from its tuning on
  a validation carve-out of train (one set tuned for the static lists, one
  for the replay), one position scale for inputs and targets, unnormalised
  rows and an absolute ridge, and the same position-weighted profile. The
  reference code's ``l1`` row scaling is what kept this peer at 0.1511
  NDCG@10 where the data set reports 0.1642: without it, 0.1611.

All use the data set's reported parameters; none reads action strength,
content, popularity or newness (their blend weights are 0). Through the
engine they keep the ``neighbours`` largest positive weights per item
(1,000 here: the lists equal the dense model's on this data) and, like every
model scored by this code, never list an item before its release year.

    peers_fit(ev, train, ratings) -> {name: Engine}
"""

from __future__ import annotations

from recommender.engine import Engine, FitParams, ScoreParams
from recommender.services.evaluation import EvalData, Split, evaluation_engine

#: Links kept per item by the peers: as good as dense for these models here.
PEER_NEIGHBOURS = 1000

#: A bare position-weighted profile: no action strength, content, popularity
#: or newness, so only the item-item model and the order of events count.
PEER_PROFILE = ScoreParams(
    history_half_life_events=3.0,
    action_power=0.0,
    content_weight=0.0,
    popularity_weight=0.0,
    new_weight=0.0,
)

#: Name -> fit parameters (``peers/order-aware.md``: tuned on validation).
PEERS: dict[str, FitParams] = {
    "EASE, live recency-weighted profile (lambda=400, half-life 3)": FitParams(
        method="ease",
        ease_lambda=400.0,
        min_item_events=1,
        neighbours=PEER_NEIGHBOURS,
    ),
    "SLIST (alpha=0.5, lambda=100, tau=2, half-life 3)": FitParams(
        method="slist",
        sequence_alpha=0.5,
        sequence_lambda=100.0,
        sequence_lambda_relative=False,
        sequence_tau=2.0,
        sequence_tau_target=None,
        sequence_normalise="none",
        min_item_events=1,
        neighbours=PEER_NEIGHBOURS,
    ),
    "SLIST tuned for replay (alpha=0.2, lambda=100, tau=1, half-life 3)": FitParams(
        method="slist",
        sequence_alpha=0.2,
        sequence_lambda=100.0,
        sequence_lambda_relative=False,
        sequence_tau=1.0,
        sequence_tau_target=None,
        sequence_normalise="none",
        min_item_events=1,
        neighbours=PEER_NEIGHBOURS,
    ),
}


def peers_fit(ev: EvalData, train: Split, ratings) -> dict[str, Engine]:
    """Return every peer fitted on ``train``, as engines scored by the live code.

    Parameters
    ----------
    ev : EvalData
    train : Split
        The training side of the split (the peers never see the test side).
    ratings : ndarray of shape (n_train,), float32
        Stars of each train row (only the catalog facts read them).

    Returns
    -------
    dict of str to Engine
    """
    out = {}
    for name, fit in PEERS.items():
        engine, _ = evaluation_engine(
            ev,
            train,
            ratings,
            fit_params=fit,
            score_params=PEER_PROFILE,
            progress=lambda _: None,
        )
        out[name] = engine
    return out
