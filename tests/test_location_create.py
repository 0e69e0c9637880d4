"""An Advoware whose POST answers 201 with a Location header (``post_answer = "location"``): the sync creates
through it, and an answer without a usable Location (a proxy stripping it) takes the lost-create path, so
the next attempt adopts the Beteiligter instead of creating a second one."""

from __future__ import annotations

from pathlib import Path

from redis import Redis

from config.advoware_profile import load_profile
from tests.conftest import SAMPLE
from tests.testbed import start_testbed

WRAPPED = str(Path(__file__).resolve().parent / "advoware_profiles" / "wrapped-location.toml")


async def test_a_create_without_its_location_is_adopted_not_doubled(real_redis_url: str) -> None:
    Redis.from_url(real_redis_url).flushdb()
    tb = await start_testbed(redis_url=real_redis_url, advo_profile=WRAPPED)
    try:
        first = tb.espo.seed(**SAMPLE)
        await tb.flush()
        linked = tb.espo_record(first["id"])
        assert linked["syncStatus"] == "clean" and tb.advo_record(linked["betnr"])["name"] == SAMPLE["lastName"]
        tb.advo.set_answers(load_profile("default"))  # the same Advoware, its answers now without Location
        second = tb.espo.seed(**{**SAMPLE, "lastName": "Zweitname", "emailAddress": "z@example.org"})
        await tb.flush()
        failed = tb.espo_record(second["id"])
        assert failed["syncStatus"] == "failed" and 'post_answer = "location"' in failed["syncErrorMessage"]
        assert "looked for before the next attempt" in failed["syncErrorMessage"]  # the lost-create path
        assert len(tb.advo.all()) == 2  # the create landed
        tb.advo.set_answers(load_profile(WRAPPED))
        tb.espo.user_edit(second["id"], addressCity="Potsdam")
        await tb.flush()
        after = tb.espo_record(second["id"])
        assert after["syncStatus"] == "clean", after["syncErrorMessage"]
        assert len(tb.advo.all()) == 2 and tb.advo_record(after["betnr"])["ort"] == "Potsdam"  # adopted
    finally:
        await tb.close()
