"""Genesys's error responses.

Platform API errors are an ErrorBody (message, code, status, contextId, details, errors);
the login service (/oauth/token) answers RFC 6749 style instead (see auth.py).
Messages are the ones the Platform API swagger documents for each status.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from .wire import new_id

CORRELATION_HEADER = "inin-correlation-id"

DEFAULT_MESSAGES = {
    400: "The request could not be understood by the server due to malformed syntax.",
    401: "Invalid login credentials.",
    403: "You are not authorized to perform the requested action.",
    404: "The requested resource was not found.",
    405: "HTTP 405 Method Not Allowed",
    409: "The request conflicts with the current state of the target resource.",
    415: "Unsupported Media Type - Unsupported or incorrect media type, such as an incorrect Content-Type value in the header.",
    429: "Rate limit exceeded the maximum. Retry the request in [%s] seconds",
    500: "The server encountered an unexpected condition which prevented it from fulfilling the request.",
    503: "Service Unavailable - The server is currently unavailable (because it is overloaded or down for maintenance).",
    504: "The request timed out.",
}

DEFAULT_CODES = {
    400: "bad.request",
    401: "bad.credentials",
    403: "not.authorized",
    404: "not.found",
    405: "method.not.allowed",
    409: "conflict",
    415: "unsupported.media.type",
    429: "too.many.requests",
    500: "internal.server.error",
    502: "bad.gateway",
    503: "service.unavailable",
    504: "gateway.timeout",
}


class GenesysError(Exception):
    """Raised anywhere in a handler; rendered as an ErrorBody by app.py."""

    def __init__(
        self,
        status: int,
        message: str | None = None,
        code: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        details: list[dict[str, Any]] | None = None,
        message_params: dict[str, str] | None = None,
    ) -> None:
        self.status = status
        self.code = code or DEFAULT_CODES.get(status, "error")
        self.message = message or DEFAULT_MESSAGES.get(status, "Error")
        self.headers = headers or {}
        self.details = details or []
        self.message_params = message_params
        super().__init__(f"{status} {self.code}: {self.message}")


def error_body(status: int, code: str, message: str, context_id: str,
               details: list[dict[str, Any]] | None = None,
               message_params: dict[str, str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "message": message,
        "code": code,
        "status": status,
        "contextId": context_id,
        "details": details or [],
        "errors": [],
    }
    if message_params:
        body["messageParams"] = message_params
    return body


def error_response(exc: GenesysError, context_id: str | None = None) -> JSONResponse:
    context_id = context_id or new_id()
    return JSONResponse(
        error_body(exc.status, exc.code, exc.message, context_id, exc.details, exc.message_params),
        status_code=exc.status,
        headers={**exc.headers, CORRELATION_HEADER: context_id},
    )


def not_found(message: str | None = None) -> GenesysError:
    return GenesysError(404, message, "not.found")


def bad_request(message: str, code: str = "bad.request") -> GenesysError:
    return GenesysError(400, message, code)
