"""Merge a visitor's anonymous history into the account they log in to."""

from typing import Any

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

from recommender.services.visitors import SESSION_KEY, visitor_merge


@receiver(user_logged_in, dispatch_uid="recsite-merge-visitor")
def merge_visitor_on_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """Called after login (the session data survives the key rotation)."""
    session = getattr(request, "session", None)
    if session is None or SESSION_KEY not in session:
        return
    visitor_id = session.pop(SESSION_KEY)
    visitor_merge(visitor_id=int(visitor_id), user_id=user.pk)
