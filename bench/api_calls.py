"""API calls per scenario, counted by the simulators (token requests listed separately).

    .venv/bin/python bench/api_calls.py [--records 200]

Each sync reads before it writes (a record in sync costs no write) and marks ``syncing`` only when it
will write. Targets, on a real EspoCRM's default (optimistic concurrency off): create <= 4 (GET,
mark, POST, release; +1 only when POST lacks rowId), update EspoCRM->Advoware <= 5 (GET both, mark,
PUT, release), update Advoware->EspoCRM <= 5 (GET both, mark, one more GET right before values go to
EspoCRM, release; 4 with optimistic concurrency on; +1 stream read when the fields are audited, to find
a person's save the release overwrote), unmapped-only update 0, sync check over records already in
sync: 0 writes.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from domain.beteiligte_mapper import FIELDS  # noqa: E402
from tests.testbed import Testbed, start_testbed  # noqa: E402

SAMPLE: dict[str, Any] = {
    "salutationName": "Herr", "firstName": "Jan", "lastName": "Meier", "rechtsform": "natürliche Person",
    "dateOfBirth": "1970-01-31", "emailAddress": "jan@example.org", "addressStreet": "Weg 1",
    "addressPostalCode": "10115", "addressCity": "Berlin", "addressCountry": "Deutschland",
}


def _split(tb: Testbed) -> tuple[int, int, int, dict[str, int]]:
    calls = tb.calls()
    token = sum(v for k, v in calls.items() if k.endswith("/Token"))
    api = tb.api_calls()
    return api, tb.writes(), token, calls


async def _created(tb: Testbed) -> dict[str, Any]:
    rec = tb.espo.seed(**SAMPLE)
    await tb.flush()
    return tb.espo_record(rec["id"])


async def measure(records: int) -> list[tuple[str, int, int, int, str, bool]]:
    rows: list[tuple[str, int, int, int, str, bool]] = []

    def row(name: str, tb: Testbed, target: str, ok: bool) -> None:
        api, writes, token, _ = _split(tb)
        rows.append((name, api, writes, token, target, ok))

    for returns_rowid in (True, False):
        tb = await start_testbed(post_returns_rowid=returns_rowid)
        try:
            tb.reset_calls()
            await _created(tb)
            api = tb.api_calls()
            limit = 4 if returns_rowid else 5
            row(f"create (POST {'with' if returns_rowid else 'without'} rowId)", tb, f"<= {limit}", api <= limit)
        finally:
            await tb.close()

    tb = await start_testbed()
    try:
        rec = await _created(tb)
        tb.reset_calls()
        tb.espo.user_edit(rec["id"], addressCity="Potsdam")
        await tb.flush()
        row("update EspoCRM -> Advoware (webhook)", tb, "<= 5", tb.api_calls() <= 5)

        tb.advo.edit(rec["betnr"], ort="Köln")
        tb.reset_calls()
        await tb.services.sync.sync(rec["id"], "bench")
        row("update Advoware -> EspoCRM (one record)", tb, "<= 5", tb.api_calls() <= 5)

        # Audited fields (issue 17 item 6): one stream read after a release that wrote values.
        tb.espo.set_audited([f.espo for f in FIELDS])
        await tb.services.sync.espo_facts.reload()  # the service reads metadata again every 10 min
        tb.advo.edit(rec["betnr"], ort="Hamm")
        tb.reset_calls()
        await tb.services.sync.sync(rec["id"], "bench")
        row("update Advoware -> EspoCRM, fields audited", tb, "<= 6", tb.api_calls() <= 6 and tb.writes() == 2)
        tb.espo.set_audited([])
        await tb.services.sync.espo_facts.reload()

        tb.reset_calls()
        tb.espo.user_edit(rec["id"], description="intern")
        await tb.flush()
        row("unmapped-only update", tb, "0", tb.api_calls(include_token=True) == 0)

        for i in range(records - 1):
            tb.espo.seed(**{**SAMPLE, "lastName": f"Meier {i}"})
        await tb.flush(120)
        tb.reset_calls()
        await tb.sync_check()
        row(f"sync check, {records} records in sync", tb, "0 writes", tb.writes() == 0)

        tb.advo.edit(rec["betnr"], ort="Bonn")
        tb.reset_calls()
        await tb.sync_check()
        api, writes, _, _ = _split(tb)
        row(f"sync check, {records} records, 1 changed in Advoware", tb, "2 writes", writes == 2)
    finally:
        await tb.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=200)
    args = parser.parse_args()
    rows = asyncio.run(measure(args.records))
    print(f"{'scenario':48} {'api calls':>9} {'writes':>6} {'token':>5}  target     ok")
    for name, api, writes, token, target, ok in rows:
        print(f"{name:48} {api:9d} {writes:6d} {token:5d}  {target:10} {'yes' if ok else 'NO'}")
    print("api calls: every request to either simulator except token requests (listed apart); "
          "writes: POST/PUT/DELETE to records")
    if not all(r[-1] for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
