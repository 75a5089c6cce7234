"""The newcomer's first hour: README commands after ``make demo``, one log line
per warning."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Variables a newcomer's shell does not have; the test's own run sets some.
_CLEARED = (
    "DJANGO_DEBUG",
    "DJANGO_SECRET_KEY",
    "DJANGO_ALLOWED_HOSTS",
    "DATABASE_URL",
    "REDIS_URL",
    "DJANGO_TEST_DATABASE_NAME",
    "DJANGO_ENV_FILE",
)


def newcomer_env(**extra: str) -> dict[str, str]:
    """Return a shell environment without the suite's settings variables."""
    env = {k: v for k, v in os.environ.items() if k not in _CLEARED}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run a command from the checkout's root as the README prints it."""
    return subprocess.run(
        args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=180
    )


def readme_commands() -> list[str]:
    """Return the ``manage.py`` command names the README's Commands block lists."""
    text = (ROOT / "README.md").read_text()
    return re.findall(r"^\.venv/bin/python manage\.py (\w+)", text, re.MULTILINE)


def test_readme_commands_run_against_the_demo_database_after_demo_setup(
    tmp_path: Path,
) -> None:
    """``make demo``'s first step writes a .env; README commands then work as printed."""
    env_file = tmp_path / ".env"
    database = tmp_path / "demo.sqlite3"
    writer = run(
        [sys.executable, "scripts/dev_env.py", str(env_file)],
        newcomer_env(DATABASE_URL=f"sqlite:///{database}"),
    )
    assert writer.returncode == 0, writer.stderr
    text = env_file.read_text()
    assert "DJANGO_DEBUG=1" in text
    assert f"DATABASE_URL=sqlite:///{database}" in text
    secret = re.search(r"^DJANGO_SECRET_KEY=(\S+)$", text, re.MULTILINE)
    assert secret and len(secret.group(1)) >= 50
    assert env_file.stat().st_mode & 0o077 == 0, "the secret is readable by others"

    # The shell of later commands has nothing set: the file carries it all.
    shell = newcomer_env(DJANGO_ENV_FILE=str(env_file), DJANGO_INSECURE_FAST_HASHER="1")
    manage = [sys.executable, "manage.py"]
    for args in (
        ["migrate", "--verbosity", "0"],
        ["seed_demo", "--items", "80", "--users", "6", "--accounts"],
        ["create_api_token", "shopper", "--name", "importer"],
        ["online_report", "--since", "24h", "--window", "30m"],
    ):
        assert args[0] in readme_commands() or args[0] == "migrate"
        done = run(manage + args, shell)
        assert done.returncode == 0, f"{args}: {done.stderr[-2000:]}"
    assert database.stat().st_size > 0, "the commands did not use the demo database"

    # Writing again keeps the existing file (and its secret).
    again = run([sys.executable, "scripts/dev_env.py", str(env_file)], newcomer_env())
    assert again.returncode == 0
    assert env_file.read_text() == text


def test_environment_wins_over_the_env_file(tmp_path: Path) -> None:
    """A variable set in the environment overrides the development file."""
    env_file = tmp_path / ".env"
    env_file.write_text("DJANGO_DEBUG=1\nDJANGO_SECRET_KEY=from-the-file-" + "x" * 40)
    probe = (
        "from django.conf import settings; "
        "print(settings.DEBUG, settings.SECRET_KEY[:14])"
    )
    done = run(
        [sys.executable, "-c", probe],
        newcomer_env(
            DJANGO_ENV_FILE=str(env_file),
            DJANGO_SETTINGS_MODULE="recsite.settings",
            DJANGO_DEBUG="0",
            DJANGO_ALLOWED_HOSTS="shop.example.com",
        ),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "from-the-file-"]


def test_production_without_env_file_must_set_the_secret(tmp_path: Path) -> None:
    """No .env and DEBUG off: a README command stops with a message that says what to do."""
    done = run(
        [sys.executable, "manage.py", "online_report", "--since", "24h"],
        newcomer_env(DJANGO_ENV_FILE=str(tmp_path / "absent.env")),
    )
    assert done.returncode != 0
    assert "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off" in done.stderr
    assert "make demo" in done.stderr


@pytest.mark.parametrize("debug", ["1", "0"])
def test_a_server_warning_is_logged_once(debug: str) -> None:
    """Django's request warnings reach the log once, with and without DEBUG."""
    probe = (
        "import logging; from django.conf import settings; "
        "from django.utils.log import configure_logging; "
        "configure_logging(settings.LOGGING_CONFIG, settings.LOGGING); "
        "logging.getLogger('django.request').warning('Not Found: /probe-%s', 1); "
        "logging.getLogger('recommender.x').warning('from the app %s', 2)"
    )
    done = run(
        [sys.executable, "-c", probe],
        newcomer_env(
            DJANGO_SETTINGS_MODULE="recsite.settings",
            DJANGO_ENV_FILE="",
            DJANGO_DEBUG=debug,
            DJANGO_SECRET_KEY="s" * 50,
            DJANGO_ALLOWED_HOSTS="127.0.0.1",
        ),
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("Not Found: /probe-1") == 1, done.stderr
    assert done.stderr.count("from the app 2") == 1, done.stderr
