"""Multipart forms as the key sees them: fields plus a SHA-256 per file (form.py)."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from seedtape.errors import ProxyError
from seedtape.form import read_form


def encoded(boundary: str, fields: dict[str, str], files: list[tuple[str, tuple[str, bytes, str]]]) -> tuple[bytes, str]:
    """A form as httpx (the SDK's HTTP stack) writes it, with a chosen boundary."""
    request = httpx.Request(
        "POST", "http://x", data=fields, files=files, headers={"content-type": f"multipart/form-data; boundary={boundary}"}
    )
    return request.read(), request.headers["content-type"]


def test_same_form_with_another_boundary_is_the_same_key_form() -> None:
    files = [("file", ("a.wav", b"RIFFdata", "audio/wav"))]
    one = read_form(*encoded("b" * 32, {"model": "whisper-1", "temperature": "0"}, files))
    two = read_form(*encoded("c" * 32, {"model": "whisper-1", "temperature": "0"}, files))
    assert one == two
    stored, keyed = one
    digest = hashlib.sha256(b"RIFFdata").hexdigest()
    assert keyed == {"model": "whisper-1", "temperature": "0", "file": {"sha256": digest}}
    assert stored["file"] == {"filename": "a.wav", "content_type": "audio/wav", "size": 8, "sha256": digest}


def test_repeated_names_become_lists_in_order() -> None:
    files = [("image[]", ("a.png", b"A", "image/png")), ("image[]", ("b.png", b"B", "image/png"))]
    stored, keyed = read_form(*encoded("x" * 16, {"prompt": "hat"}, files))
    assert [f["filename"] for f in stored["image[]"]] == ["a.png", "b.png"]
    assert keyed["image[]"] == [{"sha256": hashlib.sha256(b"A").hexdigest()}, {"sha256": hashlib.sha256(b"B").hexdigest()}]


@pytest.mark.parametrize("content_type", [None, "application/json", "multipart/form-data"])
def test_a_body_that_is_not_a_form_is_a_clear_400(content_type: str | None) -> None:
    with pytest.raises(ProxyError) as caught:
        read_form(b"{}", content_type)
    assert caught.value.status == 400 and "multipart/form-data" in caught.value.message


def test_a_form_with_no_parts_is_a_clear_400() -> None:
    with pytest.raises(ProxyError) as caught:
        read_form(b"garbage with no boundary in it", "multipart/form-data; boundary=zzz")
    assert caught.value.status == 400
