"""The three webhook API steps called directly, with a test double for the services: signatures, bodies,
batching and a full queue. The event and cron steps are in ``test_event_cron_steps.py``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from types import ModuleType
from typing import Any, cast

import pytest

import entrypoints.bootstrap as wiring
from domain.decision import item_fingerprints
from simulators.espocrm.webhooks import php_json_encode
from stephost.testing import RecordingContext, make_request
from steps import beteiligte_create_api_step as create_step
from steps import beteiligte_delete_api_step as delete_step
from steps import beteiligte_update_api_step as update_step
from sync.metrics import SyncMetrics
from tests.conftest import SAMPLE

HOOK = "hookid0000000001"
SECRET = "0123456789abcdef0123456789abcdef"
ID1, ID2 = "6650f1a2b3c4d5e6f", "6650f1a2b3c4d5e70"


class FakeServices:
    def __init__(self) -> None:
        self.metrics = SyncMetrics()

    def webhook_secrets(self) -> dict[str, str]:
        return {HOOK: SECRET}

    async def refresh_webhook_secrets(self, *, unknown_id: bool = False) -> bool:
        return False

    async def recover_webhook_secret(self, webhook_id: str) -> bool:
        return False

    def webhook_secrets_pending(self) -> bool:
        return False

    def count(self, event: str, status: int) -> float:
        labels = {"event": event, "status": str(status)}
        return self.metrics.registry.get_sample_value("beteiligte_webhook_requests_total", labels) or 0.0


@pytest.fixture
def services() -> Iterator[FakeServices]:
    fake = FakeServices()
    wiring.set_services(cast(wiring.Services, fake))
    try:
        yield fake
    finally:
        wiring.set_services(None)


def sign(raw: bytes, hook: str = HOOK, secret: str = SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "Signature": base64.b64encode(f"{hook}:{digest}".encode()).decode()}


def sign_legacy(raw: bytes, hook: str = HOOK, secret: str = SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), raw, hashlib.sha256).digest()
    return {"X-Signature": base64.b64encode(hook.encode() + b":" + digest).decode()}


async def call(step: ModuleType, raw: bytes, headers: dict[str, str] | None = None,
               ctx: RecordingContext | None = None) -> tuple[dict[str, Any], RecordingContext]:
    ctx = ctx or RecordingContext(emits=step.config["emits"])
    headers = sign(raw) if headers is None else headers
    result = await step.handler(make_request(raw=raw, headers=headers), ctx)
    assert result["status"] != 410
    return result, ctx


async def test_valid_create_batch_emits_one_event_per_id(services: FakeServices) -> None:
    raw = php_json_encode([{"id": ID1, **SAMPLE}, {"id": ID2, "lastName": "Meier"}, {"id": ID1, **SAMPLE}])
    result, ctx = await call(create_step, raw)
    assert result["status"] == 200
    assert ctx.topics() == ["vmh.beteiligte.create"] * 2
    assert [e["data"]["id"] for e in ctx.emitted] == [ID1, ID2]
    assert all(e["data"]["trigger"] == "webhook_create" for e in ctx.emitted)
    assert services.count("create", 200) == 1
    assert not any(SECRET in e.line for e in ctx.logs())


async def test_update_batch_collapses_duplicates_with_the_union_of_changes(services: FakeServices) -> None:
    raw = php_json_encode([{"addressCity": "Köln", "id": ID1}, {"firstName": "Jana", "id": ID2},
                           {"phoneNumber": None, "description": "x", "id": ID1}])
    result, ctx = await call(update_step, raw)
    assert result["status"] == 200
    assert ctx.topics() == ["vmh.beteiligte.update"] * 2
    by_id = {e["data"]["id"]: e["data"] for e in ctx.emitted}
    assert set(by_id[ID1]["changed"]) == {"addressCity", "phoneNumber", "description"}
    assert by_id[ID2]["changed"] == ["firstName"]
    # fingerprints of the latest values, never the values themselves
    assert by_id[ID1]["seen"] == item_fingerprints({"addressCity": "Köln", "phoneNumber": None})
    assert "Köln" not in json.dumps(ctx.emitted) and "Jana" not in json.dumps(ctx.emitted)


async def test_a_changed_betnr_is_queued_so_a_cleared_link_is_acted_on(services: FakeServices) -> None:
    result, ctx = await call(update_step, php_json_encode([{"betnr": None, "syncStatus": "pending_sync", "id": ID1}]))
    assert result["status"] == 200
    assert ctx.emitted[0]["data"]["seen"] == {"betnr": "None"}


async def test_update_of_unmapped_attributes_only_is_accepted_without_emit(services: FakeServices) -> None:
    raw = php_json_encode([{"description": "neu", "id": ID1}, {"syncStatus": "clean", "id": ID1},
                           {"beteiligtenRolle": "Gegner", "id": ID2}])
    result, ctx = await call(update_step, raw)
    assert result["status"] == 200 and ctx.emitted == []
    assert services.count("update", 200) == 1


async def test_delete_emits_deleted_events(services: FakeServices) -> None:
    result, ctx = await call(delete_step, php_json_encode([{"id": ID1}, {"id": ID2}, {"id": ID1}]))
    assert result["status"] == 200
    assert ctx.emitted == [
        {"topic": "vmh.beteiligte.delete", "data": {"id": i, "trigger": "webhook_delete", "deleted": True}}
        for i in (ID1, ID2)
    ]


RAW = php_json_encode([{"id": ID1, "lastName": "Müller"}])
BAD_SIGNATURES = {
    "missing": {},
    "empty": {"Signature": ""},
    "not base64": {"Signature": "!!!not-base64!!!"},
    "no webhook id": {"Signature": base64.b64encode(b"deadbeef").decode()},
    "wrong secret": sign(RAW, secret="f" * 32),
    "unknown webhook": sign(RAW, hook="hookid0000000002"),
    "hex digest in legacy header": {"X-Signature": sign(RAW)["Signature"]},
    "raw digest in Signature header": {"Signature": sign_legacy(RAW)["X-Signature"]},
    "other body": sign(php_json_encode([{"id": ID2, "lastName": "Müller"}])),
    "re-serialised JSON": sign(json.dumps(json.loads(RAW), ensure_ascii=False).encode()),
}


@pytest.mark.parametrize("step", [create_step, update_step, delete_step], ids=["create", "update", "delete"])
@pytest.mark.parametrize("headers", BAD_SIGNATURES.values(), ids=BAD_SIGNATURES.keys())
async def test_bad_signature_is_401_and_emits_nothing(
    services: FakeServices, step: ModuleType, headers: dict[str, str]
) -> None:
    result, ctx = await call(step, RAW, headers)
    assert result["status"] == 401 and ctx.emitted == []
    assert not any(SECRET in e.line for e in ctx.logs())


async def test_legacy_x_signature_is_accepted(services: FakeServices) -> None:
    result, ctx = await call(create_step, RAW, sign_legacy(RAW))
    assert result["status"] == 200 and ctx.topics() == ["vmh.beteiligte.create"]


async def test_php_escaped_json_is_verified_against_the_raw_bytes(services: FakeServices) -> None:
    raw = php_json_encode([{"id": ID1, "lastName": "Müller", "addressStreet": "Hauptstraße 1/2"}])
    assert b"\\u00fc" in raw and b"\\/" in raw
    result, ctx = await call(create_step, raw)
    assert result["status"] == 200 and [e["data"]["id"] for e in ctx.emitted] == [ID1]


MALFORMED = {
    "not JSON": b"[{\"id\": ",
    "not UTF-8": b"[{\"id\": \"\xff\xfe\"}]",
    "empty body": b"",
    "object, not array": php_json_encode({"id": ID1}),
    "array of strings": php_json_encode([ID1]),
    "item without id": php_json_encode([{"id": ID1}, {"lastName": "x"}]),
    "id is a number": php_json_encode([{"id": 17}]),
    "id is null": php_json_encode([{"id": None}]),
    "id is empty": php_json_encode([{"id": ""}]),
    "id is an object": php_json_encode([{"id": {"id": ID1}}]),
    "id far too long": php_json_encode([{"id": "a" * 500}]),
    "too many items": php_json_encode([{"id": f"{i:017x}"} for i in range(5000)]),
}


@pytest.mark.parametrize("step", [create_step, update_step, delete_step], ids=["create", "update", "delete"])
@pytest.mark.parametrize("raw", MALFORMED.values(), ids=MALFORMED.keys())
async def test_malformed_signed_body_is_400_and_emits_nothing(
    services: FakeServices, step: ModuleType, raw: bytes
) -> None:
    result, ctx = await call(step, raw)
    assert result["status"] == 400 and ctx.emitted == []


async def test_body_over_4_mib_is_400(services: FakeServices) -> None:
    raw = php_json_encode([{"id": ID1, "description": "x" * (4 * 1024 * 1024)}])
    result, ctx = await call(create_step, raw)
    assert result["status"] == 400 and ctx.emitted == []
    assert services.count("create", 400) == 1


@pytest.mark.parametrize("raw", [b"[" * 5000, b'[{"id": "x", "a": ' + b"[" * 5000 + b"]" * 5000 + b"}]"],
                         ids=["unclosed", "valid but deep"])
async def test_deeply_nested_signed_body_is_400(services: FakeServices, raw: bytes) -> None:
    ctx = RecordingContext(emits=create_step.config["emits"])
    result = await create_step.handler(make_request(body=[], raw=raw, headers=sign(raw)), ctx)
    assert result["status"] == 400 and ctx.emitted == []


async def test_empty_array_is_accepted(services: FakeServices) -> None:
    result, ctx = await call(create_step, b"[]")
    assert result["status"] == 200 and ctx.emitted == []


class FullQueueContext(RecordingContext):
    """Takes ``room`` events, then fails like a full queue."""

    def __init__(self, room: int, **kw: Any) -> None:
        super().__init__(**kw)
        self.room = room

    async def emit(self, event: dict[str, Any]) -> None:
        if len(self.emitted) >= self.room:
            raise RuntimeError("queue full (maxSize reached)")
        await super().emit(event)


@pytest.mark.parametrize("room", [0, 1])
@pytest.mark.parametrize("step", [create_step, update_step, delete_step], ids=["create", "update", "delete"])
async def test_queue_full_answers_503_so_espocrm_retries(services: FakeServices, step: ModuleType, room: int) -> None:
    raw = php_json_encode([{"lastName": "A", "id": ID1}, {"lastName": "B", "id": ID2}])
    ctx = FullQueueContext(room, emits=step.config["emits"])
    result, _ = await call(step, raw, ctx=ctx)
    assert result["status"] == 503
    assert services.count(step.config["path"].rsplit("/", 1)[1], 503) == 1
