"""What the sync app tells the project it runs in: sockets, frames, changes.

``sync`` keeps no project-level figures itself. A project that wants live
counts or Prometheus metrics connects receivers to these signals in its own
``AppConfig.ready()`` (recsite does so in ``recsite/sync_hooks.py``), the way
``django.contrib.auth`` sends ``user_logged_in``. Receivers run inline on the
sender's thread or event loop: keep them quick and never let them raise.
"""

from django.dispatch import Signal

#: A protocol socket was accepted. Arguments: ``endpoint`` (str, a label such
#: as ``"sync"``), ``user_id`` (int or None).
socket_opened = Signal(use_caching=True)

#: A counted protocol socket closed. Same arguments as :data:`socket_opened`.
socket_closed = Signal(use_caching=True)

#: A client frame was answered with an error. Arguments: ``endpoint`` (str),
#: ``code`` (str, the wire error code).
frame_rejected = Signal(use_caching=True)

#: Changes were written to the change log (sent inside the writing
#: transaction). Arguments: ``model`` (str, the wire name), ``count`` (int).
changes_recorded = Signal(use_caching=True)

#: Committed changes went out on the channel layer. Arguments: ``first_seq``,
#: ``last_seq`` (int).
changes_broadcast = Signal(use_caching=True)

#: A channel-layer send failed; clients recover through resume and the hub.
#: Arguments: ``kind`` (str, ``"change"``, or ``"reset"`` for a reset point),
#: ``first_seq``, ``last_seq`` (int).
broadcast_failed = Signal(use_caching=True)

#: A latest committed seq was read (a handshake, every heartbeat, the stream
#: answering again). Arguments: ``seq`` (int), ``lag`` (int or None: how many
#: committed changes a socket had not yet received, when it was behind).
seq_observed = Signal(use_caching=True)
