"""Run-time fault injection for both simulators: rules that answer a status, delay, drop or lose the
answer of matching requests (see ``/__sim/faults`` and :class:`simulators.common.SimulatorMiddleware`)."""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class FaultRule:
    """One fault. Matches requests by method and a regex on the path (``None`` = any).

    ``status``: answer with this status instead of serving (500, 503, 429, ...).
    ``delay``: seconds to wait before serving (a ``delay`` longer than the client's timeout is a
    timeout). ``lose_answer``: serve the request first (a write is applied) and then hold the answer
    back for ``delay`` seconds: the "timed out, but it happened" case.
    ``times``: how many matching requests it applies to (``None`` = until cleared).
    ``probability``: chance that a matching request is hit.
    ``skip``: let this many matching requests through first (hit the second PUT, say).
    ``before``/``after``: called just before the request is served / after its answer went out: a
    person acting at that exact moment (races without timing margins).
    """

    method: str | None = None
    path: str | None = None
    status: int | None = None
    delay: float = 0.0
    retry_after: int | None = None
    times: int | None = 1
    probability: float = 1.0
    body: str | None = None
    lose_answer: bool = False
    skip: int = 0
    before: Callable[[], None] | None = field(default=None, compare=False)
    after: Callable[[], None] | None = field(default=None, compare=False)

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        return not (self.path and not re.search(self.path, path))


class FaultInjector:
    def __init__(self, seed: int | None = None) -> None:
        self.rules: list[FaultRule] = []
        self.latency: float = 0.0
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def add(self, rule: FaultRule | None = None, **kw: Any) -> FaultRule:
        r = rule or FaultRule(**kw)
        with self._lock:
            self.rules.append(r)
        return r

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()
            self.latency = 0.0

    def pick(self, method: str, path: str) -> FaultRule | None:
        with self._lock:
            for r in list(self.rules):
                if not r.matches(method, path):
                    continue
                if r.probability < 1.0 and self._rng.random() >= r.probability:
                    continue
                if r.skip > 0:
                    r.skip -= 1
                    continue
                if r.times is not None:
                    r.times -= 1
                    if r.times <= 0:
                        self.rules.remove(r)
                return r
        return None

    def to_json(self) -> dict[str, Any]:
        rules = [{k: v for k, v in asdict(r).items() if k not in ("before", "after")} for r in self.rules]
        return {"latency": self.latency, "rules": rules}
