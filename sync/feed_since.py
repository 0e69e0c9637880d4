"""A list endpoint that ignores the change feed's since parameter (``list_since_param`` of the wire profile
names one this Advoware does not know): every poll would read every Beteiligter, every 10 s. The feed
notices rows changed before the time it asked for (beyond its overlap), turns itself off with a reason
the status page and ``doctor`` show, and leaves Advoware's changes to the sync check. The finding is
shared by the processes through Redis and asked again after :data:`SINCE_RECHECK_S`, or at once when
``list_since_param`` changed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from adapters.redis_ops import as_text

SINCE_RECHECK_S = 3600


class SinceIgnored(Exception):
    """A page held rows changed before the since the feed asked for."""


def rows_before(page: list[dict[str, Any]], bound: datetime) -> int:
    """How many rows of ``page`` (internal ``geaendertAm``, the firm's wall time) changed before ``bound``."""
    older = 0
    for row in page:
        try:
            older += datetime.fromisoformat(str(row.get("geaendertAm"))) < bound
        except ValueError:
            continue
    return older


def since_reason(param: str) -> str:
    return (f'the list endpoint ignores its since parameter (list_since_param = "{param}" of ADVOWARE_PROFILE: '
            "asked for the changes since a time, it answered rows changed before); rather than read every "
            "Beteiligter each poll, Advoware's changes arrive at the sync check only: doctor --advoware checks "
            "list_since_param")


class SinceFlag:
    """The finding in Redis, for every process: the parameter name found ignored, expiring for a recheck."""

    def __init__(self, redis: Any, prefix: str, param: str) -> None:
        self.redis, self.key, self.param = redis, f"{prefix}:feed:since_ignored", param

    async def is_set(self) -> bool:
        found = as_text(await self.redis.get(self.key))
        if found is not None and found != self.param:  # the profile names another parameter now: try it
            await self.redis.delete(self.key)
        return found == self.param

    async def set(self) -> None:
        await self.redis.set(self.key, self.param, ex=SINCE_RECHECK_S)
