"""Fixtures of the simulator tests: real local peers (tests/helpers/sim_peers.py), feeders."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
import datetime as dt
import ssl
from typing import Any

from amqtt.broker import Broker
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
import pytest

from feeder_sim import SimulatedFeeder

from ..helpers.sim_peers import (
    BrokerInfo,
    CertFiles,
    FakeKronos,
    FakeServer,
    running_kronos,
)


@pytest.fixture(scope="session")
def cert_files(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    """A throw-away self-signed certificate (EC keeps this fast)."""
    folder = tmp_path_factory.mktemp("certs")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    files = CertFiles(folder / "cert.pem", folder / "key.pem")
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


@pytest.fixture
async def kronos(socket_enabled: None) -> AsyncGenerator[FakeKronos]:
    """Plain-HTTP Kronos."""
    async with running_kronos(None) as server:
        yield server


@pytest.fixture
async def broker(
    socket_enabled: None, cert_files: CertFiles
) -> AsyncGenerator[BrokerInfo]:
    """A plain amqtt broker, anonymous access, plain and TLS listeners on free ports.

    An explicit ``plugins`` map with only AnonymousAuthPlugin: an empty map
    refuses everyone, and no key at all loads the $SYS and logging plugins.
    """
    broker = Broker(
        {
            "listeners": {
                "default": {"type": "tcp", "bind": "127.0.0.1:0"},
                "tls": {
                    "type": "tcp",
                    "bind": "127.0.0.1:0",
                    "ssl": True,
                    "certfile": str(cert_files.cert),
                    "keyfile": str(cert_files.key),
                },
            },
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {
                    "allow_anonymous": True
                }
            },
        }
    )
    await broker.start()
    ports = {
        name: server.instance.sockets[0].getsockname()[1]
        for name, server in broker._servers.items()
    }
    yield BrokerInfo(broker, ports["default"], ports["tls"])
    await broker.shutdown()


@pytest.fixture
async def server(broker: BrokerInfo) -> AsyncGenerator[FakeServer]:
    fake = FakeServer(broker.port)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def make_sim_feeder(
    kronos: FakeKronos, broker: BrokerInfo, server: FakeServer
) -> AsyncGenerator[Callable[..., SimulatedFeeder]]:
    """Factory for plain-transport feeders, stopped at teardown (before the peers)."""
    feeders: list[SimulatedFeeder] = []

    def make(**kwargs: Any) -> SimulatedFeeder:
        kwargs.setdefault("uid", f"smartfeeder-{len(feeders):012x}")
        kwargs.setdefault("kronos_url", kronos.url)
        kwargs.setdefault("mqtt_port", broker.port)
        kwargs.setdefault("mqtt_tls", False)
        feeder = SimulatedFeeder(**kwargs)
        feeders.append(feeder)
        return feeder

    yield make
    for feeder in feeders:
        await feeder.stop()


@pytest.fixture
async def kronos_tls(
    socket_enabled: None, cert_files: CertFiles
) -> AsyncGenerator[FakeKronos]:
    """HTTPS Kronos with the self-signed certificate."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_files.cert, cert_files.key)
    async with running_kronos(context) as server:
        yield server
