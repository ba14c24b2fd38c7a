"""The catalogs, reference against stdlib: every scenario `same` or `explained`.

These are the compatibility runs users rely on, run as the README's main job does, in
server processes over real sockets. They also check the catalog's own promises: enough
scenarios, every id well formed and described, and nothing left behind after a run.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parent.parent
TOKEN = f"test-catalog-{os.getpid()}"


def left_behind():
    """Processes started by this module's runs that are still there."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("HARNESS_TEST_TOKEN") == TOKEN:
                found.append(proc.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    return found


def catalog(select):
    out = subprocess.run(
        [sys.executable, "-m", "harness", "list", "--json", "--select", select],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(out.stdout)


@pytest.mark.parametrize(
    ("select", "minimum"),
    [("socketserver/*", 60), ("http/*", 120), ("dependents/*", 40), ("*/api/*", 20)],
)
def test_catalog_is_large_enough_and_described(select, minimum):
    rows = catalog(select)
    assert len(rows) >= minimum
    assert all(r["description"].strip() for r in rows)
    assert len({r["id"] for r in rows}) == len(rows)


@pytest.mark.slow
@pytest.mark.parametrize("select", ["socketserver/*", "http/*", "dependents/*"])
def test_reference_matches_stdlib_on_the_whole_catalog(select, tmp_path):
    # The run's temporary directories (socket files, captured output) go into a directory
    # of this test's own, so that what is left there was left by this run. It is short,
    # because Unix socket paths must stay under 108 bytes.
    scratch = Path(tempfile.mkdtemp(prefix="cat-"))
    try:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "harness",
                "run",
                "--select",
                select,
                "--report-dir",
                str(tmp_path),
                "--quiet",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=900,
            env={**os.environ, "HARNESS_TEST_TOKEN": TOKEN, "TMPDIR": str(scratch)},
        )
        left = sorted(p.name for p in scratch.iterdir())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report = json.loads((tmp_path / "report.json").read_text())
    bad = [
        (r["scenario"], r["verdict"], r["reason"], r["diff"][:800])
        for r in report["results"]
        if r["verdict"] not in ("same", "explained")
    ]
    assert not bad, json.dumps(bad, indent=1)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert all(r["reason"] for r in report["results"] if r["verdict"] == "explained")
    assert not left_behind()
    assert not left, f"the run left temporary files behind: {left}"
