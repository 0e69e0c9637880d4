"""Phone numbers: one rule to compare them, and the spelling each system is sent.

Compare (:func:`phone_key`): two spellings of one number are one value, so formatting alone is never
a change, a conflict or a write. The key keeps digits, letters and a leading ``+``; it drops spaces
and ``- ( ) / .``; it writes a number the way it is dialled from abroad, with the firm's country
(:data:`DEFAULT_COUNTRY_CODE`, Germany) for a national number:

- ``+49 30 1234567``, ``+49 (0)30 1234567``, ``+49 (030) 1234567``, ``0049 30 1234567``, ``030 1234567``
  and ``030-1234567`` are all ``+49301234567`` (a 0 after ``+49``, ``+43`` or ``+41`` is the trunk
  prefix); ``0221 / 12 34 56`` is ``+49221123456``;
- an extension is kept and its marker written one way (``ext. 12``, ``x12``, ``#12`` → ``x12``);
- letters are kept (case folded): ``+49 800 FLOWERS`` is not ``+498003569377`` (EspoCRM's parser turns
  the letters into digits; the two differ by key, which costs at most one write).

A national number equals its ``+49`` form on purpose: EspoCRM with "International phone numbers" on
(a fresh install's default) stores only E.164, so the same line is held as ``030 1234567`` in Advoware
and ``+49301234567`` in EspoCRM. Calling them different would write one side's spelling over the
other's whenever a decision compares both sides (a first link, a lost base, a conflict). Calling them
equal is wrong only for a national number of another country, which a German firm writes with its
``+`` prefix.

Write (:func:`espo_spelling`): the source's own value, as typed, in a form EspoCRM accepts. What EspoCRM
does on save is modelled in ``simulators/espocrm/phone.py`` (read from EspoCRM 8.1.5 and 9.3.10).
"""

from __future__ import annotations

import re

DEFAULT_COUNTRY_CODE = "49"
_DROP = re.compile(r"[^0-9a-z+#]")
_TRUNK = re.compile(r"\(\s*0\s*\)")  # "+49 (0)30": the 0 is dialled only inside the country
_EXTENSION = re.compile(r"(?:ext|x|#)(?=\d+$)")
_PLUS_LATER = re.compile(r"(?<=.)\+")
# Germany, Austria, Switzerland: a 0 right after the country code is the trunk prefix (+49 (030) …),
# never part of the number; EspoCRM's libphonenumber drops it too. Not Italy's (+39 06 … keeps it).
_TRUNK_ZERO = re.compile(r"^\+(49|43|41)0")
# EspoCRM's app.regExpPatterns.phoneNumberLoose: every character of a stored number is one of these.
_ESPO_REFUSES = re.compile(r"[^0-9A-Za-z_@:#+()\-. ]+")
_SPACES = re.compile(r" {2,}")


def phone_key(value: str) -> str:
    """The compare key of a non-empty phone number (see the module's rule)."""
    text = value.strip().casefold()
    international = text.startswith("+") or text.startswith("00")
    if international:
        text = _TRUNK.sub("", text)
    key = _PLUS_LATER.sub("", _DROP.sub("", text))
    if key.startswith("00"):
        key = "+" + key[2:]
    elif key.startswith("0"):
        key = f"+{DEFAULT_COUNTRY_CODE}{key[1:]}"
    return _EXTENSION.sub("x", _TRUNK_ZERO.sub(r"+\1", key))


def international_form(value: str) -> str | None:
    """E.164 (``+49221123456``) of a number that has no letters, or ``None``: what EspoCRM's own
    import makes of a national number when the importer names the country. An extension follows as
    `` ext. 12``, which EspoCRM reads in either version (8.1.5 and 9.x without "Phone number
    extensions" drop it, 9.x with them keeps it)."""
    key, marker, extension = phone_key(value).partition("x")
    digits = key[1:]
    if not (key.startswith("+") and digits.isdigit() and 4 <= len(digits) <= 15):
        return None
    if not marker:
        return key
    return f"{key} ext. {extension}" if extension.isdigit() else None


def espo_spelling(value: str, international: bool | None) -> str:
    """What to send EspoCRM for a number another system holds as ``value``.

    ``international``: EspoCRM's "International phone numbers" setting (``None``: not known). On, a
    number starting with ``+`` is sent as it is (EspoCRM stores its E.164 form itself) and a national
    one as its E.164 form (EspoCRM refuses a national number then). Off, EspoCRM keeps what it is sent,
    but refuses characters outside its pattern (``/``, ``,``): each run of them becomes one space
    (``0221 / 12 34 56`` → ``0221 12 34 56``). Not known: the national number's E.164 form too, as
    both settings accept it. The result always has the key of ``value``.
    """
    text = value.strip()
    if international is not False and not text.startswith("+"):
        converted = international_form(text)
        if converted is not None:
            return converted
    if international:
        return text
    fitted = _SPACES.sub(" ", _ESPO_REFUSES.sub(" ", text)).strip()
    return fitted if fitted and phone_key(fitted) == phone_key(value) else text
