"""The one settings object: environment variables (and a ``.env`` file) named in the service contract."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STATE_DIR = ".state"


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

    redis_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 3111
    # Not in the contract: the address EspoCRM reaches this service by (webhook URLs), for
    # ``webhooks register`` and ``doctor``; unset, they derive it from HOST/PORT and say so.
    public_url: str | None = None
    sync_check_cron: str = "*/15 * * * *"

    # Not in the contract; documented in the README.
    delete_policy: str = Field(default="unlink", pattern="^(unlink|delete)$")
    conflict_policy_file: str | None = None
    value_maps_file: str | None = None
    http_timeout_seconds: float = 10.0
    log_level: str = "INFO"
    # The embedded store (REDIS_URL unset): the folder of its redis-server (socket, AOF, lock, log),
    # relative paths taken from the project folder; and the redis-server binary (default: from PATH).
    state_dir: str = DEFAULT_STATE_DIR
    redis_server_bin: str | None = None
    # Set by the sandbox after it has pointed the URLs at its simulators.
    sandbox_mode: bool = False
    # Issue 11: before a create in Advoware, link an existing match (link), fail the record naming
    # it so staff decide (ask), or create without looking (create).
    on_create_match: str = Field(default="link", pattern="^(link|create|ask)$")

    @field_validator("espocrm_webhook_secrets", mode="before")
    @classmethod
    def _parse_secrets(cls, v: Any) -> Any:
        if v is None or v == "":
            return {}
        if isinstance(v, str):
            try:
                parsed = json.loads(v)
            except json.JSONDecodeError as exc:
                raise ValueError("ESPOCRM_WEBHOOK_SECRETS must be a JSON object") from exc
            if not isinstance(parsed, dict):
                raise ValueError("ESPOCRM_WEBHOOK_SECRETS must be a JSON object")
            return parsed
        return v

    @property
    def sandbox(self) -> bool:
        """Neither system configured: run both simulators in-process."""
        return self.sandbox_mode or (not self.espocrm_url and not self.advoware_url)

    def state_path(self) -> Path:
        """STATE_DIR as an absolute path, the same for every process whatever its working directory."""
        return (PROJECT_ROOT / Path(self.state_dir).expanduser()).resolve()

    def webhook_secrets(self) -> dict[str, str]:
        return {k: v.get_secret_value() for k, v in self.espocrm_webhook_secrets.items()}

    def missing_for_production(self) -> list[str]:
        required = {
            "ESPOCRM_URL": self.espocrm_url,
            "ESPOCRM_API_KEY": self.espocrm_api_key,
            "ADVOWARE_URL": self.advoware_url,
            "ADVOWARE_TOKEN_URL": self.advoware_token_url,
            "ADVOWARE_APP_ID": self.advoware_app_id,
            "ADVOWARE_API_KEY": self.advoware_api_key,
            "ADVOWARE_KANZLEI": self.advoware_kanzlei,
            "ADVOWARE_DATABASE": self.advoware_database,
            "ADVOWARE_USER": self.advoware_user,
            "ADVOWARE_PASSWORD": self.advoware_password,
        }
        return [k for k, v in required.items() if not v]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
