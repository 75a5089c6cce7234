"""Settings for recsite, read from the environment.

Every value has a development default so that a first run needs nothing but
Python: SQLite instead of PostgreSQL, the in-memory channel layer instead of
Redis. Defaults that would be unsafe in production (the secret key, the host
list) apply only when ``DJANGO_DEBUG`` is on; otherwise a missing value raises
``ImproperlyConfigured``. See ``.env.example`` for every variable.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from dotenv import load_dotenv

BASE_DIR = Path(__file__).resolve().parent.parent

# A development checkout keeps its settings in ``.env`` (written by ``make demo``
# when missing, gitignored), so every ``manage.py`` command of the README runs
# against the demo's database as printed. Variables already in the environment
# win over the file; DJANGO_ENV_FILE names another file, or none when empty
# (the test suite). A production host has no .env: its process manager sets
# the variables, and DJANGO_SECRET_KEY stays required with DEBUG off.
ENV_FILE = os.environ.get("DJANGO_ENV_FILE", str(BASE_DIR / ".env"))
if ENV_FILE:
    load_dotenv(ENV_FILE, override=False)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_bool(name: str, default: bool) -> bool:
    """Return the boolean environment variable ``name``; fail on unknown words."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use 1/0, true/false)")


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    """Return the integer environment variable ``name``; fail when not an int."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={value} must be at least {minimum}")
    return value


def env_float(name: str, default: float, *, minimum: float = 0.0) -> float:
    """Return the float environment variable ``name``; fail when not a number."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number") from None
    if not value >= minimum:
        raise ImproperlyConfigured(f"{name}={value} must be at least {minimum}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    """Return the comma-separated environment variable ``name`` as a list."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [part.strip() for part in raw.split(",") if part.strip()]


DEBUG = env_bool("DJANGO_DEBUG", False)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off. In a "
            "development checkout run `make demo` once (it writes a .env with "
            "DJANGO_DEBUG=1) or set DJANGO_DEBUG=1; in production set "
            "DJANGO_SECRET_KEY and DJANGO_ALLOWED_HOSTS (see .env.example)."
        )
    SECRET_KEY = (
        "django-insecure-development-only-key-do-not-use-in-production-0123456789"
    )

ALLOWED_HOSTS = env_list(
    "DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else []
)
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured(
        "DJANGO_ALLOWED_HOSTS must be set when DJANGO_DEBUG is off"
    )
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    # Serves the API docs page with the Swagger UI files django-ninja ships
    # (through whitenoise) instead of a CDN.
    "ninja",
    "channels",
    "sync",
    "recommender",
    "recsite.apps.RecsiteConfig",
]
# Apps only the test suite installs (tests/testenv.py), e.g. sync's test model.
INSTALLED_APPS += env_list("RECSITE_TEST_APPS", [])

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Outside CommonMiddleware, so it sees the final /api/ response (JSON
    # errors for unknown paths and methods; APPEND_SLASH redirects pass).
    "recsite.middleware.ApiErrorMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "recsite.urls"
ASGI_APPLICATION = "recsite.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# DATABASE_URL (e.g. postgres://user@127.0.0.1:5432/recsite) selects the
# database; SQLite in the project folder is the zero-setup default.
DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DJANGO_CONN_MAX_AGE_SECS", 60),
        # A health check is one more round trip at the start of every worker
        # hop (per event on the sockets); a dead connection surfaces as one
        # failed frame answered "unavailable", which the client retries.
        conn_health_checks=env_bool("DJANGO_CONN_HEALTH_CHECKS", False),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several threads (daphne's sync workers) write at once; wait for the lock
    # instead of failing with "database is locked". A deferred transaction
    # that reads first and then writes cannot wait (SQLite refuses the upgrade
    # at once), so transactions take the write lock when they begin.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        timeout=20, transaction_mode="IMMEDIATE"
    )
if os.environ.get("DJANGO_TEST_DATABASE_NAME"):
    # Lets several test runs share one PostgreSQL server without colliding.
    DATABASES["default"]["TEST"] = {"NAME": os.environ["DJANGO_TEST_DATABASE_NAME"]}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    # The pub/sub layer: one subscription per group per process with in-process
    # fan-out, no per-channel capacity that drops messages silently, and no
    # polling of per-channel lists. Lost broadcasts are recovered from the
    # change log (heartbeat + resume), so the layer need not be durable.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {
                # Channel and group names in Redis start with this; deployments
                # (or test runs) sharing one Redis keep apart by using their own.
                "prefix": os.environ.get("REDIS_PREFIX", "recsite"),
                "hosts": [
                    {
                        "address": REDIS_URL,
                        # redis-py's default 5 s socket timeout kills idle
                        # subscribers (channels_redis#422); keep the read
                        # blocking and rely on TCP keepalive instead.
                        "socket_timeout": None,
                        "socket_connect_timeout": 5,
                        "socket_keepalive": True,
                        "health_check_interval": 15,
                    }
                ],
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

if env_bool("DJANGO_INSECURE_FAST_HASHER", False):
    # The test suite only: creating hundreds of users with PBKDF2 takes minutes.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"
    },
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "recsite.storage.ModuleAwareStaticFilesStorage"
        )
    },
}

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

# Behind TLS (nginx or daphne with a certificate) set DJANGO_SECURE=1: secure
# cookies, HTTPS redirect, HSTS. Off by default so the loopback demo works.
SECURE = env_bool("DJANGO_SECURE", False)
SESSION_COOKIE_SECURE = SECURE
CSRF_COOKIE_SECURE = SECURE
SECURE_SSL_REDIRECT = SECURE and env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31536000 if SECURE else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", SECURE)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", SECURE)
if env_bool("DJANGO_BEHIND_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

LOG_LEVEL = os.environ.get("DJANGO_LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        # Django's default config gives "django" its own console handler (with
        # DEBUG on) and lets it propagate to root's as well: every warning
        # would print twice. One handler, at the root, prints everything.
        "django": {"handlers": [], "level": "WARNING", "propagate": True},
        "recommender": {"level": LOG_LEVEL},
        "sync": {"level": LOG_LEVEL},
        "recsite": {"level": LOG_LEVEL},
    },
}

# --- recsite product settings -------------------------------------------------

# Change log: keep at most this many rows and rows no older than this; a
# client resuming from before the oldest kept row gets "reset".
SYNC_CHANGELOG_MAX_ROWS = env_int("SYNC_CHANGELOG_MAX_ROWS", 10_000, minimum=1)
SYNC_CHANGELOG_MAX_AGE_SECS = env_int(
    "SYNC_CHANGELOG_MAX_AGE_SECS", 7 * 24 * 3600, minimum=1
)
# Longest wait for one broadcast through the channel layer before it is
# counted as failed (clients then recover from the change log).
BROADCAST_TIMEOUT_SECS = env_float("BROADCAST_TIMEOUT_SECS", 2.0, minimum=0.01)
# How often every /ws/sync/ socket gets {"type":"heartbeat","seq":S}.
SYNC_HEARTBEAT_SECS = env_float("SYNC_HEARTBEAT_SECS", 15.0, minimum=0.05)
# A /ws/sync/ handshake greets with the latest seq: the process's hub knows it
# from the change stream and confirms it in the database at most this often.
SYNC_SEQ_CACHE_SECS = env_float("SYNC_SEQ_CACHE_SECS", 1.0, minimum=0.0)
# Largest number of changes sent in one resume; older clients get "reset".
SYNC_RESUME_MAX_CHANGES = env_int("SYNC_RESUME_MAX_CHANGES", 5_000, minimum=1)

# WebSocket input limits (see docs/security.md).
WS_MAX_FRAME_BYTES = env_int("WS_MAX_FRAME_BYTES", 4096, minimum=64)
WS_EVENT_RATE_PER_SEC = env_float("WS_EVENT_RATE_PER_SEC", 10.0, minimum=0.01)
WS_EVENT_BURST = env_int("WS_EVENT_BURST", 20, minimum=1)
WS_USER_EVENT_RATE_PER_SEC = env_float("WS_USER_EVENT_RATE_PER_SEC", 20.0, minimum=0.01)
WS_USER_EVENT_BURST = env_int("WS_USER_EVENT_BURST", 40, minimum=1)
WS_MAX_INVALID_FRAMES = env_int("WS_MAX_INVALID_FRAMES", 50, minimum=1)
WS_MAX_SOCKETS_PER_USER = env_int("WS_MAX_SOCKETS_PER_USER", 20, minimum=1)
# Frames received but not yet served, per socket, before it is closed (1008):
# at most ~4 MiB of 4 KiB frames; far above what a client within its rate
# limit can have waiting while a burst of events is stored.
WS_MAX_QUEUED_FRAMES = env_int("WS_MAX_QUEUED_FRAMES", 1024, minimum=1)
# Bytes sent but not yet read by a client before it is dropped (slow reader).
WS_MAX_SEND_BUFFER_BYTES = env_int(
    "WS_MAX_SEND_BUFFER_BYTES", 4 * 1024 * 1024, minimum=1024
)

# Engine: how many recent events make a user's profile, and list length.
RECS_HISTORY_EVENTS = env_int("RECS_HISTORY_EVENTS", 200, minimum=1)
RECS_LIST_LENGTH = env_int("RECS_LIST_LENGTH", 10, minimum=1)
RECS_SNAPSHOTS_KEPT_PER_USER = env_int("RECS_SNAPSHOTS_KEPT_PER_USER", 20, minimum=1)
# Each process keeps the recent histories of up to this many users in memory
# and reads them again in full after this many seconds (docs/performance.md).
RECS_HISTORY_CACHE_USERS = env_int("RECS_HISTORY_CACHE_USERS", 10000, minimum=0)
RECS_HISTORY_CACHE_SECS = env_float("RECS_HISTORY_CACHE_SECS", 60.0, minimum=0.0)
# Socket events are written and scored in batches (one durable commit each);
# a batch holds every event that arrived while the previous one ran, up to this.
RECS_EVENT_BATCH_MAX = env_int("RECS_EVENT_BATCH_MAX", 256, minimum=1)
# How often a process polls the change-log seq for catalog edits whose
# broadcast it missed (broadcasts are seen at once).
RECS_CATALOG_CHECK_SECS = env_float("RECS_CATALOG_CHECK_SECS", 1.0, minimum=0.0)
# Catalog edits are applied to the engine row by row; a full build (after a
# category is deleted, or edits to a twentieth of the catalog) runs on the
# spot up to this many items (~0.3 s at 50k) and in a background thread beyond.
RECS_CATALOG_INLINE_BUILD_MAX = env_int(
    "RECS_CATALOG_INLINE_BUILD_MAX", 50_000, minimum=0
)
# How often a server process checks for a newer fitted model (seconds).
RECS_MODEL_CHECK_SECS = env_float("RECS_MODEL_CHECK_SECS", 2.0, minimum=0.0)

# Token for scraping /metrics without a staff session; empty disables it.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")

# daphne's WebSocket pings (seconds): a socket that does not answer a ping
# within the timeout is dropped, so presence counts stay exact.
WS_PING_INTERVAL_SECS = env_int("WS_PING_INTERVAL_SECS", 20, minimum=1)
WS_PING_TIMEOUT_SECS = env_int("WS_PING_TIMEOUT_SECS", 30, minimum=1)

# permessage-deflate (RFC 7692) when the client offers it; small zlib windows
# bound the memory a compressed socket costs (see docs/performance.md).
WS_COMPRESSION = env_bool("WS_COMPRESSION", True)
WS_DEFLATE_WINDOW_BITS = env_int("WS_DEFLATE_WINDOW_BITS", 11, minimum=9)
WS_DEFLATE_MEM_LEVEL = env_int("WS_DEFLATE_MEM_LEVEL", 4, minimum=1)
# Listen backlog: a reconnect storm of thousands of sockets must not be refused.
WS_LISTEN_BACKLOG = env_int("WS_LISTEN_BACKLOG", 4096, minimum=16)
