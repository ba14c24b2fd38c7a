"""The catalog through pytest (``harness.pytest_plugin``), as a user's CI runs it.

Each test runs pytest in a user's project made in a temporary folder, with its own
scenario package, against real server processes: ``-k``, ``-x``, ``--lf``, ``-m``,
``--junitxml`` and xdist (``-n 2``) on the catalog's items.
"""

from __future__ import annotations

import os
import socketserver
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SCENARIOS = '''
"""Our own conformance scenarios, next to the catalog's."""
from harness.scenario import ServerSpec, scenario


@scenario(
    "myproj/echo/upper",
    server=ServerSpec("TCPServer", handler="myproj_conformance.handlers:Upper"),
)
async def upper(run):
    """Our handler upper-cases one line, on every target alike."""
    serve = run.serve_forever(0.05)
    async with await run.connect() as client:
        await client.send(b"hello\\n")
        client.shutdown_write()
        run.record("reply", (await client.recv_until_eof()).summary())
    run.record("stop", await run.stop_serving(serve))
'''

HANDLERS = """
import socketserver


class Upper(socketserver.StreamRequestHandler):
    def handle(self):
        self.wfile.write(self.rfile.readline().upper())
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A user's project: its own test, its own scenario package, a target that differs."""
    root = tmp_path_factory.mktemp("userproject")
    package = root / "myproj_conformance"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "scenarios.py").write_text(SCENARIOS)
    (package / "handlers.py").write_text(HANDLERS)
    (root / "test_own.py").write_text("def test_own():\n    assert True\n")
    source = Path(socketserver.__file__).read_text()
    ruler = "print('-'*40, file=sys.stderr)"
    (root / "noisy.py").write_text(source.replace(ruler, "print('='*40, file=sys.stderr)"))
    return root


def pytest_run(project, *args, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:randomly", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")},
    )


def noisy(project):
    return ["--harness-target", f"name=noisy,socketserver={project / 'noisy.py'}"]


SMOKE = ["--harness-select", "socketserver/smoke/*"]


def test_nothing_is_collected_without_a_target(project):
    result = pytest_run(project, "--co", "-q")
    assert result.returncode == 0
    assert "test_own.py::test_own" in result.stdout and "socketserver/" not in result.stdout


def test_one_item_per_scenario_named_by_its_id_with_the_users_own(project):
    result = pytest_run(
        project,
        "--co",
        "-q",
        "--harness-target",
        "reference",
        "--harness-scenarios",
        "myproj_conformance",
        "--harness-select",
        "myproj/*",
        *SMOKE,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    ids = [line for line in result.stdout.splitlines() if "/" in line and "::" not in line]
    assert ids == [
        "myproj/echo/upper",
        "socketserver/smoke/forking_error",
        "socketserver/smoke/handler_emits",
        "socketserver/smoke/tcp_echo",
        "socketserver/smoke/udp_echo",
    ]
    assert "test_own.py::test_own" in result.stdout


def test_the_reference_passes_the_smoke_family_and_the_users_scenario(project):
    result = pytest_run(
        project,
        "--harness-target",
        "reference",
        "--harness-scenarios",
        "myproj_conformance",
        "--harness-select",
        "myproj/*",
        *SMOKE,
        "-p",
        "no:cacheprovider",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 passed" in result.stdout  # five scenarios and the project's own test


def test_verdicts_are_outcomes_and_junitxml_carries_the_diff(project, tmp_path):
    junit = tmp_path / "pytest.xml"
    result = pytest_run(
        project,
        *noisy(project),
        "--harness-scenarios",
        "myproj_conformance",
        "--harness-select",
        "myproj/*",
        *SMOKE,
        "-m",
        "harness",
        f"--junitxml={junit}",
        "-rA",
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 failed, 4 passed, 1 deselected" in result.stdout  # test_own left out by -m
    assert "FAILED socketserver/smoke/forking_error - noisy: differs" in result.stdout
    assert "+========================================" in result.stdout  # the diff
    assert (
        "reproduce: python -m harness run --select 'socketserver/smoke/forking_error'"
        in result.stdout
    )
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    failed = [c for c in cases.values() if c.find("failure") is not None]
    assert len(failed) == 1 and "noisy: differs" in failed[0].find("failure").get("message")
    props = {p.get("name"): p.get("value") for p in failed[0].iter("property")}
    assert props == {"verdict:noisy": "differs"}


def test_k_x_and_last_failed_work_on_scenario_items(project):
    first = pytest_run(project, *noisy(project), *SMOKE, "-k", "tcp_echo or forking", "-q")
    assert "1 failed, 1 passed, 3 deselected" in first.stdout, first.stdout + first.stderr
    again = pytest_run(project, *noisy(project), *SMOKE, "--lf", "-q")
    assert "1 failed, 4 deselected" in again.stdout, again.stdout
    stop = pytest_run(project, *noisy(project), *SMOKE, "-x", "-q", "-p", "no:cacheprovider")
    assert "stopping after 1 failures" in stop.stdout and "1 failed" in stop.stdout


def test_xdist_spreads_the_items_over_workers(project):
    result = pytest_run(project, *noisy(project), *SMOKE, "-n", "2", "-m", "harness")
    assert "created: 2/2 workers" in result.stdout, result.stdout + result.stderr
    assert "[gw" in result.stdout  # the failure ran on a worker
    assert "1 failed, 3 passed" in result.stdout


def test_expected_differences_are_xfail_and_stale_entries_fail(project, tmp_path):
    expect = tmp_path / "expect.toml"
    expect.write_text(
        textwrap.dedent(
            """
            [[expect]]
            scenario = "socketserver/smoke/forking_error"
            target = "noisy"
            verdict = "differs"
            reason = "our rulers are ="

            [[expect]]
            scenario = "socketserver/smoke/tcp_echo"
            target = "noisy"
            verdict = "differs"
            reason = "used to differ"
            """
        )
    )
    result = pytest_run(
        project, *noisy(project), *SMOKE, f"--harness-expect={expect}", "-m", "harness", "-rx"
    )
    assert "1 failed, 2 passed, 1 deselected, 1 xfailed" in result.stdout, result.stdout
    assert (
        "XFAIL socketserver/smoke/forking_error - noisy: differs: our rulers are =" in result.stdout
    )
    assert "stale expectation #2: noisy is now same, expected differs" in result.stdout


def test_bad_options_are_usage_errors(project):
    result = pytest_run(project, "--harness-target", "nonsense")
    assert result.returncode == 4 and "socketserver-harness: unknown target" in result.stderr
    result = pytest_run(project, "--harness-target", "reference", "--harness-select", "no/such/*")
    assert result.returncode == 4 and "no scenario matches no/such/*" in result.stderr
