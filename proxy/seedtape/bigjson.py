"""Big JSON documents read and written in pieces, so no single C call runs for long.

A 100,000-event stream is a 54 MB cassette file. ``json.loads`` of it takes ~0.6 s
and ``orjson.dumps`` ~50 ms, each one C call holding the GIL all along: moving the
work to a thread does not help, the event loop thread cannot run until the call
returns (measured: a 567 ms stall of the loop thread with the parse in another
thread). Here the outer levels of a document are walked in Python, which lets the
interpreter switch threads every few milliseconds, and the C parser and encoder only
ever see one element at a time (a stream event, an embedding, a slice of a list).

Both functions give exactly what their one-call counterparts give: ``loads`` equals
``json.loads`` (duplicate keys, ``NaN`` and all), ``pretty`` equals
``cassette.pretty_json``'s orjson layout (tests/test_bigjson.py checks both).

Two more things keep such work from holding up the event loop when it runs in a
worker thread (tests/faults/test_event_loop.py measured both):

* ``breathe()``: the worker sleeps a moment every slice of work. A thread that never
  blocks makes the loop thread queue for the interpreter every time it wakes (the
  GIL "convoy"): a storm of replay misses computed in a thread pushed other
  clients' replays from 1 ms to over 100 ms; with a 1 ms pause every 50 files, 14 ms.
* ``quiet_gc()``: no cyclic garbage collection while a big document exists. Each full
  collection walks every object in the process; with a parsed 100,000-event stream
  alive that is a million more, and the walk holds the interpreter ~100 ms. The
  caller empties the document in slices (``cassette.dismantle``) before it ends,
  so reference counting frees it and the collector never meets it.
"""

from __future__ import annotations

import codecs
import gc
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson

# Containers this shallow are walked in Python; deeper ones are parsed in one call,
# except lists, which are walked down to LIST_DEPTH (an embeddings answer's ``data``).
# A cassette's stream events sit at depth 4 (file, episodes, episode, events, event),
# so each event is one call.
WALK_DEPTH = 4
LIST_DEPTH = 6
# Lists longer than this are written a slice at a time.
SLICE = 256
DECODE_STEP = 1 << 20

BREATH = 0.0005

_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()
_PRETTY = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS


def breathe() -> None:
    """Let the event loop thread have the interpreter for a moment (see the module doc)."""
    time.sleep(BREATH)


_gc_lock = threading.Lock()
_gc_users = 0
_gc_was_enabled = True


@contextmanager
def quiet_gc() -> Iterator[None]:
    """No cyclic collection inside the block (nested and concurrent blocks count)."""
    global _gc_users, _gc_was_enabled
    with _gc_lock:
        if _gc_users == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_users += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_users -= 1
            if _gc_users == 0 and _gc_was_enabled:
                gc.enable()


def decode_utf8(raw: bytes) -> str:
    """``raw.decode("utf-8")`` a megabyte at a time (UnicodeDecodeError as usual)."""
    if len(raw) <= DECODE_STEP:
        return raw.decode("utf-8")
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(raw)
    parts = []
    for start in range(0, len(raw), DECODE_STEP):
        parts.append(decoder.decode(view[start : start + DECODE_STEP]))
        breathe()
    parts.append(decoder.decode(b"", final=True))
    return "".join(parts)


def loads(text: str) -> Any:
    """``json.loads(text)``, with the outer levels parsed in Python (see the module doc)."""
    value, end = _value(text, _ws(text, 0), 0)
    end = _ws(text, end)
    if end != len(text):
        raise _error("Extra data", text, end)
    return value


def _ws(text: str, index: int) -> int:
    found = _WS.match(text, index)
    return found.end() if found else index


def _error(message: str, text: str, index: int) -> json.JSONDecodeError:
    return json.JSONDecodeError(message, text, index)


def _value(text: str, index: int, depth: int) -> tuple[Any, int]:
    char = text[index : index + 1]
    if char == "{" and depth < WALK_DEPTH:
        return _object(text, index + 1, depth)
    if char == "[" and depth < LIST_DEPTH:
        return _array(text, index + 1, depth)
    return _DECODER.raw_decode(text, index)


def _object(text: str, index: int, depth: int) -> tuple[dict[str, Any], int]:
    result: dict[str, Any] = {}
    index = _ws(text, index)
    if text[index : index + 1] == "}":
        return result, index + 1
    while True:
        if text[index : index + 1] != '"':
            raise _error("Expecting property name enclosed in double quotes", text, index)
        key, index = _DECODER.raw_decode(text, index)
        index = _ws(text, index)
        if text[index : index + 1] != ":":
            raise _error("Expecting ':' delimiter", text, index)
        index = _ws(text, index + 1)
        result[key], index = _value(text, index, depth + 1)
        index = _ws(text, index)
        char = text[index : index + 1]
        if char == "}":
            return result, index + 1
        if char != ",":
            raise _error("Expecting ',' delimiter", text, index)
        index = _ws(text, index + 1)


def _array(text: str, index: int, depth: int) -> tuple[list[Any], int]:
    result: list[Any] = []
    index = _ws(text, index)
    if text[index : index + 1] == "]":
        return result, index + 1
    while True:
        item, index = _value(text, index, depth + 1)
        result.append(item)
        if len(result) % SLICE == 0:
            breathe()
        index = _ws(text, index)
        char = text[index : index + 1]
        if char == "]":
            return result, index + 1
        if char != ",":
            raise _error("Expecting ',' delimiter", text, index)
        index = _ws(text, index + 1)


def pretty(value: Any) -> str:
    """orjson's indent-2, sorted-keys text of ``value`` plus a newline, in pieces.

    Raises what orjson raises (``orjson.JSONEncodeError``, ``TypeError``) for a value
    it cannot write; the caller then falls back to the standard library.
    """
    out: list[str] = []
    _pretty(value, 0, out.append)
    out.append("\n")
    return "".join(out)


def _pretty(value: Any, level: int, emit: Callable[[str], None]) -> None:
    pad = "  " * level
    if isinstance(value, dict) and value and level < WALK_DEPTH:
        emit("{\n")
        items = sorted(value.items())
        last = len(items) - 1
        for i, (key, item) in enumerate(items):
            if not isinstance(key, str):
                raise TypeError("Dict key must be str")
            emit(pad + "  " + orjson.dumps(key).decode() + ": ")
            _pretty(item, level + 1, emit)
            emit(",\n" if i < last else "\n")
        emit(pad + "}")
    elif isinstance(value, list) and value and (level < WALK_DEPTH or len(value) > SLICE):
        emit("[\n")
        inner = pad + "  "
        if level < WALK_DEPTH and len(value) <= SLICE:
            last = len(value) - 1
            for i, item in enumerate(value):
                if i and i % SLICE == 0:
                    breathe()
                emit(inner)
                _pretty(item, level + 1, emit)
                emit(",\n" if i < last else "\n")
        else:
            for start in range(0, len(value), SLICE):
                text = orjson.dumps(value[start : start + SLICE], option=_PRETTY).decode()
                # "[\n  a,\n  b\n]": keep the items, indented to this level.
                body = text[2:-2].replace("\n", "\n" + pad)
                emit(pad + body + (",\n" if start + SLICE < len(value) else "\n"))
                breathe()
        emit(pad + "]")
    else:
        text = orjson.dumps(value, option=_PRETTY).decode()
        emit(text.replace("\n", "\n" + pad) if level and "\n" in text else text)
