"""Error answers of EspoCRM and Advoware are logged and stored without the personal data they quote
(issue 7, point 6): field names and validation types stay, values go, the message stays readable."""

from __future__ import annotations

import json
import re

import fakeredis
import httpx
import pytest
import redis

from adapters.advoware_api import AdvowareAPI
from adapters.errors import ValidationError, without_personal_data
from adapters.espocrm_api import EspoCRMAPI
from sync.sync_failures import plan_failure
from tests.conftest import SAMPLE
from tests.test_api_ids import Recorder
from tests.testbed import Testbed

PERSONAL = ("1234567", "anna@example.org", "Müller", "Schmidt", "Anna", "10115", "1980")
DETAIL = "telefon: '+49 30 1234567' von Anna Müller (anna@example.org, 10115 Berlin, *1980-04-12) ist ungültig"
PROBLEM = {"type": "https://advo.test/validation", "title": "One or more validation errors occurred.",
           "status": 400, "detail": DETAIL, "errors": {"Telefon": ["The value '+49 30 1234567' is not valid."]}}


def free_of_personal_data(text: str) -> bool:
    shown = re.sub(r"https?://[^/\s]+", "", text)  # the simulators' random ports are not data (paths and queries are)
    return not any(value in shown for value in PERSONAL)


@pytest.mark.parametrize(("text", "kept"), [
    (DETAIL, "telefon: … von … (…, *…) ist ungültig"),
    ("Field validation failure; entityType: CBeteiligte, field: phoneNumber, type: valid.",
     "Field validation failure; entityType: CBeteiligte, field: phoneNumber, type: valid."),
    ("geburtsdatum must have the form YYYY-MM-DDT00:00:00", "geburtsdatum must have the form YYYY-MM-DDT00:00:00"),
    ("The Telefon field is not a valid phone number: +49 30 1234567.",
     "The Telefon field is not a valid phone number: …."),
    ("Record 6650f1a2b3c4d5e6f does not exist.", "Record 6650f1a2b3c4d5e6f does not exist."),
    ("Invalid value 'Müller' for 'lastName'", "Invalid value … for 'lastName'"),
    ("rowId is stale: Beteiligter 12 was changed in between", "rowId is stale: Beteiligter 12 was changed in between"),
])
def test_values_go_field_names_and_types_stay(text: str, kept: str) -> None:
    assert without_personal_data(text) == kept


async def test_advoware_400_is_logged_and_raised_without_the_values(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Token"):
            return Recorder({})(request)
        return httpx.Response(400, json=PROBLEM, headers={"Content-Type": "application/problem+json"})

    api = AdvowareAPI("http://advo.test", "http://advo.test", app_id="a", api_key="dGVzdA==", kanzlei="k",
                      database="d", user="u", password="p", redis=fakeredis.FakeAsyncRedis(),
                       transport=httpx.MockTransport(answer))
    try:
        with pytest.raises(ValidationError) as info:
            await api.update_beteiligter(7, {"name": "Müller", "telefon": "+49 30 1234567", "rowId": "r"})
    finally:
        await api.aclose()
    message = str(info.value)
    assert "telefon" in message and "ist ungültig" in message and "Telefon: The value … is not valid" in message
    assert free_of_personal_data(message + repr(info.value.details))
    assert any("advoware answered HTTP 400" in r.getMessage() for r in caplog.records)
    assert free_of_personal_data(caplog.text)


async def test_espocrm_reason_keeps_field_and_type_only(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    reasons = {
        "CBeteiligte/6650f1a2b3c4d5e6f": "Field validation failure; entityType: CBeteiligte, field: emailAddress, "
                                         "type: valid. Value: anna@example.org",
        "CBeteiligte/6650f1a2b3c4d5e6a": "Duplicate of Anna Schmidt <anna@example.org>, +49 30 1234567",
    }

    def answer(request: httpx.Request) -> httpx.Response:
        reason = reasons[request.url.path.removeprefix("/api/v1/")]
        return httpx.Response(400, headers={"X-Status-Reason": reason})

    async with EspoCRMAPI("http://espo.test", "key", transport=httpx.MockTransport(answer)) as api:
        messages = []
        for record_id in ("6650f1a2b3c4d5e6f", "6650f1a2b3c4d5e6a"):
            with pytest.raises(ValidationError) as info:
                await api.update("CBeteiligte", record_id, {"emailAddress": "anna@example.org"})
            messages.append(info.value.message)
    assert messages[0] == "Field validation failure; entityType: CBeteiligte, field: emailAddress, type: valid."
    assert messages[1].startswith("Duplicate of …")
    assert free_of_personal_data(" ".join(messages)) and free_of_personal_data(caplog.text)


async def test_a_failed_sync_leaves_a_readable_message_and_clean_logs(tb: Testbed,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO")
    tb.advo.faults.add(method="POST", path="/Beteiligte", status=400, body=json.dumps(PROBLEM), times=None)
    rec = tb.espo.seed(**SAMPLE)
    await tb.flush()
    stored = tb.espo_record(rec["id"])
    assert stored["syncStatus"] == "failed"
    assert "telefon" in stored["syncErrorMessage"] and "ist ungültig" in stored["syncErrorMessage"]
    assert free_of_personal_data(stored["syncErrorMessage"])
    ours = [r.getMessage() for r in caplog.records if not r.name.startswith(("simulators", "uvicorn"))]
    assert any("advoware answered HTTP 400" in line for line in ours)
    assert free_of_personal_data("\n".join(ours))


@pytest.mark.parametrize("exc", [
    redis.ConnectionError("Error 2 connecting to unix socket: /tmp/bsync-x/state/redis.sock. No such file."),
    FileNotFoundError(2, "No such file or directory", "/srv/beteiligte/config/value_maps.toml"),
    PermissionError(13, "Permission denied", "/var/lib/beteiligte-sync/state/appendonlydir"),
])
def test_a_failure_message_staff_read_names_no_server_path(exc: Exception) -> None:
    """Issue 19: syncErrorMessage is read by staff in EspoCRM; the server's folders stay in its log."""
    plan = plan_failure(exc, 0)
    assert "/" not in plan.message.replace("(server path)", ""), plan.message
    assert plan.message.startswith(f"internal error ({type(exc).__name__})") and "(server path)" in plan.message


def test_urls_and_dates_in_a_message_are_not_taken_for_paths() -> None:
    text = "EspoCRM answered 404 for https://crm.example/api/v1/CBeteiligte/abc on 07/12/2026"
    assert plan_failure(ValueError(text), 0).message.startswith(f"internal error (ValueError): {text}")
