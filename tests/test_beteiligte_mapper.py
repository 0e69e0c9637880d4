import pytest

from domain.beteiligte_mapper import (
    FIELDS,
    MappingError,
    advoware_to_canonical,
    canonical_to_advoware,
    canonical_to_espo,
    espo_to_canonical,
    mapped_changes,
)

ESPO = {
    "id": "0123456789abcdef0",
    "lastName": "Müller",
    "firstName": "Anna",
    "salutationName": "Frau",
    "titel": "Dr.",
    "rechtsform": "natürliche Person",
    "dateOfBirth": "1980-02-29",
    "handelsregisterNummer": None,
    "registergericht": "",
    "emailAddress": "anna@example.org",
    "phoneNumber": "+49 30 123",
    "addressStreet": "Hauptstr. 1",
    "addressPostalCode": "10115",
    "addressCity": "Berlin",
    "addressCountry": "Deutschland",
    "description": "unmapped",
}

ADVO = {
    "betNr": 7,
    "rowId": "AAAAAAAAB9E=",
    "name": "Müller",
    "vorname": "Anna",
    "anrede": "Frau",
    "titel": "Dr.",
    "rechtsform": "natürliche Person",
    "geburtsdatum": "1980-02-29T00:00:00",
    "handelsRegisterNummer": None,
    "registergericht": None,
    "email": "anna@example.org",
    "telefon": "+49 30 123",
    "strasse": "Hauptstr. 1",
    "plz": "10115",
    "ort": "Berlin",
    "land": "Deutschland",
    "kurzname": "MÜLLA",
    "briefAnrede": "Sehr geehrte Frau Dr. Müller",
    "geburtsname": "Schmidt",
    "zusatz": "VIP",
    "geaendertAm": "2026-03-29T02:30:00.000",
}


def test_both_sides_reduce_to_the_same_canonical_values():
    assert espo_to_canonical(ESPO) == advoware_to_canonical(ADVO)


@pytest.mark.parametrize(
    ("espo_value", "canonical"),
    [("", None), ("   ", None), (None, None), ("x", "x"), (" x ", " x ")],
)
def test_empty_strings_fold_to_none(espo_value, canonical):
    assert espo_to_canonical({**ESPO, "titel": espo_value})["titel"] == canonical


@pytest.mark.parametrize(
    ("advo", "espo"),
    [("1980-02-29T00:00:00", "1980-02-29"), (None, None), ("2001-12-31T00:00:00.000", "2001-12-31")],
)
def test_dates_convert_advoware_to_espo(advo, espo):
    assert advoware_to_canonical({**ADVO, "geburtsdatum": advo})["dateOfBirth"] == espo


def test_dates_convert_espo_to_advoware():
    body = canonical_to_advoware(espo_to_canonical(ESPO), ADVO)
    assert body["geburtsdatum"] == "1980-02-29T00:00:00"


def test_malformed_date_is_a_mapping_error():
    with pytest.raises(MappingError, match="geburtsdatum"):
        advoware_to_canonical({**ADVO, "geburtsdatum": "gestern"})


def test_put_body_carries_unmapped_fields_and_row_id():
    values = {**espo_to_canonical(ESPO), "addressCity": "Potsdam"}
    body = canonical_to_advoware(values, ADVO)
    assert body["ort"] == "Potsdam"
    for f in ("kurzname", "briefAnrede", "geburtsname", "zusatz"):
        assert body[f] == ADVO[f]
    assert body["rowId"] == ADVO["rowId"]
    assert "betNr" not in body and "geaendertAm" not in body


def test_post_body_has_every_writable_field_and_no_row_id():
    body = canonical_to_advoware(espo_to_canonical(ESPO))
    assert "rowId" not in body
    assert set(body) >= {f.advo for f in FIELDS}


def test_advoware_needs_a_name():
    with pytest.raises(MappingError, match="lastName"):
        canonical_to_advoware({**espo_to_canonical(ESPO), "lastName": None})


def test_none_never_sent_for_a_required_espo_field():
    with pytest.raises(MappingError, match="lastName"):
        canonical_to_espo({"lastName": None})
    assert canonical_to_espo({"titel": None, "addressCity": "Köln"}) == {"titel": None, "addressCity": "Köln"}


def test_canonical_to_espo_drops_unknown_fields():
    assert canonical_to_espo({"kurzname": "x", "firstName": "A"}) == {"firstName": "A"}


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ({"description": "x", "id": "a"}, set()),
        ({"syncStatus": "clean", "id": "a"}, set()),
        ({"addressCity": "Bonn", "description": "y", "id": "a"}, {"addressCity"}),
    ],
)
def test_mapped_changes(item, expected):
    assert mapped_changes(item) == expected


# -- phone numbers: compared by key, written as the source holds them -----------------------------
def _phone(value: str, side: str = "espo") -> str | None:
    record = {"lastName": "x", "phoneNumber": value} if side == "espo" else {"name": "x", "telefon": value}
    return (espo_to_canonical(record) if side == "espo" else advoware_to_canonical(record))["phoneNumber"]


@pytest.mark.parametrize("spelling", ["+49 30 1234567", "+49301234567", "+49 (0)30 1234567", "0049 30 1234567",
                                      "030 1234567", "030-1234567", "(030) 123 45 67", "030/1234567"])
def test_spellings_of_one_number_are_one_value_on_both_sides(spelling):
    assert _phone(spelling) == _phone(spelling, "advo") == "+49301234567"


@pytest.mark.parametrize(("a", "b"), [
    ("030 1234567", "030 1234568"),  # another number
    ("030 1234567", "040 1234567"),
    ("+49 30 1234567", "+43 30 1234567"),  # another country
    ("+49 30 1234567 ext. 12", "+49 30 1234567"),  # the extension is part of the number
    ("+49 30 1234567 ext. 12", "+49 30 1234567 ext. 13"),
])
def test_a_change_of_digits_is_a_change(a, b):
    assert _phone(a) != _phone(b)


def test_an_extension_is_one_value_however_it_is_marked():
    assert _phone("+49 30 1234567 ext. 12") == _phone("+49301234567 x12") == _phone("+49 30 1234567 #12")


def test_advoware_is_sent_the_phone_number_as_espocrm_holds_it():
    record = {**ESPO, "phoneNumber": "030 1234567"}
    assert canonical_to_advoware(espo_to_canonical(record), ADVO, record)["telefon"] == "030 1234567"
    assert canonical_to_advoware(espo_to_canonical(record), source=record)["telefon"] == "030 1234567"


@pytest.mark.parametrize(("advo", "international", "written"), [
    ("0221 / 12 34 56", True, "+49221123456"),  # EspoCRM refuses a national number: its E.164 form
    ("0221 / 12 34 56", False, "0221 12 34 56"),  # kept as typed, but "/" is refused: a space
    ("0221 / 12 34 56", None, "+49221123456"),  # setting not readable: what both settings accept
    ("030 1234567", False, "030 1234567"),
    ("+49 30 1234567", True, "+49 30 1234567"),  # EspoCRM makes it E.164 itself
    ("+49 30 1234567", False, "+49 30 1234567"),
    ("+49 (30) 123-45/67", False, "+49 (30) 123-45 67"),
])
def test_espocrm_is_sent_the_advoware_phone_number_in_a_form_it_accepts(advo, international, written):
    obj = {**ADVO, "telefon": advo}
    body = canonical_to_espo({"phoneNumber": advoware_to_canonical(obj)["phoneNumber"]}, obj, international)
    assert body == {"phoneNumber": written}
    assert _phone(written) == _phone(advo, "advo")


def test_a_decided_value_that_is_not_the_sources_is_written_as_decided():
    obj = {**ADVO, "telefon": "040 999"}
    assert canonical_to_espo({"phoneNumber": "+49301234567"}, obj, True) == {"phoneNumber": "+49301234567"}
