"""``/api/activity/``: the session's recent browsing events (the activity strip)."""

from datetime import datetime

from django.http import HttpRequest
from ninja import Router, Schema
from pydantic import Field

from recommender.selectors.activity import activity_recent
from recommender.services.visitors import visitor_for_session

router = Router(tags=["activity"])

#: Entries the dashboard's strip shows.
ACTIVITY_LIMIT = 12


class ActivityEntryOut(Schema):
    id: str = Field(description="The client id the event was sent with.")
    action: str
    item: int
    title: str
    created: datetime


class ActivityOut(Schema):
    events: list[ActivityEntryOut] = Field(
        description="The latest events of the session's user or visitor, newest first."
    )


@router.get(
    "/activity/",
    response={200: ActivityOut},
    summary="The session's recent browsing events, newest first",
)
def activity(request: HttpRequest) -> dict:
    """Return the latest events of the logged-in user, or of the session's visitor."""
    if request.user.is_authenticated:
        user_id = request.user.pk
    else:
        user_id = visitor_for_session(session=request.session, create=False)
    if user_id is None:
        return {"events": []}
    return {"events": activity_recent(user_id=user_id, limit=ACTIVITY_LIMIT)}
