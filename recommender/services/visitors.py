"""Anonymous visitors: recommendations keyed by their session, merged on login.

A visitor is backed by an inactive user row with an unusable password, so the
events, snapshots, groups and engine serve visitors exactly as they serve
accounts. The row's id lives in the session; when the visitor logs in, their
history and list version move to the account and the visitor row goes away.
"""

import uuid
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.db.models import Max

from recommender.models import BrowsingEvent, Impression, RecommendationSnapshot
from recommender.services.experiments import assignment_key_merge

SESSION_KEY = "recsite_visitor_id"
USERNAME_PREFIX = "visitor-"


def visitor_for_session(*, session: dict, create: bool) -> int | None:
    """Return the visitor user id stored in ``session``, creating one if asked.

    The caller saves the session when it was changed.
    """
    User = get_user_model()
    visitor_id = session.get(SESSION_KEY)
    if (
        visitor_id is not None
        and User.objects.filter(pk=visitor_id, is_active=False).exists()
    ):
        return int(visitor_id)
    if not create:
        return None
    visitor = User.objects.create(
        username=f"{USERNAME_PREFIX}{uuid.uuid4().hex}",
        password=make_password(None),
        is_active=False,
    )
    session[SESSION_KEY] = visitor.pk
    return visitor.pk


def visitor_for_socket(*, session: Any) -> int | None:
    """Return the visitor behind a socket's session, creating one on first use.

    None when the socket carries no session at all (no cookie, or a cookie
    naming no stored session): such a socket is refused. A new visitor's id
    is saved in the session, so the page's next socket finds it.
    """
    if session is None or session.session_key is None:
        return None
    visitor_id = visitor_for_session(session=session, create=False)
    if session.session_key is None:
        return None  # the cookie named no stored session
    if visitor_id is None:
        visitor_id = visitor_for_session(session=session, create=True)
        session.save()
    return visitor_id


def visitor_merge(*, visitor_id: int, user_id: int) -> int:
    """Move a visitor's history into an account; return how many events moved.

    The account's next snapshot version continues above both, so a tab that
    showed the visitor's list never sees an older version afterwards.
    """
    User = get_user_model()
    with transaction.atomic():
        visitor = (
            User.objects.select_for_update()
            .filter(
                pk=visitor_id, is_active=False, username__startswith=USERNAME_PREFIX
            )
            .first()
        )
        if visitor is None or visitor_id == user_id:
            return 0
        # Before the impressions move: an account never shown a list keeps
        # the visitor's experiment variants.
        assignment_key_merge(visitor_id=visitor_id, user_id=user_id)
        taken = set(
            BrowsingEvent.objects.filter(user_id=user_id)
            .exclude(client_id="")
            .values_list("client_id", flat=True)
        )
        events = BrowsingEvent.objects.filter(user_id=visitor_id)
        events.filter(client_id__in=taken).update(client_id="")
        moved = events.update(user_id=user_id)
        Impression.objects.filter(user_id=visitor_id).update(user_id=user_id)
        top = RecommendationSnapshot.objects.filter(
            user_id__in=[visitor_id, user_id]
        ).aggregate(top=Max("version"))["top"]
        latest = (
            RecommendationSnapshot.objects.filter(user_id=visitor_id)
            .order_by("-version")
            .first()
        )
        if latest is not None:
            RecommendationSnapshot.objects.create(
                user_id=user_id,
                version=(top or 0) + 1,
                items=latest.items,
                computed_ms=latest.computed_ms,
                variant_id=latest.variant_id,
            )
        visitor.delete()
    return moved
