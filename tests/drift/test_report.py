"""``seedtape report`` formats and ``--fail-on`` exit codes, from a real drift log."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest

from seedtape.drift import log as drift_log
from seedtape.drift import report
from seedtape.drift.compare import CLASSES, compare
from tests.drift._episodes import STORY_A, STORY_B, chat_episode, context, pieces_of, stream_episode, tool_call

lxml_etree = pytest.importorskip("lxml.etree")

XSD = Path(__file__).resolve().parents[1] / "data" / "junit-xunit2.xsd"
SECRET = "sk-SECRET-credential-0123456789"
NASTY_LIVE = STORY_B.replace("secret snack spot", "<script>alert('x')</script> & snack spot")


def _entries() -> list[dict[str, Any]]:
    """One entry per class, plus a tool-call drift, written through the drift log."""
    pairs = [
        ("stories", chat_episode(STORY_A), chat_episode(STORY_A)),
        ("stories", chat_episode(STORY_A, fingerprint="fp_old"), chat_episode(STORY_A, fingerprint="fp_new")),
        ("stories", chat_episode(model="gpt-4o-2024-05-13"), chat_episode(model="gpt-4o-2024-08-06")),
        ("stories", chat_episode(STORY_A), chat_episode(NASTY_LIVE)),
        (
            "streams",
            stream_episode(pieces_of(STORY_A), fingerprint="fp_old"),
            stream_episode(pieces_of(STORY_B), fingerprint="fp_new"),
        ),
        ("streams", None, chat_episode()),
        (
            "tools",
            chat_episode(None, tool_calls=[tool_call("get_weather", '{"city": "Paris"}')]),
            chat_episode(None, tool_calls=[tool_call("get_weather", '{"city": "Lyon"}')]),
        ),
    ]
    entries = []
    for number, (cassette, recorded, live) in enumerate(pairs, start=1):
        ctx = context(cassette, key_seed=number, headers={"api-key": SECRET})
        entries.append(compare(recorded, live).to_log_entry(ctx))
    return entries


@pytest.fixture
def entries(tmp_path: Path) -> list[dict[str, Any]]:
    log = tmp_path / "drift.jsonl"
    for entry in _entries():
        drift_log.append(log, entry)
    return drift_log.read(log)


def _only(entries: list[dict[str, Any]], *classes: str) -> list[dict[str, Any]]:
    return [e for e in entries if e["class"] in classes]


# --------------------------------------------------------------------------- summary


def test_summary_counts(entries: list[dict[str, Any]]) -> None:
    summary = report.summarize(entries, {"content"})
    assert summary["total"] == 7
    assert summary["classes"] == {
        "identical": 1,
        "fingerprint-only": 1,
        "model-only": 1,
        "content-same-fingerprint": 2,
        "content-new-fingerprint": 1,
        "variety": 0,
        "unrecorded": 1,
    }
    assert (summary["meant_to_repeat"], summary["drifted"], summary["unrecorded"]) == (6, 5, 1)
    assert [c["cassette"] for c in summary["cassettes"]] == ["stories", "streams", "tools"]
    pair = next(p for p in summary["fingerprints"] if p["recorded"] == "fp_old" and p["live"] == "fp_new" and p["content_drift"])
    assert pair["total"] == 2 and pair["content_drift"] == 1  # fingerprint-only + content-new
    assert summary["worst"][0]["similarity"] <= summary["worst"][-1]["similarity"]
    assert summary["failing"] == 3 and summary["exit_code"] == 1


# --------------------------------------------------------------------------- exit codes


@pytest.mark.parametrize(
    ("classes", "fail_on", "code"),
    [
        (CLASSES, set(), 0),
        (CLASSES, {"content"}, 1),
        (CLASSES, {"fingerprint"}, 1),
        (CLASSES, {"model"}, 1),
        (CLASSES, {"any"}, 1),
        (("identical",), {"any"}, 0),
        (("identical", "fingerprint-only", "model-only"), {"content"}, 0),
        (("identical", "content-same-fingerprint"), {"fingerprint"}, 0),
        (("identical", "content-new-fingerprint"), {"fingerprint"}, 1),
        (("identical", "content-same-fingerprint"), {"model"}, 0),
        (("model-only",), {"model"}, 1),
        (("unrecorded",), {"any"}, 1),
        (("unrecorded",), {"content", "fingerprint", "model"}, 0),
        (("unrecorded",), {"unrecorded"}, 1),
    ],
)
def test_exit_code(entries: list[dict[str, Any]], classes: tuple[str, ...], fail_on: set[str], code: int) -> None:
    assert report.exit_code(_only(entries, *classes), fail_on) == code


def test_exit_code_empty_log() -> None:
    assert report.exit_code([], {"any"}) == 0


def test_parse_fail_on() -> None:
    assert report.parse_fail_on(["content,fingerprint", "model"]) == {"content", "fingerprint", "model"}
    with pytest.raises(ValueError, match="unknown --fail-on"):
        report.parse_fail_on(["contnet"])


def test_unknown_format() -> None:
    with pytest.raises(ValueError, match="unknown report format"):
        report.render([], "xml", set())


# --------------------------------------------------------------------------- formats


def test_json_report_loads(entries: list[dict[str, Any]]) -> None:
    document = json.loads(report.render(entries, "json", {"content"}))
    assert document["schema"] == "seedtape.report/1"
    assert document["summary"]["total"] == len(document["entries"]) == 7
    failing = [e for e in document["entries"] if e["failed_rules"]]
    assert len(failing) == 3 and all(e["failed_rules"] == ["content"] for e in failing)


def test_table_report(entries: list[dict[str, Any]]) -> None:
    text = report.render(entries, "table", {"content"}, width=120)
    assert "5 of 6 requests meant to repeat drifted" in text and "1 unrecorded" in text
    assert "content drift, new fingerprint" in text
    assert "fp_old" in text and "fp_new" in text
    assert "Worst drifts" in text and "[-but it was guarded by-]" in text and "Lyon" in text
    assert "exit 1" in text
    assert "\x1b[" not in text
    coloured = report.render(entries, "table", {"content"}, color=True)
    assert "\x1b[" in coloured


def _junit(entries: list[dict[str, Any]], fail_on: set[str]) -> str:
    return report.render(entries, "junit", fail_on)


def test_junit_validates_against_xunit2_schema(entries: list[dict[str, Any]]) -> None:
    schema = lxml_etree.XMLSchema(lxml_etree.parse(str(XSD)))
    for fail_on in (set(), {"content"}, {"any"}):
        document = lxml_etree.fromstring(_junit(entries, fail_on).encode("utf-8"))
        schema.assertValid(document)


def test_junit_cases_and_failures(entries: list[dict[str, Any]]) -> None:
    root = ET.fromstring(_junit(entries, {"content"}))
    suite = root.find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert len(cases) == 7 and suite.get("tests") == "7"
    assert suite.get("failures") == "3" and root.get("failures") == "3"
    failed = [c for c in cases if c.find("failure") is not None]
    assert len(failed) == 3
    names = {c.get("name") for c in cases}
    assert len(names) == 7
    first = failed[0]
    assert first.get("classname") in {"stories", "streams", "tools"}
    assert re.match(r"^[0-9a-f]{16} \S+ #1$", first.get("name") or "")
    texts = "".join(f.findtext("failure") or "" for f in failed)
    assert "[-but it was guarded" in texts and "{+which he decided" in texts
    # Drift that fails no rule is still visible.
    outs = [c for c in cases if c.find("system-out") is not None]
    assert len(outs) == 3  # fingerprint-only, model-only, unrecorded


def test_junit_any_fails_everything_that_drifted(entries: list[dict[str, Any]]) -> None:
    root = ET.fromstring(_junit(entries, {"any"}))
    assert root.get("failures") == "6"


def test_junit_survives_control_characters() -> None:
    entry = compare(chat_episode("bell"), chat_episode("bell\x07 ring\x00")).to_log_entry(context())
    lxml_etree.XMLSchema(lxml_etree.parse(str(XSD))).assertValid(lxml_etree.fromstring(_junit([entry], {"content"}).encode()))


@pytest.mark.slow  # runs pytest in a subprocess
def test_schema_accepts_what_pytest_itself_writes(tmp_path: Path) -> None:
    """Keeps the vendored schema honest: pytest's own xunit2 output must validate."""
    (tmp_path / "test_sample.py").write_text(
        "import pytest\n"
        "def test_pass():\n    print('out')\n"
        "def test_fail():\n    assert 1 == 2\n"
        "@pytest.mark.skip(reason='no')\ndef test_skip():\n    pass\n",
        encoding="utf-8",
    )
    out = tmp_path / "pytest.xml"
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:seedtape",
         "-o", "junit_family=xunit2", f"--junitxml={out}", "-o", "junit_logging=all", str(tmp_path / "test_sample.py")],
        cwd=tmp_path, capture_output=True, check=False, timeout=120,
    )  # fmt: skip
    schema = lxml_etree.XMLSchema(lxml_etree.parse(str(XSD)))
    theirs = lxml_etree.parse(str(out))
    schema.assertValid(theirs)
    ours = lxml_etree.fromstring(_junit(_entries(), {"content"}).encode())
    # Same element nesting and the attributes pytest writes are all present in ours.
    for path in ("testsuite", "testsuite/testcase"):
        their_attrs = set(theirs.getroot().find(path).attrib)
        our_attrs = set(ours.find(path).attrib)
        assert their_attrs <= our_attrs, (path, their_attrs - our_attrs)


class _Collector(HTMLParser):
    """Collects tags, attributes and text so the page can be checked structurally."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_report_is_one_offline_file(entries: list[dict[str, Any]], tmp_path: Path) -> None:
    page = report.render(entries, "html", {"content"})
    assert page.startswith("<!DOCTYPE html>")
    assert "http" not in page.lower()
    assert "<script" not in page.lower()
    parsed = _Collector()
    parsed.feed(page)
    assert not any(name in ("src", "href") for name, _ in parsed.attrs)
    assert "link" not in parsed.tags and "img" not in parsed.tags and "script" not in parsed.tags
    assert parsed.tags.count("svg") == 1 and "rect" in parsed.tags
    assert "style" in parsed.tags
    # Summary and a side-by-side diff with both sides' own changes highlighted.
    assert 'id="summary"' in page and 'class="sbs"' in page
    assert "<del>but it was guarded by</del>" in page
    assert "<ins>which he decided to keep as his" in page
    # Model text is escaped: it shows as text and never becomes markup.
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp;" in page
    assert "<script>alert" in "".join(parsed.text)
    (tmp_path / "report.html").write_text(page, encoding="utf-8")


def test_html_report_without_drift() -> None:
    entry = compare(chat_episode(), chat_episode()).to_log_entry(context())
    page = report.render([entry], "html", set())
    assert "No drift" in page and "http" not in page


@pytest.mark.parametrize("fmt", report.FORMATS)
def test_no_credentials_in_any_format(entries: list[dict[str, Any]], fmt: str) -> None:
    assert SECRET not in report.render(entries, fmt, {"any"})


@pytest.mark.parametrize("fmt", report.FORMATS)
def test_formats_tolerate_sparse_entries(fmt: str) -> None:
    """Entries from an older or foreign writer lack fields; reports still render."""
    sparse = [{"flags": ["content"]}, {"class": "identical"}, {}]
    assert report.render(sparse, fmt, {"content"})
    assert report.exit_code(sparse, {"content"}) == 1


# --------------------------------------------------------------------------- in a browser


def _png_pixels(data: bytes) -> tuple[int, int, list[tuple[int, int, int]]]:
    """Decode an 8-bit RGB/RGBA, non-interlaced PNG (what Chromium screenshots are)."""
    import struct
    import zlib

    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, chunks, header = 8, [], b""
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        position += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks.append(body)
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0
    channels = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(chunks))
    stride = width * channels
    previous = bytearray(stride)
    pixels: list[tuple[int, int, int]] = []
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                estimate = left + up - corner
                pa, pb, pc = abs(estimate - left), abs(estimate - up), abs(estimate - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 255
        pixels.extend(tuple(line[i : i + 3]) for i in range(0, stride, channels))  # type: ignore[misc]
        previous = line
    return width, height, pixels


def _chromium() -> str | None:
    import shutil

    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def chromium() -> str:
    """The browser the HTML checks screenshot with: outside CI a missing one is a skip
    saying how to install it; in CI (where .ci/run installs it) it is an error."""
    import os

    found = _chromium()
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: CI must run the HTML checks (.ci/run installs Debian's chromium)")
        pytest.skip("needs a headless Chromium: apt-get install chromium (.ci/run installs it)")
    return found


@pytest.mark.slow
def test_html_report_renders_in_headless_chromium(entries: list[dict[str, Any]], tmp_path: Path) -> None:
    browser = chromium()
    """The page, opened offline in a real browser, shows the chart and highlighted diffs."""
    page = tmp_path / "report.html"
    page.write_text(report.render(entries, "html", {"content"}), encoding="utf-8")
    shot = tmp_path / "shot.png"
    subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--force-color-profile=srgb",
         f"--screenshot={shot}", "--window-size=1280,2400", page.as_uri()],
        capture_output=True, check=False, timeout=120,
    )  # fmt: skip
    assert shot.exists(), "chromium wrote no screenshot"
    _, _, pixels = _png_pixels(shot.read_bytes())
    counts = Counter(pixels)

    def near(colour: str, tolerance: int = 4) -> int:
        target = tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))
        close = (rgb for rgb in counts if all(abs(a - b) <= tolerance for a, b in zip(rgb, target, strict=True)))
        return sum(counts[rgb] for rgb in close)

    assert near(report.CLASS_COLOURS["content-same-fingerprint"]) > 500  # a chart bar
    assert near(report.CLASS_COLOURS["identical"]) > 200
    assert near("#ffd7d5") > 500  # removed words highlighted
    assert near("#ccffd8") > 500  # added words highlighted
