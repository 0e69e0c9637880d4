"""Filling an EspoCRM record with the values only the Beteiligter it is linked to has (a create that found
its party in Advoware, issue 11).

The values are written as Advoware holds them, in the spelling EspoCRM's "International phone numbers"
setting accepts (:func:`domain.beteiligte_mapper.canonical_to_espo`). A phone number EspoCRM still
refuses (letters, too few digits, too long) is left out and the rest written: the pair is linked
without it, so the next decision owes it to EspoCRM, whose refusal then fails the record readably
(:class:`sync.espocrm_facts.PhoneRefused`) until the number is corrected in Advoware, whose new
``rowId`` brings the record back. Failing the link instead would leave an unlinked record that no
Advoware correction retries.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from adapters.errors import ValidationError
from domain.beteiligte_mapper import Canonical, canonical_to_espo, espo_to_canonical
from domain.sync_status import ENTITY
from sync.espocrm_facts import EspoFacts, refused_phone
from sync.sync_log import log_record

if TYPE_CHECKING:
    from adapters.espocrm_api import EspoCRMAPI


async def fill_espocrm(espo: EspoCRMAPI, facts: EspoFacts | None, espo_id: str, fill: Canonical,
                       obj: dict[str, Any]) -> Canonical:
    """Write ``fill`` (values only the Beteiligter ``obj`` has) to the record; what EspoCRM made of each
    value written (a phone number it refuses is left out: not in the result)."""
    international = facts.phone_international if facts is not None else None
    try:
        written = await espo.update(ENTITY, espo_id, canonical_to_espo(fill, obj, international))
    except ValidationError as exc:
        refused = refused_phone(exc)
        if refused is None or refused[0] not in fill:
            raise
        log_record(logging.WARNING, "EspoCRM refuses the phone number of the Beteiligter found: linked without it",
                   espo_id=espo_id, betnr=obj.get("betNr"), decision="fill_phone_refused", field=refused[0])
        fill = {f: v for f, v in fill.items() if f != refused[0]}
        if not fill:
            return {}
        written = await espo.update(ENTITY, espo_id, canonical_to_espo(fill, obj, international))
    values = espo_to_canonical(written)
    return {f: values[f] for f in fill}
