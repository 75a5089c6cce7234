from django.contrib import admin

from sync.models import Change


@admin.register(Change)
class ChangeAdmin(admin.ModelAdmin):
    """The change log, read-only: it is written by the sync service alone."""

    list_display = ["seq", "model", "op", "object_id", "created"]
    list_filter = ["model", "op"]
    search_fields = ["object_id"]
    ordering = ["-seq"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
