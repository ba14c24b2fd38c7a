"""In CI: every format from a real run, shards and merge, expectations, the grid, signals.

Real server processes and sockets. The target is a copy of the running stdlib's
``socketserver`` whose ``handle_error`` prints its rulers with ``=`` instead of ``-``: a
few scenarios differ (their stderr), the rest are ``same``, and a run takes seconds.
"""

from __future__ import annotations

import json
import os
import signal
import socketserver
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from harness.engine import Engine
from harness.targets import parse_target

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data"
TOKEN = f"test-ci-{os.getpid()}"
SELECTION = ["--select", "socketserver/smoke/*", "--select", "socketserver/tcp/handle_error*"]
sys.path.insert(0, str(Path(__file__).parent))
from harness_cli import harness as run_harness  # noqa: E402
from interpreters import find_cpython  # noqa: E402


def harness(*args, cwd=ROOT, timeout=300):
    return run_harness(*args, cwd=cwd, timeout=timeout, token=TOKEN)


def agents_running():
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("HARNESS_TEST_TOKEN") == TOKEN:
                found.append(proc.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    return found


@pytest.fixture(scope="module")
def noisy(tmp_path_factory):
    source = Path(socketserver.__file__).read_text()
    ruler = "print('-'*40, file=sys.stderr)"
    assert source.count(ruler) == 2
    path = tmp_path_factory.mktemp("noisy") / "noisy_socketserver.py"
    path.write_text(source.replace(ruler, "print('='*40, file=sys.stderr)"))
    return f"name=noisy,socketserver={path}"


@pytest.fixture(scope="module")
def whole(noisy, tmp_path_factory):
    """One unsharded run of the selection: (result, report directory)."""
    out = tmp_path_factory.mktemp("whole")
    result = harness("run", "--target", noisy, *SELECTION, "--report-dir", str(out))
    return result, out


def verdicts(report_dir):
    rows = json.loads((report_dir / "report.json").read_text())["results"]
    return {(r["scenario"], r["target"]): r["verdict"] for r in rows}


def test_a_run_writes_every_format_and_puts_the_causes_first(whole):
    xmlschema = pytest.importorskip("xmlschema", reason="xmlschema is not installed")
    result, out = whole
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["schema"] == 2 and report["kind"] == "run"
    assert {"same", "differs"} <= set(report["counts"])
    for name in ("report.md", "report.html", "junit.xml"):
        assert (out / name).stat().st_size > 0
    xmlschema.XMLSchema(str(DATA / "junit.xsd")).validate(str(out / "junit.xml"))
    first = report["causes"][0]
    assert first["count"] == max(g["count"] for g in report["causes"])
    # The summary opens with the largest group and ends with where the reports are.
    assert result.stdout.lstrip().startswith(f"== {first['count']} result")
    assert "Every result that is not `same`" in result.stdout
    assert "report: " in result.stdout and "junit.xml" in result.stdout
    assert not agents_running()


def test_merged_shards_give_the_verdicts_of_one_run(whole, noisy, tmp_path):
    _, out = whole
    parts = []
    for k in (1, 2, 3):
        part = tmp_path / f"shard{k}"
        shard = harness(
            "run", "--target", noisy, *SELECTION, "--shard", f"{k}/3", "--report-dir", str(part)
        )
        assert shard.returncode in (0, 1), shard.stdout + shard.stderr
        assert json.loads((part / "report.json").read_text())["shard"]["index"] == k
        parts.append(part / "report.json")
    ids = [set(s for s, _ in verdicts(p.parent)) for p in parts]
    assert not (ids[0] & ids[1] or ids[1] & ids[2] or ids[0] & ids[2])  # disjoint
    merged = harness(
        "merge",
        *map(str, parts),
        "--report-dir",
        str(tmp_path / "merged"),
        "--junit",
        str(tmp_path / "ci" / "junit.xml"),
    )
    assert merged.returncode == 1, merged.stdout + merged.stderr  # as the whole run
    assert verdicts(tmp_path / "merged") == verdicts(out)
    report = json.loads((tmp_path / "merged" / "report.json").read_text())
    assert report["missing_shards"] == [] and len(report["shards"]) == 3
    assert (tmp_path / "ci" / "junit.xml").exists() and (
        tmp_path / "merged" / "report.html"
    ).exists()
    again = harness("merge", str(parts[0]), str(parts[0]), "--report-dir", str(tmp_path / "twice"))
    assert again.returncode == 2 and "in both" in again.stderr


def test_shards_balanced_by_an_earlier_report_still_cover_the_selection(whole, noisy, tmp_path):
    _, out = whole
    listed = harness("list", "--json", *SELECTION)
    everything = {r["id"] for r in json.loads(listed.stdout)}
    chosen = set()
    for k in (1, 2):
        part = tmp_path / f"b{k}"
        result = harness(
            "run",
            "--target",
            noisy,
            *SELECTION,
            "--shard",
            f"{k}/2",
            "--durations",
            str(out / "report.json"),
            "--report-dir",
            str(part),
        )
        assert result.returncode in (0, 1), result.stderr
        shard = json.loads((part / "report.json").read_text())["shard"]
        assert shard["balanced_by"] == str(out / "report.json")
        mine = {s for s, _ in verdicts(part)}
        assert not mine & chosen
        chosen |= mine
    assert chosen == everything


def test_expected_differences_exit_0_and_a_stale_entry_exits_1(whole, noisy, tmp_path):
    _, out = whole
    differing = sorted(s for (s, _), v in verdicts(out).items() if v == "differs")
    same = sorted(s for (s, _), v in verdicts(out).items() if v == "same")
    assert differing and same
    entries = "".join(
        f'[[expect]]\nscenario = "{s}"\ntarget = "noisy"\nverdict = "differs"\n'
        f'reason = "our handle_error rules with ="\n\n'
        for s in differing
    )
    expect = tmp_path / "expect.toml"
    expect.write_text(entries)
    ok = harness(
        "run",
        "--target",
        noisy,
        "--select",
        differing[0],
        "--expect",
        str(expect),
        "--report-dir",
        str(tmp_path / "ok"),
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    row = json.loads((tmp_path / "ok" / "report.json").read_text())["results"][0]
    assert (
        row["verdict"] == "differs" and row["expected"]["reason"] == "our handle_error rules with ="
    )
    # The same entries applied to the whole run by merge: all expected, nothing stale.
    assert (
        harness(
            "merge",
            str(out / "report.json"),
            "--expect",
            str(expect),
            "--report-dir",
            str(tmp_path / "m"),
        ).returncode
        == 0
    )
    expect.write_text(
        entries + f'[[expect]]\nscenario = "{same[0]}"\ntarget = "noisy"\n'
        'verdict = "differs"\nreason = "it used to differ"\n'
    )
    stale = harness(
        "run",
        "--target",
        noisy,
        "--select",
        same[0],
        "--expect",
        str(expect),
        "--report-dir",
        str(tmp_path / "stale"),
    )
    assert stale.returncode == 1, stale.stdout + stale.stderr
    assert f"stale expectation #{len(differing) + 1}" in stale.stdout
    assert f"{same[0]} on noisy is now same, expected differs" in stale.stdout
    bad = harness("run", "--expect", str(tmp_path / "missing.toml"))
    assert bad.returncode == 2 and "--expect" in bad.stderr


def test_report_re_renders_an_existing_report(whole, tmp_path):
    _, out = whole
    for fmt, marker in (
        ("html", "<table id='matrix'>"),
        ("junit", "<testsuites"),
        ("md", "# Compatibility report"),
    ):
        result = harness("report", str(out / "report.json"), "--format", fmt)
        assert result.returncode == 0 and marker in result.stdout
    written = harness(
        "report", str(out / "report.json"), "--format", "html", "-o", str(tmp_path / "x.html")
    )
    assert written.returncode == 0 and (tmp_path / "x.html").read_text().startswith(
        "<!DOCTYPE html>"
    )
    assert harness("report", str(tmp_path / "x.html")).returncode == 2


def test_the_interpreter_grid_is_one_run_and_one_report(tmp_path):
    if not (find_cpython("3.9") and find_cpython("3.13")):
        pytest.skip("needs CPython 3.9 and 3.13 (pyenv or PATH)")
    result = harness(
        "run",
        "--python",
        "3.9,3.13",
        "--select",
        "socketserver/smoke/tcp_echo",
        "--report-dir",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert [i["label"] for i in report["interpreters"]] == ["3.9", "3.13"]
    assert [i["version"][:4] for i in report["interpreters"]] == ["3.9.", "3.13"]
    rows = {(r["target"], r["interpreter"]): r for r in report["results"]}
    assert set(rows) == {("reference", "3.9"), ("reference", "3.13")}
    assert "python=" in rows[("reference", "3.9")]["reproducer"]
    page = (tmp_path / "report.html").read_text()
    assert page.count("<th class='col'") == 2
    missing = harness("run", "--python", "3.9,no-such-python", "--report-dir", str(tmp_path))
    assert missing.returncode == 2 and "no-such-python" in missing.stderr


@pytest.mark.parametrize(
    ("sig", "status", "name"), [(signal.SIGINT, 130, "SIGINT"), (signal.SIGTERM, 143, "SIGTERM")]
)
def test_a_signal_stops_the_run_and_the_report_has_what_finished(sig, status, name, tmp_path):
    engine = Engine([parse_target("reference")], parse_target("stdlib"))
    if not hasattr(engine, "interrupted"):
        pytest.skip("the engine does not stop on signals yet (issue 12)")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness",
            "run",
            "-v",
            "--jobs",
            "2",
            "--select",
            "socketserver/*",
            "--report-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "HARNESS_TEST_TOKEN": TOKEN},
    )
    try:
        for line in proc.stderr:
            if line.startswith("[") and "/" in line:  # the first scenario finished
                break
        proc.send_signal(sig)
        stdout, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == status, stdout
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["interrupted"] == name
    listed = json.loads(harness("list", "--json", "--select", "socketserver/*").stdout)
    assert 0 < len({r["scenario"] for r in report["results"]}) < len(listed)
    deadline = time.monotonic() + 10
    while agents_running() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not agents_running()
