"""Errors a request can end with, and their JSON body.

Every error response has OpenAI's shape, so OpenAI clients show its message::

    {"error": {"message": "...", "type": "invalid_request_error", "code": "...", "param": null}}

Inputs are quoted briefly (:func:`llamo_plugin.errors.brief`), never whole.
"""

from __future__ import annotations

from typing import Any

from llamo_plugin.errors import LlamoError

#: HTTP status -> OpenAI error ``type``
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    499: "client_closed_request",
    500: "server_error",
    503: "service_unavailable",
    504: "timeout",
}


class ApiError(LlamoError):
    """A request that ends with an HTTP error status and a message for the client."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.param = param
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON body of the response."""
        return {
            "error": {
                "message": self.message,
                "type": _TYPES.get(self.status, "invalid_request_error"),
                "code": self.code,
                "param": self.param,
            }
        }


def invalid(message: str, *, param: str | None = None, code: str = "invalid_body") -> ApiError:
    """422: a body that is not what the endpoint takes (types, unknown fields, values)."""
    return ApiError(422, code, message, param=param)


def bad_request(message: str, code: str, *, param: str | None = None) -> ApiError:
    """400: a well-formed request that cannot be answered as asked."""
    return ApiError(400, code, message, param=param)


def too_large(message: str, code: str = "request_too_large") -> ApiError:
    """413: over a size limit of this server."""
    return ApiError(413, code, message)
