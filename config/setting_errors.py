"""What a wrong setting reads like: one :class:`ConfigError` line per mistake, naming the variable, what is
wrong (never a secret's value) and the fix (:data:`FIXES`). Kept apart from :mod:`config.settings`, which
holds the values and their checks."""

from __future__ import annotations

import re

from pydantic import ValidationError

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")  # the values of entrypoints.log_format.LogFormat (config imports nothing of ours)
FINGERPRINT_KEY_MIN = 32  # characters, e.g. from `openssl rand -hex 32`
STATUS_TOKEN_MIN = 16  # characters: a token a person cannot guess, e.g. from `openssl rand -hex 16`
SECRET_MIN = {"status_token": STATUS_TOKEN_MIN, "fingerprint_key": FINGERPRINT_KEY_MIN}
HTTP_SCHEMES = ("http://", "https://")
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
API_SUFFIX = re.compile(r"/api/v1/*$")
# Advoware's URL configurator (public client code, docs/advoware.md): asked with ADVOWARE_KANZLEI when
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
