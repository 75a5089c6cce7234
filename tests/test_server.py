"""The tuned daphne server's process-wide adjustments."""

import pprint

import autobahn.websocket.protocol as autobahn_protocol

import recsite.server  # noqa: F401  (installs the adjustments)


def test_autobahn_debug_lines_still_render_the_configuration() -> None:
    config = [("openHandshakeTimeout", 5, "WebSocketServerFactory")] * 3
    deferred = autobahn_protocol.pformat(config)
    # Nothing is formatted until a log line renders it; then it is the same.
    assert not isinstance(deferred, str)
    assert f"\n{deferred}" == "\n" + pprint.pformat(config)
    assert f"{deferred}" == pprint.pformat(config)
