"""Phone numbers: whatever people typed, as E.164.

Salesforce phone fields keep exactly what was typed, Genesys sends the ANI in E.164; this
module is where the two meet. Pure functions, no I/O.
"""

from __future__ import annotations

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
    if not country:
        return default_region
    key = country.strip().lower()
    if len(key) == 2 and key.isalpha():
        code = key.upper()
        if code in phonenumbers.SUPPORTED_REGIONS:
            return code
    return _COUNTRY_ALIASES.get(key, default_region)


def to_e164(raw: str | None, region: str) -> str | None:
    """The E.164 form of a number however it was typed, or None when it holds no number.

    Extensions ("x123", "ext. 45") are dropped: the line is what the ANI carries.
    """
    if not raw:
        return None
    text = raw.strip()
    if not text or text.lower() in _WITHHELD or text.lower().startswith(("sip:", "tel:anonymous")):
        if text.lower().startswith("sip:"):
            text = text[4:].split("@", 1)[0]
        else:
            return None
    if text.lower().startswith("tel:"):
        text = text[4:]
    number = _parse(text, region)
    if number is None:
        return None
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def _parse(text: str, region: str) -> phonenumbers.PhoneNumber | None:
    try:
        number = phonenumbers.parse(text, region)
        if phonenumbers.is_possible_number(number):
            return number
    except NumberParseException:
        pass
    # Stray text around the number ("call 512 555 1234 after 5"): let the matcher find it.
    for match in PhoneNumberMatcher(text, region, leniency=Leniency.POSSIBLE):
        return match.number
    return None


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
