"""Wire formats shared by every module: Genesys timestamps and ids; the outgoing requests' TLS."""

from __future__ import annotations

import functools
import ssl
import uuid
from datetime import datetime, timezone

import httpx


@functools.cache
def tls() -> ssl.SSLContext:
    """The one TLS context of the emulator's outgoing requests (data actions, webhooks,
    EventBridge), verifying as httpx's default does. Building one loads the whole CA bundle:
    a new one per data action was most of the emulator's CPU per simulated call, which a
    bench on the same machine charged to the product."""
    return httpx.create_ssl_context()


def now() -> datetime:
    return datetime.now(timezone.utc)


def iso(dt: datetime) -> str:
    """Genesys's timestamp form: UTC, millisecond precision, 'Z' suffix."""
    dt = dt.astimezone(timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_iso(text: str) -> datetime:
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def new_id() -> str:
    """Genesys entity ids are UUIDs."""
    return str(uuid.uuid4())


def paged(entities: list, page_size: int, page_number: int, path: str) -> dict:
    """A Genesys *EntityListing: entities plus pageSize/pageNumber/total/pageCount and the page URIs."""
    from .errors import bad_request

    if page_size < 1 or page_number < 1:
        raise bad_request("pageSize and pageNumber must be positive", "invalid.value")
    total = len(entities)
    page_count = max(1, -(-total // page_size)) if total else 0
    start = (page_number - 1) * page_size
    listing: dict = {
        "entities": entities[start:start + page_size],
        "pageSize": page_size,
        "pageNumber": page_number,
        "total": total,
        "firstUri": f"{path}?pageSize={page_size}&pageNumber=1",
        "selfUri": f"{path}?pageSize={page_size}&pageNumber={page_number}",
        "lastUri": f"{path}?pageSize={page_size}&pageNumber={max(page_count, 1)}",
        "pageCount": page_count,
    }
    if page_number < page_count:
        listing["nextUri"] = f"{path}?pageSize={page_size}&pageNumber={page_number + 1}"
    if page_number > 1:
        listing["previousUri"] = f"{path}?pageSize={page_size}&pageNumber={page_number - 1}"
    return listing
