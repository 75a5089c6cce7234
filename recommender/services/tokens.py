"""API tokens for server-to-server event ingestion."""

import hashlib
import secrets
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.utils import timezone

from recommender.models import ApiToken

_PREFIX_CHARS = 8


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class IssuedToken:
    token: str  # shown once, never stored
    record: ApiToken


def token_create(*, username: str, name: str) -> IssuedToken:
    """Create a token for ``username`` named ``name``; only its hash is stored."""
    user = get_user_model().objects.get(username=username)
    token = "rs_" + secrets.token_urlsafe(32)
    record = ApiToken.objects.create(
        user=user, name=name, prefix=token[:_PREFIX_CHARS], key_hash=_hash(token)
    )
    return IssuedToken(token=token, record=record)


def token_authenticate(*, token: str) -> ApiToken | None:
    """Return the live token record matching ``token``, or None."""
    if not token or len(token) > 200:
        return None
    record = ApiToken.objects.filter(
        key_hash=_hash(token), revoked__isnull=True
    ).first()
    if record is not None:
        ApiToken.objects.filter(pk=record.pk).update(last_used=timezone.now())
    return record


def token_revoke(*, prefix: str) -> int:
    """Revoke every live token whose prefix is ``prefix``; return how many."""
    return ApiToken.objects.filter(prefix=prefix, revoked__isnull=True).update(
        revoked=timezone.now()
    )
