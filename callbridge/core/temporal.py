"""One way to reach Temporal, shared by the worker, the starter, the CLI and tests."""

from __future__ import annotations

import dataclasses
import logging

from pathlib import Path

from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.service import TLSConfig
from temporalio.runtime import (
    LogForwardingConfig, LoggingConfig, PrometheusConfig, Runtime, TelemetryConfig, TelemetryFilter,
)

from callbridge.core.codec import EncryptionCodec, parse_keys
from callbridge.core.settings import Settings

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


class TemporalSettingsError(ValueError):
    """The Temporal TLS settings can't be used (a file missing, a certificate without its key)."""


def _read(path: Path | None, setting: str) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TemporalSettingsError(f"{setting}: cannot read {path} ({exc.strerror})") from None


def tls_config(settings: Settings) -> TLSConfig | bool | None:
    """TLS as the settings ask: None (plaintext, or TLS by default with an API key), or a TLSConfig."""
    cert = _read(settings.temporal_tls_cert_file, "CALLBRIDGE_TEMPORAL_TLS_CERT_FILE")
    key = _read(settings.temporal_tls_key_file, "CALLBRIDGE_TEMPORAL_TLS_KEY_FILE")
    if (cert is None) != (key is None):
        raise TemporalSettingsError("CALLBRIDGE_TEMPORAL_TLS_CERT_FILE and CALLBRIDGE_TEMPORAL_TLS_KEY_FILE go together")
    ca = _read(settings.temporal_tls_ca_file, "CALLBRIDGE_TEMPORAL_TLS_CA_FILE")
    if not (settings.temporal_tls or ca or cert or settings.temporal_tls_server_name):
        return None  # the SDK turns TLS on by itself when an API key is set (Temporal Cloud)
    return TLSConfig(server_root_ca_cert=ca, client_cert=cert, client_private_key=key,
                     domain=settings.temporal_tls_server_name)


async def connect(settings: Settings) -> Client:
    api_key = settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings),
        tls=tls_config(settings),
        api_key=api_key,
    )
