"""The emulator's error envelope (contract §6.1) and the exception handlers raise."""

from __future__ import annotations

DOC_URL = "https://docs.aurous-labs.com/errors#"

_TYPE_BY_STATUS = {
    400: "invalid_request",
    401: "authentication",
    402: "invalid_request",
    403: "authentication",
    404: "not_found",
    409: "invalid_request",
    410: "not_found",
    415: "invalid_request",
    422: "invalid_request",
    429: "rate_limit",
}


class ApiError(Exception):
    """An error response; the pipeline renders it as the documented envelope."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        param: str | None = None,
        type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.param = param
        self.type = type or _TYPE_BY_STATUS.get(status, "server_error")
        self.headers = headers or {}

    def envelope(self, request_id: str) -> dict[str, object]:
        return {
            "error": {
                "type": self.type,
                "code": self.code,
                "message": self.message,
                "param": self.param,
                "doc_url": DOC_URL + self.code,
                "request_id": request_id,
            }
        }


def invalid(code: str, message: str, param: str | None = None) -> ApiError:
    """A 400 ``invalid_request`` error."""
    return ApiError(400, code, message, param=param)


def missing(param: str) -> ApiError:
    return invalid("missing_field", f"'{param}' is required.", param)


def bad_format(param: str | None, message: str) -> ApiError:
    return invalid("invalid_format", message, param)


def out_of_range(param: str, message: str) -> ApiError:
    return invalid("value_out_of_range", message, param)


def not_found(what: str, param: str | None = None) -> ApiError:
    return ApiError(404, "resource_not_found", f"No such {what}.", param=param)
