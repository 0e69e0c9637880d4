"""The doctor's EspoCRM checks: access and user, entity and fields, enum options, OCC, the API user's
rights (for real, on a throwaway record) and the webhooks. Each returns its lines; the runner
(:mod:`entrypoints.doctor`) gives each a timeout and turns any exception into a ✗ line."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

from adapters.errors import ApiError, AuthenticationError, ForbiddenError, NotFoundError, RetryableError
from adapters.espocrm_api import EspoCRMAPI
from domain.beteiligte_mapper import configure_value_maps
from domain.sync_status import ENTITY, TEST_RECORD_LAST_NAME
from domain.value_maps import ValueMapError
from installation.setup_contract import audit_line, entity_defs, entity_line, enum_lines, fields_line, occ_line
from installation.setup_report import Line, fail, ok, warn
from installation.webhook_setup import Expected, list_webhooks, secret_sources, webhook_lines

log = logging.getLogger(__name__)

ACCESS = "EspoCRM access"
METADATA = "EspoCRM metadata"
RIGHTS = "API user's rights"
WEBHOOKS = "webhooks"
API_USER_TYPE = "api"
TEST_LAST_NAME = TEST_RECORD_LAST_NAME  # the sync never creates it in Advoware
# A create without an answer may still land (EspoCRM goes on after the client gave up): looked for
# this long, every LOOK_EVERY_S, and deleted when found. Each run also deletes earlier runs' leftovers.
LATE_CREATE_S = 3.0
LOOK_EVERY_S = 0.5
CLEANUP_S = 10.0  # the whole clean-up's bound
TEST_FIRST_NAME = "Test"
NOTE_TEXT = ("beteiligte-sync doctor prüft, ob der API-Benutzer Notizen posten darf. "
             "Dieser Testdatensatz wird sofort wieder gelöscht.")
ROLES = "Administration → Roles → the API user's role"
RIGHT_FIXES = {
    "list": f"{ROLES}: {ENTITY} Read \"all\" (earlier runs' test records are looked for by name)",
    "create": f"{ROLES}: {ENTITY} Create \"yes\"",
    "read": f"{ROLES}: {ENTITY} Read \"all\"",
    "edit": f"{ROLES}: {ENTITY} Edit \"all\"",
    "post a Note to": f"{ROLES}: {ENTITY} Stream \"all\" (a Note is a post to the record's stream)",
    "delete": f"{ROLES}: {ENTITY} Delete \"all\"",
}


def _dig(obj: Any, *keys: str) -> Any:
    for k in keys:
        obj = obj.get(k) if isinstance(obj, dict) else None
    return obj


async def access(espo: EspoCRMAPI, url: str, hmac: bool) -> list[Line]:
    """``GET App/user``: reachable, the key (or HMAC signature) accepted, and the user an API user."""
    how = "HMAC signature" if hmac else "API key"
    try:
        answer = await espo.get_raw("App/user")
    except AuthenticationError:
        fix = ("check ESPOCRM_API_KEY and ESPOCRM_HMAC_SECRET (Administration → API Users → the sync's user: "
               "API Key and Secret Key, authentication method HMAC)" if hmac else
               "check ESPOCRM_API_KEY (Administration → API Users → the sync's user → API Key)")
        return [fail(ACCESS, f"EspoCRM at {url} refused the {how} (401)", fix)]
    except NotFoundError:
        return [fail(ACCESS, f"{url}/api/v1/App/user answered 404: not EspoCRM's API",
                     "ESPOCRM_URL is EspoCRM's address, without /api/v1")]
    except RetryableError as exc:
        return [fail(ACCESS, f"EspoCRM at {url} not reachable ({exc})",
                     "check ESPOCRM_URL and that this machine reaches it")]
    user = _dig(answer, "user") or {}
    name, kind = user.get("userName") or user.get("name") or "?", user.get("type")
    if kind is None:
        return [warn(ACCESS, f"{how} accepted, but EspoCRM does not say whether '{name}' is an API user",
                     "make sure the key belongs to a user in Administration → API Users")]
    if kind != API_USER_TYPE:
        return [fail(ACCESS, f"{how} accepted, but '{name}' is a user of type {kind}, not an API user",
                     "Administration → API Users → Create API User; give the sync its key")]
    return [ok(ACCESS, f"{url} answers, {how} accepted, '{name}' is an API user")]


async def metadata(espo: EspoCRMAPI, value_maps_file: str | None) -> list[Line]:
    """Entity, fields, enum options against the value map, optimistic concurrency: from ``GET Metadata``."""
    try:
        meta = await espo.get_raw("Metadata")
    except (ForbiddenError, NotFoundError) as exc:
        return [warn(METADATA, f"EspoCRM does not show its metadata to the API user ({exc}): entity, fields, "
                               "enum options and optimistic concurrency are not checked",
                     "check them by hand: docs/espocrm.md")]
    lines = [entity_line(meta)]
    defs = entity_defs(meta)
    if defs is None:
        return lines
    lines.append(fields_line(defs))
    try:
        lines += enum_lines(defs, configure_value_maps(value_maps_file))
    except ValueMapError as exc:
        lines.append(fail("value map file", str(exc)))
    lines.append(occ_line(defs))
    lines.append(audit_line(defs))
    return lines


class _Trip:
    """The throwaway record's way: the step under way, and the record while it exists."""

    def __init__(self) -> None:
        self.step = "create"
        self.record_id: str | None = None

    async def run(self, espo: EspoCRMAPI) -> None:
        body = {"lastName": TEST_LAST_NAME, "firstName": TEST_FIRST_NAME}
        self.record_id = str((await espo.create(ENTITY, body))["id"])
        self.step = "read"
        await espo.get(ENTITY, self.record_id)
        self.step = "edit"
        await espo.update(ENTITY, self.record_id, {"firstName": f"{TEST_FIRST_NAME} 2"})
        self.step = "post a Note to"
        await espo.post_note(ENTITY, self.record_id, NOTE_TEXT)
        self.step = "delete"
        await espo.delete(ENTITY, self.record_id)
        self.record_id = None

    async def cleanup(self, espo: EspoCRMAPI) -> list[Line]:
        """Delete the record if it still exists (a step failed, or the check timed out or was
        cancelled); within :data:`CLEANUP_S`; never raises."""
        try:
            return await asyncio.wait_for(self._cleanup(espo), CLEANUP_S)
        except Exception as exc:  # the step's own error is the one to report; this one is added
            log.warning("doctor's test record could not be cleaned up: %s", type(exc).__name__)
            return [fail(RIGHTS, f"the test record ('{TEST_LAST_NAME}') may still exist: {describe_exc(exc)}",
                         f"delete it in EspoCRM by hand (search for '{TEST_LAST_NAME}'); the next doctor run "
                         "deletes it too")]

    async def _cleanup(self, espo: EspoCRMAPI) -> list[Line]:
        if self.record_id is None:
            if self.step == "create":  # no answer: it may exist, or land in a moment
                await _delete_leftovers(espo, look_for_s=LATE_CREATE_S)
            return []
        try:
            await espo.delete(ENTITY, self.record_id)
        except NotFoundError:
            pass
        except Exception as exc:
            log.warning("doctor's test record %s could not be deleted: delete it by hand", self.record_id)
            return [fail(RIGHTS, f"the test record {self.record_id} ('{TEST_LAST_NAME}') could not be deleted: "
                                 f"{exc}", "delete it in EspoCRM by hand")]
        self.record_id = None
        return []


def describe_exc(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


async def _delete_leftovers(espo: EspoCRMAPI, *, look_for_s: float = 0.0) -> None:
    """Delete every test record found by its name (a create cut off without us seeing its id, or an
    earlier run's); with ``look_for_s``, keep looking that long for one still landing."""
    deadline = time.monotonic() + look_for_s
    while True:
        found = await espo.list(ENTITY, where=[{"type": "equals", "attribute": "lastName",
                                                "value": TEST_LAST_NAME}], select=["id"])
        for rec in found["list"]:
            try:
                await espo.delete(ENTITY, str(rec["id"]))
            except NotFoundError:
                pass
        if time.monotonic() >= deadline:
            return
        await asyncio.sleep(LOOK_EVERY_S)


async def rights(espo: EspoCRMAPI) -> list[Line]:
    """Create, read, edit, post a Note to and delete one throwaway record; it is deleted whatever fails
    (also when the check's timeout cancels it, and when its create's answer was lost). Earlier runs'
    leftovers are deleted first. The sync never creates it in Advoware (issue 17 item 10)."""
    trip = _Trip()
    try:
        trip.step = "list"
        await _delete_leftovers(espo)
        trip.step = "create"
        await trip.run(espo)
        line = ok(RIGHTS, f"created, read, edited, posted a Note to and deleted a test {ENTITY} record")
    except ApiError as exc:
        fix = RIGHT_FIXES[trip.step] if isinstance(exc, ForbiddenError) else ""
        line = fail(RIGHTS, f"could not {trip.step} a {ENTITY} record: {exc}", fix)
    finally:
        leftover = await trip.cleanup(espo)
    return [line, *leftover]


async def webhooks(espo: EspoCRMAPI, expected: Expected, stored: Mapping[str, str] | None,
                   env_secrets: Mapping[str, str]) -> list[Line]:
    """The three webhooks against this service's URLs and the known secrets (``stored`` None: store down)."""
    try:
        hooks = (await list_webhooks(espo)).hooks
    except ForbiddenError:
        return [fail(WEBHOOKS, "the API user may not read webhooks",
                     f"{ROLES}: enable the \"Webhooks\" scope (and access to {ENTITY})")]
    lines = []
    if expected.derived:
        lines.append(ok("webhook URL", f"{expected.public_url} (derived from HOST/PORT; pass --public-url or set "
                                       "PUBLIC_URL when EspoCRM reaches this service by another address)"))
    known = {**(stored or {}), **env_secrets}
    lines += webhook_lines(hooks, expected, known, secret_sources(stored or {}, env_secrets))
    if stored is None:
        lines.append(warn(WEBHOOKS, "stored secrets not checked: the store is unreachable (see below)"))
    return lines
