"""The three EspoCRM webhooks of the service: register them idempotently, list them, check them.

A webhook is ours when its event is ``CBeteiligte.<create|update|delete>`` and its URL the service's
``<public URL>/vmh/webhook/beteiligte/<event>``. Registering reuses an active one whose secret is
known (stored, in ``ESPOCRM_WEBHOOK_SECRETS``, or readable in EspoCRM's answer), replaces one whose
secret nobody knows or whose ``skipOwn`` is off, removes duplicates, and stores every secret in the
service's store (:mod:`adapters.webhook_secrets`). Secrets never leave this module in any output.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from adapters.webhook_secrets import WebhookSecretStore
from domain.sync_status import ENTITY
from installation.setup_report import Line, Status, fail, ok, warn, worst

if TYPE_CHECKING:
    from adapters.espocrm_api import EspoCRMAPI

WEBHOOK = "Webhook"
SKIP_OWN = "skipOwn"
ENV_SECRETS = "ESPOCRM_WEBHOOK_SECRETS"
ADMIN_WEBHOOKS = "Administration → Webhooks"
LIST_PAGE = 200


class HookEvent(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"

    @property
    def espo_event(self) -> str:
        return f"{ENTITY}.{self.value}"


class Outcome(StrEnum):
    CREATED = "created"
    REUSED = "reused"
    REPLACED = "replaced"  # one with an unknown secret or skipOwn off was deleted first


class SecretSource(StrEnum):
    STORED = "stored"
    ENV = ENV_SECRETS
    UNKNOWN = "unknown"


def hook_url(public_url: str, event: HookEvent) -> str:
    return f"{public_url.rstrip('/')}/vmh/webhook/beteiligte/{event.value}"


@dataclass(frozen=True)
class Webhook:
    id: str
    event: str
    url: str
    active: bool
    skip_own: bool | None  # None: EspoCRM keeps no skipOwn (8.x)
    secret: str | None  # when EspoCRM's answer shows it

    @classmethod
    def of(cls, rec: Mapping[str, Any]) -> Webhook:
        skip = rec.get(SKIP_OWN)
        secret = rec.get("secretKey")
        return cls(str(rec.get("id")), str(rec.get("event")), str(rec.get("url")), rec.get("isActive") is not False,
                   skip if isinstance(skip, bool) else None, secret if isinstance(secret, str) and secret else None)


@dataclass(frozen=True)
class Registered:
    event: HookEvent
    webhook_id: str
    url: str
    outcome: Outcome
    removed: tuple[str, ...] = ()  # ids of duplicates or unusable webhooks deleted


@dataclass(frozen=True)
class Listing:
    hooks: list[Webhook]
    complete: bool  # every webhook the API user can see is in ``hooks``


async def list_webhooks(espo: EspoCRMAPI) -> Listing:
    page = await espo.list(WEBHOOK, max_size=LIST_PAGE)
    hooks = [Webhook.of(r) for r in page["list"] if isinstance(r, dict)]
    return Listing(hooks, page["total"] <= len(hooks))


def secret_sources(stored: Mapping[str, str], env: Mapping[str, str]) -> dict[str, SecretSource]:
    return {**{k: SecretSource.STORED for k in stored}, **{k: SecretSource.ENV for k in env}}


def _usable(hook: Webhook, known: Mapping[str, str]) -> bool:
    return hook.skip_own is not False and (hook.secret is not None or hook.id in known)


async def register(espo: EspoCRMAPI, store: WebhookSecretStore, public_url: str,
                   env_secrets: Mapping[str, str]) -> tuple[list[Registered], list[str]]:
    """Make sure each event has exactly one active webhook to our URL with a stored secret. Also returns
    the stored ids forgotten because EspoCRM no longer has their webhook (only when its list is complete)."""
    listing = await list_webhooks(espo)
    stored = await store.load()
    known = {**stored, **env_secrets}
    done = [await _register_one(espo, store, e, hook_url(public_url, e), listing.hooks, known) for e in HookEvent]
    gone: list[str] = []
    if listing.complete:
        alive = {h.id for h in listing.hooks} | {r.webhook_id for r in done}
        gone = sorted(set(stored) - alive)
        await store.forget(*gone)
    return done, gone


async def _register_one(espo: EspoCRMAPI, store: WebhookSecretStore, event: HookEvent, url: str,
                        hooks: list[Webhook], known: Mapping[str, str]) -> Registered:
    ours = [h for h in hooks if h.event == event.espo_event and h.url == url and h.active]
    keep = next((h for h in ours if _usable(h, known)), None)
    removed = tuple(h.id for h in ours if h is not keep)
    for webhook_id in removed:
        await espo.delete(WEBHOOK, webhook_id)
    await store.forget(*removed)
    if keep is not None:
        await store.save(keep.id, keep.secret or known[keep.id])
        return Registered(event, keep.id, url, Outcome.REUSED, removed)
    created = await espo.register_webhook(event.espo_event, url, skip_own=True)
    await store.save(str(created["id"]), str(created["secretKey"]))
    return Registered(event, str(created["id"]), url, Outcome.REPLACED if removed else Outcome.CREATED, removed)


def describe_registered(r: Registered) -> str:
    extra = f" (deleted {', '.join(r.removed)})" if r.removed else ""
    return f"{r.event.espo_event}: {r.outcome} webhook {r.webhook_id} → {r.url}{extra}"


def describe_webhook(h: Webhook, sources: Mapping[str, SecretSource]) -> str:
    skip = {True: "skipOwn", False: "skipOwn off", None: "no skipOwn"}[h.skip_own]
    state = "active" if h.active else "inactive"
    return f"{h.id}  {h.event}  {h.url}  {state}, {skip}, secret {sources.get(h.id, SecretSource.UNKNOWN)}"


@dataclass(frozen=True)
class Expected:
    """Where the webhooks should point: ``derived`` when the URL was guessed from HOST/PORT."""

    public_url: str
    derived: bool

    def register_command(self) -> str:
        return f"beteiligte-sync webhooks register --public-url {self.public_url}"


def webhook_lines(hooks: list[Webhook], expected: Expected, known: Mapping[str, str],
                  sources: Mapping[str, SecretSource]) -> list[Line]:
    """One line per event, then one about ``skipOwn`` when a webhook in use lacks it."""
    found = [_event_check(e, hooks, expected, known, sources) for e in HookEvent]
    lines = [line for line, _ in found]
    in_use = [hook for _, hook in found if hook is not None]
    skip_line = _skip_own_line(in_use, expected)
    return lines + ([skip_line] if skip_line else [])


def _event_check(event: HookEvent, hooks: list[Webhook], expected: Expected, known: Mapping[str, str],
                 sources: Mapping[str, SecretSource]) -> tuple[Line, Webhook | None]:
    check, url = f"webhook {event.espo_event}", hook_url(expected.public_url, event)
    active = [h for h in hooks if h.event == event.espo_event and h.active]
    ours = [h for h in active if h.url == url]
    problems: list[tuple[Status, str]] = []
    if not ours:
        path = url.removeprefix(expected.public_url.rstrip("/"))
        elsewhere = [h for h in active if h.url.endswith(path)]
        if not (expected.derived and elsewhere):
            found = f" (found: {', '.join(h.url for h in active)})" if active else ""
            missing = f"missing: no active webhook sends it to {url}{found}"
            return fail(check, missing, expected.register_command()), None
        ours = elsewhere
        problems.append((Status.WARN, f"points at {ours[0].url}, not at {url} (derived from HOST/PORT) → if that "
                                      "is how EspoCRM reaches this service, set PUBLIC_URL to it; otherwise run "
                                      f"{expected.register_command()}"))
    hook = ours[0]
    problems += _hook_problems(hook, len(ours), expected, known)
    text = f"→ {hook.url} (id {hook.id}, secret {sources.get(hook.id, SecretSource.UNKNOWN)})"
    if not problems:
        return ok(check, text), hook
    return Line(worst(s for s, _ in problems), check, text, details=tuple(p for _, p in problems)), hook


def _hook_problems(hook: Webhook, count: int, expected: Expected,
                   known: Mapping[str, str]) -> list[tuple[Status, str]]:
    again = expected.register_command()
    out: list[tuple[Status, str]] = []
    if hook.id not in known:
        out.append((Status.FAIL, f"its secret is unknown: every delivery would be refused (401) → run {again} "
                                 f"(stores it), or add it to {ENV_SECRETS}"))
    elif hook.secret is not None and known[hook.id] != hook.secret:
        out.append((Status.FAIL, f"the secret known for it is not EspoCRM's: deliveries would be refused (401) → "
                                 f"run {again}, and remove its id from {ENV_SECRETS}"))
    if count > 1:
        out.append((Status.WARN, f"{count} webhooks send this event to this URL: each event arrives {count} times → "
                                 f"run {again} (keeps one)"))
    return out


def _skip_own_line(hooks: list[Webhook], expected: Expected) -> Line | None:
    check, again = "webhooks skipOwn", expected.register_command()
    if any(h.skip_own is False for h in hooks):
        return warn(check, "off: EspoCRM sends every write of the sync back to it", f"run {again}")
    if any(h.skip_own is None for h in hooks):
        return warn(check, "EspoCRM keeps no skipOwn (8.x; 9.2 and later do): every write of the sync comes back "
                           "as a webhook, which the sync skips without API calls, but EspoCRM still sends it",
                    f"nothing to do now; after upgrading EspoCRM run {again} (re-creates them with skipOwn)")
    return None
