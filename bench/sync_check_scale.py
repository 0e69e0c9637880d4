"""A sync check over many records in sync: wall time against the page-read bound, memory, requests.

    .venv/bin/python bench/sync_check_scale.py                  # 100 000 records, 30 ms per request
    .venv/bin/python bench/sync_check_scale.py --records 20000  # a quicker run

Both simulators run in this process (threads), seeded directly with ``--records`` linked pairs whose
values agree; the links (the base of the last sync, as a sync writes it) go into a throwaway
``redis-server``. Every request to either simulator answers after ``--latency`` (default 30 ms). The
check itself runs in a child process (``SyncChecker.plan()`` of the service, as the scheduled check
and ``beteiligte-sync sync-check`` run it), so its memory is its own: peak RSS (``VmHWM``) before and
after the check. Bound: both systems are read at the same time, so the check cannot be faster than
the longer side's pages × latency. Redis memory per linked record is ``MEMORY USAGE`` of its keys
(``link:<id>``, ``edited:<id>``) plus its share of the ``betnr_owner`` hash. Exits 1 when the check
finds anything to do (the records are in sync), misses 1 KB per record, or takes longer than twice
the bound.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
from redis import Redis  # noqa: E402

from adapters.sync_state_store import Link, encode_link  # noqa: E402
from domain.beteiligte_mapper import advoware_to_canonical, canonical_to_advoware, espo_to_canonical  # noqa: E402
from domain.decision import fingerprint  # noqa: E402
from simulators.advoware.simulator import AdvowareSimulator  # noqa: E402
from simulators.common import serve_in_thread  # noqa: E402
from simulators.espocrm.simulator import EspoCRMSimulator  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402

PAGE = 200
BYTES_TARGET = 1024
ESPO_KEY = "bench-espo-key"
PREFIX = "bsync"


def seed(espo: EspoCRMSimulator, advo: AdvowareSimulator, redis: Redis, n: int) -> None:
    """``n`` EspoCRM records linked to Advoware twins with the same values, and their links."""
    pipe = redis.pipeline(transaction=False)
    for i in range(n):
        values = {"firstName": "Bench", "lastName": f"Person {i}", "rechtsform": "natürliche Person",
                  "emailAddress": f"p{i}@example.org", "phoneNumber": f"+4930{i:07d}",
                  "addressStreet": f"Hauptstraße {i % 200 + 1}", "addressPostalCode": "10115",
                  "addressCity": "Berlin", "addressCountry": "Deutschland"}
        twin = advo.seed(**canonical_to_advoware(espo_to_canonical(values)))
        rec = espo.seed(**values, betnr=twin["betNr"], advowareRowId=twin["rowId"], syncStatus="clean")
        link = Link(betnr=twin["betNr"], row_id=twin["rowId"], espo=fingerprint(espo_to_canonical(rec)),
                    advo=fingerprint(advoware_to_canonical(twin)), synced_at=time.time())
        pipe.set(f"{PREFIX}:link:{rec['id']}", encode_link(link))
        pipe.set(f"{PREFIX}:edited:{rec['id']}", str(rec["modifiedAt"]))
        pipe.hset(f"{PREFIX}:betnr_owner", str(twin["betNr"]), rec["id"])
        if i % 1000 == 999:
            pipe.execute()
    pipe.execute()


def redis_bytes_per_record(redis: Redis, n: int, sample: int = 2000) -> float:
    keys = [k for _, k in zip(range(sample), redis.scan_iter(match=f"{PREFIX}:link:*", count=1000), strict=False)]
    per_link = sum(int(redis.memory_usage(k) or 0) for k in keys) / len(keys)
    edited = [f"{PREFIX}:edited:{k.decode().rsplit(':', 1)[1]}" for k in keys]
    per_edited = sum(int(redis.memory_usage(k) or 0) for k in edited) / len(edited)
    owner = int(redis.memory_usage(f"{PREFIX}:betnr_owner", samples=0) or 0) / n
    print(f"Redis per linked record: link {per_link:.0f} B + edited {per_edited:.0f} B + betnr_owner share "
          f"{owner:.0f} B")
    return per_link + per_edited + owner


def child(env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--child"], env=env, capture_output=True, text=True,
                         timeout=3600, cwd=Path(__file__).resolve().parent.parent)
    if out.returncode != 0:
        raise RuntimeError(f"the check failed:\n{out.stdout}\n{out.stderr}")
    sys.stderr.write(out.stderr[-3000:])
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


async def run_check() -> dict[str, Any]:
    """In the child: the service's own checker, built from the environment like ``serve`` builds it."""
    from config.settings import Settings
    from entrypoints.bootstrap import build_services
    from entrypoints.log_setup import configure_logging

    configure_logging("INFO")
    services = build_services(Settings(_env_file=None))  # type: ignore[call-arg]
    before = _vm_hwm_mb()
    started, cpu = time.monotonic(), time.process_time()
    plan = await services.checker.plan()
    seconds, cpu = time.monotonic() - started, time.process_time() - cpu
    await services.aclose()
    return {"seconds": seconds, "cpu": cpu, "scanned": plan.scanned, "work": len(plan.work),
            "deletes": len(plan.deletes), "rss_before_mb": before, "rss_peak_mb": _vm_hwm_mb(),
            "source": plan.advoware_source}


def _vm_hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=100_000,
                    help="records in sync (default 100 000: about 2 minutes to seed, the check itself about a minute)")
    ap.add_argument("--latency", type=float, default=0.03, help="seconds per request to either system")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(asyncio.run(run_check())))
        return 0
    espo, advo = EspoCRMSimulator(api_key=ESPO_KEY, seed=1), AdvowareSimulator(seed=1)
    server = RedisServer()
    server.start()
    redis = Redis.from_url(server.url)
    t = time.monotonic()
    seed(espo, advo, redis, args.records)
    print(f"seeded {args.records} linked records in {time.monotonic() - t:.0f} s")
    espo_http, advo_http = serve_in_thread(espo.app), serve_in_thread(advo.app)
    try:
        per_record = redis_bytes_per_record(redis, args.records)
        espo.faults.latency = advo.faults.latency = args.latency
        espo.calls.reset()
        advo.calls.reset()
        for url in (espo_http.url, advo_http.url):
            httpx.delete(f"{url}/__sim/activity", timeout=10)
        creds = advo.client_settings()
        env = {**os.environ, "ESPOCRM_URL": espo_http.url, "ESPOCRM_API_KEY": ESPO_KEY, "REDIS_URL": server.url,
               "ADVOWARE_URL": advo_http.url, "ADVOWARE_TOKEN_URL": advo_http.url}
        env.update({f"ADVOWARE_{''.join(c if c.isalpha() else '_' for c in k.upper())}": v for k, v in creds.items()})
        result = child(env)
        pages = math.ceil(args.records / PAGE)
        bound = (pages + 1) * args.latency  # + Advoware's one probe of its list endpoint
        espo_calls, advo_calls = espo.calls.snapshot(), advo.calls.snapshot()
        espo_s, advo_s = (httpx.get(f"{u}/__sim/activity", timeout=10).json()["serving_s"]
                          for u in (espo_http.url, advo_http.url))
        print(f"\nsync check over {args.records} records in sync, {args.latency * 1000:.0f} ms per request "
              f"(load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs)")
        print("| figure | measured | bound / target | ratio |")
        print("|---|---|---|---|")
        sides = (sum(espo_calls.values()) * args.latency + espo_s, sum(advo_calls.values()) * args.latency + advo_s)
        print(f"| wall time | {result['seconds']:.1f} s | {bound:.1f} s (both sides' {pages} pages read at "
              f"the same time) | {bound / result['seconds']:.0%} of the bound's speed |")
        print(f"| wall time against the simulators' answers | {result['seconds']:.1f} s | {max(sides):.1f} s "
              f"(the slower side's requests × latency + its own time) | {max(sides) / result['seconds']:.0%} |")
        print(f"| CPU time of the checking process | {result['cpu']:.1f} s | — | "
              f"{result['cpu'] / result['seconds']:.0%} of its wall time |")
        print(f"| peak RSS of the checking process | {result['rss_peak_mb']:.0f} MB | "
              f"{result['rss_before_mb']:.0f} MB before the check | "
              f"+{result['rss_peak_mb'] - result['rss_before_mb']:.0f} MB for {args.records} records |")
        print(f"| requests | EspoCRM {sum(espo_calls.values())}, Advoware {sum(advo_calls.values())} | "
              f"{pages} pages each (+1 probe, +1 token) | — |")
        print(f"| Redis per linked record | {per_record:.0f} B | ≤ {BYTES_TARGET} B | "
              f"{per_record / BYTES_TARGET:.0%} |")
        print(f"| found to do | {result['work']} records, {result['deletes']} deletes | 0 | — |")
        print(f"| the simulators' own time per request (index seek, page to JSON; both in this process) | "
              f"EspoCRM {1000 * espo_s / max(1, sum(espo_calls.values())):.0f} ms, Advoware "
              f"{1000 * advo_s / max(1, sum(advo_calls.values())):.0f} ms | independent of the record count | — |")
        print(f"requests: {espo_calls} {advo_calls}")
        ok = (result["work"] == 0 and result["deletes"] == 0 and per_record <= BYTES_TARGET
              and result["seconds"] <= 2 * bound)
        return 0 if ok else 1
    finally:
        espo_http.stop()
        advo_http.stop()
        redis.close()
        server.close()


if __name__ == "__main__":
    sys.exit(main())
