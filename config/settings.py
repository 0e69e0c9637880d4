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

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from config.advoware_profile import DEFAULT_PROFILE, AdvowareProfile, ProfileError, load_profile
from config.setting_errors import (
    DEFAULT_ADVOWARE_CONFIGURATOR_URL,
    DELETE_POLICIES,
    FIXES,
    SECRET_MIN,
    ConfigError,
    describe_validation,
)
from config.setting_types import (
    DEFAULT_STATE_DIR,
    ApiBaseUrl,
    CronSchedule,
    DeletePolicy,
    ExistingFile,
    HttpUrl,
    LogFormat,
    LogLevel,
    OnCreateMatch,
    PollSeconds,
    RedisUrl,
    StateDir,
    TimeZone,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
APP_NAME = "beteiligte-sync"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    espocrm_url: ApiBaseUrl = None
    espocrm_api_key: SecretStr | None = None
    espocrm_hmac_secret: SecretStr | None = None
    # {"<webhookId>": "<secretKey>"}; accepted as a JSON string in the environment.
    espocrm_webhook_secrets: dict[str, SecretStr] = Field(default_factory=dict)

    advoware_url: ApiBaseUrl = None
    advoware_token_url: ApiBaseUrl = None
    advoware_app_id: str | None = None
    advoware_api_key: SecretStr | None = None
    advoware_kanzlei: str | None = None
    advoware_database: str | None = None
    advoware_user: str | None = None
    advoware_password: SecretStr | None = None
    advoware_timezone: TimeZone = "Europe/Berlin"
    # Unset or blank: DEFAULT_ADVOWARE_CONFIGURATOR_URL (see advoware_discovery and configurator_url).
    advoware_configurator_url: HttpUrl = None
    advoware_profile: str = DEFAULT_PROFILE

    redis_url: RedisUrl = None
    host: str = "127.0.0.1"
    port: int = Field(default=3111, ge=1, le=65535)
    # Not in the contract: the address EspoCRM reaches this service by (webhook URLs), for
    # ``webhooks register`` and ``doctor``; unset, they derive it from HOST/PORT and say so.
    public_url: HttpUrl = None
    # Not in the contract: serve speaks HTTPS itself with this certificate (chain) and key (PEM); both or
    # neither. The alternative, a reverse proxy in front, is docs/tls.md.
    tls_cert_file: ExistingFile = None
    tls_key_file: ExistingFile = None
    sync_check_cron: CronSchedule = "*/15 * * * *"
    # Advoware's change feed (issue 20): seconds between reads of Advoware's changes; 0 turns it off.
    # A divisor of 60 below a minute, or whole minutes dividing an hour (a cron step's schedule).
    advoware_poll_seconds: PollSeconds = 10

    # Not in the contract; documented in docs/configuration.md.
    delete_policy: DeletePolicy = DELETE_POLICIES[0]
    conflict_policy_file: str | None = None
    value_maps_file: str | None = None
    http_timeout_seconds: float = Field(default=10.0, gt=0, allow_inf_nan=False)
    # Unset: INFO for serve, WARNING for the other commands (their own output says what happened, and a
    # failure is one line on stderr, not wrapped in INFO lines).
    log_level: LogLevel = None
    # text (one line per event) or json (one object per line, for log shippers); docs/operations.md.
    log_format: LogFormat = "text"
    # How often serve checks EspoCRM, Advoware and Redis (/health, /ready); docs/operations.md.
    health_check_interval_seconds: float = Field(default=30.0, gt=0, allow_inf_nan=False)
    # Keys the fingerprints kept in Redis (entrypoints.fingerprint_secret); unset: fingerprint.key in
    # STATE_DIR, made on first use. Every process on one store needs the same.
    fingerprint_key: SecretStr | None = None
    # GET /status (the status page) answers only with this token (Bearer, or basic auth password).
    status_token: SecretStr | None = None
    # The embedded store (REDIS_URL unset): the folder of its redis-server (socket, AOF, lock, log),
    # relative paths taken from the project folder; and the redis-server binary (default: from PATH).
    state_dir: StateDir = DEFAULT_STATE_DIR
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
    on_create_match: OnCreateMatch = "link"

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
