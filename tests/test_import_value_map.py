"""Issue 17 item 8: ``match --import-unmatched`` imports through the same value map as the sync, so
Advoware's ``Herr`` becomes the option the EspoCRM field offers (stock ``Mr.``), never a ``400``.
The real command in its own process, against the EspoCRM simulator with the stock salutation
options, on both profiles."""

from __future__ import annotations

from pathlib import Path

import pytest

from onboarding.match_apply import Outcome, PairLinker, apply_pairs
from onboarding.match_file import Pair
from simulators.espocrm import STOCK_SALUTATIONS
from tests.test_match_cli import _env, _match
from tests.testbed import Testbed

pytestmark = [pytest.mark.redis]


async def test_import_unmatched_writes_the_stock_salutation_options(firm_both: Testbed, tmp_path: Path) -> None:
    firm_both.espo.set_salutation_options(STOCK_SALUTATIONS)
    herr = firm_both.advo.seed(name="Vogel", vorname="Lars", anrede="Herr", rechtsform="natürliche Person")
    frau = firm_both.advo.seed(name="Vogel", vorname="Lena", anrede="Frau", rechtsform="natürliche Person")
    done = _match(_env(firm_both, tmp_path), tmp_path, "--import-unmatched", "--yes", "--limit", "0")
    assert done.returncode == 0 and "created 2 Beteiligte" in done.stdout, done.stdout + done.stderr
    by_betnr = {r["betnr"]: r for r in firm_both.espo.all()}
    assert by_betnr[herr["betNr"]]["salutationName"] == "Mr."
    assert by_betnr[frau["betNr"]]["salutationName"] in ("Ms.", "Mrs.")
    for rec in by_betnr.values():
        assert rec["syncStatus"] == "clean"
    # the sync check afterwards finds both in sync: the value map says Mr. is Herr
    before = firm_both.advo_record(herr["betNr"])["rowId"]
    await firm_both.sync_check()
    assert firm_both.advo_record(herr["betNr"])["rowId"] == before
    assert firm_both.espo_record(by_betnr[herr["betNr"]]["id"])["syncStatus"] == "clean"


async def test_apply_fills_a_salutation_only_advoware_has_with_the_stock_option(firm_both: Testbed) -> None:
    """The same gap in ``match --apply``: a salutation only Advoware has is written to EspoCRM."""
    firm_both.espo.set_salutation_options(STOCK_SALUTATIONS)
    lars = firm_both.advo.seed(name="Vogel", vorname="Lars", anrede="Herr", rechtsform="natürliche Person",
                               geburtsdatum="1970-07-07T00:00:00")
    rec = firm_both.espo.seed(lastName="Vogel", firstName="Lars", dateOfBirth="1970-07-07")
    firm_both.espo.take_webhook_events()
    s = firm_both.services
    linker = PairLinker(s.espo, s.advo, s.store, write=True, clock=firm_both.clock)
    [result] = await apply_pairs(linker, [Pair(rec["id"], int(lars["betNr"]), "person_name_dob", 2)])
    assert result.outcome == Outcome.LINKED, result
    assert firm_both.espo_record(rec["id"])["salutationName"] == "Mr."
