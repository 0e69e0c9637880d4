"""What the tests of issue 11's create lookup share: building the match key index as
``beteiligte-sync match`` does, and a person saving a record in EspoCRM."""

from __future__ import annotations

from typing import Any

from onboarding.match import scan
from tests.conftest import SAMPLE
from tests.testbed import Testbed


async def index_all(tb: Testbed) -> None:
    """What ``beteiligte-sync match`` does first: page through Advoware into the match key index."""
    await scan(tb.services.espo, tb.services.advo, tb.services.store)


async def staff_creates(tb: Testbed, **overrides: Any) -> dict[str, Any]:
    """A person saves a record with SAMPLE's values (an override of ``None`` leaves the field out); two
    runs of EspoCRM's webhook job, then the record as EspoCRM has it."""
    rec = tb.espo.seed(**{k: v for k, v in {**SAMPLE, **overrides}.items() if v is not None})
    await tb.flush()
    await tb.flush()
    return tb.espo_record(rec["id"])
