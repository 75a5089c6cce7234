"""Django admin for the catalog, events, snapshots and API tokens (staff only)."""

import json

from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from django.utils.functional import cached_property

from recommender import admin_merchandising  # noqa: F401  (rules, experiments)
from recommender.models import (
    ApiToken,
    BrowsingEvent,
    Category,
    FittedModel,
    Item,
    RecommendationSnapshot,
)
from recommender.selectors.items import items_search


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["name", "item_count"]
    search_fields = ["name", "description"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_items=Count("items"))

    @admin.display(ordering="_items", description="items")
    def item_count(self, obj: Category) -> int:
        return obj._items


class EstimatedCountPaginator(Paginator):
    """A paginator that does not count a million rows to draw page links.

    Up to ``EXACT_MAX`` matches are counted exactly (a count that stops
    there); beyond, PostgreSQL's own estimate is used: the table's
    ``reltuples`` when unfiltered, the planner's row estimate otherwise.
    Page links may then be slightly off at the far end; every row is still
    reachable and the first pages render at once.
    """

    EXACT_MAX = 10_000

    @cached_property
    def count(self) -> int:
        query = self.object_list
        if connection.vendor != "postgresql" or not isinstance(query, QuerySet):
            return super().count
        capped = query.order_by()[: self.EXACT_MAX + 1].count()
        if capped <= self.EXACT_MAX:
            return capped
        if not query.query.where:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                    [query.model._meta.db_table],
                )
                (estimate,) = cursor.fetchone()
        else:
            plan = json.loads(query.order_by().explain(format="json"))
            estimate = int(plan[0]["Plan"]["Plan Rows"])
        return max(int(estimate), capped)


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ["title", "category", "price", "rating", "year", "active", "updated"]
    list_display_links = ["title"]
    list_editable = ["active"]
    # Every filter and the default order (id) are indexed.
    list_filter = ["active", "category", "created"]
    search_fields = ["title", "tags", "external_id"]
    search_help_text = (
        "Words of the title or tags (each must match); an id; an external id."
    )
    list_select_related = ["category"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    readonly_fields = ["created", "updated"]
    actions = ["deactivate", "activate"]
    fieldsets = [
        (None, {"fields": ["title", "description", "category", "tags"]}),
        ("Commerce", {"fields": ["price", "stock", "rating", "year", "active"]}),
        ("Provenance", {"fields": ["external_id", "created", "updated"]}),
    ]

    def get_search_results(self, request, queryset, search_term):
        """Search by words through the full-text index on PostgreSQL.

        Django's default (``icontains`` on every field) scans the whole table,
        seconds at a million items. Elsewhere the default applies.
        """
        term = search_term.strip()
        if not term or connection.vendor != "postgresql":
            return super().get_search_results(request, queryset, search_term)
        if term.isdigit():
            return queryset.filter(Q(pk=int(term)) | Q(external_id=term)), False
        if ":" in term:  # external ids look like "movielens:42"
            return queryset.filter(external_id=term), False
        matching = items_search(q=term, active_only=False)
        return queryset.filter(pk__in=matching.values("pk")), False

    # Per-object saves so each change reaches the change log and the dashboards.
    @admin.action(description="Deactivate selected items")
    def deactivate(self, request, queryset) -> None:
        for item in queryset.filter(active=True):
            item.active = False
            item.save(update_fields=["active", "updated"])

    @admin.action(description="Activate selected items")
    def activate(self, request, queryset) -> None:
        for item in queryset.filter(active=False):
            item.active = True
            item.save(update_fields=["active", "updated"])


@admin.register(BrowsingEvent)
class BrowsingEventAdmin(admin.ModelAdmin):
    list_display = ["created", "user", "action", "item", "weight", "client_id"]
    list_filter = ["action", "created"]
    search_fields = ["user__username", "item__title", "client_id"]
    raw_id_fields = ["user", "item"]
    list_select_related = ["user", "item"]
    date_hierarchy = "created"


@admin.register(RecommendationSnapshot)
class RecommendationSnapshotAdmin(admin.ModelAdmin):
    list_display = ["user", "version", "computed_at", "computed_ms", "size"]
    list_filter = ["computed_at"]
    search_fields = ["user__username"]
    raw_id_fields = ["user"]
    readonly_fields = ["user", "version", "items", "computed_at", "computed_ms"]

    @admin.display(description="items")
    def size(self, obj: RecommendationSnapshot) -> int:
        return len(obj.items)


@admin.register(FittedModel)
class FittedModelAdmin(admin.ModelAdmin):
    list_display = ["id", "created", "n_items", "n_events", "fit_ms"]
    exclude = ["data"]
    readonly_fields = ["created", "n_items", "n_events", "fit_ms"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "prefix", "created", "last_used", "revoked"]
    list_filter = ["revoked", "created"]
    search_fields = ["name", "prefix", "user__username"]
    readonly_fields = ["prefix", "key_hash", "created", "last_used"]
    actions = ["revoke"]

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request, queryset) -> None:
        queryset.filter(revoked__isnull=True).update(revoked=timezone.now())

    def has_add_permission(self, request) -> bool:
        # Tokens are issued by `manage.py create_api_token`, which shows the
        # secret once; the admin only stores hashes.
        return False
