"""The shopper dashboard page."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from recommender.engine.actions import actions_payload
from recommender.engine.placements import DEFAULT_PLACEMENT, PLACEMENTS


@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    """Render the shopper dashboard (catalog, recommendations, activity).

    An anonymous visitor gets a session here, so their socket can carry their
    history until they log in.
    """
    if not request.user.is_authenticated and request.session.session_key is None:
        request.session["recsite_started"] = True
    # The action and placement vocabularies, for the page's JavaScript
    # (json_script) and the panels' headings.
    return render(
        request,
        "dashboard.html",
        {
            "actions": actions_payload(),
            "placements": {"default": DEFAULT_PLACEMENT, "labels": PLACEMENTS},
        },
    )
