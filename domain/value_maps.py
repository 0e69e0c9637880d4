"""Value maps of enum fields whose options differ between EspoCRM and Advoware.

A real EspoCRM's ``salutationName`` is an enum with the stock options ``Mr.``, ``Ms.``, ``Mrs.``,
``Dr.`` (admins often change them to ``Herr``/``Frau``/``Divers``/``Firma``); Advoware's ``anrede``
takes ``Herr``, ``Frau``, ``Divers``, ``Firma``. ``config/value_maps.toml`` lists, per EspoCRM field,
each Advoware value with the EspoCRM values that mean it::

    [salutationName]
    Herr = ["Herr", "Mr."]

The canonical form of a mapped enum value is the Advoware value. Reading EspoCRM maps every listed
value; writing EspoCRM takes the first listed value the field's options offer (read from EspoCRM's
metadata; without them, the first listed one). A value with no mapping is a :class:`MappingError`
naming the value and the file, so the record fails readably instead of looping on ``400``.
Fields without a table pass through unchanged.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from domain.toml_lines import where_in_toml

DEFAULT_FILE = Path(__file__).resolve().parent.parent / "config" / "value_maps.toml"


# The values Advoware's enum fields take (the wire contract, external-apis.md §2.2): the left side of a
# value map may name only these.
ADVOWARE_VALUES: dict[str, tuple[str, ...]] = {"anrede": ("Herr", "Frau", "Divers", "Firma")}


class MappingError(ValueError):
    """A value cannot be represented on the other side (message is readable by a person)."""


class ValueMapError(ValueError):
    """The value map file itself is wrong (message names the file and the fix)."""


@dataclass
class EnumMap:
    espo_field: str
    advo_field: str
    to_espo: dict[str, list[str]]  # Advoware value -> EspoCRM values, preferred first
    source: str
    espo_options: list[str] | None = None  # the options EspoCRM offers, once known
    _to_advo: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    _advo_by_fold: dict[str, str] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        for advo_value, espo_values in self.to_espo.items():
            for v in espo_values:
                self._to_advo.setdefault(_fold(v), advo_value)
        self._advo_by_fold = {_fold(k): k for k in self.to_espo}

    def from_espo(self, value: str) -> str:
        """Advoware's value for an EspoCRM value (case and surrounding blanks do not matter)."""
        try:
            return self._to_advo[_fold(value)]
        except KeyError:
            raise MappingError(
                f"{self.espo_field} '{value}' has no Advoware {self.advo_field}: add it to {self.source} "
                f"(known: {', '.join(sorted({v for vs in self.to_espo.values() for v in vs}))})") from None

    def from_advoware(self, value: str) -> str:
        """The value as the file spells it (``frau `` typed by hand in Advoware is ``Frau``)."""
        try:
            return self._advo_by_fold[_fold(value)]
        except KeyError:
            raise MappingError(
                f"Advoware {self.advo_field} '{value}' has no EspoCRM {self.espo_field}: add it to "
                f"{self.source} (known: {', '.join(sorted(self.to_espo))})") from None

    def espo_value(self, canonical: str) -> str:
        candidates = self.to_espo.get(canonical)
        if not candidates:
            raise MappingError(f"Advoware {self.advo_field} '{canonical}' has no EspoCRM {self.espo_field}: "
                               f"add it to {self.source}")
        if self.espo_options is None:
            return candidates[0]
        for v in candidates:
            if v in self.espo_options:
                return v
        raise MappingError(
            f"none of {', '.join(candidates)} (for Advoware {self.advo_field} '{canonical}') is an option "
            f"of EspoCRM's {self.espo_field} ({', '.join(o for o in self.espo_options if o)}): add the "
            f"option in EspoCRM's Entity Manager or the value to {self.source}")

    def uncovered_options(self, options: Iterable[str]) -> list[str]:
        """EspoCRM options that map to no Advoware value (``''`` means empty and needs none)."""
        return [o for o in options if o and _fold(o) not in self._to_advo]


def _fold(value: str) -> str:
    return " ".join(value.split()).casefold()


@dataclass
class ValueMaps:
    maps: dict[str, EnumMap] = field(default_factory=dict)

    def get(self, espo_field: str) -> EnumMap | None:
        return self.maps.get(espo_field)


def load_value_maps(path: str | Path | None, advo_names: dict[str, str]) -> ValueMaps:
    """Read the file; ``advo_names`` maps each mapped EspoCRM field to its Advoware field. Checked strictly:
    an unknown field, an entry that lists no values, a blank value, a table without entries, Advoware values
    differing only in case, or an EspoCRM value listed under two Advoware values is a :class:`ValueMapError`
    naming the file and line."""
    p = Path(path) if path else DEFAULT_FILE
    try:
        text = p.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except (FileNotFoundError, IsADirectoryError):
        raise ValueMapError(f"value map file not found: {p} (set VALUE_MAPS_FILE or restore it)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueMapError(f"value map file {p} is not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ValueMapError(f"value map file {p} is not UTF-8: save it as UTF-8") from None
    maps: dict[str, EnumMap] = {}
    for espo_field, table in data.items():
        where = where_in_toml(p, text, espo_field)
        if espo_field not in advo_names:
            raise ValueMapError(f"{where}: [{espo_field}] is not a mapped EspoCRM field "
                                f"(mapped: {', '.join(sorted(advo_names))})")
        if not isinstance(table, dict) or not table:
            raise ValueMapError(f"{where}: [{espo_field}] must be a table of Advoware value = [EspoCRM values]")
        to_espo: dict[str, list[str]] = {}
        seen: dict[str, str] = {}
        folded_advo: dict[str, str] = {}
        known = ADVOWARE_VALUES.get(advo_names[espo_field])
        for advo_value, espo_values in table.items():
            at = where_in_toml(p, text, espo_field, advo_value)
            values = [espo_values] if isinstance(espo_values, str) else espo_values
            if not advo_value.strip():
                raise ValueMapError(f"{at}: [{espo_field}] has an empty Advoware value: name it, "
                                    'e.g. Herr = ["Herr", "Mr."]')
            if known is not None and advo_value not in known:  # a typo would be written into Advoware
                raise ValueMapError(f"{at}: [{espo_field}] {advo_value} is not a value of Advoware's "
                                    f"{advo_names[espo_field]} (it knows {', '.join(known)}): correct it")
            if _fold(advo_value) in folded_advo:  # from_advoware could not tell them apart
                raise ValueMapError(f"{at}: [{espo_field}] lists {folded_advo[_fold(advo_value)]} and {advo_value}, "
                                    "which differ only in case or blanks: keep one")
            folded_advo[_fold(advo_value)] = advo_value
            if not isinstance(values, list) or not values or not all(isinstance(v, str) and v.strip() for v in values):
                raise ValueMapError(f"{at}: [{espo_field}] {advo_value} must list EspoCRM values, "
                                    'e.g. Herr = ["Herr", "Mr."]')
            for v in values:
                if _fold(v) in seen and seen[_fold(v)] != advo_value:
                    raise ValueMapError(f"{at}: [{espo_field}] lists {v!r} under {seen[_fold(v)]} and {advo_value}: "
                                        "keep it under one Advoware value")
                seen[_fold(v)] = advo_value
            to_espo[advo_value] = values
        maps[espo_field] = EnumMap(espo_field, advo_names[espo_field], to_espo, str(p))
    return ValueMaps(maps)
