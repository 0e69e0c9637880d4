"""The HTTP transport of both API clients: httpx over httpcore, with an asyncio network backend.

httpcore reaches asyncio through anyio by default: every read and write runs through a cancel scope,
a task lookup and a socket poll. Measured against a local server (uvloop, 10 requests in flight), a
request costs 0.55 ms of CPU that way and 0.38 ms with this backend, which calls the event loop
directly (a :class:`asyncio.Protocol`): about 0.7 ms less CPU per sync of 4 requests, so more syncs
per core (``bench/throughput.py``). httpcore documents network backends as a public extension point
(``network_backend=``); httpx builds its pool itself, so :func:`transport` hands ours to that pool.
Everything else stays httpx's: connection pooling, limits, TLS context, error types (this backend
raises httpcore's errors, which httpx maps to ``httpx.ConnectError``, ``httpx.ReadTimeout``, ...).
"""

# ruff: noqa: ASYNC109 - the timeout parameters are httpcore's network backend interface
from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Awaitable, Iterable
from typing import Any, cast

import httpcore
import httpx

__all__ = ["AsyncioBackend", "transport"]

READ_HIGH_WATER = 1024 * 1024  # buffered answer bytes before the socket is no longer read
READ_LOW_WATER = 256 * 1024  # ... and read again
SocketOption = tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]


class _Protocol(asyncio.Protocol):
    """Buffers what arrives; wakes one reader; pauses writers while the socket's buffer is full."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.eof = False
        self.reading_paused = False
        self.error: BaseException | None = None
        self._readable: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not registered as asyncio's

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > READ_HIGH_WATER and self.transport is not None and not self.reading_paused:
            self.transport.pause_reading()  # the client reads slower than the server sends: hold it off
            self.reading_paused = True
        self._wake_reader()

    def consumed(self) -> None:
        if self.reading_paused and len(self.buffer) <= READ_LOW_WATER and self.transport is not None:
            self.reading_paused = False
            self.transport.resume_reading()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake_reader()
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.error = exc
        self._wake_reader()
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def pause_writing(self) -> None:
        if self._writable is None or self._writable.done():
            self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def _wake_reader(self) -> None:
        if self._readable is not None and not self._readable.done():
            self._readable.set_result(None)

    async def wait_readable(self) -> None:
        self._readable = asyncio.get_running_loop().create_future()
        try:
            await self._readable
        finally:
            self._readable = None

    async def wait_writable(self) -> None:
        if self._writable is not None and not self._writable.done():
            await self._writable


class AsyncioStream(httpcore.AsyncNetworkStream):
    def __init__(self, protocol: _Protocol) -> None:
        self._p = protocol

    @property
    def _transport(self) -> asyncio.Transport:
        if self._p.transport is None:  # pragma: no cover - set before connect returns
            raise httpcore.ReadError("not connected")
        return self._p.transport

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        p = self._p
        if not p.buffer and not p.eof:
            try:
                async with asyncio.timeout(timeout):
                    while not p.buffer and not p.eof:
                        await p.wait_readable()
            except TimeoutError:
                raise httpcore.ReadTimeout(f"no answer within {timeout} s") from None
        if p.buffer:
            data = bytes(p.buffer[:max_bytes])
            del p.buffer[:max_bytes]
            p.consumed()
            return data
        if p.error is not None:
            raise httpcore.ReadError(str(p.error) or type(p.error).__name__)
        return b""  # the server closed the connection

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        if self._p.eof or self._transport.is_closing():
            raise httpcore.WriteError("the connection is closed")
        self._transport.write(buffer)
        try:
            async with asyncio.timeout(timeout):
                await self._p.wait_writable()
        except TimeoutError:
            raise httpcore.WriteTimeout(f"could not send within {timeout} s") from None

    async def aclose(self) -> None:
        self._transport.close()

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                tls = await loop.start_tls(self._transport, self._p, ssl_context, server_hostname=server_hostname)
        except TimeoutError:
            self._transport.close()
            raise httpcore.ConnectTimeout(f"TLS handshake not done within {timeout} s") from None
        except (OSError, ssl.SSLError) as exc:
            self._transport.close()
            raise httpcore.ConnectError(str(exc)) from exc
        if tls is None:  # pragma: no cover - only for a transport that cannot do TLS
            raise httpcore.ConnectError("TLS is not available on this connection")
        self._p.transport = cast(asyncio.Transport, tls)
        return self

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":  # an idle connection the server closed (or wrote to): not reused
            return self._p.eof or bool(self._p.buffer)
        if info == "ssl_object":
            return self._transport.get_extra_info("ssl_object")
        if info == "client_addr":
            return self._transport.get_extra_info("sockname")
        if info == "server_addr":
            return self._transport.get_extra_info("peername")
        if info == "socket":
            return self._transport.get_extra_info("socket")
        return None


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[SocketOption] | None = None) -> httpcore.AsyncNetworkStream:
        local = (local_address, 0) if local_address else None
        loop = asyncio.get_running_loop()
        return await _connect(loop.create_connection(_Protocol, host, port, local_addr=local), f"{host}:{port}",
                              timeout, socket_options)

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[SocketOption] | None = None) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        return await _connect(loop.create_unix_connection(_Protocol, path), path, timeout, socket_options)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


async def _connect(connecting: Awaitable[tuple[asyncio.BaseTransport, _Protocol]], where: str,
                   timeout: float | None, options: Iterable[SocketOption] | None) -> AsyncioStream:
    """A connection as httpcore expects it: its errors as httpcore's, the socket options applied."""
    try:
        async with asyncio.timeout(timeout):
            _, protocol = await connecting
    except TimeoutError:
        raise httpcore.ConnectTimeout(f"no connection to {where} within {timeout} s") from None
    except OSError as exc:
        raise httpcore.ConnectError(str(exc)) from exc
    _apply(protocol, options)
    return AsyncioStream(protocol)


def _apply(protocol: _Protocol, options: Iterable[SocketOption] | None) -> None:
    sock: socket.socket | None = protocol.transport.get_extra_info("socket") if protocol.transport else None
    for option in options or ():
        if sock is not None:
            sock.setsockopt(*option)


def transport(**options: Any) -> httpx.AsyncHTTPTransport:
    """``httpx.AsyncHTTPTransport(**options)`` whose pool connects through :class:`AsyncioBackend`.
    Should a later httpx build its pool differently, the transport stays httpx's own (anyio): slower,
    never broken; ``tests/test_http_transport.py`` notices."""
    made = httpx.AsyncHTTPTransport(**options)
    pool = getattr(made, "_pool", None)
    if isinstance(pool, httpcore.AsyncConnectionPool) and hasattr(pool, "_network_backend"):
        pool._network_backend = AsyncioBackend()
    return made


def uses_asyncio_backend(made: httpx.AsyncBaseTransport) -> bool:
    pool = getattr(made, "_pool", None)
    return isinstance(getattr(pool, "_network_backend", None), AsyncioBackend)
