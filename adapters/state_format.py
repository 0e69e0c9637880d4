"""The format version of the state the sync keeps in Redis (``bsync:state_format``).

Every release that changes how state is laid out raises :data:`CURRENT` and adds a step to
:data:`MIGRATIONS` (format ``n`` to ``n + 1``; each step idempotent, so a step cut short by a crash is
simply run again). ``serve`` brings an older store up to date when it starts (under a lock, so several
processes starting at once migrate once); a store written by a newer release is refused, because this
code would misread it. Format 1 is the layout of 0.1.0, the first release: a store it wrote has no
format key and is labelled 1 without changes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import redis

log = logging.getLogger(__name__)

FORMAT_KEY = "bsync:state_format"
LOCK_KEY = "bsync:state_format:migrating"
LOCK_TIMEOUT_S = 300
LOCK_WAIT_S = 60
OUR_KEYS = "bsync:*"
CURRENT = 1
Migration = Callable[[redis.Redis], None]


def _label_first_release(_client: redis.Redis) -> None:
    """0 -> 1: the state of 0.1.0 is format 1 as it is."""


MIGRATIONS: Mapping[int, Migration] = {0: _label_first_release}
# Steps that change no data, only the label: any process may take them, not only serve (a store that
# 0.1.0, a test bed or `webhooks register` wrote before any serve of this release ran).
LABEL_ONLY: frozenset[int] = frozenset({0})


class StateFormatRefused(Exception):
    """This process must not use the store; the message is one line naming the fix."""


def stored_format(client: redis.Redis) -> int | None:
    """The store's format; 0 for a store of 0.1.0 (our keys, no format key); None for an empty store."""
    raw = client.get(FORMAT_KEY)
    if raw is not None:
        return int(raw)
    return 0 if next(iter(client.scan_iter(match=OUR_KEYS, count=1000)), None) is not None else None


def newer_refusal(found: int, current: int, version: str) -> str:
    return (f"the store holds state format {found}, written by a newer beteiligte-sync; this one ({version}) "
            f"knows formats up to {current}: run the release the other processes run (docs/upgrades.md)")


def ensure_current(client: redis.Redis, *, version: str, migrate: bool, current: int = CURRENT,
                   migrations: Mapping[int, Migration] = MIGRATIONS,
                   label_only: frozenset[int] = LABEL_ONLY) -> int | None:
    """Make sure the store is at ``current``: label an empty one, migrate an older one when ``migrate``
    (``serve``; without it only :data:`LABEL_ONLY` steps), refuse a newer one. Returns the format it
    found (None: empty store)."""
    found = stored_format(client)
    if found is None:
        client.set(FORMAT_KEY, current, nx=True)  # an empty store: another process may have labelled it first
        found = stored_format(client)
        if found is None or found == current:
            return None
    if found > current:
        raise StateFormatRefused(newer_refusal(found, current, version))
    if found == current:
        return found
    if not migrate and not all(step in label_only for step in range(found, current)):
        raise StateFormatRefused(f"the store holds state format {found}, older than this beteiligte-sync's "
                                 f"({current}): start serve of this release first, it migrates the store")
    with client.lock(LOCK_KEY, timeout=LOCK_TIMEOUT_S, blocking_timeout=LOCK_WAIT_S):
        _migrate(client, current, migrations, version)
    return found


def _migrate(client: redis.Redis, current: int, migrations: Mapping[int, Migration], version: str) -> None:
    at = stored_format(client) or 0  # read again under the lock: another process may have done it
    if at > current:
        raise StateFormatRefused(newer_refusal(at, current, version))
    while at < current:
        # A label-only step changes no data: not worth a line beside a command's own output.
        log.log(logging.INFO if at in LABEL_ONLY else logging.WARNING,
                "migrating the store's state from format %d to %d", at, at + 1)
        migrations[at](client)
        at += 1
        client.set(FORMAT_KEY, at)
