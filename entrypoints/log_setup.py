"""Logging of every process (``serve``, the commands, and services built from the environment, as
under Motia): one handler on stderr at ``LOG_LEVEL`` in ``LOG_FORMAT`` (:mod:`entrypoints.log_format`).

It lives apart from :mod:`entrypoints.runtime` so the composition root (:mod:`entrypoints.bootstrap`),
which runtime imports, can call it too.
"""

from __future__ import annotations

import logging

from entrypoints.log_format import LogFormat, formatter

OUR_HANDLER = "_beteiligte_sync"  # marks the handler configure_logging installed (replaced on a second call)


def configure_logging(level: str = "INFO", fmt: LogFormat | str = LogFormat.TEXT) -> None:
    """``level`` and ``fmt`` are already validated (``Settings.log_level``/``log_format``, ``--log-level``).

    Every line goes through one handler on stderr whose formatter escapes control characters (a value
    cannot forge a line or reach the reader's terminal as an escape sequence), or writes JSON. An idle
    ``serve`` logs nothing at INFO: the access log (every ``/health`` probe) shows only at DEBUG.
    """
    number = getattr(logging, level.upper(), logging.INFO)
    root = logging.getLogger()
    root.setLevel(number)
    for old in [h for h in root.handlers if getattr(h, OUR_HANDLER, False)]:
        root.removeHandler(old)
    if not root.handlers:  # as logging.basicConfig: a host that set up logging itself keeps its handlers
        handler = logging.StreamHandler()
        handler.setFormatter(formatter(LogFormat(fmt)))
        setattr(handler, OUR_HANDLER, True)
        root.addHandler(handler)
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("uvicorn.access").setLevel(logging.DEBUG if number <= logging.DEBUG else logging.WARNING)
