"""Hostile: the chaos harness on EspoCRM 8.1.5 (no skipOwn, no-op PUTs bump modifiedAt), OCC off and on.

``ChaosReport.ok()`` ignores Advoware duplicates and orphans, so they are checked here too. (Stock
salutation options cannot be run: the harness's people type the German ``Herr``/``Frau`` into EspoCRM,
which the stock enum refuses - a harness limitation, not a product finding.)
"""

from __future__ import annotations

import pytest

from simulators.chaos import ChaosConfig, ChaosRun
from simulators.testbed import start_testbed


@pytest.mark.parametrize(("occ", "seed"), [(False, 11), (True, 12)], ids=["8-occ_off", "8-occ_on"])
async def test_hostile_chaos_on_espocrm_8_converges_without_duplicates(occ: bool, seed: int) -> None:
    tb = await start_testbed(espo_profile="8", occ=occ, http_timeout=1.0, workers=4, seed=seed)
    try:
        cfg = ChaosConfig(records=30, rounds=3, seed=seed, timeout_delay=1.5, conflict_rate=0.15,
                          final_edits=0.6)
        run = ChaosRun(tb, cfg)
        report = await run.run()
        lines = run.stats.lines() + report.lines(limit=50)
        print("\n".join(lines))
        assert report.ok(), "\n".join(lines)
        assert report.duplicates_in_advoware == 0, "\n".join(lines)
        assert report.orphans_in_advoware == 0, "\n".join(lines)
        assert run.stats.writes_second_check == 0, "\n".join(lines)
    finally:
        await tb.close()
