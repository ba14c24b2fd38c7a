"""Long fuzz campaigns (issue 10): progress.json, a clean stop on SIGTERM and SIGINT,
``fuzz --resume``, and a bound on the memory a campaign grows by per case.

Each test runs the real command in a subprocess (in its own session, so that a signal
reaches only it) and waits on what it writes, never on the clock: every wait is bounded,
generously, for a busy shared machine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from harness.errors import UsageError
from harness.fuzz.campaign import PROGRESS, load_progress, write_atomically

ROOT = Path(__file__).resolve().parent.parent
LINE_HANDLER = "scenarios.handlers.fuzz_handlers:LineEcho"
#: Bound of every wait (seconds).
PATIENCE = 240.0


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "harness", "fuzz", "--quiet", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _progress(report_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((report_dir / PROGRESS).read_text())
    except (OSError, ValueError):
        return None


def _wait_progress(proc: subprocess.Popen[str], report_dir: Path, cases: int) -> dict[str, Any]:
    """The first progress.json that counts at least ``cases`` (the run still going)."""
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        data = _progress(report_dir)
        if data is not None and data["cases"] >= cases:
            return data
        assert proc.poll() is None, f"the campaign ended early: {proc.communicate()[0]}"
        time.sleep(0.2)
    raise AssertionError(f"no progress.json with {cases} cases after {PATIENCE} s")


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _stop(proc: subprocess.Popen[str], signum: int) -> str:
    """Send ``signum``; the command's output once it has ended (bounded), after checking
    that none of its processes outlived it."""
    tree = _descendants(proc.pid)
    assert tree, "the campaign has no server processes to stop"
    proc.send_signal(signum)
    try:
        out, _ = proc.communicate(timeout=PATIENCE)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise AssertionError(f"still running {PATIENCE} s after signal {signum}") from None
    _gone, alive = psutil.wait_procs(tree, timeout=10)
    assert not alive, f"left running: {alive}"
    return out


def _check_stopped(report_dir: Path, out: str, status: int, name: str) -> dict[str, Any]:
    assert status == 0, out  # nothing found: a stopped campaign exits as a finished one
    report = json.loads((report_dir / "report.json").read_text())
    assert report["fuzz"]["stopped_by"] == name
    assert (report_dir / "hypothesis").is_dir()
    progress = load_progress(report_dir)
    assert progress["state"] == "stopped" and progress["stopped_by"] == name
    assert progress["cases"] == report["fuzz"]["cases"] > 0
    assert f"stopped by {name}" in out
    return progress


def _check_resumed(report_dir: Path, before: dict[str, Any], more: int) -> None:
    """``--resume`` goes on: the same settings, more cases, the next seeds (rounds)."""
    proc = _start("--resume", str(report_dir), "--max-cases", str(before["cases"] + more))
    out, _ = proc.communicate(timeout=PATIENCE)
    assert proc.returncode == 0, out
    after = load_progress(report_dir)
    assert after["state"] == "done" and after["runs"] == 2
    assert after["cases"] >= before["cases"] + more
    assert after["next_round"] > before["next_round"]
    assert after["started"] == before["started"]
    for name in ("target", "family", "seed", "handler", "server", "idle"):
        assert after["settings"][name] == before["settings"][name]
    report = json.loads((report_dir / "report.json").read_text())
    assert report["fuzz"]["resumed_from_cases"] == before["cases"]
    assert report["fuzz"]["cases"] == after["cases"]


def test_sigterm_stops_a_differential_campaign_cleanly_and_resume_goes_on(tmp_path: Path) -> None:
    report_dir = tmp_path / "campaign"
    proc = _start("--family", "stream", "--max-cases", "10000000", "--report-dir", str(report_dir))
    try:
        running = _wait_progress(proc, report_dir, 300)
        assert running["state"] == "running" and running["family"] == "stream"
        for key in ("rate", "findings", "rss_bytes", "started", "seed", "pid"):
            assert key in running
        out = _stop(proc, signal.SIGTERM)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    before = _check_stopped(report_dir, out, proc.returncode, "SIGTERM")
    _check_resumed(report_dir, before, 300)


def test_sigint_stops_a_handler_campaign_cleanly_and_resume_goes_on(tmp_path: Path) -> None:
    report_dir = tmp_path / "campaign"
    proc = _start(
        "--handler",
        LINE_HANDLER,
        "--server",
        "ThreadingTCPServer",
        "--max-cases",
        "10000000",
        "--report-dir",
        str(report_dir),
    )
    try:
        running = _wait_progress(proc, report_dir, 100)
        assert running["kind"] == "handler-fuzz"
        out = _stop(proc, signal.SIGINT)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    before = _check_stopped(report_dir, out, proc.returncode, "SIGINT")
    _check_resumed(report_dir, before, 100)


def test_resume_needs_a_campaign(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"no progress\.json"):
        load_progress(tmp_path)
    write_atomically(tmp_path / PROGRESS, {"cases": 3})
    with pytest.raises(UsageError, match="no settings"):
        load_progress(tmp_path)
    # Only the file itself: the temporary file it was written through is gone.
    assert [p.name for p in tmp_path.iterdir()] == [PROGRESS]


#: Bytes of RSS a campaign may grow by per case after its warm-up. The handler fuzzer
#: once kept about 200 KB per case; a bounded one grows by nothing on average, but a
#: sample's RSS moves with the allocator's pools, so the bound is generous.
GROWTH_PER_CASE = 2048
WARM_UP = 2000


def test_memory_stays_flat_per_case(tmp_path: Path) -> None:
    """A short differential run of stream cases (the largest: up to 64 KiB each): after
    the warm-up, its RSS grows by less than ``GROWTH_PER_CASE`` per case."""
    report_dir = tmp_path / "campaign"
    total = WARM_UP + 6000
    proc = _start("--family", "stream", "--max-cases", str(total), "--report-dir", str(report_dir))
    samples: list[tuple[int, int]] = []
    try:
        deadline = time.monotonic() + 2 * PATIENCE
        while proc.poll() is None and time.monotonic() < deadline:
            data = _progress(report_dir)
            if data is not None and (not samples or data["cases"] != samples[-1][0]):
                samples.append((data["cases"], data["rss_bytes"]))
            time.sleep(0.5)
        out, _ = proc.communicate(timeout=PATIENCE)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 0, out
    final = load_progress(report_dir)
    samples.append((final["cases"], final["rss_bytes"]))
    warm = [(cases, rss) for cases, rss in samples if cases >= WARM_UP]
    assert len(warm) >= 2 and warm[-1][0] - warm[0][0] >= 3000, samples
    (first_cases, first_rss), (last_cases, last_rss) = warm[0], warm[-1]
    per_case = (last_rss - first_rss) / (last_cases - first_cases)
    assert per_case < GROWTH_PER_CASE, samples
    assert final["rss_max_bytes"] < 250 << 20, samples
