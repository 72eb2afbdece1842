"""Many simulated feeders at once (demo, benchmarks)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Any, Self

import aiohttp

from .feeder import SimulatedFeeder
from .ids import uid_for_index


class Fleet:
    """N feeders with uids ``smartfeeder-<12 hex>`` derived from their index.

    ``firmwares`` is cycled over the feeders (``["2.3.2", "2.8.0"]`` gives
    2.3.2, 2.8.0, 2.3.2, ...). Extra keyword arguments go to every
    :class:`SimulatedFeeder`. The feeders share one HTTP session.
    """

    def __init__(
        self,
        count: int,
        firmwares: Sequence[str] = ("2.8.0",),
        *,
        kronos_url: str,
        mqtt_port: int,
        first_index: int = 0,
        namespace: str = "feeder-sim",
        seed: int | None = None,
        max_concurrent_boots: int = 50,
        **feeder_kwargs: Any,
    ) -> None:
        """Create the (powered-off) feeders."""
        if count < 0 or not firmwares:
            raise ValueError("count must be >= 0 and firmwares non-empty")
        self._kwargs = {
            "kronos_url": kronos_url,
            "mqtt_port": mqtt_port,
            **feeder_kwargs,
        }
        self._http: aiohttp.ClientSession | None = None
        self._boot_slots = asyncio.Semaphore(max_concurrent_boots)
        self.feeders = [
            SimulatedFeeder(
                uid=uid_for_index(index, namespace=namespace),
                firmware=firmwares[(index - first_index) % len(firmwares)],
                seed=None if seed is None else f"{seed}:{index}",
                **self._kwargs,
            )
            for index in range(first_index, first_index + count)
        ]

    def __iter__(self) -> Iterator[SimulatedFeeder]:
        """Iterate over the feeders."""
        return iter(self.feeders)

    def __len__(self) -> int:
        """Return the number of feeders."""
        return len(self.feeders)

    async def start(self, *, run_schedule: bool = False) -> None:
        """Start every feeder (boots run concurrently, bounded)."""
        self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100))
        for feeder in self.feeders:
            feeder.use_http_session(self._http)

        async def start_one(feeder: SimulatedFeeder) -> None:
            async with self._boot_slots:
                await feeder.start(run_schedule=run_schedule)

        try:
            async with asyncio.TaskGroup() as group:
                for feeder in self.feeders:
                    group.create_task(start_one(feeder))
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop every feeder and close the shared HTTP session."""
        await asyncio.gather(*(feeder.stop() for feeder in self.feeders))
        if self._http is not None:
            await self._http.close()
            self._http = None

    @property
    def protocol_errors(self) -> list[str]:
        """Return every feeder's protocol errors, prefixed with its uid."""
        return [
            f"{f.uid}: {error}" for f in self.feeders for error in f.protocol_errors
        ]

    async def __aenter__(self) -> Self:
        """Start the fleet."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the fleet."""
        await self.stop()


async def run_fleet(
    count: int,
    firmwares: Sequence[str] = ("2.8.0",),
    *,
    run_schedule: bool = False,
    **kwargs: Any,
) -> Fleet:
    """Create and start a :class:`Fleet`; the caller stops it."""
    fleet = Fleet(count, firmwares, **kwargs)
    await fleet.start(run_schedule=run_schedule)
    return fleet
