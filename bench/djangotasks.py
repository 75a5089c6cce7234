"""Django-side helpers of the benchmarks, run as a subprocess with the bench env.

    djangotasks.py users N       create N users with logged-in sessions; print
                                 {"cookies": [...], "items": [...]} as JSON
    djangotasks.py committer     read "save N" lines on stdin; save N items,
                                 one transaction each, with the send time in
                                 the title; answer "done [t, ...]"

Sessions are written straight to the session table (what Django's login
does, minus 1,000 password hashes), so 1,000 users are ready in a second.
"""

import json
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsite.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.hashers import make_password  # noqa: E402
from django.contrib.sessions.backends.db import SessionStore  # noqa: E402
from django.contrib.sessions.models import Session  # noqa: E402
from django.utils import timezone  # noqa: E402
from django.utils.crypto import get_random_string  # noqa: E402

from recommender.models import Item  # noqa: E402

PREFIX = "bench_user_"
BACKEND = "django.contrib.auth.backends.ModelBackend"


def users(count: int) -> None:
    User = get_user_model()
    names = [f"{PREFIX}{i:05d}" for i in range(count)]
    existing = set(
        User.objects.filter(username__in=names).values_list("username", flat=True)
    )
    hashed = make_password("bench-password")
    User.objects.bulk_create(
        [User(username=n, password=hashed) for n in names if n not in existing],
        batch_size=1000,
    )
    store = SessionStore()
    expire = timezone.now() + timedelta(days=1)
    sessions = []
    cookies = []
    for user in User.objects.filter(username__in=names).order_by("username"):
        key = get_random_string(32, "abcdefghijklmnopqrstuvwxyz0123456789")
        data = store.encode(
            {
                "_auth_user_id": str(user.pk),
                "_auth_user_backend": BACKEND,
                "_auth_user_hash": user.get_session_auth_hash(),
            }
        )
        sessions.append(Session(session_key=key, session_data=data, expire_date=expire))
        cookies.append(f"{settings.SESSION_COOKIE_NAME}={key}")
    Session.objects.bulk_create(sessions, batch_size=1000)
    items = list(
        Item.objects.filter(active=True).order_by("id").values_list("id", flat=True)
    )
    print(json.dumps({"cookies": cookies, "items": items}))


def committer() -> None:
    items = list(Item.objects.filter(active=True).order_by("id")[:500])
    turn = 0
    print("ready", flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] == "quit":
            break
        if words[0] == "save":
            sent = []
            for _ in range(int(words[1])):
                item = items[turn % len(items)]
                turn += 1
                t = time.monotonic()
                item.title = f"bench t={t:.6f} #{turn}"
                item.save()
                sent.append(t)
            print("done " + json.dumps(sent), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "users":
        users(int(sys.argv[2]))
    elif sys.argv[1] == "committer":
        committer()
    else:
        raise SystemExit(__doc__)
