"""The test-only model sync's own tests write to."""

from django.db import models


class Note(models.Model):
    """A short text with a number, synced as ``"note"``."""

    text = models.CharField(max_length=200)
    stars = models.IntegerField(default=0)
    price = models.DecimalField(max_digits=8, decimal_places=2, default=0)

    def __str__(self) -> str:
        return self.text
