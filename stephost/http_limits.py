"""Budgets of the HTTP edge, shared by every API step route of one app.

* :class:`BodyBudget` - request body bytes held in memory by all requests together. A request that
  would exceed it is answered ``503`` before (or while) its body is read, so a flood of large bodies
  cannot grow the process without bound.
* :class:`HandlerSlots` - API step handlers running at once. Each handler holds at most one Redis
  connection at a time, so the slots keep the edge below the Redis connection pool; a request waits
  briefly for a slot and is answered ``503`` (EspoCRM retries) when none frees up.
* :func:`read_body` - the raw body within a size limit, a deadline and the byte budget.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.requests import Request


class EdgeRefusal(Exception):
    """The request is not served; ``status`` and ``reason`` are the answer. ``close``: end the
    connection after the answer instead of receiving (and discarding) the rest of a large body."""

    def __init__(self, status: int, reason: str, *, close: bool = False) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.close = close


class BodyTooLargeError(EdgeRefusal):
    def __init__(self, limit: int) -> None:
        super().__init__(400, "body too large")
        self.limit = limit


class BodyTimeoutError(EdgeRefusal):
    def __init__(self, seconds: float) -> None:
        super().__init__(408, f"body not received within {seconds:g} s", close=True)


class OverBudgetError(EdgeRefusal):
    def __init__(self, what: str, *, close: bool = False) -> None:
        super().__init__(503, f"server busy ({what}), retry later", close=close)


class BodyBudget:
    """Bytes reserved by request bodies being read or handled, against one ceiling.

    A quarter of it is kept for small bodies (up to ``SMALL_BODY_BYTES``, which every EspoCRM batch
    is): large bodies, say a flood of unsigned 4 MiB ones, cannot crowd out the webhook deliveries.
    """

    SMALL_BODY_BYTES = 512 * 1024
    SMALL_SHARE = 4

    def __init__(self, ceiling: int) -> None:
        self.ceiling = ceiling
        self.in_use = 0

    def take(self, n: int, body_total: int) -> None:
        """Reserve ``n`` more bytes for a body that is then ``body_total`` bytes long."""
        large = body_total > self.SMALL_BODY_BYTES
        limit = self.ceiling - (self.ceiling // self.SMALL_SHARE if large else 0)
        if self.in_use + n > limit:
            # Not worth receiving a large body only to discard it. Small ones (every EspoCRM batch)
            # are drained, so their sender always reads the 503 and never meets a reset.
            raise OverBudgetError("request bodies in memory", close=large)
        self.in_use += n

    def give_back(self, n: int) -> None:
        self.in_use = max(0, self.in_use - n)


class HandlerSlots:
    """At most ``size`` handlers at once; a caller waits up to ``wait_s`` for a free slot."""

    def __init__(self, size: int, wait_s: float) -> None:
        self.size = size
        self._wait_s = wait_s
        self._sem = asyncio.Semaphore(size)
        self.busy = 0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout(self._wait_s):
                await self._sem.acquire()
        except TimeoutError:
            raise OverBudgetError("all handler slots in use") from None
        self.busy += 1
        try:
            yield
        finally:
            self.busy -= 1
            self._sem.release()


def declared_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


@asynccontextmanager
async def read_body(request: Request, limit: int, timeout_s: float, budget: BodyBudget) -> AsyncIterator[bytes]:
    """Yields the raw body; its bytes stay reserved in ``budget`` until the block ends.

    Raises :class:`BodyTooLargeError` past ``limit``, :class:`BodyTimeoutError` when the whole body
    has not arrived within ``timeout_s``, :class:`OverBudgetError` when ``budget`` is exhausted.
    """
    declared = declared_length(request)
    if declared is not None and declared > limit:
        raise BodyTooLargeError(limit)
    reserved = 0
    try:
        if declared:
            budget.take(declared, declared)
            reserved = declared
        body = bytearray()
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                if len(body) + len(chunk) > limit:
                    raise BodyTooLargeError(limit)
                total = len(body) + len(chunk)
                if total > reserved:  # chunked, or more than declared
                    budget.take(total - reserved, total)
                    reserved = total
                body += chunk
    except TimeoutError:
        budget.give_back(reserved)
        raise BodyTimeoutError(timeout_s) from None
    except BaseException:
        budget.give_back(reserved)
        raise
    raw = bytes(body)
    body.clear()
    try:
        yield raw
    finally:
        budget.give_back(reserved)
