"""EspoCRM simulator: phone numbers as a real EspoCRM saves them, over HTTP, on both profiles.

The expected values are what EspoCRM's own code does (``simulators/espocrm/phone.py`` names the files
and tags read): ``Core/PhoneNumber/Sanitizer.php`` and ``Classes/FieldValidators/PhoneType.php``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from simulators.espocrm import EspoCRMSimulator

KEY = "api-key"
BASE = "http://espo.test/api/v1"
REFUSED = None  # 400 Field validation failure; field: phoneNumber

# "International phone numbers" on: a fresh install of 8.1.5 or 9.x.
INTERNATIONAL = [
    ("+49 30 1234567", "+49301234567"),
    ("+49 (0)30 1234567", "+49301234567"),  # libphonenumber drops the trunk 0
    ("+49 (30) 123-45/67", "+49301234567"),  # sanitised before validation: the / never reaches it
    (" +49.30.1234567 ", "+49301234567"),
    ("+49 800 FLOWERS", "+498003569377"),  # letters dialled as digits
    ("+49 30 1234567 ext. 12", "+49301234567"),  # E.164 has no extension: it is lost
    ("030 1234567", REFUSED),  # national: does not parse without a country
    ("0221 / 12 34 56", REFUSED),
    ("0049 30 1234567", REFUSED),
    ("+49 call me", REFUSED),  # does not parse: kept by the sanitiser, refused by the validator
]
# Off: an install upgraded to 8.1 (upgrades/8.1/scripts/AfterUpgrade.php), or an admin's choice.
AS_TYPED = [
    ("+49 30 1234567", "+49 30 1234567"),
    (" 030 1234567 ", "030 1234567"),
    ("030-1234567", "030-1234567"),
    ("+49 30 1234567 ext. 12", "+49 30 1234567 ext. 12"),
    ("0221 / 12 34 56", REFUSED),  # "/" is not in phoneNumberLoose
    ("030, 1234567", REFUSED),
    ("+49 30 1234567 0000000000000000000000", REFUSED),  # maxLength 36
]


@pytest.fixture(params=["8", "9"])
def sim(request: pytest.FixtureRequest) -> EspoCRMSimulator:
    return EspoCRMSimulator(api_key=KEY, profile=request.param, seed=5)


@pytest.fixture
async def http(sim: EspoCRMSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app), base_url=BASE,
                                 headers={"X-Api-Key": KEY}) as c:
        yield c


async def _saved(http: httpx.AsyncClient, sim: EspoCRMSimulator, typed: str) -> str | None:
    """What POST and PUT store for ``typed``; ``None`` when both refuse it with EspoCRM's 400."""
    created = await http.post("/CBeteiligte", json={"lastName": "Muster", "phoneNumber": typed})
    other = sim.seed(lastName="Andere")
    updated = await http.put(f"/CBeteiligte/{other['id']}", json={"phoneNumber": typed})
    assert created.status_code == updated.status_code, (created.text, updated.text)
    if created.status_code == 400:
        assert created.headers["X-Status-Reason"].endswith("field: phoneNumber, type: valid.") or \
            created.headers["X-Status-Reason"].endswith("field: phoneNumber, type: maxLength.")
        assert (sim.get(other["id"]) or {}).get("phoneNumber") is None
        return None
    assert created.json()["phoneNumber"] == updated.json()["phoneNumber"]
    return str(created.json()["phoneNumber"])


@pytest.mark.parametrize(("typed", "stored"), INTERNATIONAL)
async def test_international_on_stores_e164_and_refuses_national_numbers(
        http: httpx.AsyncClient, sim: EspoCRMSimulator, typed: str, stored: str | None) -> None:
    assert (await http.get("/Settings")).json()["phoneNumberInternational"] is True
    assert await _saved(http, sim, typed) == stored


@pytest.mark.parametrize(("typed", "stored"), AS_TYPED)
async def test_international_off_keeps_what_is_typed(
        http: httpx.AsyncClient, sim: EspoCRMSimulator, typed: str, stored: str | None) -> None:
    sim.set_phone_settings(international=False)
    assert (await http.get("/Settings")).json()["phoneNumberInternational"] is False
    assert await _saved(http, sim, typed) == stored


@pytest.mark.parametrize(("typed", "stored"), [
    ("+49 30 1234567 ext. 12", "+49301234567 ext. 12"),
    ("+49 30 1234567 x12", "+49301234567 ext. 12"),
    ("+49 30 1234567 ext 12", "+49301234567 ext. t 12"),  # Util::splitExtension cuts at the last "x"
    ("+49 30 1234567 ext. 1234567", REFUSED),  # an extension of more than 6 characters
])
async def test_9x_phone_number_extensions_keep_the_extension(typed: str, stored: str | None) -> None:
    sim = EspoCRMSimulator(api_key=KEY, profile="9", seed=5, phone_extensions=True)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app), base_url=BASE,
                                 headers={"X-Api-Key": KEY}) as http:
        assert (await http.get("/Settings")).json()["phoneNumberExtensions"] is True
        assert await _saved(http, sim, typed) == stored


def test_8_1_5_has_no_extension_setting() -> None:
    sim = EspoCRMSimulator(api_key=KEY, profile="8", seed=5, phone_extensions=True)
    assert "phoneNumberExtensions" not in sim.settings()
    assert sim.user_edit(sim.seed(lastName="M")["id"], phoneNumber="+49 30 1234567 ext. 12")["phoneNumber"] == \
        "+49301234567"
