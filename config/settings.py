"""The one settings object: environment variables (and a ``.env`` file) named in the service contract.

Every value is checked when the settings are read: :func:`load_settings` turns what pydantic finds into
one :class:`ConfigError` line naming the variable, what is wrong and the fix (never a secret's value).
The system URLs (``ESPOCRM_URL``, ``ADVOWARE_URL``, ``ADVOWARE_TOKEN_URL``) are accepted with or without
``/api/v1`` (what the simulators print) and kept without it.
"""

from __future__ import annotations

import json
import logging
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import redis.connection
from croniter import croniter
from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from config.advoware_profile import DEFAULT_PROFILE, AdvowareProfile, ProfileError, load_profile

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STATE_DIR = ".state"
APP_NAME = "beteiligte-sync"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")  # the values of entrypoints.log_format.LogFormat (config imports nothing of ours)
FINGERPRINT_KEY_MIN = 32  # characters, e.g. from `openssl rand -hex 32`
STATUS_TOKEN_MIN = 16  # characters: a token a person cannot guess, e.g. from `openssl rand -hex 16`
SECRET_MIN = {"status_token": STATUS_TOKEN_MIN, "fingerprint_key": FINGERPRINT_KEY_MIN}
HTTP_SCHEMES = ("http://", "https://")
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
API_SUFFIX = re.compile(r"/api/v1/*$")
# Advoware's URL configurator (public client code; spec §2.0): asked with ADVOWARE_KANZLEI when
# ADVOWARE_URL or ADVOWARE_TOKEN_URL is not set.
DEFAULT_ADVOWARE_CONFIGURATOR_URL = "https://www2.advo-net.net/AdvonetConfigurator/api/Url"


# The values of domain.sync_status.DeletePolicy (config imports nothing of ours; test_layers).
DELETE_POLICIES = ("unlink", "delete")
ON_CREATE_MATCH = ("link", "create", "ask")  # before a create in Advoware: link a match, ask staff, or create


class ConfigError(ValueError):
    """A setting is missing or wrong; the message is one line naming the variable and the fix."""


# What to write instead, per setting (shown after what is wrong).
FIXES = {
    "advoware_timezone": "use an IANA zone name such as Europe/Berlin",
    "advoware_profile": "fix that line of the profile (docs/advoware.md: wire profiles)",
    "log_level": f"use one of {', '.join(LOG_LEVELS)}",
    "advoware_poll_seconds": "use 0 (off), a divisor of 60 (e.g. 10, 15, 30) or whole minutes dividing an hour "
                             "(e.g. 60, 300)",
    "log_format": f"use one of {', '.join(LOG_FORMATS)}",
    "fingerprint_key": f"use at least {FINGERPRINT_KEY_MIN} random characters, e.g. from: openssl rand -hex 32",
    "status_token": f"use at least {STATUS_TOKEN_MIN} random characters, e.g. from: openssl rand -hex 16",
    "delete_policy": "use unlink or delete",
    "on_create_match": f"use one of {', '.join(ON_CREATE_MATCH)}",
    "port": "use a number from 1 to 65535",
    "sync_check_cron": 'use five cron fields (a sixth, seconds, is allowed), e.g. "*/15 * * * *"',
    "http_timeout_seconds": "use a number of seconds above 0, e.g. 10",
    "health_check_interval_seconds": "use a number of seconds above 0, e.g. 30",
    "espocrm_webhook_secrets": 'use a JSON object, e.g. {"<webhookId>": "<secretKey>"}',
    "redis_url": "use e.g. redis://host:6379/0, or leave it unset for the embedded store",
    "tls_cert_file": "give the path of a readable PEM certificate (chain), or unset it",
    "tls_key_file": "give the path of a readable PEM private key, or unset it",
    "advoware_configurator_url": f"use the configurator's full URL (default {DEFAULT_ADVOWARE_CONFIGURATOR_URL}) "
                                 "or unset it",
}
SECRET_WORDS = ("secret", "password", "api_key", "redis_url", "fingerprint_key")
URL_FIX = "use the base address, e.g. https://host (with or without /api/v1)"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    espocrm_url: str | None = None
    espocrm_api_key: SecretStr | None = None
    espocrm_hmac_secret: SecretStr | None = None
    # {"<webhookId>": "<secretKey>"}; accepted as a JSON string in the environment.
    espocrm_webhook_secrets: dict[str, SecretStr] = Field(default_factory=dict)

    advoware_url: str | None = None
    advoware_token_url: str | None = None
    advoware_app_id: str | None = None
    advoware_api_key: SecretStr | None = None
    advoware_kanzlei: str | None = None
    advoware_database: str | None = None
    advoware_user: str | None = None
    advoware_password: SecretStr | None = None
    advoware_timezone: str = "Europe/Berlin"
    # Unset or blank: DEFAULT_ADVOWARE_CONFIGURATOR_URL (see advoware_discovery and configurator_url).
    advoware_configurator_url: str | None = None
    advoware_profile: str = DEFAULT_PROFILE

    redis_url: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=3111, ge=1, le=65535)
    # Not in the contract: the address EspoCRM reaches this service by (webhook URLs), for
    # ``webhooks register`` and ``doctor``; unset, they derive it from HOST/PORT and say so.
    public_url: str | None = None
    # Not in the contract: serve speaks HTTPS itself with this certificate (chain) and key (PEM); both or
    # neither. The alternative, a reverse proxy in front, is docs/tls.md.
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    sync_check_cron: str = "*/15 * * * *"
    # Advoware's change feed (issue 20): seconds between reads of Advoware's changes; 0 turns it off.
    # A divisor of 60 below a minute, or whole minutes dividing an hour (a cron step's schedule).
    advoware_poll_seconds: int = 10

    # Not in the contract; documented in docs/configuration.md.
    delete_policy: str = DELETE_POLICIES[0]
    conflict_policy_file: str | None = None
    value_maps_file: str | None = None
    http_timeout_seconds: float = Field(default=10.0, gt=0, allow_inf_nan=False)
    # Unset: INFO for serve, WARNING for the other commands (their own output says what happened, and a
    # failure is one line on stderr, not wrapped in INFO lines).
    log_level: str | None = None
    # text (one line per event) or json (one object per line, for log shippers); docs/operations.md.
    log_format: str = "text"
    # How often serve checks EspoCRM, Advoware and Redis (/health, /ready); docs/operations.md.
    health_check_interval_seconds: float = Field(default=30.0, gt=0, allow_inf_nan=False)
    # Keys the fingerprints kept in Redis (entrypoints.fingerprint_secret); unset: fingerprint.key in
    # STATE_DIR, made on first use. Every process on one store needs the same.
    fingerprint_key: SecretStr | None = None
    # GET /status (the status page) answers only with this token (Bearer, or basic auth password).
    status_token: SecretStr | None = None
    # The embedded store (REDIS_URL unset): the folder of its redis-server (socket, AOF, lock, log),
    # relative paths taken from the project folder; and the redis-server binary (default: from PATH).
    state_dir: str = DEFAULT_STATE_DIR
    redis_server_bin: str | None = None
    # Set by the sandbox after it has pointed the URLs at its simulators.
    sandbox_mode: bool = False
    # Throughput (issue 10): syncs in flight per process, and requests in flight per system (each
    # cap halves on a 429/503 from that system and grows back by itself).
    sync_concurrency: int = Field(default=10, ge=1, le=200)
    espocrm_max_inflight: int = Field(default=10, ge=1, le=200)
    advoware_max_inflight: int = Field(default=10, ge=1, le=200)
    # Issue 11: before a create in Advoware, link an existing match (link), fail the record naming
    # it so staff decide (ask), or create without looking (create).
    on_create_match: str = "link"

    @field_validator("espocrm_webhook_secrets", mode="before")
    @classmethod
    def _parse_secrets(cls, v: Any) -> Any:
        if v is None or v == "":
            return {}
        if isinstance(v, str):
            try:
                parsed = json.loads(v)
            except json.JSONDecodeError as exc:
                raise ValueError("is not a JSON object") from exc
            if not isinstance(parsed, dict):
                raise ValueError("is not a JSON object")
            return parsed
        return v

    @field_validator("advoware_profile")
    @classmethod
    def _profile(cls, v: str) -> str:
        try:
            load_profile(v or DEFAULT_PROFILE)
        except ProfileError as exc:
            raise ValueError(str(exc)) from None
        return v or DEFAULT_PROFILE

    @model_validator(mode="after")
    def _profile_zone(self) -> Settings:
        """The profile's ``timezone`` is the zone; ``ADVOWARE_TIMEZONE`` set to another one is refused."""
        zone = self.wire_profile().timezone
        if zone and "advoware_timezone" in self.model_fields_set and self.advoware_timezone != zone:
            raise ValueError(f"ADVOWARE_TIMEZONE {self.advoware_timezone} differs from timezone = "
                             f'"{zone}" of ADVOWARE_PROFILE {self.wire_profile().source}: unset one of them')
        if zone:
            self.advoware_timezone = zone
        return self

    def wire_profile(self) -> AdvowareProfile:
        """The Advoware wire profile of ``ADVOWARE_PROFILE`` (read once per file)."""
        return load_profile(self.advoware_profile)

    @field_validator("advoware_timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{v!r} is not a time zone") from None
        return v

    @field_validator("on_create_match")
    @classmethod
    def _on_create_match(cls, v: str) -> str:
        if v.strip().lower() not in ON_CREATE_MATCH:
            raise ValueError(f"{v!r} is not one of {', '.join(ON_CREATE_MATCH)}")
        return v.strip().lower()

    @field_validator("delete_policy")
    @classmethod
    def _delete_policy(cls, v: str) -> str:
        if v not in DELETE_POLICIES:
            raise ValueError(f"{v!r} is not a delete policy")
        return v

    @field_validator("log_level")
    @classmethod
    def _level(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        if v.strip().upper() not in LOG_LEVELS:
            raise ValueError(f"{v!r} is not a log level")
        return v.strip().upper()

    @field_validator("advoware_poll_seconds")
    @classmethod
    def _poll(cls, v: int) -> int:
        ok = v == 0 or (0 < v < 60 and 60 % v == 0) or (v % 60 == 0 and 0 < v <= 3600 and 60 % (v // 60) == 0)
        if not ok:
            raise ValueError(f"{v} is not a poll interval")
        return v

    @field_validator("log_format")
    @classmethod
    def _log_format(cls, v: str) -> str:
        if v.strip().lower() not in LOG_FORMATS:
            raise ValueError(f"{v!r} is not a log format")
        return v.strip().lower()

    @field_validator("sync_check_cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        if not croniter.is_valid(v) or len(v.split()) not in (5, 6):  # a sixth field: seconds (croniter)
            raise ValueError(f"{v!r} is not a cron schedule")
        return v

    @field_validator("espocrm_url", "advoware_url", "advoware_token_url", "public_url", "advoware_configurator_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        v = v.strip()
        if not v.startswith(HTTP_SCHEMES) or len(v.split("://", 1)[1].strip("/")) == 0:
            raise ValueError(f"{v!r} is not an http(s) URL")
        if "?" in v or "#" in v:  # the clients append paths: a query or fragment would swallow them
            raise ValueError(f"{v!r} has a query or fragment (?, #)")
        return v

    @field_validator("espocrm_url", "advoware_url", "advoware_token_url")
    @classmethod
    def _api_base(cls, v: str | None) -> str | None:
        """The clients add ``/api/v1/...`` themselves: a URL that already ends with it is cut back to the base."""
        return API_SUFFIX.sub("", v).rstrip("/") if v else v

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, v: str | None) -> str | None:
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

    @field_validator("tls_cert_file", "tls_key_file")
    @classmethod
    def _tls_file(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        path = Path(v.strip()).expanduser()
        if not path.is_file():
            raise ValueError(f"{str(path)!r} is not a file")
        return str(path.resolve())

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            given, missing = (("TLS_CERT_FILE", "TLS_KEY_FILE") if self.tls_cert_file
                              else ("TLS_KEY_FILE", "TLS_CERT_FILE"))
            raise ValueError(f"{given} is set without {missing}: set both (HTTPS) or neither (HTTP)")
        return self

    @property
    def scheme(self) -> str:
        """``https`` when serve speaks TLS itself (TLS_CERT_FILE/TLS_KEY_FILE), else ``http``."""
        return "https" if self.tls_cert_file else "http"

    @field_validator("status_token", "fingerprint_key", mode="before")
    @classmethod
    def _long_secret(cls, v: Any, info: ValidationInfo) -> Any:
        """Blank is unset (blanks would be a password of blanks); a short one can be guessed."""
        if isinstance(v, str) and not v.strip():
            return None
        minimum = SECRET_MIN[str(info.field_name)]
        if isinstance(v, str) and len(v.strip()) < minimum:
            raise ValueError(f"is shorter than {minimum} characters")
        return v

    @field_validator("state_dir")
    @classmethod
    def _state_dir(cls, v: str) -> str:
        return v.strip() or DEFAULT_STATE_DIR  # "STATE_DIR=" in .env: the default, not the project folder

    @property
    def sandbox(self) -> bool:
        """Neither system configured (no EspoCRM, no Advoware URL or Kanzlei): both simulators in-process."""
        return self.sandbox_mode or not (self.espocrm_url or self.advoware_url or self.advoware_kanzlei)

    @property
    def advoware_discovery(self) -> bool:
        """ADVOWARE_URL or ADVOWARE_TOKEN_URL unset: the configurator is asked with ADVOWARE_KANZLEI for the
        missing one (a URL that is set still wins for its part)."""
        return bool(self.advoware_kanzlei) and not (self.advoware_url and self.advoware_token_url)

    @property
    def configurator_url(self) -> str:
        return self.advoware_configurator_url or DEFAULT_ADVOWARE_CONFIGURATOR_URL

    def state_path(self) -> Path:
        """STATE_DIR as an absolute path, the same for every process whatever its working directory."""
        return (state_base() / Path(self.state_dir).expanduser()).resolve()

    def webhook_secrets(self) -> dict[str, str]:
        return {k: v.get_secret_value() for k, v in self.espocrm_webhook_secrets.items()}

    def missing_for_production(self) -> list[str]:
        required = {
            "ESPOCRM_URL": self.espocrm_url,
            "ESPOCRM_API_KEY": self.espocrm_api_key,
            "ADVOWARE_URL": self.advoware_url or self.advoware_kanzlei,  # with a Kanzlei: discovered
            "ADVOWARE_TOKEN_URL": self.advoware_token_url or self.advoware_kanzlei,
            "ADVOWARE_APP_ID": self.advoware_app_id,
            "ADVOWARE_API_KEY": self.advoware_api_key,
            "ADVOWARE_KANZLEI": self.advoware_kanzlei,
            "ADVOWARE_DATABASE": self.advoware_database,
            "ADVOWARE_USER": self.advoware_user,
            "ADVOWARE_PASSWORD": self.advoware_password,
        }
        return [k for k, v in required.items() if not v]


    def require_production(self) -> None:
        """Raise :class:`ConfigError` when some but not all of the systems' settings are given."""
        missing = self.missing_for_production()
        if missing:
            raise ConfigError(f"configuration: {', '.join(missing)} not set: set them in the environment or in "
                              ".env (docs/configuration.md), or unset ESPOCRM_URL, ADVOWARE_URL and ADVOWARE_KANZLEI "
                              "for the sandbox")


def state_base() -> Path:
    """What a relative STATE_DIR is taken from: the project folder of a checkout (it has pyproject.toml),
    else, for an installed package, ``$XDG_STATE_HOME/beteiligte-sync`` (default ``~/.local/state/...``),
    never the site-packages folder the code was installed into."""
    if (PROJECT_ROOT / "pyproject.toml").is_file():
        return PROJECT_ROOT
    xdg = os.environ.get("XDG_STATE_HOME", "").strip()
    return (Path(xdg) if xdg else Path.home() / ".local" / "state") / APP_NAME


def log_level_number(name: str) -> int:
    return int(logging.getLevelName(name.upper()))


def describe_validation(exc: ValidationError) -> str:
    """One line for every wrong setting: the variable, what is wrong (no secret values) and the fix."""
    parts = []
    for err in exc.errors():
        name = str(err["loc"][0]) if err["loc"] else "?"
        msg = str(err["msg"])
        msg = msg.removeprefix("Value error, ") if err["type"] == "value_error" else msg.split(",")[0]
        if not err["loc"]:  # a check of several settings together: its message names them and the fix
            parts.append(msg)
            continue
        if not any(word in name for word in SECRET_WORDS) and err.get("input") is not None and "'" not in msg:
            msg = f"{err['input']!r}: {msg}"  # never a secret's value (a REDIS_URL may carry a password)
        fix = FIXES.get(name, URL_FIX if name.endswith("_url") else "see docs/configuration.md")
        parts.append(f"{name.upper()} {msg}: {fix}")
    return "configuration: " + "; ".join(parts)


def load_settings(**overrides: Any) -> Settings:
    """The settings from the environment and ``.env``; :class:`ConfigError` (one line) when one is wrong."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(describe_validation(exc)) from None
    except SettingsError as exc:  # a value pydantic-settings could not even decode (JSON of a dict field)
        found = re.search(r'field "(\w+)"', str(exc))
        name = found.group(1) if found else "?"
        raise ConfigError(f"configuration: {name.upper()} cannot be read: "
                          f"{FIXES.get(name, 'see docs/configuration.md')}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
