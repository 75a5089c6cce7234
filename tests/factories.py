"""Small builders of test data shared by the suite."""

from django.contrib.auth import get_user_model
from django.test import Client

from recommender.models import Category, Item


def catalog(n: int = 24) -> list[Item]:
    """Create ``n`` active items in three categories, with tags, prices, ratings."""
    categories = [
        Category.objects.create(name=name) for name in ("Books", "Games", "Music")
    ]
    return [
        Item.objects.create(
            title=f"Item {i}",
            category=categories[i % 3],
            tags=["red, small", "blue, large", "green, small"][i % 3],
            price=5 + i,
            rating=3.0 + (i % 5) * 0.4,
        )
        for i in range(n)
    ]


def session_cookie(username: str, *, staff: bool = False) -> tuple[int, bytes]:
    """Create a user, log them in, and return (user id, Cookie header value)."""
    user = get_user_model().objects.create_user(
        username, password=f"{username}-pw-123456"
    )
    if staff:
        user.is_staff = True
        user.save()
    client = Client()
    client.force_login(user)
    return user.pk, f"sessionid={client.cookies['sessionid'].value}".encode()


def ws_headers(cookie: bytes | None = None) -> list[tuple[bytes, bytes]]:
    """Return handshake headers from an allowed origin, with an optional cookie."""
    headers = [(b"origin", b"http://testserver")]
    if cookie:
        headers.append((b"cookie", cookie))
    return headers
