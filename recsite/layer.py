"""Channel-layer calls with a hard time limit."""

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def bounded(awaitable: Awaitable[T], *, timeout_secs: float) -> T:
    """Await ``awaitable`` for at most ``timeout_secs``, then raise ``TimeoutError``.

    ``asyncio.timeout`` is not enough against a Redis that accepts connections
    and never answers: redis-py's connect path catches the cancellation and
    retries, so the caller would wait forever. The call runs as its own task
    instead; on time-out it is cancelled and abandoned, and the caller moves on.
    """
    task = asyncio.ensure_future(awaitable)
    done, _ = await asyncio.wait({task}, timeout=timeout_secs)
    if not done:
        task.cancel()
        task.add_done_callback(_consume_result)
        raise TimeoutError(f"channel layer did not answer within {timeout_secs} s")
    return task.result()


def _consume_result(task: asyncio.Task) -> None:
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log it as lost
