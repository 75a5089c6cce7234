"""``manage.py serve``: one production server process (daphne, tuned)."""

import gc
import os

# Thread wake-ups of a multi-threaded BLAS add milliseconds to the small
# matrix-vector products of one user's scoring; a server process scores one
# user at a time per request, so one BLAS thread is fastest.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = (
        "Serve HTTP and WebSockets with daphne, tuned for recsite: server-side "
        "pings that drop dead sockets, a deep listen backlog, frame-size limits, "
        "permessage-deflate."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="Address to bind.")
        parser.add_argument(
            "--port", type=int, default=8000, help="Port to bind (0: any)."
        )
        parser.add_argument(
            "--proxy-headers",
            action="store_true",
            help="Trust X-Forwarded-For/Proto (only behind a proxy such as nginx).",
        )
        parser.add_argument(
            "--no-collectstatic",
            action="store_true",
            help="Skip collecting static files before serving.",
        )

    def handle(self, *args: object, **options: object) -> None:
        from daphne.cli import CommandLineInterface

        from recsite.server import TunedServer

        if not options["no_collectstatic"]:
            call_command("collectstatic", interactive=False, verbosity=0)
        # A client's frames are at most WS_MAX_FRAME_BYTES; anything far larger
        # is cut off by the protocol layer before it is buffered.
        max_message = max(settings.WS_MAX_FRAME_BYTES * 16, 65536)
        host = str(options["host"])
        interface = host.replace(
            ":", r"\:"
        )  # IPv6 addresses in twisted endpoint strings
        argv = [
            "--endpoint",
            f"tcp:port={options['port']}:interface={interface}"
            f":backlog={settings.WS_LISTEN_BACKLOG}",
            "--ping-interval",
            str(settings.WS_PING_INTERVAL_SECS),
            "--ping-timeout",
            str(settings.WS_PING_TIMEOUT_SECS),
            "--websocket-max-message-size",
            str(max_message),
            "--application-close-timeout",
            "5",
            "-v",
            str(max(0, int(options["verbosity"]) - 1)),
        ]
        if options["proxy_headers"]:
            argv.append("--proxy-headers")
        argv.append("recsite.asgi:application")
        self.stdout.write(
            f"Serving recsite on http://{options['host']}:{options['port']}/"
        )
        self.stdout.flush()
        # Everything loaded so far (Django, the app, numpy, Twisted) lives as
        # long as the process. Freezing it keeps it out of the cyclic garbage
        # collector's full passes, which stop the event loop for as long as
        # they take: ~100 ms with the ~150,000 objects of a started server.
        import recsite.asgi  # noqa: F401  (the application, loaded before daphne)

        gc.collect()
        gc.freeze()
        cli = CommandLineInterface()
        cli.server_class = TunedServer
        cli.run(argv)
