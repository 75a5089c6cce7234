"""The project shell's pages and plain endpoints: operator view, health, metrics."""

import hmac

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from recsite.access import staff_page_required
from recsite.experiment_figures import figures


@require_GET
@staff_page_required
def ops(request: HttpRequest) -> HttpResponse:
    """Render the operator view (staff only)."""
    return render(request, "ops.html")


@require_GET
def ops_experiments(request: HttpRequest) -> JsonResponse:
    """Return the running experiments' per-variant figures (staff only).

    The operator view's "Experiments" section reads it; the same figures are
    in ``/metrics`` (``recsite_experiment_*``) and ``online_report
    --experiment``.
    """
    user = request.user
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return JsonResponse(
            {"code": "unauthorized", "message": "staff session required"},
            status=403 if user.is_authenticated else 401,
        )
    return JsonResponse(figures.as_dict())


async def _layer_roundtrip() -> None:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "health.check"})
    await layer.receive(channel)


@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    """Redirect ``/favicon.ico`` (asked for by every page, admin too) to the icon."""
    return redirect(static("recsite/favicon.svg"), permanent=True)


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Return 200 when the database and the channel layer answer, else 503."""
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {exc.__class__.__name__}"
    try:
        async_to_sync(_layer_roundtrip)()
        checks["channel_layer"] = "ok"
    except Exception as exc:
        checks["channel_layer"] = f"error: {exc.__class__.__name__}"
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", **checks},
        status=200 if healthy else 503,
    )


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Return this process's metrics in Prometheus text format.

    Allowed for staff sessions, or with ``Authorization: Bearer $METRICS_TOKEN``.
    """
    header = request.headers.get("Authorization", "")
    token_ok = bool(settings.METRICS_TOKEN) and hmac.compare_digest(
        header, f"Bearer {settings.METRICS_TOKEN}"
    )
    if not token_ok and not (request.user.is_authenticated and request.user.is_staff):
        return JsonResponse(
            {
                "code": "unauthorized",
                "message": "staff session or metrics token required",
            },
            status=401,
        )
    return HttpResponse(generate_latest(), content_type=CONTENT_TYPE_LATEST)
