"""RecordingContext lets step handlers be unit-tested without a host."""

import pytest

from stephost.context import TopicNotDeclaredError
from stephost.discovery import discover_steps
from stephost.testing import MemoryState, RecordingContext, make_request
from tests.stephost_fixtures.support import APP_STEPS

STEPS = {s.name: s for s in discover_steps([APP_STEPS])}


async def test_records_emits_with_declared_topics_enforced() -> None:
    step = STEPS["chain-first"]
    ctx = RecordingContext(emits=step.emits, trace_id="t1")
    await step.handler({"hops": 1}, ctx)
    assert ctx.emitted == [{"topic": "fx.chain.next", "data": {"hops": 2}}]
    assert ctx.topics() == ["fx.chain.next"]
    with pytest.raises(TopicNotDeclaredError):
        await ctx.emit({"topic": "fx.other", "data": None})
    assert len(ctx.emitted) == 1


async def test_without_emits_any_topic_is_recorded() -> None:
    ctx = RecordingContext()
    await ctx.emit({"topic": "anything", "data": [1]})
    assert ctx.topics() == ["anything"]


async def test_api_handler_with_made_request_logs_and_state() -> None:
    step = STEPS["echo"]
    ctx = RecordingContext(emits=step.emits, trace_id="t2")
    req = make_request(
        {"a": 1}, headers={"Signature": "x"}, path_params={"kind": "k", "id": "1"}, query_params={"q": "v"}
    )
    result = await step.handler(req, ctx)
    assert result["status"] == 201
    body = result["body"]
    assert body["body"] == {"a": 1} and body["rawBody"] == '{"a": 1}' and body["headers"] == {"signature": "x"}
    assert body["traceId"] == "t2" and await ctx.state.get("echo", "calls") == 1
    [entry] = ctx.logs("info")
    assert entry.msg == "echo called" and entry.extra == {"kind": "k"}
    assert entry.line.startswith("[step=test-step trace=t2] echo called")


def test_make_request_from_raw_bytes() -> None:
    assert make_request(raw=b"[1]")["body"] == [1]
    assert make_request(raw=b"nope")["body"] is None
    assert make_request()["rawBytes"] == b""


async def test_memory_state_matches_the_redis_state_contract() -> None:
    state = MemoryState()
    await state.set("g", "b", {"x": 2})
    await state.set("g", "a", 1)
    assert await state.get_group("g") == [1, {"x": 2}]
    assert await state.delete("g", "a") == 1 and await state.get("g", "a") is None
    await state.clear("g")
    assert await state.get_group("g") == []
    with pytest.raises(TypeError):
        await state.set("g", "k", object())
