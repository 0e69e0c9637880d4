"""Reading a :class:`~stephost.bus_redis.RedisStreamBus`'s streams: one consumer group per stream, the
background lane read last, NOGROUP (Redis came back empty) answered by recreating the groups."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import ResponseError

from stephost.bus_redis_scripts import BACKGROUND, BUSYGROUP, GROUP, GROUP_START, NEW_ENTRIES, NOGROUP

log = logging.getLogger("stephost.bus")

READ_GRACE_SECONDS = 5.0  # a blocking read not answered within its block time plus this is a hung connection
Entry = tuple[str, Any, Any]  # (stream, entry id, fields or None)


def as_str(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


class StreamReader:
    """XREADGROUP over ``first`` (read before the lane) and ``background`` (the lane) streams."""

    def __init__(self, redis: Any, first: list[str], background: list[str], consumer: str, *,
                 block_seconds: float, reached: Callable[[str], None]) -> None:
        self._redis = redis
        self.first = first
        self.streams = first + background
        self._consumer = consumer
        # A worker's XREADGROUP waits this long for a new entry (it returns at once when one comes, and
        # an idle loop is cancelled at stop): longer means fewer idle round trips, not more latency.
        self._block = block_seconds
        self.read_timeout = block_seconds + READ_GRACE_SECONDS
        self._reached = reached  # the loop got an answer from Redis

    def consumer_name(self, loop: str) -> str:
        return f"{self._consumer}-{loop}"

    async def read(self, name: str, start: str) -> list[Entry]:
        """XREADGROUP for the loop's consumer (``start``: new entries or its own pending ones). With a
        background lane, new entries of the other streams are asked for first, without waiting: a
        worker takes a background event only while no other one waits."""
        if not self.streams:
            return []
        if start == NEW_ENTRIES and len(self.streams) > len(self.first):
            entries = await self._read_from(name, self.first, start, None)
            if entries:
                return entries
        return await self._read_from(name, self.streams, start, max(1, int(self._block * 1000)))

    async def _read_from(self, name: str, keys: list[str], start: str, block: int | None) -> list[Entry]:
        streams = dict.fromkeys(keys, start)
        reply = await self.in_group(
            lambda: asyncio.wait_for(
                self._redis.xreadgroup(GROUP, self.consumer_name(name), streams, count=1, block=block),
                self.read_timeout,
            )
        )
        self._reached(name)
        entries = [(as_str(stream), entry_id, fields) for stream, items in reply or [] for entry_id, fields in items]
        return sorted(entries, key=lambda e: e[0].endswith(BACKGROUND))  # a background entry last

    async def in_group(self, command: Callable[[], Awaitable[Any]]) -> Any:
        """Run a group command; when Redis answers NOGROUP (it came back empty), recreate the groups
        and run it once more."""
        try:
            return await command()
        except ResponseError as exc:
            if not str(exc).startswith(NOGROUP):
                raise
        log.warning("event bus consumer groups missing (Redis came back empty?): recreating them")
        await self.ensure_groups()
        return await command()

    async def ensure_groups(self) -> None:
        for stream in self.streams:
            try:
                await self._redis.xgroup_create(stream, GROUP, id=GROUP_START, mkstream=True)
            except ResponseError as exc:
                if not str(exc).startswith(BUSYGROUP):
                    raise
