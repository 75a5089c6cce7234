"""Reads of the change log."""

from dataclasses import dataclass

from django.db import transaction

from sync.models import Change, SeqCounter


def seq_latest() -> int:
    """Return the sequence number of the latest committed change (0 if none)."""
    value = SeqCounter.objects.filter(pk=1).values_list("value", flat=True).first()
    return int(value or 0)


@dataclass(frozen=True)
class ResumePlan:
    """What to send a client that resumes: ``changes`` or, if ``reset``, nothing."""

    reset: bool
    seq: int
    changes: list[Change]


def changes_after(*, after: int, limit: int) -> ResumePlan:
    """Return every change with seq > ``after`` in order, or a reset.

    A reset is returned when ``after`` is ahead of the log (the client saw
    another database), when more than ``limit`` changes were missed, or when
    part of the range has been pruned.
    """
    with transaction.atomic():
        latest = seq_latest()
        if after > latest or latest - after > limit:
            return ResumePlan(reset=True, seq=latest, changes=[])
        changes = list(
            Change.objects.filter(seq__gt=after, seq__lte=latest).order_by("seq")
        )
    if len(changes) != latest - after:
        return ResumePlan(reset=True, seq=latest, changes=[])
    return ResumePlan(reset=False, seq=latest, changes=changes)


def changed_keys(*, model: str, after: int, until: int, limit: int) -> set[str] | None:
    """Return the keys of ``model``'s objects changed ``after`` < seq <= ``until``.

    For a reader that keeps its own copy of the synced rows and only needs to
    know which to read again. None when the range holds more than ``limit``
    changes or part of it has been pruned: read everything instead.
    """
    if until <= after:
        return set()
    if until - after > limit:
        return None
    rows = list(
        Change.objects.filter(seq__gt=after, seq__lte=until).values_list(
            "model", "object_id"
        )
    )
    if len(rows) != until - after:
        return None
    return {key for name, key in rows if name == model}
