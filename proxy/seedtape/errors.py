"""OpenAI-shaped error answers, so the SDK raises its usual typed exceptions."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.responses import JSONResponse


class ProxyError(Exception):
    """Raised anywhere in a request; the app turns it into an OpenAI-shaped answer."""

    def __init__(
        self,
        status: int,
        message: str,
        type: str = "seedtape_error",
        code: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = dict(headers or {})

    def response(self) -> JSONResponse:
        return error_response(self.status, self.message, self.type, self.code, self.param, self.headers)


def error_body(message: str, type: str, code: str | None = None, param: str | None = None) -> dict[str, object]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def error_response(
    status: int,
    message: str,
    type: str = "seedtape_error",
    code: str | None = None,
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_body(message, type, code, param), status_code=status, headers=dict(headers or {}))
