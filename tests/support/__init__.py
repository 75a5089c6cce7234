"""The one harness of the test suite and the benchmarks.

- ``env``: the repository root, the CI gate, the environment and database a
  child process (server, ``manage.py`` command) of a test session gets;
- ``servers``: the one launcher of server processes (``manage.py serve``, or
  any other argv) and a pool that starts several at once;
- ``infra``: processes a fault test owns and breaks: its own Redis and nginx;
- ``accounts``: logging in on a live server, a staff user's admin session;
- ``sync_client``: the one ``/ws/sync/`` client that follows the documented
  client rules, and frame readers for ad-hoc sockets;
- ``recs_client``: the one ``/ws/recommendations/`` event client;
- ``loadclient``: a lean sans-I/O WebSocket transport holding thousands of
  sockets per process (the benchmarks' load clients);
- ``waiting``: bounded polling.

Nothing here imports Django at module level except ``env`` and ``accounts``,
so ``bench/`` imports the launchers and clients without a settings module.
"""
