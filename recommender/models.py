"""Catalog, browsing history and recommendation snapshots."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from pydantic import ValidationError as ParamsError

from recommender.engine.actions import ACTIONS
from recommender.engine.experiments import VariantParams
from recommender.engine.placements import DEFAULT_PLACEMENT, PLACEMENTS
from recommender.engine.rules import KIND_TARGETS, RULE_KINDS, RULE_TARGETS

PLACEMENT_CHOICES = list(PLACEMENTS.items())


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
    stock = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Units in stock; empty when stock is not tracked.",
    )
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
        # Keyset pages walk the catalog by id within a filter; these keep a
        # filtered page an index range scan at a million rows. Full-text search
        # has a PostgreSQL-only GIN index (migration 0007, SEARCH_VECTOR_SQL in
        # recommender/selectors/items.py).
        indexes = [
            models.Index(fields=["category", "id"], name="item_category_id"),
            models.Index(fields=["price", "id"], name="item_price_id"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def tag_list(self) -> list[str]:
        """Return the tags as a list of stripped, non-empty strings."""
        return [tag.strip() for tag in self.tags.split(",") if tag.strip()]


#: What a visitor did with an item, weakest signal first (``Action.CART`` …),
#: read from the one vocabulary in recommender/engine/actions.py.
Action = models.TextChoices(
    "Action", [(a.name.upper(), (a.name, a.label)) for a in ACTIONS]
)


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
            models.Index(fields=["user", "-created", "-id"], name="event_user_latest"),
            # "Trending" counts the last day's events per item.
            models.Index(fields=["created"], name="event_created"),
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
    variant = models.ForeignKey(
        "Variant",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="snapshots",
        help_text="Experiment variant the list was scored with.",
    )

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
    # A database default too: impressions are written by a raw multi-row
    # INSERT that names only the columns it knows.
    placement = models.CharField(
        max_length=16,
        choices=PLACEMENT_CHOICES,
        default=DEFAULT_PLACEMENT,
        db_default=DEFAULT_PLACEMENT,
    )
    variant = models.ForeignKey(
        "Variant",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="impressions",
        help_text="Experiment variant the list was scored with.",
    )

    class Meta:
        indexes = [
            models.Index(fields=["user", "shown_at"], name="impression_user_time")
        ]

    def __str__(self) -> str:
        return f"{self.user} #{self.position} {self.item_id} v{self.version}"


# --------------------------------------------------------------------------
# Merchandising: rules and experiments (docs/merchandising.md)
# --------------------------------------------------------------------------
class Rule(models.Model):
    """A staff rule that shapes recommendation lists inside scoring.

    Applies to one placement or all (empty), to everyone or only to users in
    one experiment ``variant``. Which fields matter depends on ``kind`` and
    ``target``; :meth:`clean` checks the combination.
    """

    name = models.CharField(max_length=100)
    placement = models.CharField(
        max_length=16,
        choices=PLACEMENT_CHOICES,
        blank=True,
        default="",
        help_text="Empty: every placement.",
    )
    kind = models.CharField(max_length=16, choices=list(RULE_KINDS.items()))
    target = models.CharField(
        max_length=16, choices=list(RULE_TARGETS.items()), default="all"
    )
    category = models.ForeignKey(
        Category,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="rules",
        help_text="For target 'A category'.",
    )
    tag = models.CharField(max_length=100, blank=True, help_text="For target 'A tag'.")
    price = models.DecimalField(
        max_digits=10,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Threshold for targets 'Price over' / 'Price under'.",
    )
    items = models.ManyToManyField(
        Item,
        blank=True,
        related_name="rules",
        help_text="For target 'Chosen items'; a pin shows them in this order.",
    )
    new_within_days = models.PositiveIntegerField(
        default=30, help_text="For target 'New items': created this recently."
    )
    factor = models.FloatField(
        default=2.0, help_text="Boost: above 1 (2 doubles). Bury: below 1."
    )
    position = models.PositiveSmallIntegerField(
        default=1, help_text="Pin: rank in the list, 1 = first."
    )
    cap = models.PositiveSmallIntegerField(
        default=3, help_text="Diversity cap: most items of one category in a list."
    )
    priority = models.IntegerField(
        default=0, help_text="Larger wins when two pins want one position."
    )
    variant = models.ForeignKey(
        "Variant",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="rules",
        help_text="Only for users in this experiment variant; empty: everyone.",
    )
    active = models.BooleanField(default=True, db_index=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-priority", "id"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """Refuse a kind/target combination the engine cannot apply.

        Chosen items are checked by the admin form (many-to-many values are
        not set yet when a new rule is cleaned).
        """
        if self.kind and self.target not in KIND_TARGETS.get(self.kind, ()):
            allowed = ", ".join(
                RULE_TARGETS[t] for t in sorted(KIND_TARGETS[self.kind])
            )
            raise ValidationError({"target": f"Allowed here: {allowed}."})
        required = {
            "category": self.category_id is not None,
            "tag": bool(self.tag.strip()),
            "price_over": self.price is not None,
            "price_under": self.price is not None,
        }
        if not required.get(self.target, True):
            field = "price" if self.target.startswith("price") else self.target
            raise ValidationError({field: "This target needs a value."})
        if self.kind == "boost" and not self.factor > 1:
            raise ValidationError({"factor": "A boost needs a factor above 1."})
        if self.kind == "bury" and not 0 < self.factor < 1:
            raise ValidationError({"factor": "A bury needs a factor between 0 and 1."})
        if self.kind == "cap" and self.cap < 1:
            raise ValidationError({"cap": "A diversity cap needs N of 1 or more."})
        if self.kind == "pin" and self.position < 1:
            raise ValidationError({"position": "Positions start at 1."})


class Experiment(models.Model):
    """An A/B test of engine parameters or rule sets between variants.

    Runs while ``active`` and ``start <= now < end`` (empty = open). Users are
    split by a hash of their assignment key, so every process agrees.
    """

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    start = models.DateTimeField(null=True, blank=True)
    end = models.DateTimeField(null=True, blank=True)
    active = models.BooleanField(default=True)
    created = models.DateTimeField(default=timezone.now)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """Refuse a period that ends before it starts."""
        if self.start and self.end and self.end <= self.start:
            raise ValidationError({"end": "The end comes after the start."})


class Variant(models.Model):
    """One arm of an experiment: a traffic share, engine parameters, rules."""

    experiment = models.ForeignKey(
        Experiment, on_delete=models.CASCADE, related_name="variants"
    )
    name = models.CharField(max_length=50)
    share = models.FloatField(
        help_text="Fraction of all users, 0 to 1; the experiment's shares sum to 1 "
        "at most (the rest keep the default engine)."
    )
    params = models.JSONField(
        default=dict,
        blank=True,
        help_text='Engine parameters to override, e.g. {"content_weight": 0.5}.',
    )
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["experiment", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["experiment", "name"], name="variant_unique_name"
            )
        ]

    def __str__(self) -> str:
        return f"{self.experiment.name}: {self.name}"

    def clean(self) -> None:
        """Refuse parameters the engine does not know or values out of range."""
        if not 0 <= self.share <= 1:
            raise ValidationError({"share": "A share is between 0 and 1."})
        try:
            VariantParams.model_validate(self.params or {})
        except ParamsError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'params'}: {e['msg']}"
                for e in exc.errors()
            )
            raise ValidationError({"params": problems}) from None


class AssignmentKey(models.Model):
    """A user's experiment assignment key, where it is not derived from the id.

    Written when an anonymous visitor who was never shown a list under
    another key logs in, so the account keeps the visitor's variants.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="assignment_key",
    )
    key = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"{self.user_id}: {self.key}"
