"""The match keys of every Advoware Beteiligter, in Redis: what the sync consults before a create.

Only hashes of the rules' keys are kept (no client data): ``bsync:mk:<hash>`` is the set of
``betNr`` having that key, ``bsync:mb:<betNr>`` the set of its key hashes (to replace them when the
Beteiligter changes), ``bsync:mwater`` Advoware's ``geaendertAm`` up to which the index is complete,
``bsync:mwater:n`` how many rows stamped with it are indexed (a list read continues after them with
``skip``), ``bsync:mversion`` which keys it holds (:data:`domain.match_keys.KEY_VERSION`; 2: the weak keys too,
3: first name + postcode + the family name's one-deletion variants, 4: the weak keys of a person
with a birth date marked by it, so that namesakes born on other days are no candidates; an index of
an older version serves the lookups it has keys for, an index without a version the strong lookup
only, until ``match`` runs again and writes the current version).
``beteiligte-sync match`` builds it; each create then reads Advoware's changes since an hour before
the watermark (one list call; a second one only behind a full page of older rows, see
:func:`sync.create_match.refresh_index`) and brings it up to date. Without an index (``match`` never ran) the
create check is skipped; an index lost with the store (Redis came back empty) is rebuilt before the next
create, which is held meanwhile (:mod:`sync.index_rebuild`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from redis.asyncio import Redis

from adapters.redis_ops import as_text
from domain.fingerprint_key import scheme, text_hash
from domain.match_keys import KEY_VERSION

VERSION = KEY_VERSION


def key_hash(key: str) -> str:
    """A match key's name in Redis: keyed with the installation's fingerprint key (not reversible)."""
    return text_hash(key, 24)


class MatchKeyIndex:
    def __init__(self, redis: Redis, prefix: str = "bsync") -> None:
        self.redis = redis
        self.prefix = prefix

    def _mk(self, h: str) -> str:
        return f"{self.prefix}:mk:{h}"

    def _mb(self, betnr: int) -> str:
        return f"{self.prefix}:mb:{betnr}"

    @property
    def _water(self) -> str:
        return f"{self.prefix}:mwater"

    @property
    def _seen(self) -> str:
        return f"{self.prefix}:mwater:n"

    async def put_many(self, items: Iterable[tuple[int, list[str]]]) -> None:
        """Replace the keys of each Beteiligter (one round trip to read, one to write)."""
        batch = [(betnr, {key_hash(k) for k in keys}) for betnr, keys in items]
        if not batch:
            return
        read = self.redis.pipeline(transaction=False)
        for betnr, _ in batch:
            read.smembers(self._mb(betnr))
        old_sets = await read.execute()
        write = self.redis.pipeline(transaction=True)
        for (betnr, new), old_raw in zip(batch, old_sets, strict=True):
            old = {str(as_text(h)) for h in old_raw}
            if old == new:  # read again (the list's overlap) and unchanged: nothing to write
                continue
            for h in old - new:
                write.srem(self._mk(h), betnr)
            write.delete(self._mb(betnr))
            if new:
                write.sadd(self._mb(betnr), *new)
            for h in new:
                write.sadd(self._mk(h), betnr)
        await write.execute()

    async def remove(self, betnr: int) -> None:
        await self.put_many([(betnr, [])])

    async def prune(self, keep: set[int]) -> int:
        """After a full build: drop every Beteiligter not in ``keep`` (deleted or merged away in Advoware
        since an earlier build; a create reads at most a few candidates, so more would stay); returns
        how many were dropped."""
        prefix = self._mb(0)[:-1]
        gone = [int(name[len(prefix):]) async for raw in self.redis.scan_iter(match=prefix + "*", count=1000)
                if (name := str(as_text(raw)))[len(prefix):].isdigit() and int(name[len(prefix):]) not in keep]
        for start in range(0, len(gone), 500):
            await self.put_many([(b, []) for b in gone[start:start + 500]])
        return len(gone)

    async def lookup(self, keys: Iterable[str]) -> set[int]:
        """Every ``betNr`` having any of these keys."""
        hashes = [self._mk(key_hash(k)) for k in keys]
        if not hashes:
            return set()
        return {int(as_text(b) or 0) for b in await self.redis.sunion(hashes)}

    async def watermark(self) -> str | None:
        return as_text(await self.redis.get(self._water))

    async def cursor(self) -> tuple[str, int] | None:
        """The watermark and how many rows stamped with it are indexed (0 when not known: an index
        written before the count, or a full build); ``None`` without an index."""
        water, seen, form = (as_text(v) for v in await self.redis.mget([self._water, self._seen, self._scheme]))
        if water is None or (form or "") != scheme():  # keys of another fingerprint key: not this index
            return None
        return water, int(seen) if seen is not None and seen.isdigit() else 0

    async def set_watermark(self, stamp: str, seen: int = 0) -> bool:
        """Advance the watermark of an index that exists; never creates one (a catch-up after the store
        was emptied would otherwise make a few recent rows look like a whole index). False: no index."""
        if not await self.redis.set(self._water, stamp, xx=True):
            return False
        await self.redis.set(self._seen, str(seen))  # alone (emptied in between) it means nothing: no watermark
        return True

    async def complete(self, stamp: str) -> None:
        """A full build is done: the watermark, and the version of the keys it holds."""
        await self.redis.mset({self._water: stamp, self._seen: "0", f"{self.prefix}:mversion": str(VERSION),
                               self._scheme: scheme()})

    async def version(self) -> int:
        """The key version a full build wrote (0: built before the versions, or no index)."""
        return _version(as_text(await self.redis.get(f"{self.prefix}:mversion")))

    async def state(self) -> IndexState:
        """Whether an index is built, and its key version: one round trip (a create asks both). An index
        whose keys were named with another fingerprint key (or none) is not built: it finds nothing."""
        water, version, form = (as_text(v) for v in await self.redis.mget(
            [self._water, f"{self.prefix}:mversion", self._scheme]))
        other_key = water is not None and (form or "") != scheme()
        return IndexState(built=water is not None and not other_key, version=_version(version), other_key=other_key)

    @property
    def _scheme(self) -> str:
        return f"{self.prefix}:mscheme"


@dataclass(frozen=True)
class IndexState:
    built: bool  # ``match`` built the index (it has a watermark)
    version: int  # the key version of its full build (0: before the versions, or no index)
    other_key: bool = False  # an index whose keys were named with another fingerprint key: to be rebuilt


def _version(raw: str | None) -> int:
    return int(raw) if raw is not None and raw.isdigit() else 0
