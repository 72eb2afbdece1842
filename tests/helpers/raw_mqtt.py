"""A tiny raw MQTT 3.1.1 client over asyncio streams, for what paho will not send.

The misbehaving feeders of the broker, inbound and hostile tests speak through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl

TIMEOUT = 10.0


def client_tls_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def mqtt_string(value: str | bytes) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return len(data).to_bytes(2, "big") + data


def packet(first: int, body: bytes) -> bytes:
    length = len(body)
    encoded = bytearray()
    while True:
        digit, length = length % 128, length // 128
        encoded.append(digit | (0x80 if length else 0))
        if not length:
            break
    return bytes([first]) + bytes(encoded) + body


class RawClient:
    """Minimal MQTT 3.1.1 client over asyncio streams, for what paho will not send."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.reader = reader
        self.writer = writer
        self._packet_id = 0

    @classmethod
    async def open(cls, port: int, *, tls: bool = False) -> RawClient:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_tls_context() if tls else None
        )
        return cls(reader, writer)

    async def connect(
        self,
        client_id: str,
        username: str | None,
        password: str | None,
        *,
        keepalive: int = 60,
        will: tuple[str, bytes] | None = None,
    ) -> int:
        flags = 0x02  # clean session
        payload = mqtt_string(client_id)
        if will is not None:
            flags |= 0x04 | 0x08 | 0x20  # will, will QoS 1, will retain
            payload += mqtt_string(will[0]) + mqtt_string(will[1])
        if username is not None:
            flags |= 0x80
            payload += mqtt_string(username)
        if password is not None:
            flags |= 0x40
            payload += mqtt_string(password)
        header = mqtt_string("MQTT") + bytes([4, flags]) + keepalive.to_bytes(2, "big")
        await self.send(packet(0x10, header + payload))
        first, body = await self.read_packet()
        assert first == 0x20
        return body[1]

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read_packet(self) -> tuple[int, bytes]:
        async with asyncio.timeout(TIMEOUT):
            first = (await self.reader.readexactly(1))[0]
            length, multiplier = 0, 1
            while True:
                digit = (await self.reader.readexactly(1))[0]
                length += (digit & 0x7F) * multiplier
                multiplier *= 128
                if not digit & 0x80:
                    break
            return first, await self.reader.readexactly(length)

    def _next_id(self) -> int:
        self._packet_id += 1
        return self._packet_id

    async def publish(
        self, topic: str, payload: bytes, *, wait_ack: bool = True
    ) -> None:
        """Publish at QoS 1 and wait for the PUBACK (which must be the next packet)."""
        packet_id = self._next_id()
        await self.send(
            packet(0x32, mqtt_string(topic) + packet_id.to_bytes(2, "big") + payload)
        )
        if not wait_ack:
            return
        first, body = await self.read_packet()
        assert (first, body) == (0x40, packet_id.to_bytes(2, "big"))

    async def subscribe(self, topic_filter: str) -> int:
        packet_id = self._next_id()
        body = packet_id.to_bytes(2, "big") + mqtt_string(topic_filter) + b"\x01"
        await self.send(packet(0x82, body))
        first, body = await self.read_packet()
        assert first == 0x90
        assert body[:2] == packet_id.to_bytes(2, "big")
        return body[2]

    async def at_eof(self) -> bool:
        """Wait for the broker to close the connection; True when it did."""
        async with asyncio.timeout(TIMEOUT):
            try:
                return await self.reader.read(1) == b""
            except ConnectionError:
                return True

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await self.writer.wait_closed()
