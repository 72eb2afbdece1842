"""Watching for asyncio tasks whose failure nobody retrieves.

amqtt handles each received packet in a task of its own and, when a connection ends,
cancels those tasks without awaiting them. A task that ends with an exception instead of
being cancelled is reported by the loop, once collected, as "Task exception was never
retrieved"; Home Assistant's test harness turns that report into an error at teardown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
import contextlib
import gc
from typing import Any


@contextlib.contextmanager
def unretrieved_task_failures() -> Iterator[list[dict[str, Any]]]:
    """Collect what the running loop reports while the block runs (and at its end)."""
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    reports: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: reports.append(context))
    try:
        yield reports
    finally:
        gc.collect()  # a finished task reports an unretrieved failure when collected
        loop.set_exception_handler(previous)


async def packet_tasks_done(protocol_handler: object) -> None:
    """Wait (retrieving nothing) until an amqtt handler's per-packet tasks have ended."""
    tasks = [
        task
        for task in asyncio.all_tasks()
        if (frame := getattr(task.get_coro(), "cr_frame", None)) is not None
        and frame.f_code.co_name.startswith("handle_")
        and frame.f_locals.get("self") is protocol_handler
    ]
    if tasks:
        await asyncio.wait(tasks)
