"""Hostile and ordinary clients of the HTTP edge on loopback, shared by the flood tests and
``bench/edge_flood.py``: idle and trickling sockets, unsigned large bodies, signed EspoCRM batches,
``/health`` probes. Each records outcomes (answers, drops) and, for the bench, how long they took.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from simulators.espocrm.webhooks import php_json_encode, signature_header

WEBHOOK_PATH = "/vmh/webhook/beteiligte/"
MIB = 1024 * 1024


@dataclass(frozen=True)
class Hook:
    event: str
    webhook_id: str
    secret: str


@dataclass
class FloodSpec:
    signed_batches: int = 160
    items_per_batch: int = 50
    idle_sockets: int = 20
    trickled_headers: int = 20
    trickled_bodies: int = 20
    unsigned_large: int = 40
    unsigned_bytes: int = 4 * MIB
    trickle_every_s: float = 0.5
    give_up_s: float = 60.0


@dataclass
class FloodResult:
    signed: list[int | str] = field(default_factory=list)  # status, or the exception's name (a drop)
    signed_items_accepted: int = 0
    signed_latency_s: list[float] = field(default_factory=list)
    unsigned: list[int | str] = field(default_factory=list)
    trickled_bodies: list[int | str] = field(default_factory=list)
    sockets_closed_by_server: int = 0
    sockets_left_open: int = 0
    health: list[int | str] = field(default_factory=list)
    health_latency_s: list[float] = field(default_factory=list)


def new_id() -> str:
    return secrets.token_hex(9)[:17]


def signed_batch(hook: Hook, items: int) -> tuple[bytes, dict[str, str]]:
    raw = php_json_encode([{"id": new_id(), "lastName": "Flut", "phoneNumber": "+49 30 1"} for _ in range(items)])
    return raw, {"Content-Type": "application/json", "Signature": signature_header(hook.webhook_id, hook.secret, raw)}


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


async def _closed_by_server(reader: asyncio.StreamReader, give_up_s: float) -> bool:
    """Reads until the server closes the connection; False if it is still open after ``give_up_s``."""
    try:
        async with asyncio.timeout(give_up_s):
            while await reader.read(65536):
                pass
    except TimeoutError:
        return False
    except ConnectionError:
        return True
    return True


async def idle_socket(url: str, give_up_s: float) -> bool:
    """Connects and sends nothing. True once the server closed the connection."""
    reader, writer = await asyncio.open_connection(*_address(url))
    try:
        return await _closed_by_server(reader, give_up_s)
    finally:
        writer.close()


async def trickled_headers(url: str, every_s: float, give_up_s: float) -> bool:
    """Sends a request's headers a few bytes at a time, never finishing. True once closed."""
    reader, writer = await asyncio.open_connection(*_address(url))
    head = b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"a" * 10_000
    closed = asyncio.create_task(_closed_by_server(reader, give_up_s))
    try:
        for i in range(0, len(head), 4):
            if closed.done():
                break
            writer.write(head[i:i + 4])
            await asyncio.sleep(every_s)
        return await closed
    except ConnectionError:
        return True
    finally:
        closed.cancel()
        writer.close()


async def trickled_body(url: str, path: str, every_s: float, give_up_s: float) -> int | str:
    """POSTs 64 KiB declared, sent a few bytes at a time. Returns the status, or ``closed``."""
    reader, writer = await asyncio.open_connection(*_address(url))
    writer.write(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 f"Content-Length: 65536\r\n\r\n".encode())
    answer = asyncio.create_task(reader.read(65536))
    try:
        async with asyncio.timeout(give_up_s):
            while not answer.done():
                writer.write(b"[   ")
                await writer.drain()
                await asyncio.sleep(every_s)
            first = answer.result()
    except TimeoutError:
        return "still open"
    except ConnectionError:
        return "closed"
    finally:
        answer.cancel()
        writer.close()
    return int(first.split(b" ", 2)[1]) if first.startswith(b"HTTP/") else "closed"


async def _status(call: asyncio.Future[httpx.Response] | asyncio.Task[httpx.Response]) -> int | str:
    try:
        return (await call).status_code
    except httpx.HTTPError as exc:
        return type(exc).__name__


async def post_signed(client: httpx.AsyncClient, hook: Hook, items: int) -> tuple[int | str, int, float]:
    """One signed batch: (status or drop, items accepted, seconds to the answer)."""
    raw, headers = signed_batch(hook, items)
    started = time.perf_counter()
    try:
        resp = await client.post(WEBHOOK_PATH + hook.event, content=raw, headers=headers)
    except httpx.HTTPError as exc:
        return type(exc).__name__, 0, time.perf_counter() - started
    took = time.perf_counter() - started
    accepted = len(resp.json().get("queued", [])) if resp.status_code == 200 else 0
    return resp.status_code, accepted, took


async def post_unsigned(client: httpx.AsyncClient, event: str, size: int) -> int | str:
    body = b"[" + b'{"id": "0123456789abcdef0", "x": 1},' * (size // 40) + b"{}]"
    return await _status(asyncio.ensure_future(client.post(WEBHOOK_PATH + event, content=body)))


async def probe_health(client: httpx.AsyncClient, result: FloodResult, stop: asyncio.Event,
                       every_s: float = 0.05) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        result.health.append(await _status(asyncio.ensure_future(client.get("/health"))))
        result.health_latency_s.append(time.perf_counter() - started)
        await asyncio.sleep(every_s)


def flood_client(url: str) -> httpx.AsyncClient:
    """A client that really opens one connection per concurrent request."""
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    return httpx.AsyncClient(base_url=url, timeout=30.0, limits=limits)


async def _signed_wave(url: str, hook: Hook, spec: FloodSpec, result: FloodResult) -> None:
    async with flood_client(url) as client:
        answers = await asyncio.gather(*(post_signed(client, hook, spec.items_per_batch)
                                         for _ in range(spec.signed_batches)))
    result.signed = [status for status, _, _ in answers]
    result.signed_latency_s = [took for _, _, took in answers]
    result.signed_items_accepted = sum(accepted for _, accepted, _ in answers)


async def _unsigned_wave(url: str, spec: FloodSpec, result: FloodResult) -> None:
    async with flood_client(url) as client:
        result.unsigned = list(await asyncio.gather(*(post_unsigned(client, "create", spec.unsigned_bytes)
                                                      for _ in range(spec.unsigned_large))))


async def _socket_wave(url: str, spec: FloodSpec, result: FloodResult) -> None:
    closes = await asyncio.gather(
        *(idle_socket(url, spec.give_up_s) for _ in range(spec.idle_sockets)),
        *(trickled_headers(url, spec.trickle_every_s, spec.give_up_s) for _ in range(spec.trickled_headers)),
    )
    result.sockets_closed_by_server = sum(1 for c in closes if c)
    result.sockets_left_open = sum(1 for c in closes if not c)


async def run_flood(url: str, hook: Hook, spec: FloodSpec) -> FloodResult:
    """Everything at once; ``/health`` is probed until the last wave is over."""
    result = FloodResult()
    stop = asyncio.Event()
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as health_client:
        prober = asyncio.create_task(probe_health(health_client, result, stop))
        bodies = asyncio.gather(*(trickled_body(url, WEBHOOK_PATH + "update", spec.trickle_every_s, spec.give_up_s)
                                  for _ in range(spec.trickled_bodies)))
        await asyncio.gather(_socket_wave(url, spec, result), _unsigned_wave(url, spec, result),
                             _signed_wave(url, hook, spec, result))
        result.trickled_bodies = list(await bodies)
        stop.set()
        await prober
    return result


def rss_mib(pid: int) -> float:
    """Resident set size of process ``pid`` (Linux)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


def probe_health_until(url: str, stop: Any, out: Any, every_s: float = 0.05) -> None:
    """``/health`` probes from another process (so the flood's own client does not skew them) until
    ``stop`` (a multiprocessing Event) is set; puts ``(statuses, latencies)`` on ``out``."""
    statuses: list[int | str] = []
    latencies: list[float] = []
    with contextlib.suppress(OSError):  # back to normal priority if the flood's client was niced
        os.setpriority(os.PRIO_PROCESS, 0, 0)
    with httpx.Client(base_url=url, timeout=30.0) as client:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                statuses.append(client.get("/health").status_code)
            except httpx.HTTPError as exc:
                statuses.append(type(exc).__name__)
            latencies.append(time.perf_counter() - started)
            time.sleep(every_s)
    out.put((statuses, latencies))


async def partial_headers_swarm(url: str, connections: int, source: str, stop: asyncio.Event) -> int:
    """``connections`` clients from the address ``source``, each sending part of a request's headers and
    connecting again as soon as the server cuts it, until ``stop``; how many times they were cut."""
    cut = 0

    async def one() -> None:
        nonlocal cut
        while not stop.is_set():
            try:
                reader, writer = await asyncio.open_connection(*_address(url), local_addr=(source, 0))
            except OSError:
                await asyncio.sleep(0.05)
                continue
            try:
                writer.write(b"POST /vmh/webhook/beteiligte/update HTTP/1.1\r\nHost: x\r\nX-Pad: aaaa")
                read = asyncio.ensure_future(reader.read(65536))
                halt = asyncio.ensure_future(stop.wait())
                await asyncio.wait({read, halt}, return_when=asyncio.FIRST_COMPLETED)
                if read.done():
                    cut += 1
                read.cancel()
                halt.cancel()
            except ConnectionError:
                cut += 1
            finally:
                writer.close()

    await asyncio.gather(*(one() for _ in range(connections)))
    return cut
