"""Errors of the double's API server, shaped and worded as k8s.io/apimachinery/pkg/api/errors makes them."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: dict | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                     "message": message, "reason": reason, "code": code}
        if details:
            self.body["details"] = details


def not_found(rt: Any, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{rt.qualified} "{name}" not found',
                    {"name": name, "group": rt.group, "kind": rt.plural})


def conflict(rt: Any, name: str, why: str = "the object has been modified; please apply your changes "
             "to the latest version and try again") -> ApiError:
    return ApiError(409, "Conflict", f'Operation cannot be fulfilled on {rt.qualified} "{name}": {why}',
                    {"name": name, "group": rt.group, "kind": rt.plural})


def invalid(rt: Any, name: str, causes: list[tuple[str, str]]) -> ApiError:
    text = ", ".join(f"{fld}: {msg}" for fld, msg in causes)
    return ApiError(422, "Invalid", f'{rt.kind} "{name}" is invalid: {text}', {
        "name": name, "group": rt.group, "kind": rt.kind,
        "causes": [{"reason": "FieldValueInvalid", "message": msg, "field": fld} for fld, msg in causes]})


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def unsupported(message: str) -> ApiError:
    return ApiError(415, "UnsupportedMediaType", message)
