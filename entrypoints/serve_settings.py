"""The sync settings of the running ``serve``, for the CLI commands beside it (issue 17, item 4).

A command that writes (``sync``, ``sync-check``, ``dead-letters replay``, ``retry-failed``) works its
own events in its own process (:func:`entrypoints.runtime.build_host`, ``own_queue``), never serve's.
But it acts on the same records: ``DELETE_POLICY=delete beteiligte-sync sync-check`` beside a serve
with ``unlink`` would still delete in Advoware a party whose EspoCRM record staff deleted, before
serve's own delete event got to it. So ``serve`` publishes its sync settings (key
``<prefix>:serve:settings``, renewed every health-check interval, gone three intervals after serve
stopped renewing it), and such a command refuses to run, in one line naming each difference, while
they differ. Compared: the settings that change what a sync writes; a policy or value-map file by its
content (``sha256``), not its path; the wire profile by what it says.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import fields
from pathlib import Path
from typing import Any

from adapters.background import pause
from config.advoware_profile import AdvowareProfile
from config.settings import Settings

KEY = "serve:settings"
# Settings field -> the environment variable an operator sets
COMPARED = {"delete_policy": "DELETE_POLICY", "on_create_match": "ON_CREATE_MATCH",
            "advoware_timezone": "ADVOWARE_TIMEZONE", "conflict_policy_file": "CONFLICT_POLICY_FILE",
            "value_maps_file": "VALUE_MAPS_FILE", "advoware_profile": "ADVOWARE_PROFILE"}
FILES = ("conflict_policy_file", "value_maps_file", "advoware_profile")


def fingerprint(settings: Settings) -> dict[str, str]:
    """What the sync's decisions depend on, comparable across processes (files by their content)."""
    out: dict[str, str] = {}
    for name in COMPARED:
        value = getattr(settings, name)
        if name == "advoware_profile":  # what it says, not its words: comments and layout do not count
            out[name] = _meaning(settings.wire_profile())
            continue
        if name in FILES:
            value = _content(value)
        out[name] = str(value if value is not None else "")
    return out


def _meaning(profile: AdvowareProfile) -> str:
    """A wire profile by what it makes the client send and expect (the file's path, comments, layout and
    keys set to their defaults do not count)."""
    said = {f.name: getattr(profile, f.name) for f in fields(profile) if f.name not in ("source", "casing", "fields")}
    said["wire_names"] = profile.wire_names()
    return "sha256:" + hashlib.sha256(repr(sorted(said.items())).encode()).hexdigest()[:16]


def _content(path: str | None) -> str:
    if not path:
        return ""
    try:
        return "sha256:" + hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    except OSError:
        return f"unreadable:{path}"


def differences(ours: dict[str, str], serves: dict[str, str]) -> list[str]:
    """One phrase per setting that differs, e.g. ``DELETE_POLICY is unlink in serve, delete here``."""
    out = []
    for name, env in COMPARED.items():
        if name in serves and serves[name] != ours.get(name):
            if name in FILES:
                out.append(f"{env} has other contents in serve than here")
            else:
                out.append(f"{env} is {serves[name] or '(unset)'} in serve, {ours.get(name) or '(unset)'} here")
    return out


async def read(redis: Any, prefix: str) -> dict[str, str] | None:
    """Serve's published settings, or None when no serve has published them lately."""
    raw = await redis.get(f"{prefix}:{KEY}")
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else None


async def refusal(redis: Any, prefix: str, settings: Settings) -> str | None:
    """The one line a writing command refuses with, or None when it may run."""
    serves = await read(redis, prefix)
    diff = differences(fingerprint(settings), serves) if serves else []
    if not diff:
        return None
    return ("refused: the running serve syncs with other settings (" + "; ".join(diff) + "): run this command "
            "with serve's settings (the same environment / .env), or stop serve first")


async def publish_loop(redis: Any, prefix: str, settings: Settings, every: float, stop: asyncio.Event) -> None:
    """serve: publish its settings now and every ``every`` s (each copy lives three intervals), until
    ``stop``; then remove them. A failed write (Redis away) is tried again next round."""
    key, payload = f"{prefix}:{KEY}", json.dumps(fingerprint(settings))
    ttl = max(1, int(3 * every + 10))
    while True:
        try:
            await redis.set(key, payload, ex=ttl)
        except Exception:  # noqa: S110 - Redis away: the dependency checks report it; next round tries again
            pass
        if await pause(stop, every):
            break
    try:
        await redis.delete(key)
    except Exception:  # noqa: S110 - Redis away at shutdown: the copy expires by itself
        pass
