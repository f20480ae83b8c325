"""One way to reach Temporal, shared by the worker, the starter, the CLI and tests."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter

from callbridge.settings import Settings

# Custom search attributes Callbridge sets: identifiers and outcomes only, never PII.
SEARCH_ATTRIBUTES: dict[str, str] = {
    "CallbridgeConversationId": "Keyword",
    "CallbridgeContactId": "Keyword",
    "CallbridgeOutcome": "Keyword",
}


def search_attribute_keys() -> list[SearchAttributeKey]:
    return [SearchAttributeKey.for_keyword(name) for name in SEARCH_ATTRIBUTES]


async def connect(settings: Settings) -> Client:
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
    )
