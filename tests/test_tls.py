"""TLS at nginx, as docs/operations.md §4 sets it up: https and wss:// end to end.

nginx runs deploy/nginx-tls.conf itself (only certificate paths, listen
addresses and upstream lines are rewritten for loopback) with a throwaway
self-signed certificate, in front of a ``manage.py serve --proxy-headers``
process configured with DJANGO_BEHIND_PROXY, DJANGO_SECURE and
DJANGO_CSRF_TRUSTED_ORIGINS. Real clients then log in over https and open both
sockets over wss://, and a foreign Origin is refused.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.contrib.auth import get_user_model
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from recommender.services.tokens import token_create
from tests.factories import catalog
from tests.support.env import ROOT, child_env, missing
from tests.support.servers import ServerProcess, free_port, serve_argv
from tests.support.sockets import RECS_PATH, SYNC_PATH, recv_json, recv_type
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

HOST = "127.0.0.1"
PASSWORD = "tls-Passw0rd-for-tests"


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """Write a throwaway certificate for 127.0.0.1 and its key; return both paths."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def render_tls_conf(
    *, cert: Path, key: Path, https_port: int, http_port: int, upstream: int
) -> str:
    """Return deploy/nginx-tls.conf rewritten for loopback and the test's files."""
    text = (ROOT / "deploy" / "nginx-tls.conf").read_text()
    text = re.sub(
        r"# BEGIN upstream servers.*?# END upstream servers",
        f"server {HOST}:{upstream} max_fails=1 fail_timeout=5s;",
        text,
        flags=re.DOTALL,
    )
    replacements = {
        "listen 443 ssl;": f"listen {HOST}:{https_port} ssl;",
        "listen [::]:443 ssl;": "",
        "listen 80;": f"listen {HOST}:{http_port};",
        "listen [::]:80;": "",
    }
    for old, new in replacements.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    text, n = re.subn(r"ssl_certificate\s+\S+;", f"ssl_certificate {cert};", text)
    assert n == 1
    text, n = re.subn(
        r"ssl_certificate_key\s+\S+;", f"ssl_certificate_key {key};", text
    )
    assert n == 1
    return text


class TlsNginx:
    """nginx running deploy/nginx-tls.conf on loopback, files in ``prefix``."""

    def __init__(self, binary: str, prefix: Path, upstream: int) -> None:
        self.prefix = prefix
        prefix.mkdir(parents=True, exist_ok=True)
        self.cert, key = self_signed_certificate(prefix)
        self.https_port, self.http_port = free_port(), free_port()
        self.https_url = f"https://{HOST}:{self.https_port}"
        self.wss_url = f"wss://{HOST}:{self.https_port}"
        site = prefix / "recsite.conf"
        site.write_text(
            render_tls_conf(
                cert=self.cert,
                key=key,
                https_port=self.https_port,
                http_port=self.http_port,
                upstream=upstream,
            )
        )
        conf = prefix / "nginx.conf"
        conf.write_text(
            "\n".join(
                [
                    # A root master hands requests to "nobody", who cannot
                    # enter pytest's private tmp folder.
                    "user root root;" if os.geteuid() == 0 else "",
                    "worker_processes 1;",
                    f"pid {prefix}/nginx.pid;",
                    f"error_log {prefix}/error.log warn;",
                    "events { worker_connections 256; }",
                    "http {",
                    "    access_log off;",
                    *(
                        f"    {kind}_temp_path {prefix}/{kind};"
                        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
                    ),
                    f"    include {site};",
                    "}",
                ]
            )
        )
        self.process = subprocess.Popen(
            [
                binary,
                "-c",
                str(conf),
                "-p",
                str(prefix),
                "-e",
                str(prefix / "error.log"),
                "-g",
                "daemon off;",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )

    def ssl_context(self) -> ssl.SSLContext:
        """Return a client context that trusts only the throwaway certificate."""
        return ssl.create_default_context(cafile=str(self.cert))

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.https_url, verify=self.ssl_context(), timeout=10
        )

    def wait_healthy(self) -> None:
        def healthy() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(
                    "nginx exited: " + (self.prefix / "error.log").read_text()[-2000:]
                )
            try:
                with self.client() as client:
                    return client.get("/healthz").status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, timeout=30, step=0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


@pytest.fixture
def tls_site(tmp_path: Path) -> Iterator[TlsNginx]:
    """A serve process behind nginx with TLS, configured as docs/operations.md says."""
    binary = shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None
    )
    if binary is None or shutil.which("openssl") is None:
        missing("nginx and openssl are needed (bash scripts/system-deps.sh)")
    port = free_port()
    server = None
    proxy = TlsNginx(binary, tmp_path / "nginx", upstream=port)
    try:
        origin = proxy.https_url
        server = ServerProcess(
            [*serve_argv(port, collectstatic=True), "--proxy-headers"],
            env=child_env(
                DJANGO_BEHIND_PROXY="1",
                DJANGO_SECURE="1",
                DJANGO_ALLOWED_HOSTS=f"{HOST},localhost",
                DJANGO_CSRF_TRUSTED_ORIGINS=origin,
            ),
            port=port,
            log_path=tmp_path / "serve.log",
            name="serve",
        )
        server.wait_listening(60)
        proxy.wait_healthy()
        yield proxy
    finally:
        proxy.stop()
        if server is not None:
            server.stop()


def https_login(site: TlsNginx, username: str) -> httpx.Cookies:
    """Log in through the login form over https, as a browser would."""
    with site.client() as client:
        client.get("/accounts/login/")
        response = client.post(
            "/accounts/login/",
            data={
                "username": username,
                "password": PASSWORD,
                "csrfmiddlewaretoken": client.cookies["csrftoken"],
            },
            # Django checks the Referer of a secure POST against the host and
            # CSRF_TRUSTED_ORIGINS.
            headers={"Referer": f"{site.https_url}/accounts/login/"},
        )
        assert response.status_code == 302, response.text[:500]
        set_cookie = response.headers.get_list("set-cookie")
        session = [c for c in set_cookie if c.startswith("sessionid=")]
        assert session and "Secure" in session[0] and "HttpOnly" in session[0]
        return client.cookies


def test_https_and_both_sockets_over_wss_through_nginx(tls_site: TlsNginx) -> None:
    """Log in over https, both sockets over wss://; a foreign Origin is refused."""
    items = catalog(6)
    get_user_model().objects.create_user("tls-shopper", password=PASSWORD)

    # https: Django sees a secure request (no redirect loop) and sends HSTS.
    with tls_site.client() as client:
        page = client.get("/")
        assert page.status_code == 200
        assert "max-age=" in page.headers["strict-transport-security"]
    # Plain http on port 80 only sends the browser to https.
    plain = httpx.get(f"http://{HOST}:{tls_site.http_port}/ops/", timeout=10)
    assert plain.status_code == 301
    assert plain.headers["location"].startswith("https://")

    # A body over Django's upload limit, through nginx to a production
    # process: the API's JSON 413, not an HTML page.
    token = token_create(username="tls-shopper", name="tls").token
    with tls_site.client() as client:
        big = client.post(
            "/api/events/",
            content=b'{"id": "' + b"x" * 5_000_000 + b'"}',
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
            },
        )
    assert big.status_code == 413, big.text[:300]
    assert big.json()["code"] == "too_large"

    cookies = https_login(tls_site, "tls-shopper")
    context = tls_site.ssl_context()
    origin = tls_site.https_url

    with connect(f"{tls_site.wss_url}{SYNC_PATH}", ssl=context, origin=origin) as ws:
        hello = recv_type(ws, "hello")
        assert isinstance(hello["seq"], int)

    cookie = f"sessionid={cookies['sessionid']}"
    with connect(
        f"{tls_site.wss_url}{RECS_PATH}",
        ssl=context,
        origin=origin,
        additional_headers={"Cookie": cookie},
    ) as ws:
        first = recv_json(ws)
        while first["type"] != "recommendations":
            first = recv_json(ws)
        event = {"type": "event", "action": "view", "item": items[0].pk, "id": "tls-1"}
        ws.send(json.dumps(event))
        frames = [recv_json(ws) for _ in range(2)]
        assert {"type": "ack", "id": "tls-1"} in [
            {k: f.get(k) for k in ("type", "id")} for f in frames
        ], frames

    # The Origin check holds over wss as well: another site's page is refused.
    for path in (SYNC_PATH, RECS_PATH):
        with (
            pytest.raises(InvalidStatus) as refused,
            connect(
                f"{tls_site.wss_url}{path}", ssl=context, origin="https://evil.example"
            ) as ws,
        ):
            ws.recv(timeout=5)
        assert refused.value.response.status_code == 403
