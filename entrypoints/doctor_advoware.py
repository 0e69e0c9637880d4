"""``beteiligte-sync doctor --advoware [--betnr N]``: probes the live Advoware against the wire profile.

Reads only (GETs): the list endpoint (one item, then its paging parameters), one Beteiligter (the
first of the list, or ``--betnr``), and, when the profile's paths answer 404, the resource paths
Advoware is known to use. Reports field by field what it found and which profile keys to change
(:mod:`installation.advoware_profile_check`); never a field's value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from adapters.advoware_api import AdvowareAPI
from adapters.errors import NotFoundError, ValidationError
from config.advoware_profile import AdvowareProfile
from installation.advoware_profile_check import (
    SINCE_SLACK,
    Changes,
    ListShape,
    field_lines,
    list_shape,
    older_rows,
    shape_lines,
    unprobed_lines,
)
from installation.setup_report import Line, Status, fail, ok, skip, warn
from sync.feed_since import rows_before, since_reason

KNOWN_RESOURCES = ("api/v1/advonet/Beteiligte", "api/v1/Beteiligte")
SINCE_IGNORED = "list endpoint answered, but the change feed is off:"
LIST, OBJECT = "list endpoint", "Beteiligter"


def _quoted(text: str) -> str:
    return f'"{text}"'


def _spellings(name: str) -> list[str]:
    return list(dict.fromkeys([name, name[:1].upper() + name[1:], name[:1].lower() + name[1:]]))


@dataclass
class Probe:
    advo: AdvowareAPI
    profile: AdvowareProfile
    zone: ZoneInfo
    changes: Changes
    resource: str = ""  # the resource path that answers (the profile's, or the one doctor found)
    shape: ListShape = field(default_factory=lambda: ListShape(True))  # how the list answers (as found)

    async def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """The wire's answer, or None for a 404 (or a 400: parameters this Advoware does not know)."""
        try:
            return await self.advo.get_raw(path, params)
        except (NotFoundError, ValidationError):
            return None

    async def rows(self, path: str, params: dict[str, Any]) -> list[Any] | None:
        """A list request's rows, read in the shape the list was found to answer in (None: no such list)."""
        return self.shape.rows(await self.get(path, params))

    def param(self, key: str) -> str | None:
        """A list parameter's name as found to work: the profile's, or the one doctor suggests (None: unknown)."""
        found = self.changes.keys.get(key)
        if found is None:
            return str(getattr(self.profile, key))
        return None if found.startswith('"<') else found.strip('"')

    def betnr_of(self, obj: Any) -> int | None:
        if not isinstance(obj, dict):
            return None
        by_lower = {k.lower(): v for k, v in obj.items()}
        value = obj.get(self.profile.wire_name("betNr"), by_lower.get("betnr"))
        return value if isinstance(value, int) and not isinstance(value, bool) else None


async def probe_advoware(advo: AdvowareAPI, profile: AdvowareProfile, zone: ZoneInfo,
                         betnr: int | None) -> list[Line]:
    probe = Probe(advo, profile, zone, Changes(), profile.resource_path)
    lines = [ok("profile", f"{profile.source}: {profile.resource_path}, {profile.casing} casing")]
    list_lines, first = await _list(probe)
    lines += list_lines
    wanted = betnr if betnr is not None else probe.betnr_of(first)
    if wanted is None and isinstance(first, dict):  # an item, but no number to read it by: check that item
        lines.append(fail(OBJECT, f"the list's first item has no numeric {profile.wire_name('betNr')}: its fields "
                                  "are checked as the list gave them", "the sync needs Advoware's numeric key"))
        lines += field_lines(profile, first, zone, probe.changes)
    elif wanted is None:
        lines.append(fail(OBJECT, "no Beteiligter to read (the list gave none)",
                          "run doctor --advoware --betnr N with the number of any Beteiligter"))
    else:
        lines += await _object(probe, wanted)
    failed = any(line.status == Status.FAIL for line in lines)
    lines += unprobed_lines(profile)
    lines.append(probe.changes.line(profile.source, failed=failed))
    return lines


async def list_read(advo: AdvowareAPI, zone: ZoneInfo) -> str:
    """``doctor``'s read of the list (``NotFoundError`` without one): whether the change feed can use it,
    asking for the changes since now as the feed asks (sync/feed_since.py)."""
    now = datetime.now(zone).replace(tzinfo=None)
    if rows_before(await advo.list_beteiligte(geaendert_seit=now, take=1), now - SINCE_SLACK):
        return f"{SINCE_IGNORED} {since_reason(advo.profile.list_since_param)}"
    return "list endpoint answered (the change feed reads Advoware's changes through it)"


async def _find_list(probe: Probe) -> tuple[str, Any]:
    """The list path that answers a list (the profile's first, then the known ones) and its answer; the
    answer's shape (a bare array, or an object holding the rows) goes to ``probe.shape``."""
    p = probe.profile
    params = {p.list_take_param: 1, p.list_skip_param: 0}
    path = p.list_path or p.resource_path
    answer = await probe.get(path, params)
    probe.shape = list_shape(answer, p.list_items)
    if probe.shape.is_list:
        return path, answer
    for other in KNOWN_RESOURCES:
        if other != path and (shape := list_shape(found := await probe.get(other, params), p.list_items)).is_list:
            probe.resource, probe.shape = other, shape
            probe.changes.add("resource_path", _quoted(other))
            return other, found
    return path, answer


async def _list(probe: Probe) -> tuple[list[Line], Any]:
    """The list endpoint's lines and its first item (None without one)."""
    p = probe.profile
    path, answer = await _find_list(probe)
    shape = probe.shape
    page = shape.rows(answer)
    if not p.has_list:
        if shape.is_list:
            key = probe.changes.add("list_endpoint", "true")
            lines = [warn(LIST, f"GET {path} answers a list, the profile says there is none → {key}",
                          "with it the change feed brings Advoware's changes within seconds")]
            if shape.key is not None or shape.choices:
                lines += shape_lines(p, path, shape, probe.changes)
            return lines, page[0] if page else None
        return [ok(LIST, f"none (GET {path} answers no list), as the profile says: the sync check reads "
                         "each linked Beteiligter with a GET")], None
    if answer is None:
        return [fail(LIST, f"GET {path} answered 404 → {probe.changes.add('list_endpoint', 'false')}",
                     "if your Advoware lists Beteiligte at another path, set list_endpoint to it instead")], None
    if not shape.is_list:
        return [fail(LIST, f"GET {path} answered neither a JSON array nor an object holding one",
                     "set list_endpoint to the list's path, or false")], None
    moved = f" (not {p.list_path} → resource_path = {_quoted(path)})" if path != p.list_path else ""
    lines = [(fail if moved else ok)(LIST, f"GET {path} answers a list{moved}"),
             *shape_lines(p, path, shape, probe.changes)]
    if page is None:  # several lists: which one holds the rows is not known, nor can paging be probed
        return lines, None
    lines += await _paging(probe, path, page)
    return lines, page[0] if page else None


async def _paging(probe: Probe, path: str, page: list[Any]) -> list[Line]:
    """Whether the list honours the profile's take, skip and since parameter names."""
    p = probe.profile
    take, skip_, since = p.list_take_param, p.list_skip_param, p.list_since_param
    lines = [await _param(probe, "list_take_param", take, len(page) <= 1, lambda name: probe.rows(
        path, {name: 1}), lambda answer: isinstance(answer, list) and len(answer) <= 1)]
    if not page:
        return lines + [skip(f"list parameters {skip_}, {since}", "the list is empty")]
    first = probe.betnr_of(page[0])
    second = await probe.rows(path, {take: 1, skip_: 1})
    skip_works = not (isinstance(second, list) and second and probe.betnr_of(second[0]) == first)
    lines.append(await _param(probe, "list_skip_param", skip_, skip_works, lambda name: probe.rows(
        path, {take: 1, name: 1}), lambda answer: isinstance(answer, list) and not (
            answer and probe.betnr_of(answer[0]) == first)))
    now = datetime.now(probe.zone).replace(tzinfo=None)  # the changes since now: none, or only the newest

    def honoured(answer: Any) -> bool:
        return isinstance(answer, list) and not older_rows(p, answer, now, probe.zone)

    stamp = p.geaendert_am_format.format(now, probe.zone)
    lines.append(await _param(probe, "list_since_param", since, honoured(await probe.rows(
        path, {take: 1, since: stamp})), lambda name: probe.rows(path, {take: 1, name: stamp}), honoured,
        "seems ignored (asked for the changes since now, it answered rows changed before)"))
    return lines + await _page_size(probe, path)


async def _page_size(probe: Probe, path: str) -> list[Line]:
    """Whether a page of list_max_take rows is accepted and answered in full: an Advoware that refuses it
    fails every list (feed, sync check); one that silently answers fewer looks like the end of the list,
    so the match index and the sync check stop after the first page."""
    take, skip_, most = probe.param("list_take_param"), probe.param("list_skip_param"), probe.profile.list_max_take
    check = f"list page of {most}"
    if take is None or skip_ is None:
        return [skip(check, "the list's take and skip parameters are not known yet")]
    page = await probe.rows(path, {take: most, skip_: 0})
    if not isinstance(page, list):
        smaller = most // 2
        while smaller >= 1 and not isinstance(await probe.rows(path, {take: smaller, skip_: 0}), list):
            smaller //= 2
        key = probe.changes.add("list_max_take", str(smaller) if smaller else '"<the most your Advoware accepts>"')
        return [fail(check, f"GET {path} refuses {take}={most} → {key}")]
    if 0 < len(page) < most and await probe.rows(path, {take: 1, skip_: len(page)}):
        key = probe.changes.add("list_max_take", str(len(page)))
        return [fail(check, f"GET {path} answers at most {len(page)} rows a page, not {most} (the sync would take "
                            f"a short page for the end of the list) → {key}")]
    return [ok(check, "accepted and answered in full")]


async def _param(probe: Probe, key: str, name: str, works: bool, ask: Any, good: Any, why: str = "ignored") -> Line:
    """A paging parameter's line; when ignored, its other spellings are tried and the one that works named."""
    check = f"list parameter {name}"
    if works:
        return ok(check, "honoured")
    for other in _spellings(name)[1:]:
        if good(await ask(other)):
            return fail(check, f"{why}; {other} works → {probe.changes.add(key, _quoted(other))}")
    return fail(check, f"{why} → {probe.changes.add(key, _quoted('<its name in your Advoware>'))}",
                f"check {key}: ask the Advoware administrator for the list's parameters")


async def _object(probe: Probe, betnr: int) -> list[Line]:
    obj = await probe.get(f"{probe.resource}/{betnr}")
    if obj is None and probe.resource == probe.profile.resource_path:  # no list told the path: the known ones
        for other in KNOWN_RESOURCES:
            if other != probe.resource and isinstance(found := await probe.get(f"{other}/{betnr}"), dict):
                probe.resource, obj = other, found
                probe.changes.add("resource_path", _quoted(other))
                break
    where = f"GET {probe.resource}/{{betNr}}"
    if obj is None:
        return [fail(OBJECT, f"{where} answered 404",
                     "pass --betnr with the number of an existing Beteiligter, or check resource_path")]
    if not isinstance(obj, dict):
        return [fail(OBJECT, f"{where} answered no JSON object", "check resource_path")]
    return [ok(OBJECT, f"{where} answered an object with {len(obj)} fields"),
            *field_lines(probe.profile, obj, probe.zone, probe.changes)]
