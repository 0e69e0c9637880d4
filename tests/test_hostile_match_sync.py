"""Hostile tests of issue 11's linking (create hook and ``match --apply``) over HTTP against both
simulators, with the testbed's Redis: each xfail is a bug found, not fixed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from adapters.errors import FatalError
from domain.beteiligte_mapper import espo_to_canonical
from domain.matching import Verdict
from domain.sync_status import ENTITY
from onboarding.match import scan
from onboarding.match_apply import Outcome, PairLinker, apply_pairs
from onboarding.match_file import Pair
from simulators.common import FaultRule
from sync.create_match import CreateMatcher, LinkedExisting, MatchFound
from tests.conftest import SAMPLE
from tests.match_support import index_all as _index
from tests.testbed import Testbed

ANNA_ADVO = {"name": "Müller", "vorname": "Anna", "anrede": "Frau", "rechtsform": "natürliche Person",
             "geburtsdatum": "1980-04-12T00:00:00", "email": None, "telefon": "+49 30 999999", "ort": "Berlin",
             "kurzname": "MUELLER"}
KARL_ADVO = {"name": "Otto", "vorname": "Karl", "anrede": "Herr", "rechtsform": "natürliche Person",
             "geburtsdatum": "1950-05-05T00:00:00", "ort": "Hamburg"}




T = TypeVar("T")


class _Gate:
    """Holds each party at its step until every party has reached its step or finished without one
    (a fixed matcher refuses the loser before its step: waiting for it would deadlock)."""

    def __init__(self, parties: int) -> None:
        self._left = parties
        self._open = asyncio.Event()

    def _arrive(self) -> None:
        self._left -= 1
        if self._left <= 0:
            self._open.set()

    async def meet(self) -> None:
        self._arrive()
        await self._open.wait()

    async def run(self, work: Awaitable[T]) -> T:
        """One party; one that ends while the gate is shut never met it (a waiting party cannot end)."""
        try:
            return await work
        finally:
            if not self._open.is_set():
                self._arrive()


class _BarrierEspo:
    """The EspoCRM client, whose writes wait at the gate until both concurrent creates have reached
    theirs (or ended without one): both have then looked for an owner, neither has stored its link."""

    def __init__(self, espo: Any, barrier: _Gate) -> None:
        self._espo = espo
        self._barrier = barrier

    async def update(self, entity: str, espo_id: str, body: dict[str, Any]) -> dict[str, Any]:
        await self._barrier.meet()
        return await self._espo.update(entity, espo_id, body)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._espo, name)


class _BarrierAdvo:
    """The Advoware client, whose read of a Beteiligter waits at the barrier (``--apply`` reads it after
    its owner check and before it stores the base)."""

    def __init__(self, advo: Any, barrier: _Gate) -> None:
        self._advo = advo
        self._barrier = barrier

    async def get_beteiligter(self, betnr: int) -> dict[str, Any]:
        await self._barrier.meet()
        return await self._advo.get_beteiligter(betnr)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._advo, name)


async def test_two_espocrm_twins_created_at_once_do_not_both_link_one_beteiligter(tb: Testbed) -> None:
    await _index(tb)
    existing = tb.advo.seed(**ANNA_ADVO)  # has a phone EspoCRM lacks: the link writes it to EspoCRM first
    twins = [tb.espo.seed(**{**SAMPLE, "phoneNumber": None}) for _ in range(2)]
    tb.espo.take_webhook_events()  # the test drives the two creates itself
    gate = _Gate(2)
    espo = _BarrierEspo(tb.services.espo, gate)
    matcher = CreateMatcher(tb.services.advo, tb.services.store, clock=tb.clock, espo=espo)  # type: ignore[arg-type]
    vals = [espo_to_canonical(await tb.services.espo.get(ENTITY, t["id"])) for t in twins]
    outcomes = await asyncio.gather(*(gate.run(matcher.check(t["id"], v)) for t, v in zip(twins, vals, strict=True)),
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


async def test_apply_racing_the_create_of_a_twin_does_not_link_both(tb: Testbed) -> None:
    await _index(tb)
    existing = tb.advo.seed(**ANNA_ADVO)  # has a phone EspoCRM lacks: the create writes it to EspoCRM
    reviewed, twin = (tb.espo.seed(**{**SAMPLE, "phoneNumber": None}) for _ in range(2))
    tb.espo.take_webhook_events()  # the test drives the apply and the create itself
    barrier = _Gate(2)  # the apply's read of the Beteiligter and the create's write to EspoCRM
    advo = _BarrierAdvo(tb.services.advo, barrier)
    linker = PairLinker(tb.services.espo, advo, tb.services.store, write=True, clock=tb.clock)  # type: ignore[arg-type]
    espo = _BarrierEspo(tb.services.espo, barrier)
    matcher = CreateMatcher(tb.services.advo, tb.services.store, clock=tb.clock, espo=espo)  # type: ignore[arg-type]
    vals = espo_to_canonical(await tb.services.espo.get(ENTITY, twin["id"]))
    applied, created = await asyncio.gather(
        barrier.run(apply_pairs(linker, [Pair(reviewed["id"], int(existing["betNr"]), "person_name_dob", 2)])),
        barrier.run(matcher.check(twin["id"], vals)), return_exceptions=True)
    assert not isinstance(applied, BaseException), applied
    links = [await tb.services.store.get_link(r["id"]) for r in (reviewed, twin)]
    linked = [link for link in links if link is not None and link.betnr == existing["betNr"]]
    assert len(linked) == 1, f"both EspoCRM records are linked to one Beteiligter ({applied}, {created!r})"


async def test_an_apply_interrupted_before_its_note_posts_the_note_when_run_again(tb: Testbed) -> None:
    existing = tb.advo.seed(**ANNA_ADVO)  # differs from the EspoCRM record: a Note is owed
    anna = tb.espo.seed(**SAMPLE)
    tb.espo.take_webhook_events()
    pair = Pair(anna["id"], int(existing["betNr"]), "person_name_dob", 2)
    tb.espo.faults.add(method="POST", path="/Note", status=400, times=1)  # the run stops right there
    [first] = await apply_pairs(PairLinker(tb.services.espo, tb.services.advo, tb.services.store, write=True,
                                           clock=tb.clock), [pair])
    assert first.outcome == Outcome.ERROR and tb.espo_record(anna["id"])["betnr"] == existing["betNr"]
    [again] = await apply_pairs(PairLinker(tb.services.espo, tb.services.advo, tb.services.store, write=True,
                                           clock=tb.clock), [pair])  # "run the same command again"
    assert again.outcome == Outcome.ALREADY
    notes = [n["post"] for n in tb.espo.notes_for(anna["id"])]
    assert any(str(existing["betNr"]) in (text or "") for text in notes), notes


async def test_a_pair_whose_espocrm_write_is_refused_stays_unlinked(tb: Testbed) -> None:
    existing = tb.advo.seed(**ANNA_ADVO)
    anna = tb.espo.seed(**SAMPLE)
    tb.espo.take_webhook_events()
    tb.espo.faults.add(method="PUT", path="/CBeteiligte/", status=400, times=1)  # e.g. a value EspoCRM rejects
    [result] = await apply_pairs(PairLinker(tb.services.espo, tb.services.advo, tb.services.store, write=True,
                                            clock=tb.clock), [Pair(anna["id"], int(existing["betNr"]), "x", 2)])
    assert result.outcome == Outcome.ERROR and tb.espo_record(anna["id"])["betnr"] is None
    assert await tb.services.store.get_link(anna["id"]) is None  # reported as not linked: nothing linked


async def test_an_advoware_edit_during_the_scan_loses_no_beteiligter(tb: Testbed) -> None:
    stamp = [datetime(2026, 3, 2, 9, 0, tzinfo=UTC)]
    tb.advo.store.clock = lambda: stamp[0]
    fillers = [tb.advo.seed(name=f"Fuellmann{i}", vorname="Otto", anrede="Herr",
                            geburtsdatum="1960-01-01T00:00:00") for i in range(200)]  # exactly the first page
    tb.advo.seed(**ANNA_ADVO)  # the first of the second page
    anna = tb.espo.seed(**SAMPLE)
    tb.espo.take_webhook_events()
    await tb.services.advo.supports_list()  # the probe is done: the next list read is the scan's first page

    def staff_edit_a_party_already_read() -> None:
        stamp[0] += timedelta(minutes=1)
        tb.advo.edit(int(fillers[0]["betNr"]), ort="Köln")

    tb.advo.faults.add(FaultRule(method="GET", path=r"/Beteiligte$", after=staff_edit_a_party_already_read))
    report = await scan(tb.services.espo, tb.services.advo, tb.services.store)
    assert report.advoware_scanned == 201
    assert [(p.espo_ref, p.verdict) for p in report.proposals] == [(anna["id"], Verdict.LINK)]
