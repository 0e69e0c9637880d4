"""2000 idle connections from one address against signed webhooks and /health from another"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.edge_service import edge_service  # noqa: E402
from tests.flood import flood_client, partial_headers_swarm, percentile, post_signed  # noqa: E402

SWARM = 2000
SWARM_SOURCE = "127.0.0.2"  # loopback: another client address on this machine
RUN_S = 20.0
HEALTH_P99_BOUND_S = 0.100


async def main() -> None:
    with edge_service() as svc:  # the production edge settings (motia.config.json)
        stop = asyncio.Event()
        swarm = asyncio.create_task(partial_headers_swarm(svc.url, SWARM, SWARM_SOURCE, stop))
        await asyncio.sleep(3)
        signed: list[int | str] = []
        health_s: list[float] = []
        health: list[int] = []
        end = time.monotonic() + RUN_S
        async with flood_client(svc.url) as client:
            while time.monotonic() < end:
                signed.append((await post_signed(client, svc.hooks["update"], 10))[0])
                started = time.perf_counter()
                health.append((await client.get("/health")).status_code)
                health_s.append(time.perf_counter() - started)
                await asyncio.sleep(0.05)
        stop.set()
        cut = await swarm
        svc.stop()
    ok = Counter(signed)[200] / len(signed)
    p99 = percentile(health_s, 99)
    print(f"swarm: {SWARM} connections from {SWARM_SOURCE}, cut {cut} times in {RUN_S:.0f} s")
    print(f"signed webhooks from 127.0.0.1: {len(signed)} sent, {ok:.1%} answered 200 (bound 100 %) "
          f"{Counter(signed)}")
    print(f"/health: {Counter(health)}, p50 {percentile(health_s, 50) * 1000:.1f} ms, "
          f"p99 {p99 * 1000:.1f} ms (bound {HEALTH_P99_BOUND_S * 1000:.0f} ms) "
          f"{'ok' if p99 < HEALTH_P99_BOUND_S and ok == 1.0 else 'OVER THE BOUND'}")


if __name__ == "__main__":
    asyncio.run(main())
