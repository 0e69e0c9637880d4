"""Throughput at the round-trip limit: real ``serve`` processes, a real Redis, simulators far away.

    .venv/bin/python bench/throughput.py                 # the issue's table (issue 10)
    .venv/bin/python bench/throughput.py --quick         # smaller sizes, a minute
    .venv/bin/python bench/throughput.py --creates 100 --updates 100 --slow-creates 50 --concurrency 10

Both simulators run as their own processes and answer every request after a fixed latency (their
``/__sim/faults`` knob); one or two ``beteiligte-sync serve`` processes share a throwaway
``redis-server``. The script plays EspoCRM's webhook job itself: staff records are created (or edited)
first, then their webhook batches of 50 items, signed with the registered secrets, go to the serve
processes in turn, all at once. A run ends when every record is ``clean`` (and, for updates, its value
is in Advoware); its time is taken from the webhook answers to the last answer EspoCRM's simulator gave
(``/__sim/activity``), not from polling. A sync that needs ``k`` calls with ``c`` syncs in flight can do
at most ``c / (k × latency)`` records per second: ``k`` is counted by the simulators, ``c`` is
``SYNC_CONCURRENCY`` × processes. While a run syncs, a prober posts one-item webhooks (an unmapped
field: queued work for nobody) and times their answers: webhook p50/p99 under load. Peak RSS is
``VmHWM`` of each serve process. Exits 1 when a figure misses its target.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from throughput_floor import floor_rate  # noqa: E402
from throughput_rig import Prober, Rig, send_all, wait_until  # noqa: E402

SINGLE_TARGET_MS = 15.0
TARGET = {0.03: 0.90, 0.1: 0.95}  # share of the bound per latency
SCALE_TARGET = 0.9  # N processes reach this share of N × one


@dataclass
class Row:
    latency_ms: float
    work: str
    figure: float  # records per second (or ms for the single create)
    unit: str
    bound: float | None = None
    k: float | None = None
    c: int | None = None
    target: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        return None if not self.bound else self.figure / self.bound

    def ok(self) -> bool:
        if self.unit == "ms":
            return self.figure <= SINGLE_TARGET_MS
        return self.target is None or (self.ratio or 0) >= self.target


def run_batch(rig: Rig, work: str, latency: float, items: list[dict[str, Any]], event: str,
              done: Callable[[dict[str, dict[str, Any]]], bool], probe_id: str) -> Row:
    rig.latency(latency)
    rig.reset_counts()
    cpu_before = rig.cpu_seconds()
    checks_before = rig.sync_checks
    with Prober(rig, probe_id) as prober:
        started = send_all(rig, event, items)
        # Cheap while it runs (a list of every record would hold EspoCRM's simulator up): each of these
        # syncs ends with its second PUT to EspoCRM (mark, release); then the records are checked.
        wait_until(work, lambda: rig.espo_puts() >= 2 * len(items), every=0.05, stalled=rig.finish_stragglers)
        wait_until(work, lambda: done(rig.records()), every=0.5, stalled=rig.finish_stragglers)
    finished = rig.last_espo_answer()
    cpu = {k: (v - cpu_before[k]) * 1000 / len(items) for k, v in rig.cpu_seconds().items()}
    rig.latency(0)
    n = len(items)
    k = rig.api_calls() / n
    c = rig.concurrency * len(rig.ports)
    rate = n / (finished - started)
    bound = c / (k * latency)
    probes = sorted(prober.times)
    extra = {"k": k, "c": c, "n": n, "rate": rate, "seconds": finished - started, "rss_mb": rig.peak_rss_mb(),
             "webhook_p50_ms": _pct(probes, 50), "webhook_p99_ms": _pct(probes, 99), "probes": len(probes),
             "cpu_ms_per_record": cpu, "sync_checks": rig.sync_checks - checks_before}
    return Row(latency * 1000, work, rate, "/s", bound, k, c, TARGET.get(latency), extra)


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def single_creates(rig: Rig, repeats: int) -> Row:
    """One create at a time, no latency: webhook answer → the release PUT answered (record clean)."""
    rig.latency(0)
    times = []
    for rec in rig.create_staff(repeats, "single"):
        rig.reset_counts()
        rig.post_webhook("create", [rec])
        answered = time.time()
        wait_until("a single create", lambda: rig.espo_puts() >= 2, every=0.002)  # mark, release

        def clean(r: dict[str, Any] = rec) -> bool:
            return rig.records()[r["id"]].get("syncStatus") == "clean"

        wait_until("a single create to be clean", clean)
        times.append((rig.last_espo_answer() - answered) * 1000)
    return Row(0, f"one create, webhook answer → clean (median of {repeats})", statistics.median(times), "ms",
               extra={"min_ms": min(times), "max_ms": max(times)})


def creates(rig: Rig, n: int, latency: float, tag: str) -> tuple[Row, list[str]]:
    recs = rig.create_staff(n, tag)
    ids = {r["id"] for r in recs}

    def done(records: dict[str, dict[str, Any]]) -> bool:
        return all(records[i].get("syncStatus") == "clean" and records[i].get("betnr") for i in ids)

    row = run_batch(rig, f"{n} creates", latency, recs, "create", done, recs[0]["id"])
    return row, sorted(ids)


def updates(rig: Rig, ids: list[str], latency: float) -> Row:
    city = f"Stadt-{time.monotonic_ns()}"
    items = rig.edit_staff(ids, city)
    want = set(ids)

    def done(records: dict[str, dict[str, Any]]) -> bool:
        if not all(records[i].get("syncStatus") == "clean" for i in want):
            return False
        advo = rig.advo_records()
        return all(advo[int(records[i]["betnr"])].get("ort") == city for i in want)

    return run_batch(rig, f"{len(ids)} updates EspoCRM→Advoware", latency, items, "update", done, ids[0])


def add_floors(rig: Rig, rows: list[Row], ids: list[str]) -> None:
    """The bare round trips of each 1-process row (same k, c and latency; bench/throughput_floor.py)."""
    for r in rows:
        if r.unit == "ms" or r.k is None or r.c is None:
            continue
        latency = r.latency_ms / 1000
        rig.latency(latency)
        try:
            rate = floor_rate(rig.espo, ids[: int(r.extra["n"])], round(r.k), r.c)
        finally:
            rig.latency(0)
        r.extra["floor"] = rate
        r.extra["floor_ratio"] = rate / (r.c / (round(r.k) * latency))


def print_table(rows: list[Row]) -> None:
    print("\n| API latency | work | measured | bound c/(k×latency) | ratio | target | bare round trips (floor) "
          "| service / floor | webhook p50/p99 | peak RSS |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if r.unit == "ms":
            print(f"| {r.latency_ms:.0f} ms | {r.work} | {r.figure:.1f} ms | ≤ {SINGLE_TARGET_MS:.0f} ms (target) "
                  f"| — | {'ok' if r.ok() else 'MISSED'} | — | — | — | — |")
            continue
        e = r.extra
        rss = " + ".join(f"{m:.0f}" for m in e["rss_mb"]) + " MB"
        scale = f" ({e['scale']:.2f}× one)" if "scale" in e else ""
        print(f"| {r.latency_ms:.0f} ms | {r.work} | {r.figure:.1f} /s{scale} | {r.bound:.1f} /s "
              f"(c={r.c}, k={r.k:.2f}) | {100 * (r.ratio or 0):.0f} % | "
              f"{'' if r.target is None else f'≥ {100 * r.target:.0f} % '}{'ok' if r.ok() else 'MISSED'} | "
              f"{_floor(e)} | {e['webhook_p50_ms']:.1f} / {e['webhook_p99_ms']:.1f} ms | {rss} |")


def _floor(e: dict[str, Any]) -> str:
    if "floor" not in e:
        return "— | —"
    return f"{e['floor']:.1f} /s ({100 * e['floor_ratio']:.0f} % of bound) | {100 * e['rate'] / e['floor']:.0f} %"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--creates", type=int, default=400, help="creates at 30 ms (also the 2-process run)")
    ap.add_argument("--updates", type=int, default=400, help="updates EspoCRM→Advoware at 30 ms")
    ap.add_argument("--slow-creates", type=int, default=200, help="creates at 100 ms")
    ap.add_argument("--singles", type=int, default=21, help="single creates at 0 ms (median)")
    ap.add_argument("--concurrency", type=int, default=10, help="SYNC_CONCURRENCY of each serve process")
    ap.add_argument("--quick", action="store_true", help="100/100/50 records, 11 singles")
    ap.add_argument("--only", choices=["one", "two"], help="only the 1-process runs, or only the 2-process run")
    ap.add_argument("--no-floor", action="store_true", help="skip the bare round trips (bench/throughput_floor.py)")
    args = ap.parse_args(argv)
    if args.quick:
        args.creates, args.updates, args.slow_creates, args.singles = 100, 100, 50, 11
    rows: list[Row] = []
    root = Path(tempfile.mkdtemp(prefix="bsync-tp-", dir="/tmp"))
    one: Row | None = None
    if args.only != "two":
        rig = Rig(root / "one", procs=1, concurrency=args.concurrency)
        try:
            rows.append(single_creates(rig, args.singles))
            one, ids = creates(rig, args.creates, 0.03, "c30")
            rows.append(one)
            rows.append(updates(rig, ids[: args.updates] if args.updates <= len(ids) else ids, 0.03))
            rows.append(creates(rig, args.slow_creates, 0.1, "c100")[0])
            if not args.no_floor:
                add_floors(rig, rows, ids)
        finally:
            rig.close()
    if args.only != "one":
        rig = Rig(root / "two", procs=2, concurrency=args.concurrency)
        try:
            two, _ = creates(rig, args.creates, 0.03, "c30x2")
            two.work += ", 2 processes"
            if one is not None:
                two.extra["scale"] = two.figure / one.figure
            rows.append(two)
        finally:
            rig.close()
    print_table(rows)
    for r in rows:
        if r.unit != "ms":
            cpu = ", ".join(f"{k} {v:.1f}" for k, v in r.extra["cpu_ms_per_record"].items())
            print(f"{r.work} at {r.latency_ms:.0f} ms: {r.extra['seconds']:.2f} s, {r.extra['probes']} probe webhooks, "
                  f"{r.extra['sync_checks']} sync checks for stragglers; CPU ms per record: {cpu}")
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs (a shared machine: figures move with it)")
    scale_ok = all(r.extra.get("scale", 2) >= SCALE_TARGET * 2 for r in rows if r.unit != "ms")
    if not scale_ok:
        print(f"2 processes reached less than {SCALE_TARGET * 2:.1f}× one process")
    for p in root.rglob("serve-*.log"):
        text = p.read_text(errors="replace")
        if "Traceback" in text or " ERROR " in text:
            print(f"errors in {p}:\n{text[-2000:]}")
    ok = all(r.ok() for r in rows) and scale_ok
    if os.environ.get("KEEP_BENCH_ROOT") is None:
        import shutil

        shutil.rmtree(root, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
