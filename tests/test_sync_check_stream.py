"""The sync check streams (issue 10): it reads EspoCRM's and Advoware's pages at the same time, reads
each page once, and fetches single records only for what moved; a lost delete is still found."""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import asdict, replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.sync_state_store import Link, decode_link, encode_link
from domain.beteiligte_mapper import FIELDS
from domain.decision import Mark, fingerprint_value
from domain.fingerprint_key import keyed
from tests.conftest import SAMPLE
from tests.testbed import Testbed, start_testbed

RECORDS = 201  # two pages on each side (pages of 200)
WAIT_S = 60.0  # generous: only a sequential read would ever wait this long
ESPO_LIST = "espocrm GET /api/v1/CBeteiligte"
ESPO_GET = "espocrm GET /api/v1/CBeteiligte/{id}"
ADVO_LIST = "advoware GET /api/v1/advonet/Beteiligte"
ADVO_GET = "advoware GET /api/v1/advonet/Beteiligte/{id}"


@pytest.fixture
async def linked() -> Any:
    tb = await start_testbed()
    ids = [tb.espo.seed(**{**SAMPLE, "lastName": f"Stream {i}"})["id"] for i in range(RECORDS)]
    await tb.flush()
    await tb.flush()
    assert all(tb.espo_record(i)["syncStatus"] == "clean" for i in ids)
    await tb.services.checker.plan()  # Advoware's list endpoint probed once per process
    yield tb, ids
    await tb.close()


async def test_both_systems_are_read_at_once_and_only_moved_twins_fetched(
    linked: tuple[Testbed, list[str]], caplog: pytest.LogCaptureFixture
) -> None:
    tb, ids = linked
    moved = tb.espo_record(ids[7])
    tb.advo.edit(int(moved["betnr"]), ort="Köln")
    # EspoCRM's first page is answered only once an Advoware page has been asked for: a check that
    # read one system after the other would wait here (and fail below).
    advoware_asked = threading.Event()
    overlapped: list[bool] = []
    tb.advo.faults.add(method="GET", path=r"/Beteiligte$", before=advoware_asked.set)
    tb.espo.faults.add(method="GET", path=r"/CBeteiligte$",
                       before=lambda: overlapped.append(advoware_asked.wait(WAIT_S)))
    tb.reset_calls()
    try:
        with caplog.at_level(logging.INFO, logger="sync.sync_check"):
            plan = await tb.services.checker.plan()
    finally:
        tb.advo.faults.clear()
        tb.espo.faults.clear()

    assert overlapped == [True]
    assert [(w.espo_id, w.reason) for w in plan.work] == [(moved["id"], "changed in Advoware")]
    assert plan.work[0].decision is not None and plan.work[0].decision.to_espo == {"addressCity": "Köln"}
    assert plan.scanned == RECORDS and plan.linked == RECORDS and not plan.deletes
    calls = tb.calls()
    assert calls.get(ESPO_LIST) == 2 and calls.get(ADVO_LIST) == 2  # each page read once
    assert calls.get(ADVO_GET, 0) == 1 and calls.get(ESPO_GET, 0) == 1  # only the moved record
    assert tb.writes() == 0
    assert any(f"read {RECORDS} EspoCRM records" in r.getMessage() for r in caplog.records)


async def test_records_in_sync_cost_page_reads_only_and_a_lost_delete_is_found(
    linked: tuple[Testbed, list[str]],
) -> None:
    tb, ids = linked
    gone = ids[-1]
    tb.espo.user_delete(gone)  # its delete webhook never arrives
    tb.espo.take_webhook_events()
    tb.reset_calls()

    plan = await tb.services.checker.plan()

    assert [(w.espo_id, w.reason) for w in plan.deletes] == [(gone, "deleted in EspoCRM, delete webhook lost")]
    assert plan.work == []
    calls = tb.calls()
    assert calls.get(ESPO_LIST) == 1 and calls.get(ADVO_LIST) == 2  # one page left in EspoCRM
    assert calls.get(ADVO_GET, 0) == 0 and calls.get(ESPO_GET, 0) == 0  # nothing moved: pages only
    assert tb.writes() == 0


def test_a_link_is_stored_compact_and_reads_back_as_written_also_in_the_older_form() -> None:
    espo = {f.espo: fingerprint_value(f"e-{f.espo}") for f in FIELDS}
    advo = {f.espo: fingerprint_value(f"a-{f.espo}") for f in FIELDS}
    advo[FIELDS[3].espo] = Mark.OWED.value  # a value owed to the other side
    del espo[FIELDS[5].espo]  # a side without one field's fingerprint
    link = Link(betnr=10001, row_id="AAAAAAAAB9E=", espo=espo, advo=advo, synced_at=1795976538.25,
                advo_edited_at="2026-11-29T10:00:00+00:00")
    stored = encode_link(link)
    assert decode_link(stored) == link
    assert len(stored) < 480  # the spelled-out form took three times as much (22 of it: the key's form, "k")
    older = json.dumps({k: v for k, v in asdict(link).items() if k != "legacy_raw"})
    # the older form is from before the fingerprint key: its fingerprints are read in the keyed form
    assert decode_link(older) == replace(link, espo={f: keyed(v) for f, v in espo.items()},
                                         advo={f: keyed(v) for f, v in advo.items()})
    assert decode_link(older).legacy_raw == older  # type: ignore[union-attr]  # to be stored again
    assert decode_link('{"v":"another","b":1}') is None  # another field layout: a missing base (safe)
    assert decode_link("{not json") is None


async def test_the_next_page_is_asked_for_while_this_one_is_judged() -> None:
    """One page read ahead: without Advoware's list, judging EspoCRM's first page reads its twins one
    by one; the first of those GETs is answered only once EspoCRM's second page has been asked for,
    which a check that read a page only after judging the one before would never do (and fail)."""
    tb = await start_testbed(list_endpoint=False)
    try:
        ids = [tb.espo.seed(**{**SAMPLE, "lastName": f"Ahead {i}"})["id"] for i in range(RECORDS)]
        await tb.flush()
        await tb.flush()
        assert all(tb.espo_record(i)["syncStatus"] == "clean" for i in ids)
        second_page_asked = threading.Event()
        overlapped: list[bool] = []
        tb.espo.faults.add(method="GET", path=r"/CBeteiligte$", skip=1, before=second_page_asked.set)
        tb.advo.faults.add(method="GET", path=r"/Beteiligte/\d+$",
                           before=lambda: overlapped.append(second_page_asked.wait(WAIT_S)))
        tb.reset_calls()
        plan = await tb.services.checker.plan()
        assert overlapped == [True]
        assert plan.advoware_source == "get" and plan.scanned == RECORDS and plan.work == [] and not plan.deletes
        calls = tb.calls()
        assert calls.get(ESPO_LIST) == 2 and calls.get(ADVO_GET) == RECORDS  # each page and twin once
    finally:
        tb.advo.faults.clear()
        tb.espo.faults.clear()
        await tb.close()


@given(st.lists(st.one_of(st.binary(min_size=8, max_size=8).map(bytes.hex), st.just(Mark.OWED.value)),
                min_size=len(FIELDS), max_size=len(FIELDS)))
def test_every_fingerprint_reads_back_as_written(fps: list[str]) -> None:
    """Any 16-hex-digit fingerprint (all byte values, so every base64 character incl. ``-`` and ``_``)
    survives the compact form, also when read a second time (from the unpacking cache)."""
    side = {f.espo: fp for f, fp in zip(FIELDS, fps, strict=True)}
    link = Link(betnr=7, row_id=None, espo=side, advo=dict(reversed(side.items())), synced_at=1.0)
    assert decode_link(encode_link(link)) == link
    assert decode_link(encode_link(link)) == link
