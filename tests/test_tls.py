"""The self-signed certificate and the server TLS context."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
from pathlib import Path
import ssl
import stat

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
import pytest

from custom_components.petnet_feeder.tls import ensure_certificate, server_ssl_context

HOSTNAME = "petnet.local"


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return ensure_certificate(tmp_path_factory.mktemp("tls") / "certs", HOSTNAME)


def _load(cert_path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(cert_path.read_bytes())


def test_files_are_created_once_and_reused(tmp_path: Path) -> None:
    directory = tmp_path / "new" / "dir"
    cert_path, key_path = ensure_certificate(directory, HOSTNAME)
    assert (cert_path, key_path) == (directory / "cert.pem", directory / "key.pem")
    cert_bytes, key_bytes = cert_path.read_bytes(), key_path.read_bytes()

    assert ensure_certificate(directory, "another-name") == (cert_path, key_path)
    assert cert_path.read_bytes() == cert_bytes
    assert key_path.read_bytes() == key_bytes
    assert sorted(path.name for path in directory.iterdir()) == ["cert.pem", "key.pem"]


def test_key_is_private(pair: tuple[Path, Path]) -> None:
    cert_path, key_path = pair
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert not stat.S_IMODE(cert_path.stat().st_mode) & 0o022
    assert not stat.S_IMODE(key_path.parent.stat().st_mode) & 0o077


def test_reuse_tightens_key_mode(tmp_path: Path) -> None:
    cert_path, key_path = ensure_certificate(tmp_path, HOSTNAME)
    key_path.chmod(0o644)
    ensure_certificate(tmp_path, HOSTNAME)
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600


def test_half_a_pair_is_replaced(tmp_path: Path) -> None:
    cert_path, key_path = ensure_certificate(tmp_path, HOSTNAME)
    old_cert = cert_path.read_bytes()
    key_path.unlink()
    ensure_certificate(tmp_path, HOSTNAME)
    assert key_path.is_file()
    assert cert_path.read_bytes() != old_cert
    # The new certificate belongs to the new key.
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    assert _load(cert_path).public_key() == key.public_key()


def test_certificate_properties(pair: tuple[Path, Path]) -> None:
    cert_path, key_path = pair
    cert = _load(cert_path)
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)

    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 2048
    assert cert.public_key() == key.public_key()
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    cn = cert.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)
    assert [attribute.value for attribute in cn] == [HOSTNAME]
    assert cert.issuer == cert.subject

    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [
        HOSTNAME,
        "localhost",
        "*.localhost",
    ]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1")
    ]

    basic = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical
    assert basic.value.ca is False

    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert dt.timedelta(days=5 * 365) <= lifetime <= dt.timedelta(days=5 * 366)
    now = dt.datetime.now(dt.UTC)
    assert cert.not_valid_before_utc <= now <= cert.not_valid_after_utc


def test_ip_hostname_becomes_an_ip_san(tmp_path: Path) -> None:
    cert_path, _ = ensure_certificate(tmp_path, "192.168.1.10")
    san = (
        _load(cert_path)
        .extensions.get_extension_for_class(x509.SubjectAlternativeName)
        .value
    )
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("192.168.1.10"),
        ipaddress.ip_address("127.0.0.1"),
    ]
    assert san.get_values_for_type(x509.DNSName) == ["localhost", "*.localhost"]


def test_context_settings(pair: tuple[Path, Path]) -> None:
    context = server_ssl_context(*pair)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_NONE
    names = {cipher["name"] for cipher in context.get_ciphers()}
    assert "ECDHE-RSA-AES128-GCM-SHA256" in names
    assert not {
        name for name in names if "CBC" in name or "SHA1" in name or "RC4" in name
    }


def _client_context(
    *, maximum: ssl.TLSVersion | None = None, ciphers: str | None = None
) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if maximum is not None:
        context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        context.maximum_version = maximum
    if ciphers is not None:
        context.set_ciphers(ciphers)
    return context


async def _handshake(
    server_context: ssl.SSLContext, client: ssl.SSLContext
) -> tuple[str, str]:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server_context)
    try:
        port = server.sockets[0].getsockname()[1]
        _reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client)
        ssl_object = writer.get_extra_info("ssl_object")
        result = (ssl_object.version(), ssl_object.cipher()[0])
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()
        return result
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.usefixtures("socket_enabled")
async def test_negotiates_tls_12_or_newer(pair: tuple[Path, Path]) -> None:
    context = server_ssl_context(*pair)
    version, _cipher = await _handshake(context, _client_context())
    assert version == "TLSv1.3"

    version, cipher = await _handshake(
        context,
        _client_context(
            maximum=ssl.TLSVersion.TLSv1_2, ciphers="ECDHE-RSA-AES128-GCM-SHA256"
        ),
    )
    assert (version, cipher) == ("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256")


@pytest.mark.usefixtures("socket_enabled")
@pytest.mark.filterwarnings(
    "ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning"
)
async def test_refuses_tls_older_than_12(pair: tuple[Path, Path]) -> None:
    context = server_ssl_context(*pair)
    client = _client_context(maximum=ssl.TLSVersion.TLSv1_1)
    client.set_ciphers("ALL:@SECLEVEL=0")
    # The test loop runs in debug mode, where asyncio reports every failed server handshake
    # to the loop's exception handler (which fails the test); production loops do not.
    loop = asyncio.get_running_loop()
    debug = loop.get_debug()
    loop.set_debug(False)
    try:
        with pytest.raises((ssl.SSLError, ConnectionError)):
            await _handshake(context, client)
    finally:
        loop.set_debug(debug)
