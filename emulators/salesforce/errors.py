"""Salesforce's error wire format: a JSON array of {message, errorCode[, fields]}."""

from __future__ import annotations


class ApiError(Exception):
    """An error the REST API reports to the client, with its HTTP status."""

    def __init__(self, status: int, error_code: str, message: str, fields: list[str] | None = None,
                 body: object = None) -> None:
        super().__init__(f"{error_code}: {message}")
        self.status = status
        self.error_code = error_code
        self.message = message
        self.fields = fields
        self._body = body  # a non-standard body (e.g. the 300 list of matching record URLs)

    def body(self) -> object:
        if self._body is not None:
            return self._body
        item: dict = {"message": self.message, "errorCode": self.error_code}
        if self.fields is not None:
            item["fields"] = self.fields
        return [item]


def not_found() -> ApiError:
    return ApiError(404, "NOT_FOUND", "The requested resource does not exist")


def malformed_query(message: str) -> ApiError:
    return ApiError(400, "MALFORMED_QUERY", message)


def json_parser_error(message: str) -> ApiError:
    return ApiError(400, "JSON_PARSER_ERROR", message)
