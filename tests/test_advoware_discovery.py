"""Discovery by Kanzlei (issue 21, item 1), through HTTP against the Advoware simulator's configurator,
with the answer cached in a real Redis (the session's throwaway redis-server).

Every test has its own Kanzlei, so its cache key is its own (the store is never emptied). The
simulator's default answer for a Kanzlei: connector = the simulator itself, relay = ``/relay``,
security gateway = ``/gateway`` (the call counters tell which one a call went to).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from adapters.advoware_api import AdvowareAPI
from adapters.advoware_discovery import FIX, ConfiguratorGarbage, ConfiguratorUnreachable, KanzleiNotFound
from adapters.advoware_endpoints import CACHE_KEY
from adapters.errors import RetryableError
from config.settings import Settings
from entrypoints.bootstrap import advoware_client
from simulators.advoware.configurator import PATH, UNKNOWN_EMPTY
from simulators.advoware.simulator import AdvowareSimulator
from simulators.common import ServerHandle, free_port, serve_in_thread

pytestmark = pytest.mark.redis

CONNECTOR_READ = "GET /api/v1/advonet/Beteiligte/{id}"
RELAY_READ = "GET /relay/api/v1/advonet/Beteiligte/{id}"
GATEWAY_TOKEN = "POST /gateway/api/v1/Token"
ASKED = f"GET {PATH}"


@dataclass
class Firm:
    sim: AdvowareSimulator
    server: ServerHandle
    redis: Redis
    kanzlei: str
    betnr: int

    @property
    def url(self) -> str:
        return self.server.url

    def settings(self, **extra: Any) -> Settings:
        creds = self.sim.client_settings()
        values: dict[str, Any] = {
            "advoware_configurator_url": self.url + PATH, "advoware_app_id": creds["app_id"],
            "advoware_api_key": SecretStr(creds["api_key"]), "advoware_kanzlei": self.kanzlei,
            "advoware_database": creds["database"], "advoware_user": creds["user"],
            "advoware_password": SecretStr(creds["password"]), "http_timeout_seconds": 5.0, **extra}
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    def client(self, **extra: Any) -> AdvowareAPI:
        return advoware_client(self.settings(**extra), self.redis)

    def calls(self) -> dict[str, int]:
        return self.sim.calls.snapshot()

    async def cached(self) -> dict[str, Any]:
        keys = [k for k in await self.redis.keys(f"{CACHE_KEY}:*") if not str(k).endswith(":reread'")]
        for key in keys:
            data = json.loads(await self.redis.get(key) or "{}")
            if data.get("kanzlei") == self.kanzlei:
                return dict(data)
        return {}


@pytest.fixture
async def firm(real_redis_url: str) -> AsyncIterator[Firm]:
    kanzlei = f"kanzlei-{uuid.uuid4().hex[:8]}"
    sim = AdvowareSimulator(kanzlei=kanzlei)
    betnr = int(sim.seed(name="Beispiel GmbH")["betNr"])
    server = serve_in_thread(sim.app)
    redis = Redis.from_url(real_redis_url)
    try:
        yield Firm(sim, server, redis, kanzlei, betnr)
    finally:
        await redis.aclose()
        server.stop()


@pytest.fixture
def connector(firm: Firm) -> Iterator[ServerHandle]:
    """The same simulator on a second port, named as the firm's connectorUrl (stop it: unreachable)."""
    handle = serve_in_thread(firm.sim.app)
    firm.sim.configurator.set(firm.kanzlei, connectorUrl=handle.url + "/")
    yield handle
    handle.stop()


async def gone(server: ServerHandle) -> None:
    """Stop ``server``; the client's loop then runs once, so it sees its idle connection closed (as it
    would have long before its next call in a running service)."""
    server.stop()
    await asyncio.sleep(0.1)


async def test_discovery_from_scratch_finds_connector_and_gateway_and_caches_them(firm: Firm) -> None:
    async with firm.client() as advo:
        assert (await advo.get_beteiligter(firm.betnr))["name"] == "Beispiel GmbH"
        line = advo.endpoints.describe() if advo.endpoints else ""
    calls = firm.calls()
    assert calls[ASKED] == 1 and calls[CONNECTOR_READ] == 1 and calls[GATEWAY_TOKEN] == 1, calls
    assert "POST /api/v1/Token" not in calls and RELAY_READ not in calls
    cached = await firm.cached()
    assert cached["connector_url"] == firm.url and cached["relay_url"] == firm.url + "/relay"
    assert cached["security_gateway"] == firm.url + "/gateway" and cached["use"] == "connector"
    assert cached["read_at"] > 0
    assert f"Kanzlei {firm.kanzlei}: API {firm.url} (connectorUrl), token gateway {firm.url}/gateway" in line
    assert "fresh from the configurator" in line


async def test_a_restart_uses_the_cached_answer_without_asking_the_configurator(firm: Firm) -> None:
    async with firm.client() as advo:
        await advo.get_beteiligter(firm.betnr)
    firm.sim.configurator.down = True  # would fail the start if it were asked
    async with firm.client() as advo:  # a new process: a new client on the same store
        await advo.get_beteiligter(firm.betnr)
        assert advo.endpoints and "from the store's cache" in advo.endpoints.describe()
    assert firm.calls()[ASKED] == 1 and firm.calls()[CONNECTOR_READ] == 2


async def test_configurator_down_without_a_cache_is_one_line_naming_the_fix(firm: Firm) -> None:
    firm.sim.configurator.down = True
    async with firm.client() as advo:
        with pytest.raises(ConfiguratorUnreachable) as caught:
            await advo.get_beteiligter(firm.betnr)
    text = str(caught.value)
    assert "\n" not in text and "answered HTTP 503" in text and text.endswith(FIX)
    assert CONNECTOR_READ not in firm.calls() and not await firm.cached()


async def test_configurator_not_listening_without_a_cache_names_the_fix(firm: Firm) -> None:
    closed = f"http://127.0.0.1:{free_port()}{PATH}"
    async with firm.client(advoware_configurator_url=closed) as advo:
        with pytest.raises(ConfiguratorUnreachable, match="not reachable .*ADVOWARE_CONFIGURATOR_URL"):
            await advo.get_beteiligter(firm.betnr)


async def test_an_empty_connector_url_means_the_relay(firm: Firm) -> None:
    firm.sim.configurator.set(firm.kanzlei, connectorUrl="")
    async with firm.client() as advo:
        await advo.get_beteiligter(firm.betnr)
        assert advo.endpoints and "(relayUrl; the configurator names no connectorUrl)" in advo.endpoints.describe()
    assert firm.calls()[RELAY_READ] == 1 and CONNECTOR_READ not in firm.calls()


async def test_an_unreachable_connector_is_left_for_the_relay_after_one_re_read(
        firm: Firm, connector: ServerHandle) -> None:
    async with firm.client() as advo:
        await advo.get_beteiligter(firm.betnr)
        assert firm.calls()[CONNECTOR_READ] == 1
        await gone(connector)  # the firm's connector goes away
        assert (await advo.get_beteiligter(firm.betnr))["betNr"] == firm.betnr  # the same call, on the relay
        await advo.get_beteiligter(firm.betnr)
        line = advo.endpoints.describe() if advo.endpoints else ""
    calls = firm.calls()
    assert calls[ASKED] == 2 and calls[RELAY_READ] == 2 and calls[CONNECTOR_READ] == 1, calls
    assert f"relayUrl; connectorUrl {connector.url} was not reachable" in line
    assert (await firm.cached())["use"] == "relay"
    async with firm.client() as advo:  # another process starts on the relay at once
        await advo.get_beteiligter(firm.betnr)
    assert firm.calls()[RELAY_READ] == 3 and firm.calls()[ASKED] == 2


async def test_configurator_down_with_a_cache_keeps_the_cached_answer_and_says_so(
        firm: Firm, connector: ServerHandle, caplog: pytest.LogCaptureFixture) -> None:
    async with firm.client() as advo:
        await advo.get_beteiligter(firm.betnr)
    before = await firm.cached()
    await gone(connector)
    firm.sim.configurator.down = True
    with caplog.at_level(logging.WARNING):
        async with firm.client() as advo:
            await advo.get_beteiligter(firm.betnr)
            line = advo.endpoints.describe() if advo.endpoints else ""
    assert firm.calls()[ASKED] == 2 and firm.calls()[RELAY_READ] == 1
    assert "the configurator gave no usable answer" in line and "relayUrl" in line
    assert any("keeping the answer read at" in r.getMessage() for r in caplog.records)
    after = await firm.cached()
    moves = ("use", "relay_since")  # where the API is, not what the configurator said
    assert {k: v for k, v in after.items() if k not in moves} == {k: v for k, v in before.items() if k not in moves}


async def test_re_reads_are_bounded_while_nothing_connects(firm: Firm, connector: ServerHandle) -> None:
    firm.sim.configurator.set(firm.kanzlei, connectorUrl=connector.url + "/",
                              relayUrl=f"http://127.0.0.1:{free_port()}/")
    async with firm.client() as advo:
        await advo.get_beteiligter(firm.betnr)
        await gone(connector)
        for _ in range(5):
            with pytest.raises(RetryableError, match="connection failed"):
                await advo.get_beteiligter(firm.betnr)
    assert firm.calls()[ASKED] == 2  # the first ask, and one re-read within REREAD_EVERY_S


@pytest.mark.parametrize("unknown", ["404", UNKNOWN_EMPTY])
async def test_an_unknown_kanzlei_is_not_found_in_one_line(firm: Firm, unknown: str) -> None:
    firm.sim.configurator.unknown = unknown
    async with firm.client(advoware_kanzlei="nobody-knows-me") as advo:
        with pytest.raises(KanzleiNotFound) as caught:
            await advo.get_beteiligter(firm.betnr)
    text = str(caught.value)
    assert "nobody-knows-me" in text and text.endswith(FIX) and "\n" not in text


@pytest.mark.parametrize("answer", [
    "not json", "[1, 2]", '{"connectorUrl": 5, "relayUrl": "", "securityGateway": "https://g"}',
    '{"connectorUrl": "ftp://files.example", "relayUrl": "", "securityGateway": "https://g"}',
    '{"connectorUrl": "https://c.example?x=1", "relayUrl": "", "securityGateway": "https://g"}',
    '{"connectorUrl": "https://c.example", "relayUrl": "", "securityGateway": ""}',
])
async def test_a_garbage_answer_is_refused_and_changes_nothing(firm: Firm, answer: str) -> None:
    async with firm.client() as advo:
        await advo.get_beteiligter(firm.betnr)
    before = await firm.cached()
    firm.sim.faults.add(path="AdvonetConfigurator", status=200, body=answer)
    async with firm.client() as advo:
        assert advo.endpoints is not None
        failure = await advo.endpoints.refresh()  # doctor's fresh ask: refused, the cached answer stays
        assert isinstance(failure, ConfiguratorGarbage) and str(failure).endswith(FIX)
        assert "the configurator gave no usable answer" in advo.endpoints.describe()
        await advo.get_beteiligter(firm.betnr)
    assert await firm.cached() == before
    firm.sim.faults.add(path="AdvonetConfigurator", status=200, body=answer)
    async with firm.client(advoware_kanzlei=firm.kanzlei + "-new") as advo:  # no cache: refused, one line
        with pytest.raises(ConfiguratorGarbage, match=f"Kanzlei '{firm.kanzlei}-new'.*: {re.escape(FIX)}$"):
            await advo.get_beteiligter(firm.betnr)


async def test_advoware_url_overrides_the_api_base_and_the_gateway_is_discovered(firm: Firm) -> None:
    async with firm.client(advoware_url=firm.url + "/relay/api/v1") as advo:
        await advo.get_beteiligter(firm.betnr)
        assert advo.endpoints and f"API {firm.url}/relay (ADVOWARE_URL)" in advo.endpoints.describe()
    calls = firm.calls()
    assert calls[ASKED] == 1 and calls[RELAY_READ] == 1 and calls[GATEWAY_TOKEN] == 1, calls


async def test_advoware_token_url_overrides_the_gateway_and_the_api_base_is_discovered(firm: Firm) -> None:
    async with firm.client(advoware_token_url=firm.url) as advo:
        await advo.get_beteiligter(firm.betnr)
    calls = firm.calls()
    assert calls[ASKED] == 1 and calls[CONNECTOR_READ] == 1 and calls["POST /api/v1/Token"] == 1, calls
    assert GATEWAY_TOKEN not in calls


async def test_both_urls_set_ask_no_configurator(firm: Firm) -> None:
    async with firm.client(advoware_url=firm.url, advoware_token_url=firm.url) as advo:
        assert advo.endpoints is None
        await advo.get_beteiligter(firm.betnr)
    assert ASKED not in firm.calls() and not await firm.cached()


def test_settings_discovery_sandbox_and_validation() -> None:
    from config.settings import ConfigError, load_settings

    bare = Settings(_env_file=None)  # type: ignore[call-arg]
    assert bare.sandbox and not bare.advoware_discovery
    firm = Settings(_env_file=None, advoware_kanzlei="k")  # type: ignore[call-arg]
    assert not firm.sandbox and firm.advoware_discovery
    assert firm.configurator_url == "https://www2.advo-net.net/AdvonetConfigurator/api/Url"
    missing = firm.missing_for_production()
    assert "ADVOWARE_URL" not in missing and "ADVOWARE_TOKEN_URL" not in missing and "ESPOCRM_URL" in missing
    with pytest.raises(ConfigError, match="^configuration: ADVOWARE_CONFIGURATOR_URL 'ftp://x' is not an http"):
        load_settings(_env_file=None, advoware_configurator_url="ftp://x")
