"""Online evaluation: what was shown, and what users did next.

Definitions (they match ``evaluate``'s offline metrics, with "the future"
being the ``window`` after a list was shown instead of the test split):

* an *impression* is one item of one shown list (user, item, version, rank);
* **CTR** = impressions whose item the user then ``click``-ed within the
  window, divided by impressions;
* **online precision@k** = mean over shown lists of (distinct items among the
  list's top ``k`` that the user acted on in any way within the window) / k —
  the offline P@k with the window as the test set.
"""

from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from recommender.models import BrowsingEvent, Impression


@dataclass(frozen=True)
class OnlineReport:
    since: str
    until: str
    window_secs: float
    k: int
    lists: int
    impressions: int
    clicks: int
    ctr: float
    precision_at_k: float

    def as_dict(self) -> dict:
        return asdict(self)


def online_report(
    *, since: datetime, until: datetime, window: timedelta, k: int
) -> OnlineReport:
    """Return CTR and online precision@k of the lists shown in ``[since, until)``."""
    shown = list(
        Impression.objects.filter(shown_at__gte=since, shown_at__lt=until).values_list(
            "user_id", "item_id", "version", "position", "shown_at", "placement"
        )
    )
    events_by_user: dict[int, list[tuple[int, str, datetime]]] = defaultdict(list)
    users = {row[0] for row in shown}
    for user_id, item_id, action, created in BrowsingEvent.objects.filter(
        user_id__in=users, created__gte=since, created__lt=until + window
    ).values_list("user_id", "item_id", "action", "created"):
        events_by_user[user_id].append((item_id, action, created))

    # A list is one placement's list at one version, shown at one moment
    # (placements other than "for you" are not versioned snapshots).
    lists: dict[tuple, list[tuple[int, int, datetime]]] = defaultdict(list)
    for user_id, item_id, version, position, shown_at, placement in shown:
        lists[(user_id, placement, version, shown_at)].append(
            (item_id, position, shown_at)
        )

    clicks = 0
    precision_sum = 0.0
    for (user_id, *_), entries in lists.items():
        acted: set[int] = set()
        clicked: set[int] = set()
        shown_at = min(entry[2] for entry in entries)
        for item_id, action, created in events_by_user.get(user_id, ()):
            if shown_at < created <= shown_at + window:
                acted.add(item_id)
                if action == "click":
                    clicked.add(item_id)
        top = {item_id for item_id, position, _ in entries if position <= k}
        precision_sum += len(top & acted) / k
        clicks += sum(1 for item_id, _, _ in entries if item_id in clicked)
    return OnlineReport(
        since=since.isoformat(),
        until=until.isoformat(),
        window_secs=window.total_seconds(),
        k=k,
        lists=len(lists),
        impressions=len(shown),
        clicks=clicks,
        ctr=clicks / len(shown) if shown else 0.0,
        precision_at_k=precision_sum / len(lists) if lists else 0.0,
    )
