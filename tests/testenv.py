"""Environment defaults for the test suite, loaded as a plugin (``-p tests.testenv``)
before pytest-django reads the settings."""

import os
import tempfile

# A developer's .env (written by ``make demo``: DEBUG on, the demo database)
# must not leak into the suite or the server processes it starts.
os.environ["DJANGO_ENV_FILE"] = ""
os.environ.setdefault(
    "DJANGO_SECRET_KEY", "test-only-secret-key-not-for-production-use-1234567890"
)
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
# One BLAS thread, as in the server: small matvecs are faster without wake-ups.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# Each run gets its own test database, so parallel runs on one server never
# fight over it (pytest-django creates and drops it). On SQLite (no
# DATABASE_URL) it is a file in the temporary folder, not in memory, so the
# server and command processes a test starts can open the same database
# (tests/support/env.py hands them its absolute path).
if os.environ.get("DATABASE_URL"):
    os.environ.setdefault("DJANGO_TEST_DATABASE_NAME", f"test_recsite_{os.getpid()}")
else:
    os.environ.setdefault(
        "DJANGO_TEST_DATABASE_NAME",
        os.path.join(tempfile.gettempdir(), f"test_recsite_{os.getpid()}.sqlite3"),
    )
os.environ.setdefault("DJANGO_INSECURE_FAST_HASHER", "1")
# ...and its own channel-layer prefix, so runs sharing one Redis never see
# each other's broadcasts (server processes started by tests inherit it).
os.environ.setdefault("REDIS_PREFIX", f"recsite-test-{os.getpid()}")
# sync's own tests use a model of their own, never the catalog's.
os.environ.setdefault("RECSITE_TEST_APPS", "tests.sync.testapp")
