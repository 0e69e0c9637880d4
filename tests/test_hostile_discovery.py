"""Hostile tests of discovery by Kanzlei (issue 21 item 1): a firm's IT, a flaky network and the
configurator's answers, over HTTP against the Advoware simulator, the cache in a real Redis."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import trustme
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from adapters.advoware_discovery import (
    FIX,
    ConfiguratorGarbage,
    ConfiguratorUnreachable,
    DiscoveryFailed,
    ask_configurator,
)
from adapters.errors import ApiError
from simulators.advoware.configurator import PATH
from simulators.advoware.simulator import AdvowareSimulator
from simulators.common import free_port, serve_in_thread
from tests import test_advoware_discovery as discovery
from tests.test_advoware_discovery import ASKED, CONNECTOR_READ, RELAY_READ, Firm

firm = discovery.firm  # the fixture: a simulator, its configurator and a Kanzlei of the test's own

pytestmark = pytest.mark.redis


async def test_a_password_in_an_answered_url_is_refused_and_never_logged(
        firm: Firm, caplog: pytest.LogCaptureFixture) -> None:
    """``https://user:secret@host``: httpx would send it as Basic auth beside our token, and every view
    (the INFO line at start, doctor, the status page) would print it. Refused, without echoing it."""
    firm.sim.configurator.set(firm.kanzlei, connectorUrl=firm.url.replace("://", "://svc:s3cret-pw@") + "/")
    with caplog.at_level(logging.DEBUG):
        async with firm.client() as advo:
            assert advo.endpoints is not None
            with pytest.raises(ConfiguratorGarbage) as caught:
                await advo.get_beteiligter(firm.betnr)
    assert "user information" in str(caught.value)
    assert "s3cret-pw" not in str(caught.value) + caplog.text


async def test_the_connector_back_is_used_again_and_the_relay_is_not_kept_for_good(firm: Firm) -> None:
    """The firm's connector down for a minute (a server reboot at night): the sync moves to the relay.
    When the connector is back, the sync goes back to it within RETURN_AFTER_S, in every process and
    after a restart, instead of staying on the relay for ever; while it stays down, that costs one
    refused connect and no re-read per period."""
    port = free_port()
    firm.sim.configurator.set(firm.kanzlei, connectorUrl=f"http://127.0.0.1:{port}/")
    now = [1_000_000.0]
    async with firm.client() as advo, firm.client() as other:
        assert advo.endpoints is not None and other.endpoints is not None
        advo.endpoints.clock = other.endpoints.clock = lambda: now[0]
        await advo.get_beteiligter(firm.betnr)  # connector down: moved to the relay
        await other.get_beteiligter(firm.betnr)  # the other process follows without asking again
        assert firm.calls()[RELAY_READ] == 2 and firm.calls()[ASKED] == 1 + 1, firm.calls()
        period = advo.endpoints.return_after
        now[0] += period + 1  # still down: one try of the connector, then the relay again
        await advo.get_beteiligter(firm.betnr)
        assert firm.calls()[RELAY_READ] == 3 and CONNECTOR_READ not in firm.calls()
        back = serve_in_thread(firm.sim.app, port=port)
        try:
            await advo.get_beteiligter(firm.betnr)  # within the period: still the relay
            assert firm.calls()[RELAY_READ] == 4
            now[0] += period + 1
            await advo.get_beteiligter(firm.betnr)
            await other.get_beteiligter(firm.betnr)
            assert firm.calls().get(CONNECTOR_READ) == 2, firm.calls()
            assert "(connectorUrl)" in advo.endpoints.describe() and (await firm.cached())["use"] == "connector"
        finally:
            back.stop()
    assert firm.calls()[ASKED] <= 3, firm.calls()


def _hostile_configurator(firm: Firm) -> Starlette:
    """A configurator that misbehaves by path: a redirect, an answer dripped byte by byte, a huge answer."""
    good = json.dumps({"connectorUrl": firm.url + "/", "relayUrl": firm.url + "/relay/",
                       "securityGateway": firm.url + "/gateway/"}).encode()

    async def redirect(request: Request) -> Response:
        return RedirectResponse("https://configurator.example/AdvonetConfigurator/api/Url", status_code=301)

    async def drip(request: Request) -> Response:
        async def body() -> AsyncIterator[bytes]:
            for byte in good:
                await asyncio.sleep(0.25)
                yield bytes([byte])
        return StreamingResponse(body(), media_type="application/json")

    async def huge(request: Request) -> Response:
        return Response(good[:-1] + b', "pad": "' + b"x" * (20 << 20) + b'"}', media_type="application/json")

    return Starlette(routes=[Route("/redirect", redirect), Route("/drip", drip), Route("/huge", huge)])


@pytest.fixture
def hostile(firm: Firm) -> Iterator[str]:
    handle = serve_in_thread(_hostile_configurator(firm))
    yield handle.url
    handle.stop()


async def test_a_redirecting_configurator_is_named_as_one(firm: Firm, hostile: str) -> None:
    """Advoware moves its configurator (301): the line names the redirect and its target, not 'not JSON'."""
    async with firm.client(advoware_configurator_url=hostile + "/redirect") as advo:
        with pytest.raises(DiscoveryFailed) as caught:
            await advo.get_beteiligter(firm.betnr)
    text = str(caught.value)
    assert "HTTP 301" in text and "https://configurator.example/AdvonetConfigurator/api/Url" in text, text
    assert "\n" not in text and text.endswith(FIX)


async def test_a_configurator_dripping_its_answer_is_bounded_by_the_timeout(firm: Firm, hostile: str) -> None:
    """Every byte within the read timeout, the whole answer far beyond it: the wait still has a bound."""
    started = time.monotonic()
    async with firm.client(advoware_configurator_url=hostile + "/drip", http_timeout_seconds=1.0) as advo:
        with pytest.raises(ConfiguratorUnreachable, match="not reachable"):
            await advo.get_beteiligter(firm.betnr)
    assert time.monotonic() - started < 5, time.monotonic() - started


async def test_a_huge_configurator_answer_is_refused_unread(firm: Firm, hostile: str) -> None:
    async with firm.client(advoware_configurator_url=hostile + "/huge") as advo:
        with pytest.raises(ConfiguratorGarbage, match="larger than"):
            await advo.get_beteiligter(firm.betnr)


@pytest.mark.parametrize("fault", ["503", "hang"])
async def test_a_connector_that_answers_badly_is_not_left_for_the_relay(firm: Firm, fault: str) -> None:
    """Only a failed connect moves: a 503 or an answer that never comes is the connector's own trouble
    (the relay reaches the same Advoware), retried later; the wait is bounded by the HTTP timeout."""
    async with firm.client(http_timeout_seconds=1.0) as advo:
        await advo.get_beteiligter(firm.betnr)
        rule = dict(status=503, times=None) if fault == "503" else dict(delay=3.0, times=None)
        firm.sim.faults.add(path=r"^/api/v1/advonet/Beteiligte", **rule)
        started = time.monotonic()
        with pytest.raises(ApiError):  # retried later (503: deferred; a timeout: retryable)
            await advo.get_beteiligter(firm.betnr)
        assert time.monotonic() - started < 2.5
        assert advo.endpoints is not None and "(connectorUrl)" in advo.endpoints.describe()
    assert RELAY_READ not in firm.calls() and firm.calls()[ASKED] == 1, firm.calls()
    assert (await firm.cached())["use"] == "connector"


@pytest.mark.parametrize("spelt", ["{url}/api/v1/", "{url}/api/v1", "{url}//", "{URL}/"])
async def test_answered_urls_in_other_spellings_reach_the_same_api(firm: Firm, spelt: str) -> None:
    url = spelt.format(url=firm.url, URL=firm.url.replace("http://", "HTTP://"))
    firm.sim.configurator.set(firm.kanzlei, connectorUrl=url, securityGateway=url.replace("/api/v1", ""))
    async with firm.client() as advo:
        assert (await advo.get_beteiligter(firm.betnr))["betNr"] == firm.betnr
    assert firm.calls()[CONNECTOR_READ] == 1, firm.calls()


async def test_advoware_moved_to_new_hosts_is_followed_and_the_old_token_is_not_kept(firm: Firm) -> None:
    """The firm moves its Advoware (new connector and security gateway, its own tokens): the first call
    that cannot connect reads the configurator again, and the token of the old gateway, refused by the
    new API, is replaced by one of the new gateway at once."""
    moved = AdvowareSimulator(kanzlei=firm.kanzlei)
    moved.seed(name="Beispiel GmbH")
    new = serve_in_thread(moved.app)
    old = serve_in_thread(firm.sim.app)
    try:
        firm.sim.configurator.set(firm.kanzlei, connectorUrl=old.url + "/")
        async with firm.client() as advo:
            await advo.get_beteiligter(firm.betnr)
            firm.sim.configurator.set(firm.kanzlei, connectorUrl=new.url + "/", securityGateway=new.url + "/gateway/")
            old.stop()
            await asyncio.sleep(0.1)
            assert (await advo.get_beteiligter(firm.betnr))["name"] == "Beispiel GmbH"
            assert advo.endpoints is not None and f"API {new.url} (connectorUrl)" in advo.endpoints.describe()
        assert moved.calls.snapshot()["POST /gateway/api/v1/Token"] == 1, moved.calls.snapshot()
        assert (await firm.cached())["connector_url"] == new.url
    finally:
        new.stop()
        old.stop()


async def test_doctor_asking_afresh_keeps_what_the_processes_learnt(firm: Firm) -> None:
    """The connector down, every process on the relay: ``doctor`` (a fresh process) asks the configurator,
    which answers the same. It must not write "connector" back over the store's "relay": every process
    started after it (a restart, each command) would try the dead connector first again."""
    port = free_port()
    firm.sim.configurator.set(firm.kanzlei, connectorUrl=f"http://127.0.0.1:{port}/")
    async with firm.client() as advo:
        await advo.get_beteiligter(firm.betnr)
    assert (await firm.cached())["use"] == "relay"
    async with firm.client() as doctor:
        assert doctor.endpoints is not None
        assert await doctor.endpoints.refresh() is None
        assert "connectorUrl" in doctor.endpoints.describe() and "was not reachable" in doctor.endpoints.describe()
    assert (await firm.cached())["use"] == "relay"


async def test_nothing_connecting_flips_without_flooding_the_log(
        firm: Firm, caplog: pytest.LogCaptureFixture) -> None:
    """Connector and relay both refuse (the firm's line is down): every call (the feed polls every 10 s)
    tries both; the configurator is asked once a minute and the log does not say "now …" at every call."""
    firm.sim.configurator.set(firm.kanzlei, connectorUrl=f"http://127.0.0.1:{free_port()}/",
                              relayUrl=f"http://127.0.0.1:{free_port()}/")
    async with firm.client() as advo:
        with caplog.at_level(logging.INFO):
            for _ in range(6):
                with pytest.raises(ApiError, match="connection failed"):
                    await advo.get_beteiligter(firm.betnr)
    moves = [r for r in caplog.records if "cannot be reached" in r.getMessage()]
    assert firm.calls()[ASKED] == 2
    assert len(moves) == 1, [r.getMessage() for r in moves]  # one move a minute at most, not one per call


@pytest.fixture
def untrusted_connector(firm: Firm, tmp_path: Path) -> Iterator[str]:
    """The firm's connector over https with a certificate no public CA signed (a self-made one)."""
    cert = trustme.CA().issue_cert("127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(firm.sim.app, host="127.0.0.1", port=port, log_level="warning",
                                           ssl_certfile=str(tmp_path / "server.pem")))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    yield f"https://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(5)


async def test_a_connector_with_an_untrusted_certificate_is_named_as_such(
        firm: Firm, untrusted_connector: str, caplog: pytest.LogCaptureFixture) -> None:
    """A TLS failure is a failed connect (nothing was sent): the relay is used, and the warning says it
    was the certificate, not "cannot be reached", so the firm's IT knows what to fix."""
    firm.sim.configurator.set(firm.kanzlei, connectorUrl=untrusted_connector)
    with caplog.at_level(logging.WARNING):
        async with firm.client() as advo:
            await advo.get_beteiligter(firm.betnr)
    assert firm.calls()[RELAY_READ] == 1
    moves = [r.getMessage() for r in caplog.records if "cannot be reached" in r.getMessage()]
    assert len(moves) == 1 and "certificate" in moves[0].lower(), moves


async def test_another_kanzlei_or_configurator_is_asked_not_served_from_the_old_cache(firm: Firm) -> None:
    """The firm's IT corrects ADVOWARE_KANZLEI or ADVOWARE_CONFIGURATOR_URL: the next start asks anew
    (the cache key holds both), and the old answer is not used for the new Kanzlei."""
    async with firm.client() as advo:
        await advo.get_beteiligter(firm.betnr)
    other = firm.kanzlei + "-zwei"
    firm.sim.configurator.set(other, connectorUrl="")  # its own answer: the relay only
    async with firm.client(advoware_kanzlei=other) as advo:
        assert advo.endpoints is not None
        assert (await advo.endpoints.resolve())[0] == firm.url + "/relay"
    async with firm.client(advoware_configurator_url=firm.url.replace("127.0.0.1", "localhost") + PATH) as advo:
        assert advo.endpoints is not None
        await advo.endpoints.resolve()
    assert firm.calls()[ASKED] == 3, firm.calls()


async def test_a_relay_blip_right_after_another_process_moved_does_not_send_this_one_back(firm: Firm) -> None:
    """Two processes: A moves to the relay, B follows from the store; the relay refuses one call of B a
    moment later. B must not flip back to the dead connector (and write that into the store for all)."""
    relay_port = free_port()
    relay = serve_in_thread(firm.sim.app, port=relay_port)
    firm.sim.configurator.set(firm.kanzlei, connectorUrl=f"http://127.0.0.1:{free_port()}/",
                              relayUrl=f"{relay.url}/relay/")
    try:
        async with firm.client() as a, firm.client() as b:
            assert a.endpoints is not None and b.endpoints is not None
            await b.endpoints.resolve()  # B started before the outage: on the connector
            await a.get_beteiligter(firm.betnr)  # A: connector refused, moved to the relay
            await b.get_beteiligter(firm.betnr)  # B follows the store
            relay.stop()
            await asyncio.sleep(0.1)
            with pytest.raises(ApiError, match="connection failed"):
                await b.get_beteiligter(firm.betnr)  # the relay's blip
            relay = serve_in_thread(firm.sim.app, port=relay_port)
            assert (await b.get_beteiligter(firm.betnr))["betNr"] == firm.betnr
            assert (await firm.cached())["use"] == "relay"
    finally:
        relay.stop()


@pytest.mark.parametrize("part", ["connectorUrl", "relayUrl", "securityGateway"])
async def test_plain_http_named_by_an_https_configurator_is_refused(part: str) -> None:
    """The configurator asked over https names an http address: the token request would carry the password
    unencrypted, every call the token. Refused in one line (it was taken before). An http configurator
    (the sandbox, a test) may name http addresses."""
    urls = {"connectorUrl": "https://c.example/", "relayUrl": "https://r.example/",
            "securityGateway": "https://g.example/", part: f"http://{part.lower()}.example/"}

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=urls)

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        with pytest.raises(ConfiguratorGarbage) as refused:
            await ask_configurator(client, "https://configurator.example" + PATH, "k1", read_at=0.0)
        assert part in refused.value.message and "plain http" in refused.value.message
        plain = await ask_configurator(client, "http://configurator.example" + PATH, "k1", read_at=0.0)
    assert plain.security_gateway.startswith("http")
