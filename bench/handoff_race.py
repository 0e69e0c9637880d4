"""A change fired at every point of a running sync, many times: is any lost?

    .venv/bin/python bench/handoff_race.py [--rounds 200] [--profile 8|9]

At each point of a sync (before each of its requests and right after its release write) a person
edits the record and the update webhook arrives as a concurrent sync of the same record, exactly at
that moment (the simulators run the hook while serving the request). After both are done, without any
sync check, Advoware must hold the person's value. Prints per point how often it did. Bound: 0 lost.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.test_lock_handoff import POINTS, race_once  # noqa: E402
from tests.testbed import start_testbed  # noqa: E402


async def measure(rounds: int, profile: str) -> dict[str, tuple[int, int]]:
    tb = await start_testbed(espo_profile=profile, occ=profile == "9")
    out: dict[str, tuple[int, int]] = {}
    try:
        for point in POINTS:
            lost = 0
            for _ in range(rounds):
                late, results = await race_once(tb, point)
                rec = tb.espo_record(results[0].espo_id)
                if tb.advo_record(rec["betnr"])["vorname"] != late or rec["syncStatus"] != "clean":
                    lost += 1
            out[point] = (rounds, lost)
    finally:
        await tb.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=200, help="races per point")
    parser.add_argument("--profile", default="8", choices=("8", "9"))
    args = parser.parse_args()
    started = time.monotonic()
    result = asyncio.run(measure(args.rounds, args.profile))
    print(f"{'point of the running sync':24} {'races':>6} {'lost':>5}  bound")
    for point, (n, lost) in result.items():
        print(f"{point:24} {n:6d} {lost:5d}  0 {'ok' if lost == 0 else 'LOST'}")
    total = sum(n for n, _ in result.values())
    lost = sum(x for _, x in result.values())
    print(f"{total} races on EspoCRM {args.profile}, {lost} changes lost, {time.monotonic() - started:.0f} s")
    sys.exit(1 if lost else 0)


if __name__ == "__main__":
    main()
