"""Phone numbers: whatever people typed, as E.164.

Salesforce phone fields keep exactly what was typed, Genesys sends the ANI in E.164; this
module is where the two meet. Pure functions, no I/O.
"""

from __future__ import annotations

import re
import unicodedata

import phonenumbers
from phonenumbers import Leniency, NumberParseException, PhoneNumberFormat, PhoneNumberMatcher

# Country names people type into MailingCountry/BillingCountry -> ISO 3166 region.
_COUNTRY_ALIASES = {
    "united states": "US", "united states of america": "US", "usa": "US", "u.s.": "US",
    "u.s.a.": "US", "america": "US", "canada": "CA", "brazil": "BR", "brasil": "BR",
    "united kingdom": "GB", "uk": "GB", "great britain": "GB", "england": "GB",
    "germany": "DE", "deutschland": "DE", "mexico": "MX", "méxico": "MX", "france": "FR",
    "spain": "ES", "españa": "ES", "portugal": "PT", "ireland": "IE", "australia": "AU",
    "india": "IN", "netherlands": "NL", "italy": "IT", "italia": "IT",
}

_WITHHELD = {"anonymous", "unknown", "private", "restricted", "withheld", "unavailable"}


def region_for_country(country: str | None, default_region: str) -> str:
    """Map a typed country ("Brasil", "USA", "ca") to a region code, else the default."""
    return known_region(country) or default_region


def known_region(country: str | None) -> str | None:
    """The region a typed country names, or None when it names none we know."""
    if not country:
        return None
    key = country.strip().lower()
    if len(key) == 2 and key.isalpha():
        code = key.upper()
        if code == "UK":
            return "GB"
        if code in phonenumbers.SUPPORTED_REGIONS:
            return code
    return _COUNTRY_ALIASES.get(key)


# Where a number typed without a country code may come from when it is no valid number in
# the contact's own region: TechSupport's sites and their neighbours, tried in this order.
FALLBACK_REGIONS = ("US", "CA", "BR", "GB", "DE", "MX")

# "(0044) 20 ...", "00 44 ...", "011 55 ..." typed on a contact whose region dials differently.
_IDD_PREFIX = re.compile(r"^\s*\(?\s*(?:00|011)\s*\)?\s*(?=[1-9])")
_POSSIBLE = phonenumbers.ValidationResult.IS_POSSIBLE


def to_e164(raw: str | None, region: str, region_guessed: bool = False) -> str | None:
    """The E.164 form of a number however it was typed, or None when it holds no number.

    Extensions ("x123", "ext. 45") are dropped: the line is what the ANI carries.
    """
    numbers = all_e164(raw, region, region_guessed)
    return numbers[0] if numbers else None


def all_e164(raw: str | None, region: str, region_guessed: bool = False) -> list[str]:
    """Every number in a phone field, as E.164 ("512-555-0401 / 0402" holds two).

    `region_guessed`: the record names no country, so `region` is only the default; a number
    that is no valid number there is then tried in FALLBACK_REGIONS ("07911 123457" is British).
    """
    text = _clean(raw)
    if text is None:
        return []
    numbers = _parse_all(text, region, region_guessed)
    return [phonenumbers.format_number(n, PhoneNumberFormat.E164) for n in numbers]


# Unicode dashes people (and word processors) put between digit groups.
_DASHES = frozenset("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d")
# Invisible characters pasted along with a number.
_INVISIBLE = frozenset("\u200b\u200c\u200d\u2060\ufeff\u200e\u200f")


def ascii_form(text: str) -> str:
    """The number as if typed on an ASCII keyboard: any script's digits (full-width from East
    Asian input methods, Arabic-Indic, Persian, …) as 0-9, full-width + and brackets as ASCII
    (NFKC), every kind of space (no-break, thin, ideographic) as a space, Unicode dashes as -."""
    if text.isascii():
        return text
    out = []
    for ch in text:
        if ch.isascii():
            out.append(ch)
        elif unicodedata.category(ch) == "Nd":
            out.append(str(unicodedata.digit(ch)))
        elif unicodedata.category(ch) == "Zs":
            out.append(" ")
        elif ch in _DASHES:
            out.append("-")
        elif ch not in _INVISIBLE:
            out.append(unicodedata.normalize("NFKC", ch))
    return "".join(out)


def _clean(raw: str | None) -> str | None:
    if not raw:
        return None
    text = ascii_form(raw).strip()
    lowered = text.lower()
    if lowered.startswith("sip:"):
        text = text[4:].split("@", 1)[0]
    elif lowered.startswith("tel:"):
        text = text[4:]
    if not text or text.lower() in _WITHHELD:
        return None
    return text


def _full_number(number: phonenumbers.PhoneNumber) -> bool:
    # IS_POSSIBLE_LOCAL_ONLY ("555-1234") is no callable number: it would index a bogus +1555….
    return phonenumbers.is_possible_number_with_reason(number) == _POSSIBLE


def _try(text: str, region: str) -> phonenumbers.PhoneNumber | None:
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException:
        return None
    return number if _full_number(number) else None


def _parse_all(text: str, region: str, region_guessed: bool) -> list[phonenumbers.PhoneNumber]:
    whole = _try(text, region)
    if whole is not None and phonenumbers.is_valid_number(whole):
        return [whole]
    # Several numbers, or a number inside stray text ("call 512 555 1234 after 5").
    found = [m.number for m in PhoneNumberMatcher(text, region, leniency=Leniency.VALID)]
    if found:
        return _unique(found)
    if _IDD_PREFIX.match(text):
        idd = _try(_IDD_PREFIX.sub("+", text, count=1), region)
        if idd is not None and phonenumbers.is_valid_number(idd):
            return [idd]
    # A number the contact's known country can dial stays in that country, valid or not
    # (fictional ranges such as 07700 900xxx are "possible" but not "valid").
    fallbacks = FALLBACK_REGIONS if region_guessed or whole is None else ()
    for other in fallbacks:
        if other != region:
            number = _try(text, other)
            if number is not None and phonenumbers.is_valid_number(number):
                return [number]
    if whole is not None:
        return [whole]  # possible though not valid by the metadata: keep it, as typed
    return _unique(m.number for m in PhoneNumberMatcher(text, region, leniency=Leniency.POSSIBLE)
                   if _full_number(m.number))


def _unique(numbers) -> list[phonenumbers.PhoneNumber]:
    seen, out = set(), []
    for n in numbers:
        key = phonenumbers.format_number(n, PhoneNumberFormat.E164)
        if key not in seen:
            seen.add(key)
            out.append(n)
    return out


def national_digits(e164: str) -> str:
    """The national significant number of an E.164 number (no country code, no trunk 0)."""
    number = phonenumbers.parse(e164, None)
    return phonenumbers.national_significant_number(number)


def typed_form_pattern(e164: str) -> str:
    """A SOQL LIKE pattern matching every way the number can be typed.

    Every typed form contains the national significant digits in order, separated or
    surrounded by punctuation, a country code, a trunk prefix or an extension; so
    '%5%1%2...%4%' finds them all.
    It over-matches by design: callers re-check each hit with `to_e164`.
    """
    return "%" + "%".join(national_digits(e164)) + "%"


# The digit sets a number may be typed in (ASCII, full-width, Arabic-Indic, Persian): SOQL's
# LIKE compares characters, so each needs its own pattern to find what was typed in it.
DIGIT_SCRIPTS = ("0123456789", "\uff10\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19",
                 "\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669",
                 "\u06f0\u06f1\u06f2\u06f3\u06f4\u06f5\u06f6\u06f7\u06f8\u06f9")


def typed_form_patterns(e164: str) -> list[str]:
    """`typed_form_pattern` in every digit script of DIGIT_SCRIPTS, ASCII first."""
    digits = national_digits(e164)
    return ["%" + "%".join(script[int(d)] for d in digits) + "%" for script in DIGIT_SCRIPTS]
