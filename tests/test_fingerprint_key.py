"""Issue 19: what Redis keeps about a client's values cannot be reversed without the installation's
key, bases stored before the key are taken over without a resync, and a process with another key
refuses to start instead of seeing every record as changed."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterator

import pytest
from redis import Redis

from domain.decision import configure_fingerprint_key
from simulators.common import free_port
from tests.conftest import SAMPLE, TEST_FINGERPRINT_KEY
from tests.embedded_support import cli, env_for, state_root
from tests.test_create_match import _staff_creates
from tests.test_lost_state_index import POST, running_firm
from tests.testbed import Testbed

pytestmark = pytest.mark.redis


def plain(value: str | None) -> str:
    """A fingerprint as it was stored before the key: the first 16 hex digits of a plain SHA-256."""
    return hashlib.sha256(json.dumps(value).encode()).hexdigest()[:16]


def everything_stored(url: str) -> str:
    client = Redis.from_url(url)
    out = []
    for key in client.scan_iter("*"):
        kind = client.type(key)
        if kind == b"string":
            out.append(f"{key!r}={client.get(key)!r}")
        elif kind == b"hash":
            out.append(f"{key!r}={client.hgetall(key)!r}")
        else:
            out.append(repr(key))
    return "\n".join(out)


def packed(fp: str) -> str:  # how the link codec stores a fingerprint (11 base64 characters)
    import base64
    return base64.urlsafe_b64encode(bytes.fromhex(fp)).decode().rstrip("=")


@pytest.fixture
def plain_then_keyed() -> Iterator[None]:
    try:
        yield
    finally:
        configure_fingerprint_key(TEST_FINGERPRINT_KEY.encode())  # the session's key, for the tests after


async def test_no_value_of_a_record_can_be_found_by_trying_its_fingerprint(firm_both: Testbed,
                                                                          real_redis_url: str) -> None:
    tb = firm_both
    rec = tb.espo.seed(**SAMPLE)
    await tb.flush()
    assert tb.espo_record(rec["id"])["syncStatus"] == "clean"
    stored = everything_stored(real_redis_url)
    for field in ("dateOfBirth", "firstName", "lastName", "salutationName", "emailAddress"):
        fp = plain(SAMPLE[field])
        assert fp not in stored and packed(fp) not in stored, field  # a guess of the value finds nothing


async def test_bases_from_before_the_key_are_taken_over_without_a_resync(
    firm_both: Testbed, real_redis_url: str, plain_then_keyed: None,
) -> None:
    tb = firm_both
    configure_fingerprint_key(None)  # an installation before this release
    rec = tb.espo.seed(**SAMPLE)
    await tb.flush()
    rec = tb.espo_record(rec["id"])
    raw = Redis.from_url(real_redis_url).get(f"bsync:link:{rec['id']}")
    assert raw is not None and b'"k"' not in raw and packed(plain(SAMPLE["dateOfBirth"])).encode() in raw

    configure_fingerprint_key(TEST_FINGERPRINT_KEY.encode())  # upgraded: the key is there
    tb.reset_calls()
    await tb.sync_check()
    await tb.flush()
    assert tb.writes() == 0, tb.calls()  # nothing looked changed: no resync, no echo
    raw = Redis.from_url(real_redis_url).get(f"bsync:link:{rec['id']}")
    assert raw is not None and b'"k":"h1:' in raw
    assert packed(plain(SAMPLE["dateOfBirth"])) not in everything_stored(real_redis_url)

    tb.espo.user_edit(rec["id"], addressCity="Potsdam")  # change detection works on the taken-over base
    await tb.flush()
    assert tb.advo_record(rec["betnr"])["ort"] == "Potsdam"


NOWHERE = "http://127.0.0.1:9"
SYSTEMS = {"ESPOCRM_URL": NOWHERE, "ESPOCRM_API_KEY": "k", "ADVOWARE_URL": NOWHERE, "ADVOWARE_TOKEN_URL": NOWHERE,
           "ADVOWARE_APP_ID": "a", "ADVOWARE_API_KEY": "YQ==", "ADVOWARE_KANZLEI": "k", "ADVOWARE_DATABASE": "d",
           "ADVOWARE_USER": "u", "ADVOWARE_PASSWORD": "p"}


def test_the_key_file_is_made_once_private_and_another_key_is_refused(real_redis_url: str) -> None:
    url = real_redis_url.rsplit("/", 1)[0] + "/13"
    Redis.from_url(url).flushdb()
    with state_root() as root:
        env = {k: v for k, v in env_for(root / "state", free_port(), REDIS_URL=url, **SYSTEMS).items()
               if k != "FINGERPRINT_KEY"}
        first = cli(env, "sync-check", cwd=root)  # the systems are away; the store takes the key's id first
        key_file = root / "state" / "fingerprint.key"
        assert key_file.exists(), first.stderr
        assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
        made = key_file.read_text()
        again = cli(env, "sync-check", cwd=root)
        assert key_file.read_text() == made and "fingerprint key" not in again.stderr  # made once, accepted
        other = cli({**env, "FINGERPRINT_KEY": "another-key-" + "x" * 40}, "sync-check", cwd=root)
    assert other.returncode == 2, other.stdout + other.stderr
    assert other.stderr.count("\n") == 1 and other.stderr.startswith("fingerprint key: "), other.stderr
    assert "another key" in other.stderr and "another-key" not in other.stderr  # never the key itself
    assert Redis.from_url(url).get("bsync:fingerprint_key_id") is not None


async def test_an_index_of_another_key_is_rebuilt_before_a_create_no_duplicate(
    firm_both: Testbed, plain_then_keyed: None,
) -> None:
    """A key replaced (lost, or 0.1.0's plain fingerprints): the match index named with the old one finds
    nothing, so a create first rebuilds it under the new key, and a copy of an Advoware party is linked."""
    tb = firm_both
    existing = await running_firm(tb)
    configure_fingerprint_key(b"another-installation-key-" + b"y" * 40)  # the old key is gone
    tb.reset_calls()
    rec = await _staff_creates(tb)
    assert POST not in tb.advo.calls.snapshot()
    assert len(tb.advo.all()) == 2, "Anna created a second time in Advoware"
    assert rec["betnr"] == existing["betNr"] and rec["syncStatus"] == "clean", rec["syncErrorMessage"]
