"""Processes a fault test owns and breaks: its own Redis and its own nginx.

Both bind 127.0.0.1 on a free port, keep their files in the test's folder and
stop for sure; nginx proxies to the given ``serve`` processes as
deploy/nginx.conf does (HTTP and both WebSocket paths).
"""

import os
import shutil
import signal
import subprocess
from collections.abc import Iterable
from pathlib import Path

import httpx
import redis

from tests.support.servers import free_port
from tests.support.waiting import wait_for


class RedisServer:
    """A ``redis-server`` of the test's own on a free loopback port."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        log = open(self.workdir / f"redis-{self.port}.log", "a")  # noqa: SIM115 - kept open with the process
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1)
        wait_for(lambda: _redis_ping(client), timeout=10, step=0.02)
        client.close()

    def stop(self) -> None:
        """Stop the server (SIGTERM, as an orderly restart does)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None


def _redis_ping(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


NGINX_TEST_CONF = """\
# Rendered by tests/support/infra.py for one test; see deploy/nginx.conf.
{user}
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 1024; }}
http {{
    log_format upstream '$remote_addr "$request" $status $upstream_addr $request_time';
    access_log {prefix}/access.log upstream;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;

    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}
    upstream recsite {{
{servers}
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://recsite;
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header Connection "";
            proxy_next_upstream error timeout http_502 http_503;
            proxy_connect_timeout 2s;
        }}
        location /ws/ {{
            proxy_pass http://recsite;
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_connect_timeout 2s;
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
            proxy_buffering off;
            # Which process took the socket: the test kills one that has some.
            add_header X-Upstream $upstream_addr always;
        }}
    }}
}}
"""


class Nginx:
    """An nginx in front of the given loopback ports, config and logs in ``prefix``."""

    def __init__(self, prefix: Path, upstream_ports: Iterable[int]) -> None:
        self.binary = shutil.which("nginx") or (
            "/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None
        )
        self.prefix = prefix
        self.port = free_port()
        self.upstream_ports = list(upstream_ports)
        self.http_url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self.origin = self.http_url
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        assert self.binary, "nginx is not installed"
        self.prefix.mkdir(parents=True, exist_ok=True)
        conf = self.prefix / "nginx.conf"
        conf.write_text(
            NGINX_TEST_CONF.format(
                # A root master hands requests to workers as "nobody" by
                # default, who cannot enter pytest's private tmp folder.
                user="user root root;" if os.geteuid() == 0 else "",
                prefix=self.prefix,
                port=self.port,
                servers="\n".join(
                    f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=10s;"
                    for p in self.upstream_ports
                ),
            )
        )
        log = open(self.prefix / "stdout.log", "w")  # noqa: SIM115 - kept open with the process
        self.process = subprocess.Popen(
            [
                self.binary,
                "-c",
                str(conf),
                "-p",
                str(self.prefix),
                "-e",
                str(self.prefix / "error.log"),
                "-g",
                "daemon off;",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )

        def healthy() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(
                    "nginx exited: " + (self.prefix / "error.log").read_text()[-2000:]
                )
            try:
                return (
                    httpx.get(f"{self.http_url}/healthz", timeout=2).status_code == 200
                )
            except httpx.HTTPError:
                return False

        wait_for(healthy, timeout=15, step=0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful: workers finish
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None
