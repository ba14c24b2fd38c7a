"""CPython's suites of the stdlib's own users of the two modules, against the reference.

``xmlrpc.server``, ``wsgiref.simple_server`` and ``logging`` (its socket handlers and
``logging.config.listen``) are built on ``socketserver`` and ``http.server``. Their suites
(``test_xmlrpc``, ``test_wsgiref``, ``test_logging``) run through the same runner as the
modules' own suites, ``python -m harness.cpython_suite``, with the reference substituted for
both modules, under this interpreter and every other CPython 3.9-3.13 found.

The reference may fail no test that the stdlib passes under the same interpreter. A test
that fails against the reference is run again alone, against the reference and against
the stdlib, so that a timing test upset by a loaded machine is not blamed on the reference.

The runs are independent processes that mostly wait (on sockets, on timeouts), so they are
started together, a few at a time, and each test reads its own result.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from interpreters import find_cpython

ROOT = Path(__file__).resolve().parent.parent
SUITES = ("test_xmlrpc", "test_wsgiref", "test_logging")
OTHER_MINORS = ("3.9", "3.10", "3.12", "3.13")
REFERENCE = ("--socketserver", "implementation.socketserver")
REFERENCE += ("--http-server", "implementation.http.server")
SUITE_TIMEOUT = 600
PARALLEL = 4

_SUMMARY = re.compile(r"^ran=(\d+) failures=(\d+) errors=(\d+) skipped=(\d+)$", re.M)
# "FAIL: test_x (test.test_xmlrpc.Class.test_x)" (3.11+) or "(test.test_xmlrpc.Class)"
_FAILED = re.compile(r"^(?:FAIL|ERROR): (\w+) \(test\.\w+\.(\w+)[\w.]*\)", re.M)


@dataclasses.dataclass
class SuiteRun:
    """What one ``harness.cpython_suite`` process reported."""

    returncode: int
    output: str
    ran: int = 0
    failed: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, returncode: int, output: str) -> SuiteRun:
        """Read the summary line and the names of the failed tests from the output."""
        run = cls(returncode, output)
        found = _SUMMARY.search(output)
        if found:
            run.ran = int(found.group(1))
        run.failed = frozenset(f"{c}.{name}" for name, c in _FAILED.findall(output))
        return run

    @property
    def complete(self) -> bool:
        """Whether the suite ran to its summary line (it did not hang or crash)."""
        return _SUMMARY.search(self.output) is not None

    def tail(self) -> str:
        """The end of the output, for assertion messages."""
        return self.output[-4000:]


def run_suite(python: str, suite: str, modules: tuple[str, ...], patterns=()) -> SuiteRun:
    """Run ``suite`` under ``python`` with ``modules`` substituted (none: the stdlib)."""
    argv = [python, "-m", "harness.cpython_suite", suite, *modules]
    for pattern in patterns:
        argv += ["-k", pattern]
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", NO_COLOR="1")
    try:
        done = subprocess.run(
            argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=SUITE_TIMEOUT
        )
    except subprocess.TimeoutExpired as exc:
        output = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else exc.stdout
        return SuiteRun(-1, (output or "") + f"\n<timed out after {SUITE_TIMEOUT} s>")
    return SuiteRun.parse(done.returncode, done.stdout + done.stderr)


def _pythons() -> list[tuple[str, str | None]]:
    running = "%d.%d" % sys.version_info[:2]
    pythons = [(f"{running} (running)", sys.executable)]
    pythons += [(minor, find_cpython(minor)) for minor in OTHER_MINORS if minor != running]
    return pythons


PYTHONS = _pythons()


@pytest.fixture(scope="module")
def reference_runs():
    """Every (interpreter, suite) run against the reference, started together."""
    jobs = {
        (label, suite): (python, suite)
        for label, python in PYTHONS
        if python is not None
        for suite in SUITES
    }
    with concurrent.futures.ThreadPoolExecutor(PARALLEL) as pool:
        futures = {key: pool.submit(run_suite, *job, REFERENCE) for key, job in jobs.items()}
        return {key: future.result() for key, future in futures.items()}


@pytest.mark.parametrize("suite", SUITES)
@pytest.mark.parametrize(("label", "python"), PYTHONS, ids=[label for label, _ in PYTHONS])
def test_reference_fails_nothing_the_stdlib_passes(reference_runs, label, python, suite):
    if python is None:
        pytest.skip(f"CPython {label} is not installed (looked in ~/.pyenv/versions and PATH)")
    run = reference_runs[(label, suite)]
    assert run.complete, f"{suite} under {label} did not finish:\n{run.tail()}"
    assert run.ran > 0, run.tail()
    if run.returncode == 0:
        return
    assert run.failed, f"{suite} failed without naming a test:\n{run.tail()}"
    # Each failure again, alone: one that the reference repeats and the stdlib does not is
    # the reference's.
    again = run_suite(python, suite, REFERENCE, patterns=sorted(run.failed))
    stdlib = run_suite(python, suite, (), patterns=sorted(run.failed))
    assert again.complete and stdlib.complete, again.tail() + stdlib.tail()
    only_reference = sorted(again.failed - stdlib.failed)
    assert not only_reference, (
        f"{suite} under {label}: fails against the reference only: {only_reference}\n"
        + again.tail()
    )


def test_failure_parsing_reads_both_unittest_spellings():
    output = (
        "FAIL: test_a (test.test_xmlrpc.SimpleServerTestCase.test_a)\n"
        "ERROR: test_b (test.test_logging.SocketHandlerTest)\n"
        "ran=5 failures=1 errors=1 skipped=0\n"
    )
    run = SuiteRun.parse(1, output)
    assert run.ran == 5 and run.complete
    assert run.failed == {"SimpleServerTestCase.test_a", "SocketHandlerTest.test_b"}
