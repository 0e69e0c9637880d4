"""The randomized convergence test at scale.

    python bench/convergence_bench.py --records 2000 --rounds 5 --seed 7

Same workload as ``tests/test_convergence.py`` (``tests/chaos/``): thousands of records, random
edits on both sides, webhooks lost / duplicated / reordered / held back, random API faults; then the
faults stop, ONE sync check runs, and every pair is checked. Prints records, edits, faults, writes,
convergence % (pairs agreeing / pairs), echo writes (what a second sync check wrote) and wall time.
Exits 1 when anything did not converge, a change was lost, or the second check wrote.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from domain.conflict_policy import ConflictPolicy  # noqa: E402
from tests.chaos import ChaosConfig, ChaosRun  # noqa: E402
from tests.testbed import start_testbed  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--records", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--workers", type=int, default=16, help="event workers of the step host")
    p.add_argument("--policy", default="default",
                   help="default (config/conflict_policy.toml) or a strategy for every group: "
                        "espocrm_wins, advoware_wins, newest_wins, field_merge")
    p.add_argument("--edit-rate", type=float, default=0.6, help="edit operations per record and round")
    p.add_argument("--loss", type=float, default=0.15, help="share of webhook batches lost")
    p.add_argument("--duplicate", type=float, default=0.15)
    p.add_argument("--reorder", type=float, default=0.3)
    p.add_argument("--fault-rate", type=float, default=0.03, help="per request, per fault kind and system")
    p.add_argument("--timeouts", type=int, default=2, help="answers delayed past the timeout, per round")
    p.add_argument("--http-timeout", type=float, default=2.0)
    p.add_argument("--redis-url", default=None, help="real Redis instead of the embedded store")
    p.add_argument("--verbose", action="store_true", help="show the service's and simulators' logs")
    return p.parse_args(argv)


async def main(args: argparse.Namespace) -> int:
    policy = None if args.policy == "default" else ConflictPolicy.uniform(args.policy)
    tb = await start_testbed(redis_url=args.redis_url, policy=policy, workers=args.workers,
                             http_timeout=args.http_timeout, seed=args.seed)
    started = time.monotonic()
    try:
        cfg = ChaosConfig(
            records=args.records, rounds=args.rounds, seed=args.seed, edit_rate=args.edit_rate,
            loss=args.loss, duplicate=args.duplicate, reorder=args.reorder, fault_rate=args.fault_rate,
            timeouts_per_round=args.timeouts, timeout_delay=args.http_timeout + 0.5,
            parallel_posts=8, drain_s=900.0,
        )
        run = ChaosRun(tb, cfg)
        report = await run.run()
    finally:
        await tb.close()
    wall = time.monotonic() - started
    st = run.stats
    print(f"convergence bench: records={args.records} rounds={args.rounds} seed={args.seed} "
          f"policy={args.policy} workers={args.workers}")
    for line in st.lines():
        print("  " + line)
    print(f"  records {report.pairs} pairs ({st.records_created} created, {st.records_deleted} deleted)")
    print(f"  edits {st.espo_edits + st.advo_edits} (EspoCRM {st.espo_edits}, Advoware {st.advo_edits}), "
          f"faults {sum(st.faults_injected.values())}, writes {st.writes_chaos + st.writes_final_check} "
          f"(final sync check {st.writes_final_check})")
    print(f"  convergence {report.convergence:.2f} % ({report.agreeing}/{report.pairs} pairs agree), "
          f"lost changes {len(report.violations)}, unmapped lost {len(report.unmapped_lost)}, "
          f"bad status {len(report.bad_status)}")
    print(f"  echo writes (second sync check) {st.writes_second_check}")
    print(f"  wall time {wall:.1f} s")
    for line in report.lines()[1:]:
        print(line)
    return 0 if report.ok() and st.writes_second_check == 0 else 1


if __name__ == "__main__":
    ns = parse_args()
    if not ns.verbose:
        logging.disable(logging.CRITICAL)
    sys.exit(asyncio.run(main(ns)))
