from django.db import models


class Note(models.Model):
    """A line of text every open page shows."""

    text = models.CharField(max_length=200)

    def __str__(self) -> str:
        return self.text
