"""One way to reach Temporal, shared by the worker, the starter, the CLI and tests."""

from __future__ import annotations

import dataclasses
import logging

from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.runtime import (
    LogForwardingConfig, LoggingConfig, PrometheusConfig, Runtime, TelemetryConfig, TelemetryFilter,
)

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
        payload_codec=EncryptionCodec(parse_keys(settings.payload_keys.get_secret_value()), require_encrypted=True),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def use_runtime(metrics_address: str | None = None) -> None:
    """Make the SDK's default runtime one whose Rust core logs through Python logging.

    Without it the core writes its warnings (poll errors, slow workflow tasks) to stderr as
    coloured text: past the JSON formatter and its PII masking. `metrics_address` also serves
    the SDK's Prometheus metrics; call this before any client connects (a client is bound to
    the runtime that was default when it connected). A busy port raises RuntimeError."""
    logs = LoggingConfig(filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
                         forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")))
    metrics = PrometheusConfig(bind_address=metrics_address) if metrics_address else None
    Runtime.set_default(Runtime(telemetry=TelemetryConfig(logging=logs, metrics=metrics)),
                        error_if_already_set=False)


async def connect(settings: Settings) -> Client:
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings),
    )
