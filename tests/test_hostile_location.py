"""Hostile: ``post_answer = "location"`` takes the new ``betNr`` from the Location's last path segment. A
Location naming something else (a sub-resource of the new party, another party) must never link the
record to a Beteiligter that is not the one just created: the next sync would write our values over it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from redis import Redis
from starlette.responses import Response

from tests.conftest import SAMPLE
from tests.testbed import start_testbed

WRAPPED = str(Path(__file__).resolve().parent / "advoware_profiles" / "wrapped-location.toml")


async def test_a_location_naming_a_sub_resource_never_links_another_party(real_redis_url: str) -> None:
    Redis.from_url(real_redis_url).flushdb()
    tb = await start_testbed(redis_url=real_redis_url, advo_profile=WRAPPED)
    try:
        other = tb.advo.seed(name="Schmidt", vorname="Erika", rechtsform="natürliche Person", ort="Hamburg")

        def created(row: dict[str, Any], url: str) -> Response:  # the address the create made, under the party
            return Response(status_code=201,
                            headers={"Location": f"{url.rstrip('/')}/{row['betNr']}/Adressen/{other['betNr']}"})

        tb.advo.wire.created = created  # type: ignore[method-assign]
        rec = tb.espo.seed(**SAMPLE)
        await tb.flush()
        await tb.flush()
        assert tb.espo_record(rec["id"]).get("betnr") != other["betNr"], "linked to another party"
        assert tb.advo_record(int(other["betNr"]))["name"] == "Schmidt"
        assert tb.espo_record(rec["id"])["lastName"] == SAMPLE["lastName"]
        tb.clock.advance(3600)  # the retry finds the one the create made, and adopts it
        await tb.host.run_cron("beteiligte_retry_cron")
        await tb.host.drain(30)
        await tb.flush()
        [made] = [o for o in tb.advo.all() if o["betNr"] != other["betNr"]]
        after = tb.espo_record(rec["id"])
        assert after["syncStatus"] == "clean" and after["betnr"] == made["betNr"]
    finally:
        await tb.close()


async def test_advowares_own_spelling_of_the_name_is_still_the_party_created(real_redis_url: str) -> None:
    """Advoware stores the name in its own spelling (case, spaces): the Location's party is still the one
    sent, linked at once (taken for another, the create would be looked for by exact values and repeated)."""
    Redis.from_url(real_redis_url).flushdb()
    tb = await start_testbed(redis_url=real_redis_url, advo_profile=WRAPPED)
    try:
        plain = tb.advo.wire.created

        def created(row: dict[str, Any], url: str) -> Response:
            tb.advo.edit(int(row["betNr"]), name=f"  {str(row['name']).upper()} ")
            return plain(row, url)

        tb.advo.wire.created = created  # type: ignore[method-assign]
        rec = tb.espo.seed(**SAMPLE)
        await tb.flush()
        [made] = tb.advo.all()
        after = tb.espo_record(rec["id"])
        assert after["syncStatus"] == "clean" and after["betnr"] == made["betNr"], after["syncErrorMessage"]
    finally:
        await tb.close()
