"""Signals the recommender sends about figures the project keeps.

The recommender never imports the project package: whoever keeps live
figures or Prometheus metrics (``recsite.recommender_hooks``) connects to
these. Each is sent once per batch, not once per row, so an unconnected
signal costs nothing on the event path.
"""

from django.dispatch import Signal

#: Events were stored durably. ``actions``: list[str], one per new event
#: (resends excluded); ``source``: "ws" or "api".
events_stored = Signal()

#: Users' lists were scored. ``count``: int, lists; ``computed_ms``: float,
#: each list's share of the scoring time in milliseconds.
lists_scored = Signal()

#: A list was sent down a socket. ``path``: "direct" (by the socket that
#: sent the event or connected) or "layer" (from the channel layer).
list_sent = Signal()

#: A socket's event was answered with its new list. ``push_secs``: float,
#: seconds from receiving the frame to sending the list; ``computed_ms``:
#: float, the list's scoring time in milliseconds.
event_pushed = Signal()

#: Pushing lists through the channel layer failed. ``user_ids``: list[int].
push_failed = Signal()
