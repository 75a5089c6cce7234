"""Catalog, browsing history and recommendation snapshots."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Category(models.Model):
    """A shelf of the catalog (a genre, a department)."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name


class Item(models.Model):
    """One thing a visitor can view, like, put in a cart or buy."""

    title = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    category = models.ForeignKey(
        Category, null=True, blank=True, on_delete=models.SET_NULL, related_name="items"
    )
    tags = models.CharField(
        max_length=500,
        blank=True,
        help_text="Comma-separated, e.g. 'wireless, compact'.",
    )
    price = models.DecimalField(max_digits=10, decimal_places=2, default=0)
    rating = models.FloatField(default=0.0, help_text="Average rating, 0 to 5.")
    year = models.PositiveSmallIntegerField(null=True, blank=True)
    active = models.BooleanField(default=True, db_index=True)
    external_id = models.CharField(
        max_length=64,
        blank=True,
        default="",
        help_text="Identifier in the system the item was imported from.",
    )
    created = models.DateTimeField(default=timezone.now, db_index=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["external_id"],
                condition=~Q(external_id=""),
                name="item_unique_external_id",
            )
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def tag_list(self) -> list[str]:
        """Return the tags as a list of stripped, non-empty strings."""
        return [tag.strip() for tag in self.tags.split(",") if tag.strip()]


class Action(models.TextChoices):
    """What a visitor did with an item, weakest signal first."""

    VIEW = "view", "view"
    CLICK = "click", "click"
    LIKE = "like", "like"
    CART = "cart", "add to cart"
    PURCHASE = "purchase", "purchase"


class BrowsingEvent(models.Model):
    """One durable browsing event; ``client_id`` makes resending idempotent."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="browsing_events",
    )
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="events")
    action = models.CharField(max_length=16, choices=Action.choices)
    weight = models.FloatField()
    client_id = models.CharField(max_length=64, blank=True, default="")
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["user", "-created", "-id"], name="event_user_latest")
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "client_id"],
                condition=~Q(client_id=""),
                name="event_unique_client_id",
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.action} {self.item_id}"


class RecommendationSnapshot(models.Model):
    """A user's recommendation list as computed at one moment.

    ``items`` holds ``[{"id", "title", "score", "reasons"}]`` best first;
    ``version`` increases by one per user with every recompute.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="recommendation_snapshots",
    )
    version = models.PositiveIntegerField()
    items = models.JSONField(default=list)
    computed_at = models.DateTimeField(default=timezone.now)
    computed_ms = models.FloatField(default=0.0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "version"], name="snapshot_unique_version"
            )
        ]
        indexes = [
            models.Index(fields=["user", "-version"], name="snapshot_user_latest")
        ]

    def __str__(self) -> str:
        return f"{self.user} v{self.version}"


class FittedModel(models.Model):
    """The engine's batch-fitted part (item neighbours, popularity), serialised.

    Every server process loads the newest row, so a refit by
    ``recompute_recommendations`` reaches all of them atomically.
    """

    created = models.DateTimeField(default=timezone.now)
    n_items = models.PositiveIntegerField()
    n_events = models.PositiveIntegerField()
    fit_ms = models.FloatField()
    data = models.BinaryField()

    class Meta:
        get_latest_by = "id"

    def __str__(self) -> str:
        return f"model #{self.pk} ({self.n_items} items, {self.n_events} events)"


class ApiToken(models.Model):
    """A named bearer token for server-to-server event ingestion.

    Only the SHA-256 of the token is stored; the token itself is shown once.
    """

    name = models.CharField(max_length=100)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    prefix = models.CharField(
        max_length=12, help_text="First characters, to recognise it."
    )
    key_hash = models.CharField(max_length=64, unique=True)
    created = models.DateTimeField(default=timezone.now)
    last_used = models.DateTimeField(null=True, blank=True)
    revoked = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class Impression(models.Model):
    """One recommended item shown to a user: which list version, at what rank."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="impressions"
    )
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="impressions")
    version = models.PositiveIntegerField()
    position = models.PositiveSmallIntegerField(
        help_text="Rank in the list, 1 = first."
    )
    shown_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        indexes = [
            models.Index(fields=["user", "shown_at"], name="impression_user_time")
        ]

    def __str__(self) -> str:
        return f"{self.user} #{self.position} {self.item_id} v{self.version}"
