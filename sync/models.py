"""The change log: one row per committed change, numbered without gaps."""

from django.db import models
from django.utils import timezone


class SeqCounter(models.Model):
    """The single row that hands out change sequence numbers.

    Incrementing it takes a row lock held until commit, so sequence numbers are
    given out in commit order and a rolled-back change leaves no gap, across
    every process that shares the database.
    """

    value = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"seq {self.value}"


class Change(models.Model):
    """A committed create, update or delete of a synced object."""

    class Op(models.TextChoices):
        UPSERT = "upsert"
        DELETE = "delete"

    seq = models.BigIntegerField(primary_key=True)
    model = models.CharField(max_length=50)
    op = models.CharField(max_length=10, choices=Op.choices)
    object_id = models.CharField(max_length=64)
    data = models.JSONField(null=True, blank=True)
    # What shapes read of the row before this change, so a row leaving a
    # client's shape is told from one never in it: the fields as a dict,
    # false when the row did not exist, null when the writer did not say.
    before = models.JSONField(null=True, blank=True)
    created = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["seq"]

    def __str__(self) -> str:
        return f"#{self.seq} {self.op} {self.model} {self.object_id}"
