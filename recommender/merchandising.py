"""Staff edits of rules and experiments reach every process and open list.

A save or delete of a :class:`~recommender.models.Rule`,
:class:`~recommender.models.Experiment` or
:class:`~recommender.models.Variant`, or a change of a rule's chosen items,
is announced once the transaction commits: this process re-reads the rules
at once, and a message on the group every recommendations socket joins tells
every process's sockets to re-rank their lists and push those that changed.
(Each process also re-checks the rules' stamp every half second, so a lost
announcement still reaches the next lists computed.)

Connected by importing this module in ``RecommenderConfig.ready()``
(through ``recommender.receivers``).
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from recommender import messages
from recommender.models import Experiment, Rule, Variant
from recommender.services.live import live
from recommender.services.rules import merchandising

logger = logging.getLogger(__name__)


def merchandising_announce() -> None:
    """Re-read the rules here and tell every socket of every process; never raise."""
    merchandising.invalidate()
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(
            messages.MERCH_GROUP, messages.layer_merchandising(process=live.process_id)
        )
    except Exception:
        # Lists computed from now on use the new rules anyway (the stamp
        # check); only the re-push of lists already on screen is lost.
        logger.warning("announcing a rule change failed", exc_info=True)


def _changed() -> None:
    """Announce after the commit, once per transaction however many rows changed.

    An admin save writes the rule, then its chosen items: one announcement.
    A rolled-back transaction drops its callbacks, and with them this one.
    """
    pending = getattr(transaction.get_connection(), "run_on_commit", ())
    if any(entry[1] is merchandising_announce for entry in pending):
        return
    transaction.on_commit(merchandising_announce)


@receiver(post_save, sender=Rule, dispatch_uid="recsite-rule-saved")
@receiver(post_delete, sender=Rule, dispatch_uid="recsite-rule-deleted")
@receiver(post_save, sender=Experiment, dispatch_uid="recsite-experiment-saved")
@receiver(post_delete, sender=Experiment, dispatch_uid="recsite-experiment-deleted")
@receiver(post_save, sender=Variant, dispatch_uid="recsite-variant-saved")
@receiver(post_delete, sender=Variant, dispatch_uid="recsite-variant-deleted")
def merchandising_saved(sender: Any, raw: bool = False, **kwargs: Any) -> None:
    """Called after a rule, experiment or variant was saved or deleted."""
    if not raw:
        _changed()


@receiver(m2m_changed, sender=Rule.items.through, dispatch_uid="recsite-rule-items")
def rule_items_changed(sender: Any, action: str, **kwargs: Any) -> None:
    """Called when a rule's chosen items change (the admin saves them last)."""
    if action in ("post_add", "post_remove", "post_clear"):
        _changed()
