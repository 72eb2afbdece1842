"""Which log records are the server's: key-leak and error checks look only at those."""

from __future__ import annotations

from collections.abc import Iterable
import logging

NOT_SERVER_LOGGERS = (
    "amqtt.client",
    "feeder_sim",
    "pytest_homeassistant_custom_component",
)
"""Loggers that are not Home Assistant's: the simulator and its MQTT client library (which logs
its connection URI, key included), and the harness's mock storage, which logs whole stored data
(HA's real Store logs only the storage key). Key-leak checks look at everything else."""


def server_messages(records: Iterable[logging.LogRecord]) -> list[str]:
    """The messages of the records of Home Assistant's side (not NOT_SERVER_LOGGERS)."""
    return [
        r.getMessage() for r in records if not r.name.startswith(NOT_SERVER_LOGGERS)
    ]
