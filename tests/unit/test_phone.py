"""Phone normalisation: every way a number is typed comes back as the caller's E.164."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callbridge.domain.phone import region_for_country, to_e164, typed_form_pattern


@pytest.mark.parametrize(
    "typed, region, expected",
    [
        ("(512) 555-1234", "US", "+15125551234"),
        ("512.555.1234", "US", "+15125551234"),
        ("+1 512-555-1234", "US", "+15125551234"),
        ("5125551234", "US", "+15125551234"),
        ("1-512-555-1234", "US", "+15125551234"),
        ("512-555-1234 x123", "US", "+15125551234"),
        ("512 555 1234 ext. 45", "US", "+15125551234"),
        ("call 512 555 1234 after 5pm", "US", "+15125551234"),
        ("011 55 11 91234-5678", "US", "+5511912345678"),
        ("(11) 91234-5678", "BR", "+5511912345678"),
        ("+55 (11) 9 1234-5678", "US", "+5511912345678"),
        ("(416) 555-0199", "CA", "+14165550199"),
        ("030 1234567", "DE", "+49301234567"),
        ("0049 30 1234567", "DE", "+49301234567"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("sip:+15125551234@genesys.example", "US", "+15125551234"),
        ("tel:+15125551234", "US", "+15125551234"),
    ],
)
def test_typed_numbers_normalise(typed, region, expected):
    assert to_e164(typed, region) == expected


@pytest.mark.parametrize("withheld", [None, "", "anonymous", "Anonymous", "PRIVATE", "unknown", "abc", "12"])
def test_withheld_or_junk_is_no_number(withheld):
    assert to_e164(withheld, "US") is None


@pytest.mark.parametrize(
    "country, expected",
    [("United States", "US"), ("USA", "US"), ("Canada", "CA"), ("Brasil", "BR"), ("br", "BR"),
     (None, "US"), ("Atlantis", "US")],
)
def test_region_for_country(country, expected):
    assert region_for_country(country, "US") == expected


FORMATS = ["({a}) {b}-{c}", "{a}.{b}.{c}", "+1 {a}-{b}-{c}", "{a}{b}{c}", "1 ({a}) {b} {c}", "+1.{a}.{b}.{c}",
           "{a}-{b}-{c} x42"]


def _like(pattern: str, text: str) -> bool:
    return re.fullmatch(".*".join(map(re.escape, pattern.split("%"))), text, re.S) is not None


@given(
    area=st.integers(201, 989).filter(lambda n: n % 100 != 11 and str(n)[1] != "9"),
    exchange=st.integers(200, 999).filter(lambda n: n % 100 != 11),
    line=st.integers(0, 9999),
    fmt=st.sampled_from(FORMATS),
)
def test_any_typed_us_number_round_trips_and_is_found_by_the_like_pattern(area, exchange, line, fmt):
    a, b, c = f"{area:03d}", f"{exchange:03d}", f"{line:04d}"
    typed = fmt.format(a=a, b=b, c=c)
    e164 = f"+1{a}{b}{c}"
    assert to_e164(typed, "US") == e164
    assert _like(typed_form_pattern(e164), typed)
