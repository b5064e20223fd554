"""Multipart form bodies (audio transcriptions, image edits) as the key and cassette see them.

The SDK draws a new boundary for every request, and an audio file can be megabytes:
neither belongs in a key or a cassette. A form becomes its fields (repeated names as
a list) plus, per file part, its SHA-256 — that is the key, so the same file with a
new boundary hits and a different file misses. The cassette stores each file's hash,
name, size and content type, never its bytes. Parsing is python-multipart's (the
parser Starlette uses for forms), not hand-written.
"""

from __future__ import annotations

import hashlib
from typing import Any

from python_multipart.multipart import MultipartParser, parse_options_header

from seedtape.errors import ProxyError


class _Part:
    __slots__ = ("content_type", "data", "filename", "headers", "name")

    def __init__(self) -> None:
        self.headers: dict[str, str] = {}
        self.data = bytearray()
        self.name = ""
        self.filename: str | None = None
        self.content_type = ""


def read_form(raw: bytes, content_type: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(stored, keyed)``: the form with file descriptors, and the form the key hashes."""
    media, params = parse_options_header(content_type or "")
    boundary = params.get(b"boundary")
    if media != b"multipart/form-data" or not boundary:
        raise ProxyError(
            400,
            f"content-type {(content_type or 'none')[:80]!r} is not multipart/form-data with a boundary; this endpoint takes a form",
            "invalid_request_error",
            "invalid_form",
        )
    parts = _parse(raw, boundary)
    stored: dict[str, Any] = {}
    keyed: dict[str, Any] = {}
    for part in parts:
        if part.filename is None:
            value: Any = part.data.decode("utf-8", errors="replace")
            key_value: Any = value
        else:
            digest = hashlib.sha256(part.data).hexdigest()
            value = {"filename": part.filename, "content_type": part.content_type, "size": len(part.data), "sha256": digest}
            key_value = {"sha256": digest}
        _add(stored, part.name, value)
        _add(keyed, part.name, key_value)
    return stored, keyed


def _add(form: dict[str, Any], name: str, value: Any) -> None:
    if name not in form:
        form[name] = value
    elif isinstance(form[name], list):
        form[name].append(value)
    else:
        form[name] = [form[name], value]


def _parse(raw: bytes, boundary: bytes) -> list[_Part]:
    parts: list[_Part] = []
    header: list[bytes] = [b"", b""]

    def on_part_begin() -> None:
        parts.append(_Part())

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header[0] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header[1] += data[start:end]

    def on_header_end() -> None:
        parts[-1].headers[header[0].decode("latin-1").lower()] = header[1].decode("utf-8", errors="replace")
        header[0], header[1] = b"", b""

    def on_headers_finished() -> None:
        part = parts[-1]
        _, disposition = parse_options_header(part.headers.get("content-disposition", ""))
        part.name = disposition.get(b"name", b"").decode("utf-8", errors="replace")
        filename = disposition.get(b"filename")
        part.filename = filename.decode("utf-8", errors="replace") if filename is not None else None
        part.content_type = part.headers.get("content-type", "")

    def on_part_data(data: bytes, start: int, end: int) -> None:
        parts[-1].data += data[start:end]

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
        },
    )
    try:
        parser.write(raw)
        parser.finalize()
    except Exception as exc:  # python-multipart raises several error types for bad input
        raise ProxyError(400, f"multipart body cannot be read: {exc}", "invalid_request_error", "invalid_form") from exc
    if not parts:
        raise ProxyError(400, "multipart body has no parts", "invalid_request_error", "invalid_form")
    return parts
