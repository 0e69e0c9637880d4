"""The checked kinds of setting (``Annotated`` types for :class:`config.settings.Settings`): each says
what is wrong with a value in a few words; :func:`config.setting_errors.describe_validation` adds the
variable and its fix."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import redis.connection
from croniter import croniter
from pydantic import AfterValidator

from config.setting_errors import (
    API_SUFFIX,
    DELETE_POLICIES,
    HTTP_SCHEMES,
    LOG_FORMATS,
    LOG_LEVELS,
    ON_CREATE_MATCH,
    REDIS_SCHEMES,
)

DEFAULT_STATE_DIR = ".state"


def _zone(v: str) -> str:
    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{v!r} is not a time zone") from None
    return v


def _on_create_match(v: str) -> str:
    if v.strip().lower() not in ON_CREATE_MATCH:
        raise ValueError(f"{v!r} is not one of {', '.join(ON_CREATE_MATCH)}")
    return v.strip().lower()


def _delete_policy(v: str) -> str:
    if v not in DELETE_POLICIES:
        raise ValueError(f"{v!r} is not a delete policy")
    return v


def _level(v: str | None) -> str | None:
    if v is None or not v.strip():
        return None
    if v.strip().upper() not in LOG_LEVELS:
        raise ValueError(f"{v!r} is not a log level")
    return v.strip().upper()


def _poll(v: int) -> int:
    ok = v == 0 or (0 < v < 60 and 60 % v == 0) or (v % 60 == 0 and 0 < v <= 3600 and 60 % (v // 60) == 0)
    if not ok:
        raise ValueError(f"{v} is not a poll interval")
    return v


def _log_format(v: str) -> str:
    if v.strip().lower() not in LOG_FORMATS:
        raise ValueError(f"{v!r} is not a log format")
    return v.strip().lower()


def _cron(v: str) -> str:
    if not croniter.is_valid(v) or len(v.split()) not in (5, 6):  # a sixth field: seconds (croniter)
        raise ValueError(f"{v!r} is not a cron schedule")
    return v


def _http_url(v: str | None) -> str | None:
    if v is None or not v.strip():
        return None
    v = v.strip()
    if not v.startswith(HTTP_SCHEMES) or len(v.split("://", 1)[1].strip("/")) == 0:
        raise ValueError(f"{v!r} is not an http(s) URL")
    if "?" in v or "#" in v:  # the clients append paths: a query or fragment would swallow them
        raise ValueError(f"{v!r} has a query or fragment (?, #)")
    return v


def _api_base(v: str | None) -> str | None:
    """The clients add ``/api/v1/...`` themselves: a URL that already ends with it is cut back to the base."""
    return API_SUFFIX.sub("", v).rstrip("/") if v else v


def _redis_url(v: str | None) -> str | None:
    if v is None or not v.strip():
        return None
    if not v.strip().startswith(REDIS_SCHEMES):
        raise ValueError("is not a redis://, rediss:// or unix:// URL")
    try:
        parsed = redis.connection.parse_url(v.strip())
    except ValueError:  # bad port, broken IPv6 brackets, a query option redis-py cannot read
        raise ValueError("cannot be read (port, host or a ?option)") from None
    if not parsed.get("path") and not parsed.get("host"):
        # redis-py would quietly use localhost:6379: maybe another program's database
        raise ValueError("names no host (redis-py would quietly use localhost:6379)")
    return v.strip()


def _file(v: str | None) -> str | None:
    if v is None or not v.strip():
        return None
    path = Path(v.strip()).expanduser()
    if not path.is_file():
        raise ValueError(f"{str(path)!r} is not a file")
    return str(path.resolve())


def _state_dir(v: str) -> str:
    return v.strip() or DEFAULT_STATE_DIR  # "STATE_DIR=" in .env: the default, not the project folder


TimeZone = Annotated[str, AfterValidator(_zone)]
OnCreateMatch = Annotated[str, AfterValidator(_on_create_match)]
DeletePolicy = Annotated[str, AfterValidator(_delete_policy)]
LogLevel = Annotated[str | None, AfterValidator(_level)]
PollSeconds = Annotated[int, AfterValidator(_poll)]
LogFormat = Annotated[str, AfterValidator(_log_format)]
CronSchedule = Annotated[str, AfterValidator(_cron)]
HttpUrl = Annotated[str | None, AfterValidator(_http_url)]
ApiBaseUrl = Annotated[str | None, AfterValidator(_http_url), AfterValidator(_api_base)]
RedisUrl = Annotated[str | None, AfterValidator(_redis_url)]
ExistingFile = Annotated[str | None, AfterValidator(_file)]
StateDir = Annotated[str, AfterValidator(_state_dir)]
