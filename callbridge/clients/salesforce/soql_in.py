"""`IN (…)` lists cut to fit the request line, by bytes rather than by count.

A query travels in the URL (`GET …/query?q=…`), and Salesforce refuses a request whose URI
passes 16,384 bytes (414; 431 with the headers): Salesforce Help, knowledge article 000386264.
Ids are short, but names and addresses are not, and a name in Chinese, Japanese or Arabic
script costs 9 bytes a character once percent-encoded: 100 of them can pass the limit where
100 Latin ones fit easily. So a chunk takes values while its encoded query stays within
URI_BUDGET, which leaves room for the path and the headers (the session id among them).
"""

from __future__ import annotations

from typing import Iterator
from urllib.parse import quote_plus

from simple_salesforce.format import format_soql

URI_BUDGET = 12_000  # bytes of the encoded `q=` value; the limit for URI + headers is 16,384


def encoded_length(soql: str) -> int:
    """Bytes the query takes in the URL (requests encodes parameters as quote_plus does)."""
    return len(quote_plus(soql))


def in_chunks(template: str, values: list[str], *, max_count: int = 200,
              budget: int = URI_BUDGET) -> Iterator[tuple[str, list[str]]]:
    """(query, its values) for each chunk: `template` holds one `{}` for the IN list."""
    chunk: list[str] = []
    for value in values:
        if chunk and (len(chunk) >= max_count or
                      encoded_length(format_soql(template, chunk + [value])) > budget):
            yield format_soql(template, chunk), chunk
            chunk = []
        chunk.append(value)
        if encoded_length(format_soql(template, chunk)) > budget:
            raise ValueError("one value alone passes the URI budget")  # never for a field's length
    if chunk:
        yield format_soql(template, chunk), chunk
