"""A sorted list of row keys, kept up to date on every write: the simulators' database index.

A real system answers a list page through an index on the list's order: the cost of a page is the
page plus a seek, not a sort of the whole table. Both simulators keep one such index for the order
their list endpoints are read in (EspoCRM: ``createdAt``; Advoware: ``geaendertAm, betNr``), so that
paging through 100 000 records costs what it costs on the real systems. Keys are tuples whose last
part is unique (a row id or a creation sequence number), so no two keys compare equal.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable
from operator import itemgetter
from typing import Any

Key = tuple[Any, ...]
_first = itemgetter(0)


class SortedIndex:
    def __init__(self) -> None:
        self._keys: list[Key] = []

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: Key) -> None:
        if not self._keys or self._keys[-1] < key:
            self._keys.append(key)  # the usual case: a new row sorts last
        else:
            insort(self._keys, key)

    def remove(self, key: Key) -> None:
        at = bisect_left(self._keys, key)
        if at == len(self._keys) or self._keys[at] != key:
            raise KeyError(key)
        del self._keys[at]

    def first_at_least(self, bound: Any, key: Callable[[Key], Any] = _first) -> int:
        """Position of the first key with ``key(k) >= bound`` (``key`` must be monotonic in the order)."""
        return bisect_left(self._keys, bound, key=key)

    def ascending(self, start: int, size: int) -> list[Key]:
        return self._keys[start: start + size]

    def descending_stable(self, offset: int, size: int) -> list[Key]:
        """Keys by their first part descending, ties in ascending order: what a stable sort with
        ``reverse=True`` gives for rows kept in ascending order of the rest of the key."""
        keys, n = self._keys, len(self._keys)
        out: list[Key] = []
        lo = hi = -1  # bounds [lo, hi) of the current group of equal first parts
        for d in range(offset, min(offset + size, n)):
            mirrored = n - 1 - d  # position of the d-th key in plain reversed order
            if not lo <= mirrored < hi:
                lo = bisect_left(keys, keys[mirrored][0], key=_first)
                hi = bisect_right(keys, keys[mirrored][0], key=_first)
            out.append(keys[lo + hi - 1 - mirrored])
        return out
