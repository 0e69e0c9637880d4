"""The uvicorn server of the host, with the connection limits uvicorn lacks.

uvicorn closes idle keep-alive connections (``timeout_keep_alive``) and caps open connections
(``limit_concurrency``: new requests get ``503``), but it has no deadline for a request's headers or
body: a client that trickles bytes, or connects and sends nothing, holds a connection for ever.
:class:`DeadlineH11Protocol` adds both deadlines. They are absolute (trickled bytes do not extend
them):

* headers: within ``headerTimeoutSeconds`` after the connection opened or the previous answer;
* body: within ``bodyTimeoutSeconds`` (plus a second of grace) after the headers. API routes answer a
  slow body with ``408`` themselves (:mod:`stephost.http_app`); this catches the routes that never
  read the body.

A connection that misses a deadline is closed without an answer.

Many connections that send nothing (or part of their headers) must not crowd out the clients that
send requests: uvicorn answers every new request with 503 once ``maxConnections`` are open, idle or
not. So connections are counted per client address. Beyond ``maxConnectionsPerClient`` of one
address, a new connection is not counted toward ``maxConnections`` and must deliver its request
headers within a deadline spread over half to all of ``headerTimeoutSeconds`` (a real client sends
them at once; a swarm of slowloris clients is cut a few at a time, not all at once). A flood from
one address then costs that address its own connections, and a signed delivery
from another address still gets through.

With ``tlsCertFile`` and ``tlsKeyFile`` the server speaks HTTPS (the deadlines count from the TCP
connection, so they include the TLS handshake).
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from stephost.config import HttpConfig

log = logging.getLogger("stephost.http")

BODY_GRACE_SECONDS = 1.0
MAX_HEADER_BYTES = 16 * 1024


# A connection beyond its address's share gets a header deadline between these parts of the usual one,
# at random: a swarm of them, cut at once, would come back at once; spread out, they cost the event
# loop a little all the time instead of a stall every few seconds.
CROWDED_DEADLINE_SHARE = (0.5, 1.0)


class ClientConnections:
    """The open connections of one server by client address (kept on uvicorn's ``server_state``)."""

    def __init__(self) -> None:
        self.by_client: dict[str, int] = {}
        self.crowded = 0  # connections opened beyond their address's share (not counted by uvicorn)

    def add(self, client: str) -> int:
        self.by_client[client] = self.by_client.get(client, 0) + 1
        return self.by_client[client]

    def remove(self, client: str) -> None:
        left = self.by_client.get(client, 0) - 1
        if left > 0:
            self.by_client[client] = left
        else:
            self.by_client.pop(client, None)


class DeadlineH11Protocol(H11Protocol):
    header_timeout = 5.0
    body_timeout = 5.0 + BODY_GRACE_SECONDS
    per_client = 64  # 0: no cap

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._client_key: str | None = None
        state = self.server_state
        if not hasattr(state, "client_connections"):
            state.client_connections = ClientConnections()  # type: ignore[attr-defined]
        self._clients: ClientConnections = state.client_connections  # type: ignore[attr-defined]

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._client_key = self.client[0] if self.client else ""
        held = self._clients.add(self._client_key)
        if self.per_client and held > self.per_client:
            # Beyond its address's share: not counted toward maxConnections, and its headers are due soon.
            self._clients.crowded += 1
            self.connections.discard(self)
            self._arm(self.header_timeout * random.uniform(*CROWDED_DEADLINE_SHARE), self._headers_missed)
        else:
            self._arm(self.header_timeout, self._headers_missed)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._client_key is not None:
            self._clients.remove(self._client_key)
            self._client_key = None
        super().connection_lost(exc)

    def handle_events(self) -> None:
        before = self.cycle
        super().handle_events()
        if self.cycle is not before and not self.transport.is_closing():  # a new request's headers arrived
            self._arm(self.body_timeout, self._body_missed)

    def on_response_complete(self) -> None:
        cycle = self.cycle
        super().on_response_complete()
        if self.transport.is_closing() or self.cycle is not cycle:
            return  # closed, or a pipelined request already started (its body deadline runs)
        if self.conn.their_state is h11.IDLE:  # waiting for the next request's headers
            self._arm(self.header_timeout, self._headers_missed)

    def _arm(self, seconds: float, expired: Any) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, expired, self.cycle)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _headers_missed(self, armed_for: Any) -> None:
        if self.cycle is armed_for:  # no request started since
            self._close("no complete request headers within %.1f s", self.header_timeout)

    def _body_missed(self, armed_for: Any) -> None:
        if self.cycle is armed_for and self.conn.their_state is h11.SEND_BODY:
            self._close("request body not complete within %.1f s", self.body_timeout)

    def _close(self, why: str, seconds: float) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            log.info("closing connection from %s: " + why, self.client, seconds)
            self.transport.close()


def protocol_for(http: HttpConfig) -> type[DeadlineH11Protocol]:
    """The protocol class with ``http``'s deadlines."""
    return type(
        "ConfiguredDeadlineH11Protocol",
        (DeadlineH11Protocol,),
        {"header_timeout": http.header_timeout_seconds,
         "body_timeout": http.body_timeout_seconds + BODY_GRACE_SECONDS,
         "per_client": http.max_connections_per_client},
    )


def tls_options(http: HttpConfig) -> dict[str, Any]:
    """uvicorn's HTTPS options when the config names a certificate and key (TLS 1.2 or newer, the
    ``ssl`` module's defaults otherwise); none for plain HTTP."""
    if http.tls_cert_file is None or http.tls_key_file is None:
        return {}
    return {"ssl_certfile": str(http.tls_cert_file), "ssl_keyfile": str(http.tls_key_file)}


def server_config(app: Any, http: HttpConfig, *, host: str | None = None, port: int | None = None,
                  **overrides: Any) -> uvicorn.Config:
    """The uvicorn config of the step host's server: deadlines, keep-alive, connection cap."""
    options: dict[str, Any] = {
        "host": host or http.host,
        "port": http.port if port is None else port,
        "http": protocol_for(http),
        "timeout_keep_alive": http.keep_alive_seconds,
        "limit_concurrency": http.max_connections,
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
        "log_config": None,
        **tls_options(http),
        **overrides,
    }
    return uvicorn.Config(app, **options)
