"""Servers on loopback for the transport's tests: a relay in front of the real sqld, and a
server that answers raw bytes for the answers no real server can be made to give.

`Relay` forwards TCP connections to sqld, counting them, optionally terminating TLS with a
certificate made here (`certificate_for`), and can drop every connection it holds, as a server
closing idle keep-alive connections does.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import json
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass
class Relay:
    """Forwards to `upstream_port` on 127.0.0.1; `port` is where it listens."""

    upstream_port: int
    tls: ssl.SSLContext | None = None
    port: int = 0
    accepted: int = 0
    open: int = 0
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    _server: asyncio.Server | None = None
    _none_open: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> Relay:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.open += 1
        self._none_open.clear()
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self._writers |= {writer, up_writer}
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            self.open -= 1
            if not self.open:
                self._none_open.set()
            for end in (writer, up_writer):
                self._writers.discard(end)
                end.close()

    def drop_all(self) -> None:
        """Close every connection, as a server ending idle keep-alive connections does."""
        for writer in list(self._writers):
            writer.close()

    async def wait_closed(self) -> None:
        """Until no connection is open here."""
        if self.open:
            await self._none_open.wait()

    async def stop(self) -> None:
        self.drop_all()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(OSError):
        writer.close()


@contextlib.asynccontextmanager
async def relay_to(upstream_port: int, tls: ssl.SSLContext | None = None) -> AsyncIterator[Relay]:
    relay = await Relay(upstream_port, tls).start()
    try:
        yield relay
    finally:
        await relay.stop()


@dataclass(frozen=True)
class Certificate:
    """A self-signed certificate for some names; `server` serves it, `trusting` trusts it."""

    cert_file: Path
    key_file: Path

    def server(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def trusting(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert_file))


def certificate_for(directory: Path, *names: str) -> Certificate:
    """A self-signed ECDSA certificate naming `names` (DNS names; `*.x` wildcards allowed)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(name) for name in names]
                + [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Certificate(cert_file, key_file)


def pipeline_answer(value: str) -> bytes:
    """sqld's answer to a one-statement pipeline: a text column `v` holding `value`, then the
    stream's close."""
    return json.dumps(
        {
            "baton": None,
            "base_url": None,
            "results": [
                {
                    "type": "ok",
                    "response": {
                        "type": "execute",
                        "result": {
                            "cols": [{"name": "v", "decltype": None}],
                            "rows": [[{"type": "text", "value": value}]],
                            "affected_row_count": 0,
                            "last_insert_rowid": None,
                        },
                    },
                },
                {"type": "ok", "response": {"type": "close"}},
            ],
        }
    ).encode()


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    """One request with a `Content-Length` body: its head and body as sent."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return head + await reader.readexactly(length)


@contextlib.asynccontextmanager
async def answering(respond: Callable[[bytes], bytes]) -> AsyncIterator[int]:
    """A server that reads one request head and body, writes `respond(request)`, and closes.

    Yields its port.
    """

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(respond(await _read_request(reader)))
            await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


@dataclass
class Answering:
    """A server `keeping` answers: its port and the connections it accepted."""

    port: int = 0
    accepted: int = 0


@contextlib.asynccontextmanager
async def keeping(respond: Callable[[bytes], bytes]) -> AsyncIterator[Answering]:
    """A server that answers every request of a connection with `respond(request)`.

    Unlike `answering`, it keeps the connection open for the next request (unless the client
    closes it).
    """
    state = Answering()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.accepted += 1
        try:
            while True:
                writer.write(respond(await _read_request(reader)))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client closed the connection
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    state.port = server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        server.close()
        await server.wait_closed()
