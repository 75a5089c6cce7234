"""Background tasks that end with their event loop.

A process-wide task (the hub's pump, heartbeat and probe; a project's
publisher) runs forever on the loop that started it. When that loop ends,
such a task must stop cleanly: cancelled and awaited while the loop still
runs, not garbage-collected later as "Task was destroyed but it is pending!"
with its last log lines written to closed streams.

``asyncio.run``, ``asyncio.Runner`` (pytest-asyncio) and asgiref's loops call
``loop.shutdown_asyncgens()`` before closing; :func:`stop_with_loop` hooks
into that call with a sentinel async generator per loop, which cancels and
awaits the tasks registered on it.
"""

import asyncio
import weakref
from collections.abc import AsyncGenerator

_tasks: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, set[asyncio.Task]]" = (
    weakref.WeakKeyDictionary()
)
_sentinels: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncGenerator]" = (
    weakref.WeakKeyDictionary()
)


async def _sentinel(tasks: set[asyncio.Task]) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await stop_tasks(tasks)


async def stop_tasks(tasks: set[asyncio.Task]) -> None:
    """Cancel ``tasks`` and wait until each has finished."""
    pending = [task for task in tasks if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
    tasks.clear()


async def stop_loop_tasks() -> None:
    """Cancel and await every task registered on the running loop.

    For servers whose loop ends without ``shutdown_asyncgens()`` (daphne's
    Twisted reactor): call it from their shutdown hook.
    """
    tasks = _tasks.get(asyncio.get_running_loop())
    if tasks:
        await stop_tasks(tasks)


def stop_with_loop(task: asyncio.Task) -> asyncio.Task:
    """Cancel and await ``task`` when its loop shuts down; return ``task``.

    Call from code running on ``task``'s loop.
    """
    loop = task.get_loop()
    tasks = _tasks.get(loop)
    if tasks is None:
        tasks = _tasks[loop] = set()
        sentinel = _sentinel(tasks)
        # Its first step registers it with the loop's async generators, which
        # shutdown_asyncgens() closes (running the finally above).
        _sentinels[loop] = sentinel
        loop.create_task(sentinel.__anext__())
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    return task
