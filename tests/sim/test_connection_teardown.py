"""A connection that ends mid-packet leaves no task whose failure nobody retrieves."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from feeder_sim import SimulatedFeeder

from ..helpers.sim_peers import FakeServer
from ..helpers.tasks import packet_tasks_done, unretrieved_task_failures

pytestmark = pytest.mark.usefixtures("socket_enabled")


async def test_drop_while_a_puback_waits_to_be_sent(
    make_sim_feeder: Callable[..., SimulatedFeeder],
    server: FakeServer,
) -> None:
    feeder = make_sim_feeder()
    await feeder.boot()
    assert feeder._conn is not None
    protocol_handler = feeder._conn._client._handler
    with unretrieved_task_failures() as reports:
        async with protocol_handler._write_lock:  # the next PUBACK cannot go out
            await server.send(feeder, "utc_offset", {"offset": 0})
            await feeder.wait_for_command("utc_offset")
            await feeder.drop()
        await packet_tasks_done(protocol_handler)
    assert [report["message"] for report in reports] == []
    assert not feeder.connected
