"""TLS listeners that cost a feeder's connection 60 KiB instead of 280 KiB.

asyncio's TLS protocol allocates and zero-fills a 256 KiB read buffer for every connection
(``SSLProtocol.max_size``), whatever it will carry. A feeder keeps an MQTTS connection open all
the time and its HTTPS connection for a while, and its messages are a few hundred bytes: those
buffers were most of the memory a feeder cost (``scripts/bench``, ``rss_mb_per_feeder``).

Here the TLS layer is asyncio's own protocol with a 32 KiB buffer, made by the listener's
protocol factory instead of by ``create_server(ssl=...)``. A TLS record is at most 16 KiB plus
its overhead, so one read still takes a whole record. No other code of Home Assistant's changes:
``max_size`` is set on a subclass that only these listeners use.
"""

from __future__ import annotations

import asyncio
from asyncio import sslproto
from collections.abc import Callable
import ssl

READ_BUFFER_SIZE = 32 * 1024


class _LeanSSLProtocol(sslproto.SSLProtocol):
    """asyncio's server-side TLS protocol with a smaller read buffer."""

    max_size = READ_BUFFER_SIZE


def tls_protocol_factory(
    app_factory: Callable[[], asyncio.BaseProtocol],
    context: ssl.SSLContext,
    *,
    handshake_timeout: float,
) -> Callable[[], asyncio.BaseProtocol]:
    """A ``create_server`` protocol factory that ends TLS and hands the rest to ``app_factory``.

    Give it to ``create_server`` without ``ssl=``: it does what asyncio does for ``ssl=``
    (the application protocol sees a TLS transport, with ``sslcontext`` and ``ssl_object`` in
    its extra info) with the smaller buffer.
    """
    loop = asyncio.get_running_loop()

    def factory() -> asyncio.BaseProtocol:
        # typeshed is stricter than asyncio: the waiter may be None (asyncio checks), and the
        # timeout may be a float.
        return _LeanSSLProtocol(
            loop,
            app_factory(),
            context,
            None,  # type: ignore[arg-type]
            server_side=True,
            ssl_handshake_timeout=handshake_timeout,  # type: ignore[arg-type]
        )

    return factory
