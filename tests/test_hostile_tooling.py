"""Does the test tooling do what the chaos harness says it does? (Found by hostile testing, fixed.)

``tests/chaos/`` injects "a few answers delayed past the client's timeout that are still
applied" as ``FaultRule(delay=...)``. The middleware slept BEFORE reading the request; by then the
client had disconnected and the write was never applied. Now a delayed request is taken in first and
applied after the delay, as a slow real server would; chaos also uses ``lose_answer`` for writes.
"""

from __future__ import annotations

import pytest

from adapters.errors import ApiError
from simulators.faults import FaultRule
from tests.conftest import SAMPLE
from tests.testbed import start_testbed
from tests.waiting import until


async def test_hostile_a_delayed_past_timeout_advoware_post_is_still_applied():
    tb = await start_testbed(http_timeout=1.0)
    try:
        tb.advo.faults.add(FaultRule(method="POST", path=r"/advonet/Beteiligte$", delay=1.5, times=1))
        body = {"name": "Spät", "rowId": None}
        with pytest.raises(ApiError):
            await tb.services.advo.create_beteiligter(body)
        await until(lambda: tb.advo.all(), "the delayed POST to be applied")
        assert [b["name"] for b in tb.advo.all()] == ["Spät"]
    finally:
        await tb.close()


async def test_hostile_a_delayed_past_timeout_espocrm_put_is_still_applied():
    tb = await start_testbed(http_timeout=1.0)
    try:
        rec = tb.espo.seed(**SAMPLE)
        tb.espo.faults.add(FaultRule(method="PUT", path=r"/CBeteiligte/", delay=1.5, times=1))
        with pytest.raises(ApiError):
            await tb.services.espo.update("CBeteiligte", rec["id"], {"firstName": "Spät"})
        await until(lambda: tb.espo_record(rec["id"])["firstName"] == "Spät", "the delayed PUT to be applied")
    finally:
        await tb.close()
