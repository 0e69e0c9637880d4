"""Paging over the Advoware list endpoint, shared by the client (:mod:`adapters.advoware_api`) and its
in-memory fake (``tests/fakes``)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from adapters.errors import NotFoundError

MAX_TAKE = 200
# A list endpoint that answered 404 is asked again after this long: the 404 may have been passing (an
# app pool restarting, an update), and without the list the change feed is off.
LIST_RECHECK_S = 600.0


class AdvowareListing:
    """Paging over ``list_beteiligte``, shared by the client and its in-memory fake (``tests/fakes``)."""

    _supports_list: bool | None
    _list_missing_at: float | None = None  # when a list request answered 404 (None: never, or not to ask again)

    async def list_beteiligte(
        self, *, geaendert_seit: datetime | None = None, skip: int = 0, take: int = MAX_TAKE
    ) -> list[dict[str, Any]]:
        raise NotImplementedError

    async def iter_beteiligte(
        self, page_size: int = MAX_TAKE, *, geaendert_seit: datetime | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Every Beteiligter, page by page."""
        skip = 0
        while True:
            page = await self.list_beteiligte(geaendert_seit=geaendert_seit, skip=skip, take=page_size)
            for item in page:
                yield item
            if len(page) < page_size:
                return
            skip += len(page)

    async def supports_list(self) -> bool:
        """Whether the list endpoint exists (probed once, then cached; a 404 for :data:`LIST_RECHECK_S`)."""
        missing_at = self._list_missing_at
        if missing_at is not None and time.monotonic() - missing_at >= LIST_RECHECK_S:
            self._supports_list = self._list_missing_at = None
        if self._supports_list is None:
            try:
                await self.list_beteiligte(take=1)
            except NotFoundError:
                pass
        return bool(self._supports_list)
