"""Write a development ``.env`` for this checkout unless one exists.

``make demo`` runs this first, so every later ``manage.py`` command in the
same checkout reads the same settings as the demo: DEBUG on, a random secret
key, and the demo's database and channel layer (DATABASE_URL / REDIS_URL when
they are set while the file is written; SQLite and the in-memory layer
otherwise). The file is gitignored; a production host has none and sets its
variables in its process manager (see .env.example).

Usage: ``python scripts/dev_env.py [PATH]`` (default: .env next to manage.py).
"""

import os
import secrets
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Copied from the environment into a new file, so later commands use the same
# services as the demo that wrote it.
SERVICE_VARIABLES = ("DATABASE_URL", "REDIS_URL")


def render(environ: dict[str, str]) -> str:
    """Return the text of a development .env for the given environment."""
    lines = [
        "# Development settings for this checkout, written by `make demo`.",
        "# Read by recsite/settings.py (python-dotenv); variables set in the",
        "# environment win. Never copy this file to a production host.",
        "DJANGO_DEBUG=1",
        f"DJANGO_SECRET_KEY={secrets.token_urlsafe(48)}",
    ]
    for name in SERVICE_VARIABLES:
        if environ.get(name):
            lines.append(f"{name}={environ[name]}")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    """Write the file when missing; say which file the settings will read."""
    path = Path(argv[1]) if len(argv) > 1 else ROOT / ".env"
    if path.exists():
        print(f"{path}: exists, kept as it is (delete it to write a fresh one)")
        return 0
    path.write_text(render(dict(os.environ)))
    path.chmod(0o600)
    print(f"{path}: written (development settings: DEBUG on, a random secret key)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
