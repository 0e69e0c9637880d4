"""A CLI command refuses to run when it would not share its store with the running ``serve``.

Every store carries a random id (``bsync:store_id``, created by whoever looks first). ``serve``
answers ``GET /health/store`` with that id and, for the embedded store, a digest of its folder (the
route needs no login, so it names no server path). Before a CLI
command starts or touches anything, it asks the ``serve`` at its own ``HOST``/``PORT``:

- nothing answers (no serve, or not this service): go ahead;
- serve uses the embedded store in the same folder: go ahead (one server per folder);
- this command would start an embedded server that serve does not use: refuse, nothing started;
- otherwise compare the ids of both stores (a different ``REDIS_URL``, or the embedded store against
  ``REDIS_URL``): refuse when they differ.

What cannot be detected: a serve on another machine or on another ``PORT`` than this command's.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass

import httpx
import redis
from redis.asyncio import Redis
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.embedded_redis import EmbeddedRedis, StartupError
from config.settings import Settings

log = logging.getLogger(__name__)

STORE_ID_KEY = "bsync:store_id"
STORE_ROUTE = "/health/store"
PROBE_TIMEOUT_S = 3.0
WILDCARD_HOSTS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


class StoreRefused(StartupError):
    pass


@dataclass(frozen=True)
class StoreInfo:
    store_id: str
    embedded: str | None  # digest of the embedded store's folder (folder_digest); None for REDIS_URL

    def describe(self) -> str:
        return "an embedded store in another STATE_DIR" if self.embedded else "the Redis of its REDIS_URL"


def folder_digest(embedded: EmbeddedRedis) -> str:
    """Tells two folders apart without naming either (``/health/store`` is public)."""
    return hashlib.sha256(str(embedded.folder).encode()).hexdigest()[:16]


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def store_id(client: Redis) -> str:
    await client.set(STORE_ID_KEY, uuid.uuid4().hex, nx=True)
    return _text(await client.get(STORE_ID_KEY))


def store_id_sync(client: redis.Redis) -> str:
    client.set(STORE_ID_KEY, uuid.uuid4().hex, nx=True)
    return _text(client.get(STORE_ID_KEY))


def store_route(client: Redis, embedded: EmbeddedRedis | None) -> Route:
    """``GET /health/store`` for ``serve``: which store it uses."""
    folder = folder_digest(embedded) if embedded else None

    async def store(_request: Request) -> Response:
        try:
            body = {"store_id": await store_id(client), "embedded": folder}
        except redis.RedisError:
            return JSONResponse({"store_id": None, "embedded": folder}, status_code=503)
        return JSONResponse(body)

    return Route(STORE_ROUTE, store, methods=["GET"])


def serve_url(settings: Settings) -> str:
    host = WILDCARD_HOSTS.get(settings.host, settings.host)
    scheme = settings.scheme
    return f"{scheme}://[{host}]:{settings.port}" if ":" in host else f"{scheme}://{host}:{settings.port}"


def probe_serve(settings: Settings) -> StoreInfo | None:
    """The store of the serve at this command's HOST/PORT; None when none answers as this service."""
    try:
        # A serve with TLS has a certificate for its public name, not for the local address asked here;
        # the answer is only the id of a store, so it is not verified.
        answer = httpx.get(serve_url(settings) + STORE_ROUTE, timeout=PROBE_TIMEOUT_S, verify=False)
        data = answer.json() if answer.status_code == 200 else None
        return StoreInfo(str(data["store_id"]), data.get("embedded")) if isinstance(data, dict) else None
    except (httpx.HTTPError, ValueError, KeyError):
        return None


def refuse_unshared(settings: Settings, embedded: EmbeddedRedis | None) -> None:
    """Raise :class:`StoreRefused` when a running serve uses another store than this command would."""
    serve = probe_serve(settings)
    if serve is None or (embedded is not None and serve.embedded == folder_digest(embedded)):
        return
    if embedded is not None and not embedded.is_running():
        raise StoreRefused(_refusal(settings, serve, f"would start {embedded.describe()}"))
    ours = _our_store_id(settings, embedded)
    if ours is not None and ours != serve.store_id:
        mine = embedded.describe() if embedded else "the Redis of its REDIS_URL"
        raise StoreRefused(_refusal(settings, serve, f"uses {mine}"))


def _our_store_id(settings: Settings, embedded: EmbeddedRedis | None) -> str | None:
    try:
        client = embedded.sync_client() if embedded else redis.Redis.from_url(str(settings.redis_url))
        with client:
            return store_id_sync(client)
    except redis.RedisError as exc:  # the command itself will report its store being unreachable
        log.debug("store id unreadable: %s", exc)
        return None


def _refusal(settings: Settings, serve: StoreInfo, ours: str) -> str:
    return (f"refusing to run: the serve at {serve_url(settings)} uses {serve.describe()}, but this command {ours};"
            " run it with the same STATE_DIR / REDIS_URL (and .env) as serve, or stop serve")
