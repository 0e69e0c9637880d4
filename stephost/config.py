"""The step host's configuration: ``motia.config.json`` plus caller-supplied overrides.

Example file::

    {"steps": {"dirs": ["steps"]}, "flows": ["beteiligte-sync"],
     "http": {"host": "127.0.0.1", "port": 3111, "maxBodyBytes": 4194304, "headerTimeoutSeconds": 5,
              "bodyTimeoutSeconds": 5, "maxConcurrentHandlers": 32, "maxBufferedBodyBytes": 33554432},
     "queue": {"maxAttempts": 5, "backoffBaseSeconds": 1.0, "backoffMaxSeconds": 60.0,
               "workers": 4, "maxSize": 10000},
     "cron": {"enabled": true}, "redis": {"keyPrefix": "bsync"}}

Every section and key is optional. Relative step directories are resolved against the folder that
holds the file. The loader is pure: it reads no environment; the caller passes overrides such as
``{"HOST": os.environ["HOST"]}``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class ConfigFileError(ValueError):
    """The config file is missing, not JSON, or has a bad value (the message names the key)."""


class _Section(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid", frozen=True)


class StepsConfig(_Section):
    dirs: list[Path] = Field(default_factory=lambda: [Path("steps")])


class HttpConfig(_Section):
    """The HTTP edge. Defaults keep EspoCRM's webhook deliveries (10 s timeout) well served while
    slow or oversized requests and floods are cut off early (docs/reliability.md)."""

    host: str = "127.0.0.1"
    port: int = Field(default=3111, ge=0, le=65535)
    max_body_bytes: int = Field(default=4 * 1024 * 1024, alias="maxBodyBytes", gt=0)
    # A connection must deliver a request's headers this long after it opened (or after the previous
    # answer), and the request's body this long after its headers; otherwise it is closed (slowloris).
    header_timeout_seconds: float = Field(default=5.0, alias="headerTimeoutSeconds", gt=0)
    body_timeout_seconds: float = Field(default=5.0, alias="bodyTimeoutSeconds", gt=0)
    keep_alive_seconds: int = Field(default=5, alias="keepAliveSeconds", ge=1)
    # API step handlers running at once (each holds at most one Redis connection: keep it well below
    # the Redis pool of 100); a request waits up to handlerWaitSeconds for a slot, then gets 503.
    max_concurrent_handlers: int = Field(default=32, alias="maxConcurrentHandlers", ge=1)
    handler_wait_seconds: float = Field(default=2.0, alias="handlerWaitSeconds", ge=0)
    # Request bodies held in memory at once, all requests together; over it: 503.
    max_buffered_body_bytes: int = Field(default=32 * 1024 * 1024, alias="maxBufferedBodyBytes", gt=0)
    # Open connections before the server itself answers every new request with 503.
    max_connections: int = Field(default=1000, alias="maxConnections", ge=1)
    # Open connections of one client address counted toward maxConnections; beyond it a connection is
    # not counted, and its header deadline is spread over 50-100 % of headerTimeoutSeconds
    # (stephost.http_server). 0: no share
    # (behind a reverse proxy every connection comes from the proxy, which guards the edge itself).
    max_connections_per_client: int = Field(default=64, alias="maxConnectionsPerClient", ge=0)
    # HTTPS: the certificate (chain) and private key, PEM files; both None: plain HTTP.
    tls_cert_file: Path | None = Field(default=None, alias="tlsCertFile")
    tls_key_file: Path | None = Field(default=None, alias="tlsKeyFile")


class QueueConfig(_Section):
    max_attempts: int = Field(default=5, alias="maxAttempts", ge=1)
    backoff_base_seconds: float = Field(default=1.0, alias="backoffBaseSeconds", ge=0)
    backoff_max_seconds: float = Field(default=60.0, alias="backoffMaxSeconds", ge=0)
    workers: int = Field(default=4, ge=1)
    max_size: int = Field(default=10_000, alias="maxSize", ge=1)
    # Redis Streams bus only: an entry untouched this long belongs to a dead worker (a live worker
    # touches the entry of a running handler every third of it) and is taken over.
    claim_idle_seconds: float = Field(default=10.0, alias="claimIdleSeconds", gt=0)
    # Redis Streams bus only: backoff of a worker loop after a Redis error (doubling up to the max).
    reconnect_base_seconds: float = Field(default=0.1, alias="reconnectBaseSeconds", gt=0)
    reconnect_max_seconds: float = Field(default=2.0, alias="reconnectMaxSeconds", gt=0)
    # Redis Streams bus only: a handler running longer than this is reported (log, counter, status
    # page) and its entry no longer kept, so a live worker takes it over (the watchdog).
    max_handler_seconds: float = Field(default=600.0, alias="maxHandlerSeconds", gt=0)
    # Redis Streams bus only: events of these topics are worked only while no other event waits (their
    # own stream per step, read after the others): background work never delays a webhook's event.
    background_topics: list[str] = Field(default_factory=list, alias="backgroundTopics")


class CronConfig(_Section):
    enabled: bool = True


class RedisConfig(_Section):
    key_prefix: str = Field(default="bsync", alias="keyPrefix", min_length=1)


class HostConfig(_Section):
    steps: StepsConfig = Field(default_factory=StepsConfig)
    flows: list[str] = Field(default_factory=list)
    http: HttpConfig = Field(default_factory=HttpConfig)
    queue: QueueConfig = Field(default_factory=QueueConfig)
    cron: CronConfig = Field(default_factory=CronConfig)
    redis: RedisConfig = Field(default_factory=RedisConfig)

    @property
    def step_dirs(self) -> list[Path]:
        return list(self.steps.dirs)


# Shorthand override names (as the environment spells them) -> dotted paths in the file.
_OVERRIDE_ALIASES = {"host": "http.host", "port": "http.port"}


def _apply_override(raw: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = raw
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigFileError(f"override {dotted!r}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value


def parse_host_config(
    raw: dict[str, Any], overrides: dict[str, Any] | None = None, *, base_dir: Path | None = None
) -> HostConfig:
    """Validate an already-parsed config dict. ``overrides`` keys are ``HOST``/``PORT`` (any case)
    or dotted paths in file spelling (``"queue.workers"``); ``None`` values are ignored."""
    data: dict[str, Any] = json.loads(json.dumps(raw))  # deep copy, JSON types only
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        _apply_override(data, _OVERRIDE_ALIASES.get(key.lower(), key), value)
    try:
        config = HostConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigFileError(f"invalid host config: {problems}") from exc
    if base_dir is not None:
        dirs = [d if d.is_absolute() else (base_dir / d) for d in config.steps.dirs]
        config = config.model_copy(update={"steps": StepsConfig(dirs=dirs)})
    return config


def load_host_config(path: Path, overrides: dict[str, Any] | None = None, *,
                     base_dir: Path | None = None) -> HostConfig:
    """Read ``motia.config.json`` at ``path`` and apply ``overrides`` (see :func:`parse_host_config`);
    relative step directories are taken from ``base_dir`` (default: the file's folder)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigFileError(f"{path}: cannot read host config: {exc.strerror}") from exc
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigFileError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigFileError(f"{path}: top level must be a JSON object")
    try:
        return parse_host_config(raw, overrides, base_dir=base_dir or path.resolve().parent)
    except ConfigFileError as exc:
        raise ConfigFileError(f"{path}: {exc}") from exc
