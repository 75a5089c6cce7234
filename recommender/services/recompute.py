"""Operator-driven work over every user: refitting the model, recomputing lists.

``recompute_recommendations`` runs :func:`model_refit` then
:func:`users_recompute`; ``seed_demo`` and ``import_movielens`` refit after
loading events.
"""

import time
from collections.abc import Callable

from django.db import transaction

from recommender.engine import Behaviour
from recommender.models import BrowsingEvent, FittedModel, Item
from recommender.selectors import interactions_all
from recommender.services.live import live
from recommender.services.push import push_of, pushes_send
from recommender.services.recommendations import recommendations_compute_many

Progress = Callable[[str], None]

# Older fitted models are kept briefly so a process mid-load never misses one.
_FITTED_MODELS_KEPT = 3
_RECOMPUTE_CHUNK_USERS = 200


def model_refit(*, progress: Progress | None = None) -> FittedModel:
    """Fit the engine's batch part on every stored event and publish it.

    Every server process picks the new model up within
    ``RECS_MODEL_CHECK_SECS``; this one at its next scoring.
    """
    started = time.perf_counter()
    if progress:
        progress("Loading events…")
    interactions = interactions_all()
    if progress:
        progress(f"Fitting item neighbours on {len(interactions.user_ids)} events…")
    behaviour = Behaviour.fit(interactions, now=time.time(), progress=progress)
    fit_ms = (time.perf_counter() - started) * 1000
    with transaction.atomic():
        record = FittedModel.objects.create(
            n_items=Item.objects.count(),
            n_events=len(interactions.user_ids),
            fit_ms=fit_ms,
            data=behaviour.to_bytes(),
        )
        stale = FittedModel.objects.order_by("-id").values_list("id", flat=True)[
            _FITTED_MODELS_KEPT:
        ]
        FittedModel.objects.filter(id__in=list(stale)).delete()
    live.engine.model_changed()
    return record


def users_recompute(
    *, user_ids: list[int] | None = None, progress: Progress | None = None
) -> int:
    """Recompute and push the lists of ``user_ids`` (all users with events if None).

    Users go in chunks of ``_RECOMPUTE_CHUNK_USERS`` through the same path as
    a batch of socket events: one history query, scoring together, one
    transaction for the snapshots, one pipelined push. Returns how many users
    were asked for.
    """
    if user_ids is None:
        user_ids = list(
            BrowsingEvent.objects.order_by()
            .values_list("user_id", flat=True)
            .distinct()
        )
    ordered = sorted(user_ids)
    total = len(ordered)
    reported = 0
    for start in range(0, total, _RECOMPUTE_CHUNK_USERS):
        chunk = ordered[start : start + _RECOMPUTE_CHUNK_USERS]
        lists = recommendations_compute_many(user_ids=chunk)
        pushes_send(
            pushes=[
                push_of(user_id=user_id, message=message)
                for user_id, message in lists.items()
            ]
        )
        done = start + len(chunk)
        if progress and (done - reported >= max(1, total // 10) or done == total):
            reported = done
            progress(f"Recomputed {done}/{total} users…")
    return total
