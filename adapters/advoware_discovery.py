"""Advoware's URL configurator: which addresses a Kanzlei's Advoware has (public facts, docs/advoware.md).

``GET <ADVOWARE_CONFIGURATOR_URL>?Kanzlei=<Kanzlei>`` answers ``{"connectorUrl", "relayUrl",
"securityGateway"}``. The API base is ``connectorUrl``, or ``relayUrl`` when ``connectorUrl`` is empty
or unreachable; the token is ``POST <securityGateway>/api/v1/Token``. What the configurator answers
for an unknown Kanzlei is not known: ``404`` and an answer without addresses both count as "not found".

An answer is taken only whole: a JSON object whose fields are strings (or null, or missing: empty)
holding ``http(s)`` URLs without query, fragment or user information (never echoed). Anything else
is refused with one line, and nothing changes (a cached answer stays in use). The URLs are kept
without a trailing ``/`` and ``/api/v1`` (the client appends its paths). Nothing here is personal data.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from adapters.errors import ApiError, BadResponseError, NotFoundError, RetryableError

SYSTEM = "advoware"
FIX = ("set ADVOWARE_URL and ADVOWARE_TOKEN_URL (docs/advoware.md), or check ADVOWARE_KANZLEI and "
       "ADVOWARE_CONFIGURATOR_URL")
_API_SUFFIX = re.compile(r"(/api/v1)?/*$")
MAX_ANSWER_BYTES = 64 * 1024  # three URLs: anything larger is not an answer, and is not read on


class DiscoveryFailed(ApiError):
    """Base of every discovery failure; its message is the operator's one line, the fix included."""


class ConfiguratorUnreachable(DiscoveryFailed, RetryableError):
    """No answer (connection, timeout) or an error status other than 404: try again later."""


class KanzleiNotFound(DiscoveryFailed, NotFoundError):
    """404, or an answer without any address: the configurator does not know this Kanzlei."""


class ConfiguratorGarbage(DiscoveryFailed, BadResponseError):
    """An answer outside the contract (not JSON, wrong types, not http(s) URLs, a part missing)."""


@dataclass(frozen=True)
class ConfiguratorAnswer:
    kanzlei: str
    connector_url: str  # "" when the answer has none
    relay_url: str
    security_gateway: str
    read_at: float  # epoch seconds the configurator gave it

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> ConfiguratorAnswer | None:
        """A cached answer; None when it is not one (the cache is then ignored)."""
        try:
            return cls(str(data["kanzlei"]), _url(data["connector_url"], "connector_url"),
                       _url(data["relay_url"], "relay_url"), _url(data["security_gateway"], "security_gateway"),
                       float(data["read_at"]))
        except (KeyError, TypeError, ValueError, ConfiguratorGarbage):
            return None

    def same_urls(self, other: ConfiguratorAnswer) -> bool:
        return (self.connector_url, self.relay_url, self.security_gateway) == (
            other.connector_url, other.relay_url, other.security_gateway)


def _url(value: Any, name: str) -> str:
    """``value`` as a base URL ("" for none); :class:`ConfiguratorGarbage` when it is not one."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ConfiguratorGarbage(f"{name} is a {type(value).__name__}, not a URL", system=SYSTEM)
    text = value.strip()
    if not text:
        return ""
    scheme, sep, rest = text.partition("://")
    if "@" in rest.split("/", 1)[0]:  # never echoed: it would be a password in every log line and view
        raise ConfiguratorGarbage(f"{name} holds user information (user:password@host); refused", system=SYSTEM)
    if not sep or scheme.lower() not in ("http", "https") or not rest.strip("/"):
        raise ConfiguratorGarbage(f"{name} {text[:80]!r} is not an http(s) URL", system=SYSTEM)
    if "?" in text or "#" in text or any(c.isspace() for c in text):
        raise ConfiguratorGarbage(f"{name} {text[:80]!r} is not a base URL (query, fragment or blank)",
                                  system=SYSTEM)
    return _API_SUFFIX.sub("", text)


def parse_answer(data: Any, kanzlei: str, read_at: float, *, https_only: bool = False) -> ConfiguratorAnswer:
    """The answer of the configurator as JSON data; raises :class:`DiscoveryFailed` (one line, no fix).
    ``https_only`` (the configurator was asked over https): a plain http URL is refused, since the token
    request carries the password and every call the token."""
    if not isinstance(data, dict):
        raise ConfiguratorGarbage(f"the answer is a JSON {type(data).__name__}, not an object", system=SYSTEM)
    connector, relay = _url(data.get("connectorUrl"), "connectorUrl"), _url(data.get("relayUrl"), "relayUrl")
    gateway = _url(data.get("securityGateway"), "securityGateway")
    for name, url in (("connectorUrl", connector), ("relayUrl", relay), ("securityGateway", gateway)):
        if https_only and url.lower().startswith("http://"):
            raise ConfiguratorGarbage(f"{name} {url[:80]!r} is plain http (the password and tokens would travel "
                                      "unencrypted); refused", system=SYSTEM)
    if not connector and not relay:
        raise KanzleiNotFound(f"the answer names neither connectorUrl nor relayUrl for Kanzlei {kanzlei!r}",
                              system=SYSTEM)
    return ConfiguratorAnswer(kanzlei, connector, relay, gateway, read_at)


async def ask_configurator(client: httpx.AsyncClient, configurator_url: str, kanzlei: str,
                           read_at: float, deadline: float = 10.0) -> ConfiguratorAnswer:
    """One ``GET`` of the configurator, the whole exchange within ``deadline`` seconds (an answer dripped
    byte by byte never times out a read) and at most :data:`MAX_ANSWER_BYTES` read;
    :class:`DiscoveryFailed` with the operator's line and fix."""
    where = f"Advoware's configurator {configurator_url} for Kanzlei {kanzlei!r}"
    try:
        async with asyncio.timeout(deadline), client.stream(
                "GET", configurator_url, params={"Kanzlei": kanzlei}, headers={"Accept": "application/json"}) as resp:
            status, location = resp.status_code, resp.headers.get("location", "")
            body = await _read_bounded(resp, where)
    except (httpx.HTTPError, TimeoutError) as exc:
        raise ConfiguratorUnreachable(f"{where}: not reachable ({type(exc).__name__}): {FIX}", system=SYSTEM) from exc
    if status == 404:
        raise KanzleiNotFound(f"{where}: unknown Kanzlei (404): {FIX}", system=SYSTEM, status=404)
    if 300 <= status < 400:
        raise ConfiguratorGarbage(f"{where}: answered HTTP {status}, a redirect to {location[:200]!r} (set "
                                  f"ADVOWARE_CONFIGURATOR_URL to it if that is Advoware's): {FIX}", system=SYSTEM)
    if status >= 400:
        raise ConfiguratorUnreachable(f"{where}: answered HTTP {status}: {FIX}", system=SYSTEM)
    try:
        data = json.loads(body)
    except ValueError:
        raise ConfiguratorGarbage(f"{where}: the answer is not JSON: {FIX}", system=SYSTEM) from None
    try:
        return parse_answer(data, kanzlei, read_at, https_only=configurator_url.lower().startswith("https://"))
    except DiscoveryFailed as exc:
        raise type(exc)(f"{where}: {exc.message}: {FIX}", system=SYSTEM) from None


async def _read_bounded(resp: httpx.Response, where: str) -> bytes:
    body = bytearray()
    async for chunk in resp.aiter_bytes():
        body += chunk
        if len(body) > MAX_ANSWER_BYTES:
            raise ConfiguratorGarbage(f"{where}: the answer is larger than {MAX_ANSWER_BYTES} bytes: {FIX}",
                                      system=SYSTEM)
    return bytes(body)
