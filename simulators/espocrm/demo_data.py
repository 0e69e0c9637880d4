"""EspoCRM simulator: sample Beteiligte for sandbox mode and ``--seed-demo``."""

from __future__ import annotations

from typing import Any

from simulators.espocrm.fields import SALUTATION
from simulators.espocrm.simulator import EspoCRMSimulator

DEMO_BETEILIGTE: list[dict[str, Any]] = [
    {
        "salutationName": "Frau", "firstName": "Anna", "lastName": "Müller", "titel": "Dr.",
        "rechtsform": "natürliche Person", "dateOfBirth": "1980-04-12",
        "emailAddress": "anna.mueller@example.org", "phoneNumber": "+49 30 1234567",
        "addressStreet": "Hauptstraße 1", "addressPostalCode": "10115", "addressCity": "Berlin",
        "addressCountry": "Deutschland", "beteiligtenRolle": "Mandant",
    },
    {
        "salutationName": "Herr", "firstName": "Jörg", "lastName": "Schäfer",
        "rechtsform": "natürliche Person", "dateOfBirth": "1975-11-03",
        "emailAddress": "j.schaefer@example.org", "addressStreet": "Lindenallee 7",
        "addressPostalCode": "80331", "addressCity": "München", "addressCountry": "Deutschland",
        "beteiligtenRolle": "Gegner",
    },
    {
        "salutationName": "Firma", "lastName": "Beispiel Bau GmbH", "rechtsform": "GmbH",
        "handelsregisterNummer": "HRB 123456", "registergericht": "Amtsgericht Hamburg",
        "phoneNumber": "+49 40 987654", "addressStreet": "Hafenweg 12", "addressPostalCode": "20457",
        "addressCity": "Hamburg", "addressCountry": "Deutschland",
        "description": "Bauträger, Ansprechpartner Herr Weber", "beteiligtenRolle": "Mandant",
    },
]


# The stock option a German salutation stands for, when the simulator has EspoCRM's stock options.
STOCK_EQUIVALENT = {"Herr": "Mr.", "Frau": "Ms.", "Divers": "", "Firma": ""}


def _fitting(fields: dict[str, Any], options: tuple[str, ...]) -> dict[str, Any]:
    salutation = fields.get(SALUTATION)
    if salutation is None or salutation in options:
        return fields
    return {**fields, SALUTATION: STOCK_EQUIVALENT.get(salutation, "")}


def seed_demo(sim: EspoCRMSimulator) -> list[dict[str, Any]]:
    """Create the sample records (as a UI user, so they are queued for webhooks too); salutations
    follow the simulator's options (German ones, or their stock equivalents)."""
    return [sim.seed(**_fitting(fields, sim.salutation_options)) for fields in DEMO_BETEILIGTE]
