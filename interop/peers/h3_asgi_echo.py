"""The ASGI echo app of h2_asgi_echo.py served by hypercorn over HTTP/3
(RFC 9220, QUIC by aioquic): a third-party WebSocket server over HTTP/3
for tether's interop tests.

Usage: python h3_asgi_echo.py

Makes a self-signed certificate for localhost (with `cryptography`, which
aioquic brings), writes it to a temporary PEM file, and serves hypercorn
with QUIC on an ephemeral UDP port of 127.0.0.1 (and TLS over TCP on
another, which hypercorn needs beside it). Reports on stdout, one a line:

    cert <path of the PEM certificate to trust>
    listening <UDP port>
    http <version>             (the HTTP version of each WebSocket's request)
    close code=<code> messages=<n> text=<n> binary=<n> bytes=<n> crc=<crc32>

The process exits when stdin ends, so a test that dies leaves no server.
"""

import asyncio
import datetime
import os
import socket
import sys
import tempfile

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypercorn.asyncio import serve
from hypercorn.config import Config

from h2_asgi_echo import app, say


def self_signed(folder):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path = os.path.join(folder, "cert.pem")
    key_path = os.path.join(folder, "key.pem")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return cert_path, key_path


def bound(kind):
    sock = socket.socket(socket.AF_INET, kind)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    if kind == socket.SOCK_STREAM:
        sock.listen(64)
    sock.set_inheritable(True)
    return sock


async def main():
    folder = tempfile.mkdtemp(prefix="tether-h3-asgi-")
    cert_path, key_path = self_signed(folder)
    tcp = bound(socket.SOCK_STREAM)
    udp = bound(socket.SOCK_DGRAM)
    config = Config()
    config.bind = [f"fd://{tcp.fileno()}"]
    config.quic_bind = [f"fd://{udp.fileno()}"]
    config.certfile = cert_path
    config.keyfile = key_path
    config.websocket_max_message_size = 64 * 1024 * 1024
    config.loglevel = "WARNING"
    config.accesslog = None
    shutdown = asyncio.Event()
    say(f"cert {cert_path}")
    say(f"listening {udp.getsockname()[1]}")
    loop = asyncio.get_running_loop()

    def stdin_ended():
        sys.stdin.read()
        loop.call_soon_threadsafe(shutdown.set)

    loop.run_in_executor(None, stdin_ended)
    await serve(app, config, shutdown_trigger=shutdown.wait)


if __name__ == "__main__":
    asyncio.run(main())
