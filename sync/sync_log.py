"""Log lines about one record: always both ids and the decision, as ``key=value`` pairs."""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger("beteiligte_sync")


def _fmt(v: Any) -> str:
    s = str(v)
    return f'"{s}"' if (" " in s or not s) else s


def log_record(
    level: int,
    msg: str,
    *,
    espo_id: str,
    betnr: int | None,
    decision: str,
    **extra: Any,
) -> None:
    fields = {"espo_id": espo_id, "betnr": betnr, "decision": decision, **extra}
    logger.log(level, "%s %s", msg, " ".join(f"{k}={_fmt(v)}" for k, v in fields.items()))
