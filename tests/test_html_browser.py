"""The HTML report in a real browser: headless Chromium (Debian's ``chromium``) loads the
page, runs its script, and shows the matrix, a diff in the panel, and the filters.

Skipped, with the reason, where Chromium is missing (``.ci/run`` installs it where it can).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import struct
import subprocess
import time
import zlib
from pathlib import Path

import psutil
import pytest

from harness.reports import Row, finishing, json_report

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")

DIFF = "--- stdlib: facts.reply\n+++ mine: facts.reply\n@@ -1 +1 @@\n-HTTP/1.0 200 OK\n+HTTP/1.0 500 Oops"


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """Run headless Chromium with a profile of its own in ``tmp_path`` (nothing left behind)."""
    profile = tmp_path / "profile"
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=3000",
        *args,
    ]
    started = time.time()
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"chromium did not finish: {err[-2000:]}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        # Chromium's crash handler outlives the browser in its session: end it too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        reap_adopted(started)
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


def reap_adopted(started: float) -> None:
    """End and reap the browser's processes that came back to this process: once an
    in-process harness run has made it a child subreaper, Chromium's orphans are ours."""
    for child in psutil.Process().children():
        with contextlib.suppress(psutil.NoSuchProcess):
            if child.create_time() >= started - 1 and "chrom" in child.name():
                child.kill()
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(child.pid, 0)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """A report of 30 scenarios (every fifth differs, one is explained) rendered to HTML."""
    rows = []
    for i in range(30):
        family = "http/headers" if i < 15 else "socketserver/tcp"
        verdict = "differs" if i % 5 == 0 else "same"
        if i == 7:
            verdict = "explained"
        rows.append(
            Row(
                f"{family}/case_{i:02}",
                "mine",
                verdict,
                description=f"scenario number {i}",
                diff=DIFF if verdict != "same" else "",
                reason="gh-1234: known" if verdict == "explained" else "",
                differing_keys=["facts.reply"] if verdict != "same" else [],
                reproducer=f"python -m harness run --select '{family}/case_{i:02}'",
                python=[3, 11, 7],
            )
        )
    targets = [{"name": "mine", "modules": {}, "python": "py", "role": "target"}]
    report = json_report.build(rows, targets, ["python", "-m", "harness", "run"], 3.0)
    out = tmp_path_factory.mktemp("html")
    written = finishing.write_all(report, out)
    return written["html"], report


def dom(tmp_path, path, fragment=""):
    result = chromium(tmp_path, "--dump-dom", f"{path.as_uri()}{fragment}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'data-ready="1"' in result.stdout, "the page's script did not run"
    return result.stdout


def test_the_matrix_shows_a_cell_per_result_coloured_by_verdict(page, tmp_path):
    path, _ = page
    html = dom(tmp_path, path)
    assert html.count('class="cell v-differs"') == 6
    assert html.count('class="cell v-same"') == 23
    assert html.count('class="cell v-explained"') == 1
    assert re.search(r'<span id="shown"[^>]*>30 scenarios</span>', html)
    assert 'id="panel" hidden=""' in html  # closed until a cell is opened


def test_a_cell_opens_its_diff_explanation_and_reproducer(page, tmp_path):
    path, report = page
    index = next(i for i, r in enumerate(report["results"]) if r["verdict"] == "explained")
    html = dom(tmp_path, path, f"#row={index}")
    panel = html[html.index('<aside id="panel"') :]
    assert not panel.startswith('<aside id="panel" hidden')
    assert "http/headers/case_07" in panel and "gh-1234: known" in panel
    assert '<pre class="diff">' in panel
    assert '<span class="add">+HTTP/1.0 500 Oops\n</span>' in panel
    assert '<span class="del">-HTTP/1.0 200 OK\n</span>' in panel
    assert "python -m harness run --select 'http/headers/case_07'" in panel
    assert 'class="cell v-explained current"' in html


def test_filters_by_verdict_family_and_search(page, tmp_path):
    path, _ = page
    html = dom(tmp_path, path, "#verdict=differs&family=socketserver/tcp")
    shown = re.findall(r'<tr class="sc" data-family="([^"]+)"[^>]*?(hidden="")?>', html)
    visible = [f for f, hidden in shown if not hidden]
    assert visible == ["socketserver/tcp"] * 3  # cases 15, 20, 25
    assert re.search(r'<span id="shown"[^>]*>3 of 30 scenarios shown</span>', html)
    html = dom(tmp_path, path, "#q=number%2012")
    assert re.search(r'<span id="shown"[^>]*>1 of 30 scenarios shown</span>', html)


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and rows of RGB(A) pixels of an 8-bit, non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and interlace == 0 and colour in (2, 6)
    bpp = 3 if colour == 2 else 4
    raw, stride, rows, previous = zlib.decompress(idat), width * bpp, [], bytes(width * bpp)
    for y in range(height):
        kind, line = (
            raw[y * (stride + 1)],
            bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]),
        )
        for x in range(stride):
            left = line[x - bpp] if x >= bpp else 0
            up, corner = previous[x], previous[x - bpp] if x >= bpp else 0
            if kind == 1:
                line[x] = (line[x] + left) & 255
            elif kind == 2:
                line[x] = (line[x] + up) & 255
            elif kind == 3:
                line[x] = (line[x] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[x] = (
                    line[x] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)
                ) & 255
        rows.append(bytes(line))
        previous = bytes(line)
    return width, height, rows


def test_a_screenshot_shows_the_verdict_colours(page, tmp_path):
    path, _ = page
    shot = tmp_path / "report.png"
    result = chromium(tmp_path, f"--screenshot={shot}", "--window-size=1400,1000", path.as_uri())
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    width, height, rows = png_pixels(shot.read_bytes())
    assert (width, height) == (1400, 1000)
    bpp = len(rows[0]) // width
    colours = {}
    for row in rows[::2]:
        for x in range(0, len(row), bpp * 2):
            rgb = row[x : x + 3]
            colours[rgb] = colours.get(rgb, 0) + 1
    # the cells' own colours: differs red, same green, explained blue (see html_report._CSS)
    for name, rgb in (
        ("differs", b"\xcf\x22\x2e"),
        ("same", b"\x2d\xa4\x4e"),
        ("explained", b"\x09\x69\xda"),
    ):
        assert colours.get(rgb, 0) > 50, f"no {name} colour on the screenshot"
