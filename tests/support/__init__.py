"""The one harness of the test suite and the benchmarks.

- ``env``: the repository root, the CI gate, the environment and database a
  child process (server, ``manage.py`` command) of a test session gets;
- ``servers``: the one launcher of server processes (``manage.py serve``, or
  any other argv) and a pool that starts several at once;
- ``inprocess``: daphne in a thread of the test process (the browser tests,
  which must share the in-memory channel layer when there is no Redis);
- ``infra``: processes a fault test owns and breaks: its own Redis and nginx;
- ``accounts``: logging in on a live server, a staff user's admin session;
- ``sync_client``: the one ``/ws/sync/`` client, following the documented
  client rules (apply in order, resume, reset) in a thread;
- ``sockets``: opening one socket on a live server, reading its JSON frames;
- ``recs_client``: the one ``/ws/recommendations/`` event client;
- ``loadclient``: a lean sans-I/O WebSocket transport holding thousands of
  sockets per process (the benchmarks' load clients);
- ``waiting``: bounded polling.

Nothing here imports Django (or pytest) at module level, so ``bench/``
imports the launchers and clients without a settings module.
"""
