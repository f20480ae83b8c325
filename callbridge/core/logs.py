"""structlog JSON logs with PII masked: no phone number, email or name reaches a log line."""

from __future__ import annotations

import logging
import re
import sys
from urllib.parse import unquote
from typing import Any

import structlog

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# Seven or more digits, possibly separated by spaces, dots, dashes or parentheses, standing
# alone: not inside an identifier such as a UUID or a Salesforce id ("d96c-4b41-…").
# An extension ("x42", "ext. 42", ";ext=42", "#42") belongs to the number: else the letter after
# the digits would stop the match ("4155550123x42").
_PHONE = re.compile(r"(?<![\w-])\+?\(?\d(?:[\s().-]?\d|\)\s?\d|[\s.-]\(?\d){6,}"
                    r"(?:\s*(?:;ext=|ext\.?|extension|x|#)\s*\d{1,6})?(?![\w-])", re.IGNORECASE)
# A URL's query string (a SOQL query, a search term) is dropped whole, whatever it holds.
_QUERY = re.compile(r"((?:https?://|/)[^\s?#\"'<>]*)\?[^\s\"'<>]*")
_ENCODED = re.compile(r"%[0-9A-Fa-f]{2}")
# Keys whose values are names or other free text about a person.
_PERSONAL_KEYS = {
    "name", "first_name", "last_name", "firstname", "lastname", "agent_name", "contact_name",
    "caller", "caller_id", "callee_id", "phone", "email", "subject", "description",
}


def mask_text(text: str) -> str:
    text = _QUERY.sub(r"\1?[query]", text)
    if _ENCODED.search(text):  # %2B14155550123, %7B4155550123%7D: masked as the number they encode
        text = unquote(text)
    text = _EMAIL.sub("[email]", text)
    return _PHONE.sub(lambda m: "[phone …" + re.sub(r"\D", "", m.group())[-2:] + "]", text)


def mask_value(key: str, value: Any) -> Any:
    if key.lower() in _PERSONAL_KEYS and value is not None:
        return "[masked]"
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: mask_value(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_value(key, v) for v in value]
    return value


def mask_pii(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    return {k: (v if k in ("timestamp", "level", "logger") else mask_value(k, v)) for k, v in event_dict.items()}


def configure_logging(level: str = "INFO") -> None:
    """JSON to stderr; the standard library's loggers (uvicorn, temporalio) go through it too."""
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            mask_pii,
            structlog.processors.JSONRenderer(),
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # One line per HTTP request is noise at INFO (and URLs may carry search terms).
    logging.getLogger("httpx").setLevel(logging.WARNING)
