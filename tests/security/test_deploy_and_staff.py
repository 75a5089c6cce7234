"""Production settings pass ``check --deploy``; staff-only pages refuse everyone else."""

import secrets
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.security.conftest import make_user

PRODUCTION_ENV = {
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(60),
    "DJANGO_SECURE": "1",
    "DJANGO_ALLOWED_HOSTS": "example.com",
}


def run_manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    # A clean environment: nothing from the test run (DEBUG, test keys) leaks in.
    base = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def test_check_deploy_has_no_warnings_with_production_env():
    result = run_manage(PRODUCTION_ENV, "check", "--deploy", "--fail-level", "WARNING")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in output, output
    assert "WARNINGS" not in output


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("DJANGO_SECRET_KEY", "DJANGO_SECRET_KEY must be set"),
        ("DJANGO_ALLOWED_HOSTS", "DJANGO_ALLOWED_HOSTS must be set"),
    ],
)
def test_production_without_a_secret_or_hosts_fails_loudly(missing, message):
    env = {key: value for key, value in PRODUCTION_ENV.items() if key != missing}
    result = run_manage(env, "check")
    assert result.returncode != 0
    assert message in result.stderr
    assert "ImproperlyConfigured" in result.stderr


def test_the_development_key_never_serves_production():
    """A blank or development secret with DEBUG off is refused, not used."""
    result = run_manage({**PRODUCTION_ENV, "DJANGO_SECRET_KEY": ""}, "check")
    assert result.returncode != 0


@pytest.mark.django_db
def test_admin_ops_and_metrics_refuse_non_staff(client, settings):
    settings.METRICS_TOKEN = "metrics-" + secrets.token_hex(16)
    shopper = make_user("shopper")
    client.force_login(shopper)

    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    response = client.get("/admin/recommender/item/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    # The operator view refuses a shopper with the site's own "staff only"
    # page (issue 15 §8), not a redirect to Django admin's login.
    response = client.get("/ops/")
    assert response.status_code == 403
    assert "staff-only" in response.content.decode()
    assert "/admin/login/" not in response.content.decode()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert (
        client.get(
            "/metrics", HTTP_AUTHORIZATION=f"Bearer {settings.METRICS_TOKEN}"
        ).status_code
        == 200
    )

    client.logout()
    assert client.get("/admin/").status_code == 302
    response = client.get("/ops/")
    assert response.status_code == 403
    assert 'href="/accounts/login/?next=/ops/"' in response.content.decode()
    assert client.get("/metrics").status_code == 401

    staff = make_user("editor", is_staff=True)
    client.force_login(staff)
    assert client.get("/ops/").status_code == 200
    assert client.get("/metrics").status_code == 200
    # Staff without model permissions see the admin index but not the catalog.
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/recommender/item/").status_code == 403
