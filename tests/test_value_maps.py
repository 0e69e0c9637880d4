"""Enum value maps: EspoCRM's stock or German salutations <-> Advoware's anrede, and readable errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from domain import beteiligte_mapper as mapper
from domain.beteiligte_mapper import (
    MappingError,
    advoware_to_canonical,
    canonical_to_espo,
    configure_value_maps,
    espo_item_canonical,
    espo_to_canonical,
    value_maps,
)
from domain.value_maps import DEFAULT_FILE, ValueMapError
from sync.espocrm_facts import EspoFacts

STOCK = ["", "Mr.", "Ms.", "Mrs.", "Dr."]
GERMAN = ["", "Herr", "Frau", "Divers", "Firma"]


@pytest.fixture(autouse=True)
def default_maps() -> Iterator[None]:
    configure_value_maps()
    yield
    configure_value_maps()


def with_options(options: list[str]) -> None:
    EspoFacts(None).apply_metadata(  # type: ignore[arg-type]
        {"entityDefs": {"CBeteiligte": {"fields": {"salutationName": {"type": "enum", "options": options}}}}})


@pytest.mark.parametrize(("espo", "advo"), [("Mr.", "Herr"), ("Ms.", "Frau"), ("Mrs.", "Frau"), ("Herr", "Herr"),
                                            ("Frau", "Frau"), ("Divers", "Divers"), ("Firma", "Firma"),
                                            ("", None), (None, None)])
def test_espocrm_values_of_both_option_sets_mean_advowares_anrede(espo: str | None, advo: str | None):
    assert espo_to_canonical({"lastName": "X", "salutationName": espo})["salutationName"] == advo


@pytest.mark.parametrize(("options", "advo", "written"), [
    (STOCK, "Herr", "Mr."), (STOCK, "Frau", "Ms."), (GERMAN, "Herr", "Herr"), (GERMAN, "Frau", "Frau"),
    (None, "Frau", "Frau"),  # options unknown: the first listed value
])
def test_writing_espocrm_takes_a_value_the_field_offers(options: list[str] | None, advo: str, written: str):
    if options is not None:
        with_options(options)
    assert canonical_to_espo({"salutationName": advo}) == {"salutationName": written}
    assert canonical_to_espo({"salutationName": None}) == {"salutationName": None}


def test_equivalent_values_are_no_difference_so_nothing_is_rewritten():
    espo = espo_to_canonical({"lastName": "X", "salutationName": "Mrs."})
    advo = advoware_to_canonical({"name": "X", "anrede": "Frau"})
    assert espo["salutationName"] == advo["salutationName"]


def test_unmapped_values_fail_with_the_value_and_the_file_to_edit():
    dr = r"salutationName 'Dr\.' has no Advoware anrede: add it to .*value_maps\.toml"
    with pytest.raises(MappingError, match=dr):
        espo_to_canonical({"lastName": "X", "salutationName": "Dr."})
    with pytest.raises(MappingError, match=r"Advoware anrede 'Professor' has no EspoCRM salutationName"):
        advoware_to_canonical({"name": "X", "anrede": "Professor"})
    with_options(["", "Mr."])
    with pytest.raises(MappingError, match=r"none of Frau, Ms\., Mrs\. .* is an option of EspoCRM's salutationName"):
        canonical_to_espo({"salutationName": "Frau"})


def test_a_webhook_item_with_an_unmappable_value_leaves_that_field_to_the_sync():
    assert espo_item_canonical({"salutationName": "Dr.", "firstName": "Anna", "id": "x"}) == {"firstName": "Anna"}


def test_phone_numbers_compare_without_separators():
    a = espo_to_canonical({"lastName": "X", "phoneNumber": "+49 30 1234567"})
    b = advoware_to_canonical({"name": "X", "telefon": "+49301234567"})
    c = advoware_to_canonical({"name": "X", "telefon": "+49 (30) 123-45/67"})
    assert a["phoneNumber"] == b["phoneNumber"] == c["phoneNumber"] == "+49301234567"


def test_uncovered_options_are_listed_for_the_setup_check():
    table = value_maps().get("salutationName")
    assert table is not None
    assert table.uncovered_options(STOCK) == ["Dr."]
    assert table.uncovered_options(GERMAN) == []


def test_a_file_can_map_another_enum_and_bad_files_name_the_problem(tmp_path: Path):
    good = tmp_path / "maps.toml"
    extra = '\n[rechtsform]\n"GmbH" = ["GmbH", "Gesellschaft mbH"]\n'
    good.write_text(DEFAULT_FILE.read_text(encoding="utf-8") + extra, encoding="utf-8")
    configure_value_maps(good)
    assert espo_to_canonical({"lastName": "X", "rechtsform": "Gesellschaft mbH"})["rechtsform"] == "GmbH"
    with pytest.raises(MappingError, match="rechtsform 'AG'"):
        espo_to_canonical({"lastName": "X", "rechtsform": "AG"})
    for text, why in [("[vorname]\nA = ['a']", "not a mapped EspoCRM field"),
                      ("[salutationName]\nHerr = []", "must list EspoCRM values"),
                      ("[salutationName", "not valid TOML")]:
        bad = tmp_path / "bad.toml"
        bad.write_text(text, encoding="utf-8")
        with pytest.raises(ValueMapError, match=why):
            configure_value_maps(bad)
    with pytest.raises(ValueMapError, match="not found"):
        configure_value_maps(tmp_path / "missing.toml")
    assert mapper.value_maps() is not None
