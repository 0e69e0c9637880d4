"""The API clients' transport (adapters/http_transport.py): httpx with an asyncio network backend,
proven over real sockets against a real HTTP server (uvicorn), TLS included."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from adapters import http_transport
from adapters.espocrm_api import EspoCRMAPI
from adapters.http_transport import AsyncioBackend, transport, uses_asyncio_backend
from simulators.common import free_port


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    path = scope["path"]
    if path == "/slow":
        await asyncio.sleep(2)
    if path == "/big":
        payload = b"x" * 3_000_000
    elif path == "/echo":
        payload = body
    else:
        payload = json.dumps({"client_port": scope["client"][1], "path": path}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})


class _Server:
    def __init__(self, **options: Any) -> None:
        port = free_port()
        scheme = "https" if "ssl_certfile" in options else "http"
        self.url = f"{scheme}://127.0.0.1:{port}"
        self.server = uvicorn.Server(uvicorn.Config(_app, host="127.0.0.1", port=port, log_level="warning",
                                                    lifespan="off", **options))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "test server did not start"
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(5)


@pytest.fixture
def server() -> Iterator[_Server]:
    s = _Server(timeout_keep_alive=1)
    yield s
    s.stop()


def test_the_transport_uses_the_asyncio_backend() -> None:
    # An httpx release that builds its pool differently falls back to anyio: this test says so.
    assert uses_asyncio_backend(transport())


async def test_requests_reuse_one_connection_and_carry_large_bodies(server: _Server) -> None:
    async with httpx.AsyncClient(transport=transport(), timeout=10) as client:
        ports = {(await client.get(f"{server.url}/a")).json()["client_port"] for _ in range(5)}
        assert len(ports) == 1  # kept alive and reused
        body = bytes(range(256)) * 8000  # 2 MB up: the socket's buffer fills, writes wait for it
        echoed = await client.post(f"{server.url}/echo", content=body)
        assert echoed.content == body
        big = await client.get(f"{server.url}/big")  # 3 MB down, in many reads
        assert big.content == b"x" * 3_000_000
        many = await asyncio.gather(*(client.get(f"{server.url}/n{i}") for i in range(20)))
        assert [r.json()["path"] for r in many] == [f"/n{i}" for i in range(20)]


async def test_a_connection_the_server_closed_while_idle_is_not_reused(server: _Server) -> None:
    async with httpx.AsyncClient(transport=transport(), timeout=10) as client:
        first = (await client.get(f"{server.url}/a")).json()["client_port"]
        await asyncio.sleep(2)  # the server's keep-alive (1 s) ends: it closes the connection
        second = (await client.get(f"{server.url}/a")).json()["client_port"]
    assert second != first


async def test_timeouts_and_refusals_are_httpx_errors(server: _Server) -> None:
    async with httpx.AsyncClient(transport=transport(), timeout=0.3) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get(f"{server.url}/slow")
        assert (await client.get(f"{server.url}/a")).status_code == 200  # the pool is still fine
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{free_port()}/")


async def test_an_answer_cut_off_is_a_transport_error() -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly part")
        await writer.drain()
        writer.close()

    srv = await asyncio.start_server(cut, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient(transport=transport(), timeout=5) as client:
            with pytest.raises(httpx.TransportError):
                await client.get(f"http://127.0.0.1:{port}/")
    finally:
        srv.close()
        await srv.wait_closed()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


async def test_https_is_verified(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    tls = _Server(ssl_certfile=str(cert), ssl_keyfile=str(key))
    try:
        trusted = ssl.create_default_context(cafile=str(cert))
        async with httpx.AsyncClient(transport=transport(verify=trusted), timeout=10) as client:
            answer = await client.get(f"{tls.url}/a")
            assert answer.json()["path"] == "/a"
        async with httpx.AsyncClient(transport=transport(), timeout=10) as client:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await client.get(f"{tls.url}/a")  # a certificate nobody vouches for is refused
    finally:
        tls.stop()


async def test_the_api_clients_connect_through_it(server: _Server, monkeypatch: pytest.MonkeyPatch) -> None:
    connects: list[tuple[str, int]] = []
    real = AsyncioBackend.connect_tcp

    async def counted(self: AsyncioBackend, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        connects.append((host, port))
        return await real(self, host, port, *args, **kwargs)

    monkeypatch.setattr(http_transport.AsyncioBackend, "connect_tcp", counted)
    api = EspoCRMAPI(server.url, "key")
    try:
        await api.get("CBeteiligte", "abc")  # the test server answers any path with JSON
    finally:
        await api.aclose()
    assert connects == [("127.0.0.1", int(server.url.rsplit(":", 1)[1]))]


def test_socket_options_are_applied() -> None:
    async def run() -> int:
        srv = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5,
                                                     socket_options=[(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)])
        sock = stream.get_extra_info("socket")
        value = int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE))
        await stream.aclose()
        srv.close()
        return value

    assert asyncio.run(run()) == 1


async def test_a_slow_reader_holds_the_server_off() -> None:
    size = 6 * 1024 * 1024

    async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"x" * size)
        await writer.drain()
        writer.close()

    srv = await asyncio.start_server(flood, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
        await asyncio.sleep(0.5)  # not reading: what is buffered stays near the high-water mark
        protocol = stream._p  # type: ignore[attr-defined]
        assert protocol.reading_paused
        assert len(protocol.buffer) < http_transport.READ_HIGH_WATER + 512 * 1024
        received = 0
        while chunk := await stream.read(65536, timeout=5):
            received += len(chunk)
        assert received == size and not protocol.reading_paused
        await stream.aclose()
    finally:
        srv.close()
        await srv.wait_closed()
