"""The floor of ``bench/throughput.py``: what the bare HTTP round trips reach on the same installation.

``c`` workers on uvloop, each doing ``k`` requests per record one after the other against EspoCRM's
simulator (GET and PUT of an unmapped field, alternating), through the service's own HTTP transport
(:func:`adapters.http_transport.transport`), with the same injected latency; no Redis, no bus, no
decision. Its share of the bound ``c / (k × latency)`` is what any httpx client gets on this machine
next to these simulators; the service's figure divided by the floor's is the share the service's own
work leaves of it.
"""

from __future__ import annotations

import asyncio
import time

import httpx

from adapters.http_transport import transport
from tests.embedded_support import ESPO_API_KEY

ENTITY_PATH = "/api/v1/CBeteiligte"


def floor_rate(espo_url: str, ids: list[str], k: int, concurrency: int) -> float:
    """Records per second: ``k`` sequential requests per record, ``concurrency`` records at a time."""
    import uvloop

    return uvloop.run(_run(espo_url, ids, k, concurrency))


async def _run(espo_url: str, ids: list[str], k: int, concurrency: int) -> float:
    headers = {"X-Api-Key": ESPO_API_KEY}
    queue: asyncio.Queue[str] = asyncio.Queue()
    for espo_id in ids:
        queue.put_nowait(espo_id)
    async with httpx.AsyncClient(transport=transport(), timeout=30, base_url=espo_url) as client:

        async def worker() -> None:
            while not queue.empty():
                espo_id = queue.get_nowait()
                for n in range(k):
                    url = f"{ENTITY_PATH}/{espo_id}"
                    if n % 2:
                        answer = await client.put(url, headers=headers, json={"description": f"floor {n}"})
                    else:
                        answer = await client.get(url, headers=headers)
                    answer.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return len(ids) / (time.perf_counter() - started)
