"""Where the installation's fingerprint key comes from, and the check that every process uses the same.

``FINGERPRINT_KEY`` when set (several machines on one ``REDIS_URL``: give each the same value);
otherwise ``fingerprint.key`` in ``STATE_DIR``, made (64 random hex digits, 0600) by the first process
that needs it. The store keeps the key's id (never the key): a process with another key refuses to
start, since its fingerprints would match nothing and every record would look changed.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import redis

from adapters.embedded_redis import EmbeddedRedis, StartupError
from config.settings import Settings
from domain.fingerprint_key import key_id

KEY_FILE = "fingerprint.key"
KEY_ID_KEY = "bsync:fingerprint_key_id"


class FingerprintKeyRefused(StartupError):
    pass


def fingerprint_key(settings: Settings) -> bytes:
    if settings.fingerprint_key is not None:
        return settings.fingerprint_key.get_secret_value().encode()
    return _key_file(settings.state_path() / KEY_FILE)


def _key_file(path: Path) -> bytes:
    try:
        return path.read_text().strip().encode()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it meanwhile
        return path.read_text().strip().encode()
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_hex(32) + "\n")
    return path.read_text().strip().encode()


def refuse_another_key(settings: Settings, embedded: EmbeddedRedis | None, key: bytes) -> None:
    """One line (and no start) when the store's fingerprints were made with another key."""
    client = embedded.sync_client() if embedded else redis.Redis.from_url(str(settings.redis_url))
    ours = key_id(key)
    try:
        with client:
            client.set(KEY_ID_KEY, ours, nx=True)
            stored = client.get(KEY_ID_KEY)
    except redis.RedisError:
        return  # the command reports an unreachable store itself
    theirs = stored.decode() if isinstance(stored, bytes) else str(stored)
    if theirs != ours:
        where = "FINGERPRINT_KEY" if settings.fingerprint_key else f"{settings.state_path() / KEY_FILE}"
        raise FingerprintKeyRefused(
            f"fingerprint key: this store's fingerprints were made with another key (id {theirs}, this "
            f"process has {ours} from {where}): use the same key on every process (FINGERPRINT_KEY, or "
            "copy fingerprint.key of STATE_DIR); a lost key costs the bases (see the docs, reliability)")
