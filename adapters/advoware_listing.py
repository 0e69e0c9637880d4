"""Paging over the Advoware list endpoint, shared by the client (:mod:`adapters.advoware_api`) and its
in-memory fake (``tests/fakes``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from adapters.errors import NotFoundError

MAX_TAKE = 200


class AdvowareListing:
    """Paging over ``list_beteiligte``, shared by the client and its in-memory fake (``tests/fakes``)."""

    _supports_list: bool | None

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
        """Whether the list endpoint exists (probed once, then cached)."""
        if self._supports_list is None:
            try:
                await self.list_beteiligte(take=1)
            except NotFoundError:
                pass
        return bool(self._supports_list)
