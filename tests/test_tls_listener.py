"""The lean TLS listener: asyncio's TLS with a 32 KiB read buffer, over real sockets."""

from __future__ import annotations

import asyncio
from asyncio import sslproto
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from custom_components.petnet_feeder.tls import ensure_certificate, server_ssl_context
from custom_components.petnet_feeder.tls_listener import (
    READ_BUFFER_SIZE,
    tls_protocol_factory,
)

from .helpers.raw_mqtt import TIMEOUT, client_tls_context

LOOPBACK = "127.0.0.1"


class EchoServer:
    """Echoes every connection's bytes; keeps the server side's writers."""

    def __init__(self) -> None:
        self.writers: list[asyncio.StreamWriter] = []
        self.connected = asyncio.Event()

    async def echo(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.writers.append(writer)
        self.connected.set()
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()


@pytest.fixture
async def echo(
    socket_enabled: None, tmp_path: Path
) -> AsyncIterator[tuple[EchoServer, int]]:
    cert, key = ensure_certificate(tmp_path, "petnet.local")
    server = EchoServer()

    def streams() -> asyncio.BaseProtocol:
        return asyncio.StreamReaderProtocol(asyncio.StreamReader(), server.echo)

    listener = await asyncio.get_running_loop().create_server(
        tls_protocol_factory(
            streams, server_ssl_context(cert, key), handshake_timeout=0.5
        ),
        LOOPBACK,
        0,
    )
    try:
        yield server, listener.sockets[0].getsockname()[1]
    finally:
        listener.close()
        listener.close_clients()
        await listener.wait_closed()


async def test_a_tls_connection_carries_records_larger_than_its_buffer(
    echo: tuple[EchoServer, int],
) -> None:
    server, port = echo
    reader, writer = await asyncio.open_connection(
        LOOPBACK, port, ssl=client_tls_context()
    )
    try:
        payload = bytes(range(256)) * 1024  # 256 KiB: many full TLS records
        writer.write(payload)
        await writer.drain()
        async with asyncio.timeout(TIMEOUT):
            assert await reader.readexactly(len(payload)) == payload
            await server.connected.wait()
        server_side = server.writers[0]
        assert server_side.get_extra_info("sslcontext") is not None
        assert server_side.get_extra_info("ssl_object").version() in (
            "TLSv1.2",
            "TLSv1.3",
        )
        assert server_side.get_extra_info("peername")[0] == LOOPBACK
        # What the listener is for: asyncio's own buffer is 256 KiB per connection.
        buffer = server_side.transport._ssl_protocol._ssl_buffer  # type: ignore[attr-defined]
        assert len(buffer) == READ_BUFFER_SIZE < sslproto.SSLProtocol.max_size
    finally:
        writer.close()
        await writer.wait_closed()


async def test_a_connection_without_a_handshake_is_closed(
    echo: tuple[EchoServer, int],
) -> None:
    server, port = echo
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    try:
        async with asyncio.timeout(TIMEOUT):
            assert await reader.read() == b""  # closed after the handshake timeout
        assert not server.connected.is_set()
    finally:
        writer.close()
