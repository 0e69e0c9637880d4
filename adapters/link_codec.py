"""The stored form of a link (the base of the last sync): compact, so a linked record costs Redis
less than 1 KB with its other keys.

Fingerprints are stored by field position (the mapper's field order, named by :data:`LINK_LAYOUT`),
each 16-hex-digit fingerprint as 11 base64 characters. The older spelled-out JSON is still read. A
link written for another field order, or unreadable, is ``None``: a missing base, which is safe (it
degrades to a full compare).

A link names the form of its fingerprints (``k``, :func:`domain.fingerprint_key.scheme`). One without
(written before the installation had a fingerprint key) is read in this process's keyed form
(:func:`domain.fingerprint_key.keyed`) and keeps its stored text in ``legacy_raw``, so the sync check
can replace it (compare-and-set) and no plain fingerprint stays in Redis. One of another key is
``None``: a missing base.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

from domain.beteiligte_mapper import FIELDS
from domain.decision import Base
from domain.fingerprint_key import keyed, scheme


@dataclass
class Link:
    betnr: int
    row_id: str | None
    espo: dict[str, str]
    advo: dict[str, str]
    synced_at: float
    # Advoware's edit time of the values still owed to EspoCRM, when our own Advoware write has
    # moved ``geaendertAm`` since (ISO, UTC); ``None`` when nothing is owed.
    advo_edited_at: str | None = None
    # The stored text of a link read from the plain form (before the fingerprint key): to be replaced.
    legacy_raw: str | None = field(default=None, compare=False, repr=False)

    def base(self) -> Base:
        return Base(espo=self.espo, advo=self.advo, row_id=self.row_id)


LINK_FIELDS = tuple(f.espo for f in FIELDS)
# Names the field order of compact links: a link written for another order is not trusted (a missing
# base, which is safe: it degrades to a full compare).
LINK_LAYOUT = hashlib.sha256(",".join(LINK_FIELDS).encode()).hexdigest()[:8]
_HEX16 = frozenset("0123456789abcdef")


def _pack_fp(fp: str) -> str:
    """A 16-hex-digit fingerprint as 11 base64 characters; other markers (``pending``) as they are."""
    if len(fp) == 16 and set(fp) <= _HEX16:
        return base64.urlsafe_b64encode(bytes.fromhex(fp)).decode().rstrip("=")
    return fp


_URLSAFE = bytes.maketrans(b"-_", b"+/")


@lru_cache(maxsize=8192)  # a sync check unpacks every field of every link; common values repeat
def _unpack_fp(text: str) -> str:
    if len(text) == 11:  # base64.urlsafe_b64decode, without its per-call overhead (a third of the cost)
        return binascii.a2b_base64((text + "=").encode().translate(_URLSAFE)).hex()
    return text


def _pack_side(fps: dict[str, str]) -> str:
    if set(fps) - set(LINK_FIELDS) or any("," in v for v in fps.values()):
        raise ValueError("fingerprints outside the link layout")
    return ",".join(_pack_fp(fps[f]) if f in fps else "" for f in LINK_FIELDS)


def _unpack_side(text: str) -> dict[str, str]:
    parts = text.split(",")
    if len(parts) != len(LINK_FIELDS):
        raise ValueError("link of another layout")
    return {f: _unpack_fp(v) for f, v in zip(LINK_FIELDS, parts, strict=True) if v}


def encode_link(link: Link) -> str:
    """The stored form of a link: compact, or spelled out when it does not fit the layout."""
    try:
        compact = {"v": LINK_LAYOUT, "b": link.betnr, "r": link.row_id, "e": _pack_side(link.espo),
                   "a": _pack_side(link.advo), "t": link.synced_at}
    except ValueError:
        spelled = {k: v for k, v in asdict(link).items() if k != "legacy_raw"}
        return json.dumps({**spelled, "k": scheme()} if scheme() else spelled)
    if link.advo_edited_at is not None:
        compact["ae"] = link.advo_edited_at
    if scheme():
        compact["k"] = scheme()
    return json.dumps(compact, separators=(",", ":"))


def decode_link(raw: Any) -> Link | None:
    """A stored link, either form; ``None`` when unreadable or of another fingerprint key (a missing
    base: safe). A plain link (no key yet) is read in this process's form (module doc)."""
    try:
        data = json.loads(raw)
        form = data.pop("k", "")
        if form and form != scheme():
            return None
        if "v" not in data:
            link = Link(**data)
        elif data["v"] != LINK_LAYOUT:
            return None
        else:
            link = Link(betnr=int(data["b"]), row_id=data["r"], espo=_unpack_side(data["e"]),
                        advo=_unpack_side(data["a"]), synced_at=float(data["t"]), advo_edited_at=data.get("ae"))
    except (TypeError, ValueError, KeyError, AttributeError, binascii.Error):
        return None
    if form == scheme():
        return link
    link.espo = {f: keyed(fp) for f, fp in link.espo.items()}
    link.advo = {f: keyed(fp) for f, fp in link.advo.items()}
    link.legacy_raw = raw.decode() if isinstance(raw, bytes) else str(raw)
    return link
