"""Mutation check: does the test suite kill the bugs it exists to catch?

    .venv/bin/python bench/mutations.py [--only NAME]

Each mutation is applied to a throwaway copy of the project (``git ls-files``), then the tests that
should catch it run there; a mutation that leaves them green is a hole in the suite. Prints one row per
mutation (killed or SURVIVED, the test that killed it, seconds) and exits 1 if any survived.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONVERGENCE = "tests/test_convergence.py::test_random_chaos_converges_after_one_sync_check"


@dataclass(frozen=True)
class Mutation:
    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


MUTATIONS = (
    Mutation("every create POSTs twice", "sync/advoware_create.py",
             "            obj = await self.advo.create_beteiligter(body)\n",
             "            await self.advo.create_beteiligter(body)\n"
             "            obj = await self.advo.create_beteiligter(body)\n",
             (CONVERGENCE,)),
    Mutation("field_merge tiebreak always picks EspoCRM", "domain/decision.py",
             "        winner = _group_winner(tiebreak, times)\n",
             "        winner = ESPO\n",
             (CONVERGENCE,)),
    Mutation("a field dropped from the mapping", "domain/beteiligte_mapper.py",
             '    FieldMap("addressCity", "ort", "adresse"),\n', "",
             (CONVERGENCE, "tests/test_e2e_sync.py")),
    Mutation("release writes every field it read (staff edit overwritten)", "sync/sync_pass.py",
             "canonical_to_espo(decision.to_espo))",
             "canonical_to_espo({**espo_to_canonical(st.record), **decision.to_espo}))",
             ("tests/test_staff_edit_races.py",)),
    Mutation("no re-read before the release without OCC", "sync/sync_pass.py",
             "        if decision.to_espo and not st.occ:\n            await self._ensure_unmoved(st)\n", "",
             ("tests/test_staff_edit_races.py",)),
    Mutation("an event meeting a held lease is acknowledged and forgotten", "sync/beteiligte_sync.py",
             "            await self.store.mark_dirty(espo_id)\n", "            return None\n",
             ("tests/test_lock_handoff.py",)),
    Mutation("echo skip ignores the values", "sync/beteiligte_sync.py",
             'return all(link.espo.get(f) == fp for f, fp in seen.items() if f != "betnr")', "return True",
             ("tests/test_echo.py", "tests/test_lock_handoff.py")),
    Mutation("newest_wins uses our own write's modifiedAt", "sync/espocrm_facts.py",
             "self.user_id = _user_id(user)", "self.user_id = None",
             ("tests/test_newest_wins.py",)),
    Mutation("DELETE_POLICY=delete only unlinks", "sync/beteiligte_delete.py",
             "            failed = await self._delete_in_advoware(espo_id, betnr)\n",
             "            failed = None\n",
             (CONVERGENCE,)),
    Mutation("the Advoware timezone is not passed to the client", "entrypoints/bootstrap.py",
             "        timezone=settings.advoware_timezone,\n", "",
             ("tests/test_bootstrap.py",)),
)


def copy_project(dest: Path) -> None:
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for rel in files:
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def run(m: Mutation) -> tuple[bool, str, float]:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mutation-") as tmp:
        work = Path(tmp)
        copy_project(work)
        target = work / m.path
        text = target.read_text(encoding="utf-8")
        if m.old not in text:
            return False, f"mutation does not apply: {m.path} changed", 0.0
        target.write_text(text.replace(m.old, m.new, 1), encoding="utf-8")
        for test in m.tests:
            done = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", test],
                                  cwd=work, capture_output=True, text=True)
            if done.returncode != 0:
                return True, test, time.monotonic() - started
    return False, "", time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="run the mutations whose name contains this")
    args = parser.parse_args()
    chosen = [m for m in MUTATIONS if not args.only or args.only in m.name]
    print(f"{'mutation':62} {'result':9} {'seconds':>7}  killed by")
    survived = 0
    for m in chosen:
        killed, by, seconds = run(m)
        survived += not killed
        print(f"{m.name:62} {'killed' if killed else 'SURVIVED':9} {seconds:7.1f}  {by}", flush=True)
    print(f"{len(chosen) - survived} of {len(chosen)} mutations killed (bound: all)")
    sys.exit(1 if survived else 0)


if __name__ == "__main__":
    main()
