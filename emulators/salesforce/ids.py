"""Salesforce record ids: key prefixes, the 3-character case-safe suffix, 15/18 conversion."""

from __future__ import annotations

import re

# The suffix alphabet Salesforce uses to encode which of 5 characters are upper case.
_SUFFIX_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ID_RE = re.compile(r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-5]{3})?$")

# Real key prefixes for standard objects; custom objects get an org-specific a0X prefix.
KEY_PREFIXES: dict[str, str] = {
    "Account": "001",
    "Contact": "003",
    "Task": "00T",
    "Event": "00U",
    "Case": "500",
    "Contact_Consent__c": "a0B",
    "Organization": "00D",
    "User": "005",
    "QueryLocator": "01g",
    "AsyncJob": "750",
}

# Middle characters of every generated id: stand-ins for the pod/instance part of a real id.
_POD = "8d"
_SEQ_WIDTH = 15 - 3 - len(_POD)


def checksum(id15: str) -> str:
    """The 3-character suffix that makes an id case-insensitive-safe."""
    out = []
    for chunk in range(3):
        bits = 0
        for pos, ch in enumerate(id15[chunk * 5 : chunk * 5 + 5]):
            if "A" <= ch <= "Z":
                bits |= 1 << pos
        out.append(_SUFFIX_CHARS[bits])
    return "".join(out)


def is_valid(value: object) -> bool:
    return isinstance(value, str) and bool(_ID_RE.match(value))


def to18(value: str) -> str:
    """Normalise a 15- or 18-character id to its canonical 18-character form.

    An 18-character id may arrive with its case changed (that is what the suffix is for):
    the suffix tells which letters of the first 15 are upper case.
    """
    if not is_valid(value):
        raise ValueError(f"malformed id: {value!r}")
    if len(value) == 15:
        return value + checksum(value)
    head, suffix = value[:15], value[15:].upper()
    if checksum(head) == suffix:
        return head + suffix
    # Restore letter case from the suffix.
    chars = list(head)
    for chunk in range(3):
        bits = _SUFFIX_CHARS.find(suffix[chunk])
        if bits < 0:
            raise ValueError(f"malformed id: {value!r}")
        for pos in range(5):
            i = chunk * 5 + pos
            chars[i] = chars[i].upper() if bits & (1 << pos) else chars[i].lower()
    head = "".join(chars)
    if checksum(head) != suffix:
        raise ValueError(f"malformed id: {value!r}")
    return head + suffix


def make_id(prefix: str, seq: int) -> str:
    """Deterministic id for the seq-th record of an object."""
    digits = []
    n = seq
    while n:
        n, r = divmod(n, 62)
        digits.append(_BASE62[r])
    body = "".join(reversed(digits)).rjust(_SEQ_WIDTH, "0")
    if len(body) > _SEQ_WIDTH:
        raise OverflowError("id sequence exhausted")
    id15 = prefix + _POD + body
    return id15 + checksum(id15)


def prefix_of(value: str) -> str:
    return value[:3]
