"""Logging of every process: time, level, logger and message on stderr, at ``LOG_LEVEL``."""

from __future__ import annotations

import logging

QUIET = ("httpx", "httpcore")  # one line per request at INFO: too many


def configure_logging(level: str = "INFO") -> None:
    """``level`` is already validated (``Settings.log_level``, ``--log-level``)."""
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    for noisy in QUIET:
        logging.getLogger(noisy).setLevel(logging.WARNING)
