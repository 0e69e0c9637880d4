"""Hostile tests of issue 11's linking (create hook and ``match --apply``) over HTTP against both
simulators, with the testbed's Redis: each xfail is a bug found, not fixed."""

from __future__ import annotations

import asyncio
from typing import Any

from adapters.errors import FatalError
from domain.beteiligte_mapper import espo_to_canonical
from domain.sync_status import ENTITY
from sync.create_match import CreateMatcher, LinkedExisting, MatchFound
from sync.match import scan
from sync.match_apply import Outcome, PairLinker, apply_pairs
from sync.match_file import Pair
from tests.conftest import SAMPLE
from tests.testbed import Testbed

ANNA_ADVO = {"name": "Müller", "vorname": "Anna", "anrede": "Frau", "rechtsform": "natürliche Person",
             "geburtsdatum": "1980-04-12T00:00:00", "email": None, "telefon": "+49 30 999999", "ort": "Berlin",
             "kurzname": "MUELLER"}
KARL_ADVO = {"name": "Otto", "vorname": "Karl", "anrede": "Herr", "rechtsform": "natürliche Person",
             "geburtsdatum": "1950-05-05T00:00:00", "ort": "Hamburg"}


async def _index(tb: Testbed) -> None:
    """What ``beteiligte-sync match`` does first: page through Advoware into the match key index."""
    await scan(tb.services.espo, tb.services.advo, tb.services.store)


class _BarrierEspo:
    """The EspoCRM client, whose writes wait until every concurrent create has reached its write or
    finished without one: all have then looked for an owner of the candidate, none has stored its
    link yet. (A create refused before any write counts as arrived, or a correct matcher deadlocks.)"""

    def __init__(self, espo: Any, parties: int) -> None:
        self._espo = espo
        self._parties = parties
        self._arrived = 0
        self._all = asyncio.Event()

    def arrive(self) -> None:
        self._arrived += 1
        if self._arrived >= self._parties:
            self._all.set()

    async def run(self, check: Any) -> Any:
        """One create's check; it counts as arrived when it ends without having written."""
        try:
            return await check
        finally:
            if not self._all.is_set():
                self.arrive()

    async def update(self, entity: str, espo_id: str, body: dict[str, Any]) -> dict[str, Any]:
        self.arrive()
        await self._all.wait()
        return await self._espo.update(entity, espo_id, body)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._espo, name)


async def test_two_espocrm_twins_created_at_once_do_not_both_link_one_beteiligter(tb: Testbed) -> None:
    await _index(tb)
    existing = tb.advo.seed(**ANNA_ADVO)  # has a phone EspoCRM lacks: the link writes it to EspoCRM first
    twins = [tb.espo.seed(**{**SAMPLE, "phoneNumber": None}) for _ in range(2)]
    tb.espo.take_webhook_events()  # the test drives the two creates itself
    espo = _BarrierEspo(tb.services.espo, 2)
    matcher = CreateMatcher(tb.services.advo, tb.services.store, clock=tb.clock, espo=espo)  # type: ignore[arg-type]
    vals = [espo_to_canonical(await tb.services.espo.get(ENTITY, t["id"])) for t in twins]
    outcomes = await asyncio.gather(*(espo.run(matcher.check(t["id"], v)) for t, v in zip(twins, vals, strict=True)),
                                    return_exceptions=True)
    assert all(isinstance(o, LinkedExisting | FatalError) for o in outcomes), outcomes
    links = [await tb.services.store.get_link(t["id"]) for t in twins]
    linked = [link for link in links if link is not None and link.betnr == existing["betNr"]]
    assert len(linked) == 1, "both EspoCRM records are linked to one Beteiligter"
    assert sum(isinstance(o, MatchFound) for o in outcomes) == 1


async def test_a_merged_away_advoware_duplicate_does_not_block_the_link(tb: Testbed) -> None:
    keep, dup = tb.advo.seed(**ANNA_ADVO), tb.advo.seed(**ANNA_ADVO)
    await _index(tb)
    await tb.services.advo.delete_beteiligter(int(dup["betNr"]))  # staff merge the duplicate in Advoware
    rec = tb.espo.seed(**SAMPLE)
    await tb.flush()
    await tb.flush()
    rec = tb.espo_record(rec["id"])
    assert str(dup["betNr"]) not in (rec["syncErrorMessage"] or ""), rec["syncErrorMessage"]
    assert (rec["syncStatus"], rec["betnr"]) == ("clean", keep["betNr"])


async def test_a_mistyped_betnr_in_the_review_file_is_not_linked(tb: Testbed) -> None:
    tb.advo.seed(**ANNA_ADVO)
    karl = tb.advo.seed(**KARL_ADVO)
    anna = tb.espo.seed(**SAMPLE)
    tb.espo.take_webhook_events()
    linker = PairLinker(tb.services.espo, tb.services.advo, tb.services.store, write=True, clock=tb.clock)
    # the row match wrote for Anna (rule person_name_dob), its betnr typed wrong: Karl's
    [result] = await apply_pairs(linker, [Pair(anna["id"], int(karl["betNr"]), "person_name_dob", 2)])
    assert result.outcome != Outcome.LINKED, result
    assert tb.espo_record(anna["id"])["betnr"] is None
