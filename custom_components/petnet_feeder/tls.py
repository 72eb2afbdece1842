"""TLS material for the feeder-facing listeners (protocol §2).

The feeder does not verify the server certificate, so a self-signed one made on first start
does; it is kept and reused afterwards. Both functions do blocking file I/O: run them in an
executor.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
from pathlib import Path
import shutil
import ssl
import tempfile

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CERT_FILE_NAME = "cert.pem"
KEY_FILE_NAME = "key.pem"
KEY_SIZE = 2048
VALIDITY = dt.timedelta(days=5 * 365)
# Feeders' clocks may be off right after boot; start the validity a day early.
BACKDATE = dt.timedelta(days=1)

# Mozilla "intermediate" (what the original nginx offered), ECDHE-RSA-AES128-GCM-SHA256 included.
# TLS 1.3 suites are always on and not configured here.
_TLS12_CIPHER_LIST = (
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
    "DHE-RSA-AES128-GCM-SHA256",
    "DHE-RSA-AES256-GCM-SHA384",
    "DHE-RSA-CHACHA20-POLY1305",
)
TLS12_CIPHERS = ":".join(_TLS12_CIPHER_LIST)


def ensure_certificate(directory: Path, hostname: str) -> tuple[Path, Path]:
    """Return (certificate, key) paths in ``directory``, creating a self-signed pair once.

    Existing files are reused as they are (the key's mode is tightened to 0600). A missing
    half is treated as no pair: both are made again.
    """
    cert_path = directory / CERT_FILE_NAME
    key_path = directory / KEY_FILE_NAME
    if cert_path.is_file() and key_path.is_file():
        if key_path.stat().st_mode & 0o077:
            key_path.chmod(0o600)
        return cert_path, key_path

    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    cert_pem = _self_signed(key, hostname).public_bytes(serialization.Encoding.PEM)
    # The key first: a certificate without its key is never left behind as a "pair".
    _write_atomic(key_path, key_pem, 0o600)
    _write_atomic(cert_path, cert_pem, 0o644)
    return cert_path, key_path


def remove_certificate(directory: Path) -> None:
    """Delete the folder ensure_certificate made (it holds a private key); fine if absent."""
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(directory)


def server_ssl_context(cert: Path, key: Path) -> ssl.SSLContext:
    """Return a server context: TLS 1.2 or newer, Mozilla intermediate ciphers, no client certs."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION
    context.load_cert_chain(cert, key)
    return context


def _self_signed(key: rsa.RSAPrivateKey, hostname: str) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = dt.datetime.now(dt.UTC)
    not_before = now - BACKDATE
    public_key = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(_alt_names(hostname)), critical=False
        )
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False
        )
        .sign(key, hashes.SHA256())
    )


def _alt_names(hostname: str) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for value in (hostname, "localhost", "*.localhost", "127.0.0.1"):
        try:
            entry: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(value))
        except ValueError:
            entry = x509.DNSName(value)
        if entry not in names:
            names.append(entry)
    return names


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` through a temporary file created with ``mode``."""
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        Path(tmp_name).replace(path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
