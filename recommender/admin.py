"""Django admin for the catalog, events, snapshots and API tokens (staff only)."""

from django.contrib import admin
from django.db.models import Count
from django.utils import timezone

from recommender import admin_merchandising  # noqa: F401  (rules, experiments)
from recommender.models import (
    ApiToken,
    BrowsingEvent,
    Category,
    FittedModel,
    Item,
    RecommendationSnapshot,
)


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["name", "item_count"]
    search_fields = ["name", "description"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_items=Count("items"))

    @admin.display(ordering="_items", description="items")
    def item_count(self, obj: Category) -> int:
        return obj._items


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ["title", "category", "price", "rating", "year", "active", "updated"]
    list_display_links = ["title"]
    list_editable = ["active"]
    list_filter = ["active", "category", "created", "updated"]
    search_fields = ["title", "description", "tags", "external_id"]
    list_select_related = ["category"]
    readonly_fields = ["created", "updated"]
    actions = ["deactivate", "activate"]
    fieldsets = [
        (None, {"fields": ["title", "description", "category", "tags"]}),
        ("Commerce", {"fields": ["price", "rating", "year", "active"]}),
        ("Provenance", {"fields": ["external_id", "created", "updated"]}),
    ]

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
