"""One way to reach Temporal, shared by the worker, the starter, the CLI and tests."""

from __future__ import annotations

import dataclasses

from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes

from callbridge.codec import EncryptionCodec, parse_keys
from callbridge.settings import Settings

# Custom search attributes Callbridge sets: identifiers and outcomes only, never PII.
SEARCH_ATTRIBUTES: dict[str, str] = {
    "CallbridgeConversationId": "Keyword",
    "CallbridgeContactId": "Keyword",
    "CallbridgeOutcome": "Keyword",
}


def search_attribute_keys() -> list[SearchAttributeKey]:
    return [SearchAttributeKey.for_keyword(name) for name in SEARCH_ATTRIBUTES]


def data_converter(settings: Settings) -> DataConverter:
    """Pydantic payloads, encrypted; failure messages and stack traces encrypted too."""
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=EncryptionCodec(parse_keys(settings.payload_keys.get_secret_value())),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


async def connect(settings: Settings) -> Client:
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings),
    )
