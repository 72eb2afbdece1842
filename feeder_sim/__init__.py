"""Petnet SmartFeeder v2 simulator speaking the feeder's wire protocol.

An independent peer of the ``petnet_feeder`` integration (it imports nothing
from it), used by tests, the demo and benchmarks. See :class:`SimulatedFeeder`.
"""

from .feeder import ReceivedCommand, SimulatedFeeder
from .fleet import Fleet, run_fleet
from .ids import hid_for_uid, uid_for_index
from .kronos_client import KronosError
from .mqtt_client import MqttConnectRefusedError, MqttError

__all__ = [
    "Fleet",
    "KronosError",
    "MqttConnectRefusedError",
    "MqttError",
    "ReceivedCommand",
    "SimulatedFeeder",
    "hid_for_uid",
    "run_fleet",
    "uid_for_index",
]
