"""The doctor's checks of EspoCRM's metadata and webhooks, on the simulator's ``GET Metadata`` answers
(both salutation option sets, OCC on and off, fields dropped or retyped) and on webhook lists."""

from __future__ import annotations

from typing import Any

import pytest

from domain.beteiligte_mapper import configure_value_maps
from installation.setup_contract import (
    audit_line,
    contract_fields,
    entity_defs,
    entity_line,
    enum_lines,
    fields_line,
    occ_line,
)
from installation.setup_report import Line, Status, exit_code
from installation.webhook_setup import Expected, HookEvent, SecretSource, Webhook, hook_url, webhook_lines
from simulators.espocrm.fields import GERMAN_SALUTATIONS, STOCK_SALUTATIONS
from simulators.espocrm.simulator import EspoCRMSimulator

URL = "https://sync.kanzlei.example"


def meta(*, options: tuple[str, ...] = GERMAN_SALUTATIONS, occ: bool = False, missing: tuple[str, ...] = ()) -> Any:
    return EspoCRMSimulator(salutation_options=options, occ=occ, missing_fields=missing).metadata()


def defs_of(m: Any) -> dict[str, Any]:
    defs = entity_defs(m)
    assert defs is not None
    return defs


def test_a_fresh_person_entity_with_the_contract_fields_passes() -> None:
    m = meta()
    assert entity_line(m).status == Status.OK and "Person, stream on" in entity_line(m).text
    line = fields_line(defs_of(m))
    assert line.status == Status.OK and f"all {len(contract_fields())} fields" in line.text


def test_missing_and_wrongly_typed_fields_are_named_with_the_type_to_create() -> None:
    m = meta(missing=("betnr", "firstName"))
    fields = defs_of(m)["fields"]
    fields["advowareLastSync"]["type"] = "date"
    fields["syncStatus"]["options"] = ["pending_sync", "clean", "failed"]
    line = fields_line(defs_of(m))
    assert line.status == Status.FAIL and line.text.startswith("4 of ")
    text = "\n".join(line.details)
    assert 'betnr: missing → Administration → Entity Manager → CBeteiligte → Fields → Add Field: type Integer' in text
    assert "firstName: missing → it comes with a Person entity" in text
    assert "advowareLastSync: type date, the sync needs Date-Time" in text
    assert "syncStatus: options lack syncing, permanently_failed" in text


def test_a_varchar_error_message_field_and_extra_status_options_only_warn() -> None:
    m = meta()
    fields = defs_of(m)["fields"]
    fields["syncErrorMessage"]["type"] = "varchar"
    fields["syncStatus"]["options"] = ["", *fields["syncStatus"]["options"]]
    line = fields_line(defs_of(m))
    assert line.status == Status.WARN
    assert any(d.startswith("syncErrorMessage: type varchar: a Varchar holds 255") for d in line.details)
    assert any(d.startswith("syncStatus: options '' are not the sync's") for d in line.details)


def test_entity_missing_or_not_a_person_or_without_stream() -> None:
    assert entity_line({"entityDefs": {}}).status == Status.FAIL
    m = meta()
    m["scopes"]["CBeteiligte"]["type"] = "Base"
    assert entity_line(m).status == Status.FAIL and "create it again as type Person" in entity_line(m).fix
    m["scopes"]["CBeteiligte"].update(type="Person", stream=False)
    assert entity_line(m).status == Status.WARN and "tick \"Stream\"" in entity_line(m).fix


def test_german_options_map_both_ways() -> None:
    (line,) = enum_lines(defs_of(meta()), configure_value_maps())
    assert line.status == Status.OK and "Herr, Frau, Divers, Firma" in line.text


def test_stock_options_fail_on_dr_and_warn_on_advoware_values_without_option() -> None:
    (line,) = enum_lines(defs_of(meta(options=STOCK_SALUTATIONS)), configure_value_maps())
    assert line.status == Status.FAIL
    text = "\n".join(line.details)
    assert "option 'Dr.' maps to no Advoware anrede → add it to a line of [salutationName] in " \
           "config/value_maps.toml (VALUE_MAPS_FILE)" in text
    assert "Advoware anrede 'Divers' has no EspoCRM option" in text and "Advoware anrede 'Firma'" in text
    assert "'Mr.'" not in text and "'Herr'" not in text


def test_stock_options_without_dr_but_with_divers_and_firma_pass() -> None:
    options = ("", "Mr.", "Ms.", "Mrs.", "Divers", "Firma")
    (line,) = enum_lines(defs_of(meta(options=options)), configure_value_maps())
    assert line.status == Status.OK


def test_occ_off_warns_with_the_entity_manager_steps_and_on_passes() -> None:
    off = occ_line(defs_of(meta(occ=False)))
    assert off.status == Status.WARN
    assert off.fix.startswith("Administration → Entity Manager → CBeteiligte → Edit → tick \"Optimistic")
    assert "Clear Cache" in off.fix and "overwritten" in off.text
    assert occ_line(defs_of(meta(occ=True))).status == Status.OK


def hooks(*, skip_own: bool | None = True, url: str = URL, secret: str | None = "s" * 32) -> list[Webhook]:
    return [Webhook(f"hook{e.value}", e.espo_event, hook_url(url, e), True, skip_own, secret) for e in HookEvent]


def check_hooks(found: list[Webhook], known: dict[str, str], *, derived: bool = False) -> list[Line]:
    sources = {k: SecretSource.STORED for k in known}
    return webhook_lines(found, Expected(URL, derived), known, sources)


def test_three_webhooks_with_known_secrets_pass_and_8x_warns_once_about_skip_own() -> None:
    found = hooks()
    known = {h.id: "s" * 32 for h in found}
    assert [line.status for line in check_hooks(found, known)] == [Status.OK] * 3
    lines = check_hooks(hooks(skip_own=None), known)
    assert [line.status for line in lines] == [Status.OK] * 3 + [Status.WARN]
    assert lines[-1].check == "webhooks skipOwn" and "EspoCRM still sends it" in lines[-1].text


def test_missing_webhook_unknown_or_wrong_secret_and_duplicates() -> None:
    found = hooks()
    create, update, delete = found
    dup = Webhook("hookdup", update.event, update.url, True, True, "s" * 32)
    lines = check_hooks([update, delete, dup], {update.id: "s" * 32, dup.id: "s" * 32, delete.id: "x" * 32})
    by = {line.check: line for line in lines}
    assert by["webhook CBeteiligte.create"].status == Status.FAIL
    assert by["webhook CBeteiligte.create"].fix == f"beteiligte-sync webhooks register --public-url {URL}"
    assert by["webhook CBeteiligte.update"].status == Status.WARN and "arrives 2 times" in by[
        "webhook CBeteiligte.update"].details[0]
    assert "not EspoCRM's" in by["webhook CBeteiligte.delete"].details[0]
    unknown = check_hooks([create], {})[0]
    assert unknown.status == Status.FAIL and "its secret is unknown" in unknown.details[0]


def test_a_derived_url_that_differs_only_warns() -> None:
    found = hooks(url="https://other.example")
    lines = check_hooks(found, {h.id: "s" * 32 for h in found}, derived=True)
    assert all(line.status == Status.WARN for line in lines)
    assert "set PUBLIC_URL" in lines[0].details[0]
    assert all(line.status == Status.FAIL for line in check_hooks(found, {h.id: "s" * 32 for h in found}))


def test_rendering_and_exit_codes() -> None:
    line = Line(Status.FAIL, "x", "broken", "do this", ("a → b",))
    assert line.render() == ["✗ x: broken", "    fix: do this", "    a → b"]
    assert exit_code([line]) == 1
    assert exit_code([Line(Status.WARN, "y", "meh"), Line(Status.OK, "z", "fine")]) == 0


@pytest.fixture(autouse=True)
def _default_value_maps() -> None:
    configure_value_maps()



def test_unaudited_mapped_fields_warn_and_name_each_field() -> None:
    """Issue 17 item 6: only audited fields let the sync find a save its release overwrote."""
    sim = EspoCRMSimulator(salutation_options=GERMAN_SALUTATIONS)
    sim.set_audited(["lastName", "addressCity"])
    line = audit_line(defs_of(sim.metadata()))
    assert line.status == Status.WARN and "not audited" in line.text and "Audited" in line.fix
    assert "addressCity" not in line.details and "phoneNumber" in line.details
    from domain.beteiligte_mapper import FIELDS
    sim.set_audited([f.espo for f in FIELDS])
    assert audit_line(defs_of(sim.metadata())).status == Status.OK
