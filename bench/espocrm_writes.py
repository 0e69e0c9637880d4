"""EspoCRM and Advoware writes per created record on EspoCRM 8.1.5 as an admin leaves it.

    .venv/bin/python bench/espocrm_writes.py [--records 60]

60 staff creates; EspoCRM's webhook job moves at most 20 events per run and, on 8.x, queues an update
webhook for every write of ours (no ``skipOwn``); runs until nothing is queued, then one sync check and
the job again until the queue is drained. Optimistic concurrency off, stock salutation options.
Bound (issue 6): EspoCRM writes per record <= 2 (one mark, one release; the issue measured 3.3 before),
Advoware writes exactly 1 per record.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from simulators.espocrm import STOCK_SALUTATIONS  # noqa: E402
from tests.testbed import Testbed, start_testbed  # noqa: E402

PERSON = {"salutationName": "Ms.", "firstName": "Jana", "rechtsform": "natürliche Person",
          "emailAddress": "jana@example.org", "phoneNumber": "+49 30 1234567", "addressCity": "Berlin"}


def writes(tb: Testbed, system: str) -> int:
    return sum(v for k, v in tb.calls().items()
               if k.startswith(system) and k.split()[1] in ("POST", "PUT", "PATCH", "DELETE")
               and "/Beteiligte" in k.replace("CBeteiligte", "Beteiligte"))


async def run_job_until_empty(tb: Testbed) -> int:
    runs = 0
    while tb.espo.pending_webhook_events():
        await tb.espo.flush_webhooks()  # one job run: at most 20 events
        await tb.host.drain(120)
        runs += 1
    return runs


async def measure(records: int) -> dict[str, float]:
    tb = await start_testbed(espo_profile="8", occ=False, salutation_options=STOCK_SALUTATIONS)
    try:
        tb.reset_calls()
        for i in range(records):
            tb.espo.seed(**PERSON, lastName=f"Beispiel {i}")
        runs = await run_job_until_empty(tb)
        await tb.sync_check()
        runs += await run_job_until_empty(tb)
        clean = sum(1 for r in tb.espo.all() if r["syncStatus"] == "clean")
        return {"records": records, "clean": clean, "job runs": runs, "advoware records": len(tb.advo.all()),
                "espocrm writes": writes(tb, "espocrm"), "advoware writes": writes(tb, "advoware")}
    finally:
        await tb.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=60)
    n = parser.parse_args().records
    r = asyncio.run(measure(n))
    espo, advo = r["espocrm writes"] / n, r["advoware writes"] / n
    rows = [
        ("records clean", f"{r['clean']}/{n}", f"{n}/{n}", r["clean"] == n),
        ("Advoware Beteiligte", f"{r['advoware records']}", f"{n}", r["advoware records"] == n),
        ("EspoCRM writes per record", f"{espo:.2f}", "<= 2", espo <= 2),
        ("Advoware writes per record", f"{advo:.2f}", "== 1", advo == 1),
        ("webhook job runs (20 events each)", f"{r['job runs']}", "-", True),
    ]
    print(f"{'figure':36} {'measured':>9}  {'bound':>6}  ok")
    for name, value, bound, ok in rows:
        print(f"{name:36} {value:>9}  {bound:>6}  {'yes' if ok else 'NO'}")
    if not all(ok for *_, ok in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
