"""EspoCRM simulator: what EspoCRM does with a phone number on save, sanitising and then validating it.

Ported from espocrm/espocrm, tags 8.1.5 (commit 32470329ec) and 9.3.10 (commit 17422b66af):

- ``Classes/FieldSanitizers/Phone.php`` hands the value to ``Core/PhoneNumber/Sanitizer.php``: trimmed;
  with ``phoneNumberInternational`` on, a value starting with ``+`` is parsed by brick/phonenumber
  (giggsey/libphonenumber-for-php 8.13.24 in 8.1.5, 8.13.55 in 9.3.10; here its Python port) and stored
  as E.164, or kept when it does not parse. Any other value is kept as typed; with the setting off every
  value is (never a national number to E.164: the field sanitizer passes no country).
- 9.x (since 8.3.0), ``phoneNumberExtensions`` (default off): ``Core/PhoneNumber/Util::splitExtension``
  cuts at the last ``ext.``, ``x.``, ``x`` or ``#`` and the sanitizer appends `` ext. <rest>``. Without
  it (8.1.5 always) libphonenumber reads an extension and E.164 drops it: ``+49 30 1234567 ext. 12`` is
  stored as ``+49301234567``.
- ``Classes/FieldValidators/PhoneType.php`` (``valid`` is mandatory, a ``400`` otherwise): the value must
  match ``app.regExpPatterns.phoneNumberLoose`` (no ``/``, no ``,``); with international on it must also
  parse without a region (a national ``030 1234567`` does not), be its own E.164 and a possible number
  (9.x with extensions: the extension is digits, at most 6 characters). ``maxLength``: 36.
- ``Resources/defaults/config.php``: ``phoneNumberInternational`` is on in a fresh install;
  ``upgrades/8.1/scripts/AfterUpgrade.php`` switches it off for an install upgraded to 8.1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers

LOOSE = re.compile(r"[0-9A-Za-z_@:#+()\-. ]+")  # app.regExpPatterns.phoneNumberLoose
MAX_LENGTH = 36  # entityDefs.PhoneNumber.fields.name.maxLength
MAX_EXTENSION = 6
_EXT_DELIMITERS = ("ext.", "x.", "x", "#")
_PHP_TRIM = " \t\n\r\0\x0b"


def split_extension(value: str) -> tuple[str, str | None]:
    """``Util::splitExtension``: the last delimiter found (in this order of delimiters) at index 2 or later."""
    for delimiter in _EXT_DELIMITERS:
        index = value.rfind(delimiter)
        if index < 2:
            continue
        return value[:index].strip(_PHP_TRIM), value[index + len(delimiter):].strip(_PHP_TRIM)
    return value, None


def _parse(value: str) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return None


def _e164(number: phonenumbers.PhoneNumber) -> str:
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@dataclass
class PhoneSettings:
    """Administration > Settings: "International phone numbers" and (9.x) "Phone number extensions"."""

    international: bool = True
    extensions: bool = False
    extensions_supported: bool = True  # 8.1.5 has no such setting

    @property
    def use_extensions(self) -> bool:
        return self.extensions and self.extensions_supported

    def sanitize(self, value: str) -> str:
        value = value.strip(_PHP_TRIM)
        if not (value.startswith("+") and self.international):
            return value
        ext = None
        if self.use_extensions:
            value, ext = split_extension(value)
        number = _parse(value)
        if number is None:
            return value
        return _e164(number) + (f" ext. {ext}" if ext else "")

    def valid(self, value: str) -> bool:
        if value == "" or LOOSE.fullmatch(value) is None:
            return False
        if not self.international:
            return True
        ext = None
        if self.use_extensions:
            value, ext = split_extension(value)
        if ext and (re.search(r"[0-9]+", ext) is None or len(ext.encode()) > MAX_EXTENSION):
            return False
        number = _parse(value)
        return number is not None and _e164(number) == value and phonenumbers.is_possible_number(number)

    def too_long(self, value: str) -> bool:
        return len(value) > MAX_LENGTH
