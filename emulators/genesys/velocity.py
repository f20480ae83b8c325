"""Velocity templates as Genesys data actions render them (requestUrlTemplate, headers,
requestTemplate), with a real Velocity engine: airspeed (PyPI), a Python implementation of the
Velocity Template Language.

The context a Web Services data action's request templates see: `input` (the action's inputs by
name) and the `esc` tool. Of the tools Genesys documents ("Velocity macros for data actions",
help.mypurecloud.com/articles/velocity-macros-data-actions/) the emulator implements what the
shipped actions use:
  $esc.jsonString(s)  "Use esc.jsonString to escape strings inside JSON bodies": the string's
                      characters escaped for the inside of a JSON string literal (quote,
                      backslash, control characters; RFC 8259 section 7). Genesys doesn't say
                      whether it also escapes "/" or non-ASCII; either way the JSON decodes to
                      the same string, which is what the receiver sees.
  $esc.url(s), $esc.uriEncode(s)   URL form encoding / URI encoding.
Formal notation ${x} of a null renders the reference itself, silent $!{x} renders "" (as the
Genesys article notes): airspeed does the same.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, quote_plus

import airspeed


class EscapeTool:
    def jsonString(self, value: Any) -> str:  # noqa: N802 (Velocity's method names)
        return json.dumps(str(value), ensure_ascii=False)[1:-1]

    def url(self, value: Any) -> str:
        return quote_plus(str(value))

    def uriEncode(self, value: Any) -> str:  # noqa: N802
        return quote(str(value), safe="")


class TemplateError(ValueError):
    pass


def render(template: str, inputs: dict[str, Any]) -> str:
    try:
        return airspeed.Template(template).merge({"input": dict(inputs), "esc": EscapeTool()})
    except Exception as exc:  # airspeed's syntax and execution errors: the action fails
        raise TemplateError(f"{type(exc).__name__}: {exc}") from None
