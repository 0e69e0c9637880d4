"""EspoCRM simulator: what a real EspoCRM 8.1.5 and a current 9.x do differently (spec §1.2, §1.3).

Each :class:`Behaviour` is a small set of flags; code asks the flag, never the version number.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from http import HTTPStatus

# Attributes a real 8.1.5 adds to every update webhook item (before ``id``), in this order.
# ``versionNumber`` only when the record has one (optimistic concurrency control on).
# Note: the brief and spec §1.2 name ``modifiedAt`` too; 8.1.5's Webhook\Manager source lists
# ``modifiedAt`` in its skip list. We follow the spec; drop it here if a capture says otherwise.
UPDATE_ITEM_EXTRAS_8 = (
    "modifiedAt",
    "versionNumber",
    "modifiedById",
    "modifiedByName",
    "teamsNames",
    "followersIds",
    "followersNames",
)


class Profile(StrEnum):
    V8 = "8"  # EspoCRM 8.1.5
    V9 = "9"  # current EspoCRM (9.x)


@dataclass(frozen=True)
class Behaviour:
    profile: Profile
    # POST /Webhook honours ``skipOwn`` (9.2+); without it the option is dropped and not stored
    supports_skip_own: bool
    # status of a successful POST /Webhook
    webhook_created_status: int
    # a save that changes no value still bumps modifiedAt/versionNumber and queues an update event
    noop_save_counts: bool
    # attributes every update item carries besides the changed ones
    update_item_extras: tuple[str, ...]
    # sends the ``Signature`` header (hex digest); ``X-Signature`` (raw digest) is always sent
    sends_signature_header: bool
    # X-Hmac-Authorization may carry the hex digest (the raw binary digest is always accepted)
    hmac_accepts_hex: bool
    # how often the webhook job runs by default, in seconds
    webhook_job_interval_s: float
    # optimistic concurrency: the version is checked and the record written in one atomic step.
    # EspoCRM compares ``X-Version-Number`` with the fetched record in PHP and then saves without a
    # condition: two PUTs carrying the same current version can both succeed when they interleave
    # (observed on 8.1.5: 11 of 40 concurrent pairs both answered 200; 9.x's OptimisticProcessor
    # compares in PHP the same way). Switch it for a version shown to lock the row.
    occ_check_atomic: bool = False
    # Administration > Settings has "Phone number extensions" (``phoneNumberExtensions``, since 8.3.0)
    has_phone_extensions: bool = False


PROFILES: dict[Profile, Behaviour] = {
    Profile.V8: Behaviour(
        profile=Profile.V8,
        supports_skip_own=False,
        webhook_created_status=HTTPStatus.CREATED,
        noop_save_counts=True,
        update_item_extras=UPDATE_ITEM_EXTRAS_8,
        sends_signature_header=False,
        hmac_accepts_hex=False,
        webhook_job_interval_s=300.0,
    ),
    Profile.V9: Behaviour(
        profile=Profile.V9,
        supports_skip_own=True,
        webhook_created_status=HTTPStatus.OK,
        noop_save_counts=False,
        update_item_extras=(),
        sends_signature_header=True,
        hmac_accepts_hex=True,
        webhook_job_interval_s=120.0,
        has_phone_extensions=True,
    ),
}

# Both versions: the job moves at most this many events per run (``webhookQueueEventPortionSize``)
# and sends at most this many items in one POST (``webhookBatchSize``).
EVENT_PORTION_SIZE = 20
BATCH_SIZE = 50


def behaviour_of(profile: Profile | str) -> Behaviour:
    """``"8"``/``"9"`` (or a :class:`Profile`) -> its behaviour; anything else is a ValueError."""
    return PROFILES[Profile(str(profile))]
