"""How many records one page of a query answer holds.

Salesforce documents (REST API Developer Guide, "Query Options Header"; SOQL and SOSL
Reference, "Change the Batch Size in Queries"):
- `Sforce-Query-Options: batchSize=N`: default and maximum 2,000, minimum 200;
- child objects (rows of a relationship subquery) count toward the batch size;
- "there is no guarantee that the requested batch size is the actual batch size": pages
  can be shorter "based on the size and complexity of records queried".

So a page here holds records while 1 + (their child rows) fits the batch size, and an admin
setting (`POST /_emulator/query-pages {"max_records": N}`) makes pages shorter still, the way
Salesforce may, so clients that read only the first page are caught.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_BATCH = 2000
MIN_BATCH = 200


def batch_size(headers: dict) -> int:
    """The batch size a request asks for; Salesforce honours 200..2000 and clamps the rest."""
    m = re.search(r"batchSize\s*=\s*(\d+)", headers.get("sforce-query-options", ""))
    if not m:
        return DEFAULT_BATCH
    return max(MIN_BATCH, min(DEFAULT_BATCH, int(m.group(1))))


@dataclass
class PagePolicy:
    # Records (parents and child rows together) a page holds at most, below the batch size:
    # Salesforce's "may be smaller". None: pages are as large as the batch size allows.
    max_records: int | None = None

    def budget(self, batch: int) -> int:
        return min(batch, self.max_records) if self.max_records else batch

    def merge(self, body: dict) -> None:
        value = body.get("max_records")
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ValueError("max_records must be a positive integer or null")
        self.max_records = value

    def snapshot(self) -> dict:
        return {"max_records": self.max_records}


def weight(record: dict) -> int:
    """The record itself plus the child rows its subquery results carry on this page."""
    return 1 + sum(len(v.get("records") or []) for v in record.values()
                   if isinstance(v, dict) and "totalSize" in v and "records" in v)


def fit(records: list[dict], budget: int) -> int:
    """How many of `records` (in order) one page of `budget` rows holds; always at least one,
    so a parent with many children still moves the cursor forward."""
    used = 0
    for i, rec in enumerate(records):
        w = weight(rec)
        if i and used + w > budget:
            return i
        used += w
    return len(records)
