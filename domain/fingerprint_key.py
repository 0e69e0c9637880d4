"""The installation's fingerprint key: what is stored in Redis about a client's values cannot be
reversed without it.

A fingerprint was the first 16 hex digits of a value's SHA-256: for the few values a field can take (a
birth date, a salutation, a first name from a list) anyone with the store could find them by trying.
With a key, a fingerprint is the HMAC-SHA-256 of that digest under the key, so trying needs the key,
which is kept outside Redis (``FINGERPRINT_KEY``, or a file beside the state; see
``entrypoints.fingerprint_secret``). Because the keyed form is computed from the plain one, a stored
plain fingerprint is converted without the value it came from (:func:`keyed`): bases stored before the
key existed are taken over as they are read, with no resync.

Pure: the key is set once per process by the composition root.
"""

from __future__ import annotations

import hashlib
import hmac

KEY_ID_MESSAGE = b"beteiligte-sync fingerprint key id"
_HEX = frozenset("0123456789abcdef")


class _State:
    key: bytes | None = None
    scheme = ""  # "" for plain fingerprints; "h1:<key id>" for keyed ones


def key_id(key: bytes) -> str:
    """Names a key without telling it (stored in Redis: every process must use the same key)."""
    return hmac.new(key, KEY_ID_MESSAGE, hashlib.sha256).hexdigest()[:12]


def set_key(key: bytes | None) -> None:
    _State.key = key
    _State.scheme = f"h1:{key_id(key)}" if key else ""


def scheme() -> str:
    """The form of the fingerprints this process writes: stored with them, so a reader can tell."""
    return _State.scheme


def keyed(fp: str) -> str:
    """A plain 16-hex-digit fingerprint in this process's form; markers (``pending``) as they are."""
    key = _State.key
    if key is None or len(fp) != 16 or not set(fp) <= _HEX:
        return fp
    return hmac.new(key, fp.encode(), hashlib.sha256).hexdigest()[:16]


def text_hash(text: str, length: int) -> str:
    """A keyed (or, without a key, plain) digest of ``text``: for names of keys in Redis."""
    key = _State.key
    plain = hashlib.sha256(text.encode()).hexdigest()
    return (hmac.new(key, plain.encode(), hashlib.sha256).hexdigest() if key else plain)[:length]
