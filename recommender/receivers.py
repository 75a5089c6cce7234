"""Signal receivers: visitor merge on login, category edits reaching the change log.

Connected by importing this module in ``RecommenderConfig.ready()``.
"""

from typing import Any

from django.contrib.auth.signals import user_logged_in
from django.db.models.signals import post_delete, post_save, pre_delete
from django.dispatch import receiver

from recommender import merchandising  # noqa: F401  (rule changes re-push lists)
from recommender.models import Category, Item
from recommender.services.catalog import items_changed
from recommender.services.visitors import SESSION_KEY, visitor_merge


@receiver(user_logged_in, dispatch_uid="recsite-merge-visitor")
def merge_visitor_on_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """Called after login (the session data survives the key rotation)."""
    session = getattr(request, "session", None)
    if session is None or SESSION_KEY not in session:
        return
    visitor_id = session.pop(SESSION_KEY)
    visitor_merge(visitor_id=int(visitor_id), user_id=user.pk)


@receiver(post_save, sender=Category, dispatch_uid="recsite-category-renamed")
def category_saved(
    sender: Any, instance: Category, raw: bool, created: bool, **kwargs: Any
) -> None:
    """A renamed category changes every item's wire form: record their upserts."""
    if raw or created:
        return
    items_changed(Item.objects.filter(category_id=instance.pk))


@receiver(pre_delete, sender=Category, dispatch_uid="recsite-category-deleting")
def category_deleting(sender: Any, instance: Category, **kwargs: Any) -> None:
    """Remember the items whose category is about to be cleared (SET_NULL)."""
    instance._item_ids = list(instance.items.values_list("pk", flat=True))


@receiver(post_delete, sender=Category, dispatch_uid="recsite-category-deleted")
def category_deleted(sender: Any, instance: Category, **kwargs: Any) -> None:
    """Record the upserts of items that lost their category with it."""
    ids = getattr(instance, "_item_ids", [])
    if ids:
        items_changed(Item.objects.filter(pk__in=ids))
