"""``finish``: the one way a command ends: write every report, print the summary, exit.

``run``, ``merge``, ``fuzz`` and handler fuzzing all end here, so their reports have one
schema and their exit statuses one meaning. ``report.json`` is written first; the other
formats (``report.md``, ``report.html``, ``junit.xml``, and ``--junit``/``--html`` copies
elsewhere) are rendered from what was written, read back.

A fuzz campaign calls it like this::

    from harness.reports import Finding, Row, finish

    rows = [
        Row(
            scenario=f"fuzz/{family}/{f.case.key()}",
            target=target.name,
            verdict=f.verdict,                      # differs | flaky | explained
            description=f"fuzzed case: {f.case.describe()}",
            diff=f.diff,
            reason=f.reason,
            differing_keys=f.keys,
            reproducer=f"python -m harness replay {f.path}",
            python=python,
            observation=f.target_obs,
            finding=Finding(data=repr(f.case.data)[2:-1], replay=f"python -m harness replay {f.path}",
                            schedule=f.case.describe(), file=str(f.path)),
        )
        for f in findings
    ] or [Row("fuzz/http/all", target.name, "same", description=f"{n} cases, no difference")]
    return finish(
        rows,
        kind="fuzz",                                  # or "handler-fuzz"
        targets=[dict(target.describe(), role="target"), dict(baseline.describe(), role="baseline")],
        report_dir=report_dir,
        duration=seconds,
        extra={"fuzz": {"family": family, "seed": seed, "cases": n}},
    )

It returns the exit status (``ExitCode``) for ``main`` to return.
"""

from __future__ import annotations

import enum
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from harness.reports import html_report, json_report, junit, markdown, terminal
from harness.reports.expect import Expectations
from harness.reports.row import Row


class ExitCode(enum.IntEnum):
    """What the exit status of ``python -m harness`` means."""

    #: every result was ``same`` or ``explained`` (or expected by ``--expect``)
    OK = 0
    #: something differs, fails, hangs, or is flaky, or an expectation is stale
    FOUND = 1
    #: the command line was wrong (the message says what)
    USAGE = 2
    #: the harness itself failed (an ``error`` result, processes left behind, a crash)
    INTERNAL = 3
    #: stopped by SIGINT (Ctrl-C); the report has what finished (128 + 2)
    INTERRUPTED_SIGINT = 130
    #: stopped by SIGTERM; the report has what finished (128 + 15)
    INTERRUPTED_SIGTERM = 143

    @classmethod
    def for_signal(cls, signum: int) -> ExitCode:
        """The status of a run stopped by ``signum`` (SIGINT or SIGTERM)."""
        return cls(128 + int(signum))


#: the names of the report files in the report directory
FILES = {"json": "report.json", "md": "report.md", "html": "report.html", "junit": "junit.xml"}


def signal_name(signum: int | str | None) -> str | None:
    """``SIGINT`` for 2 (or for ``"SIGINT"``); None for None."""
    if signum is None or isinstance(signum, str):
        return signum
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def exit_status(report: dict[str, Any], leftovers: bool = False) -> ExitCode:
    """The exit status a report calls for.

    Order: interrupted (130/143), the harness failed (an ``error`` result, processes left
    behind: 3), something unexpected or a stale expectation (1), else 0.
    """
    interrupted = report.get("interrupted")
    if interrupted:
        number = getattr(signal, interrupted, None) if isinstance(interrupted, str) else None
        if number in (signal.SIGINT, signal.SIGTERM):
            return ExitCode.for_signal(number)
        return ExitCode.INTERNAL
    if leftovers or report["counts"].get("error"):
        return ExitCode.INTERNAL
    stale = (report.get("expectations") or {}).get("stale")
    if report.get("problems") or stale:
        return ExitCode.FOUND
    return ExitCode.OK


def write_all(
    report: dict[str, Any],
    report_dir: Path,
    *,
    junit_path: Path | None = None,
    html_path: Path | None = None,
) -> dict[str, Path]:
    """Write ``report.json`` and render the other formats from it; format -> path."""
    report_dir = Path(report_dir)
    written = {"json": json_report.write(report, report_dir)}
    # Rendered from the file as written, so every format shows what report.json says.
    stored = json_report.load(written["json"])
    written["md"] = markdown.write(stored, report_dir)
    written["html"] = html_report.write(stored, report_dir / FILES["html"])
    written["junit"] = junit.write(stored, report_dir / FILES["junit"])
    if junit_path is not None:
        written["junit (copy)"] = junit.write(stored, junit_path)
    if html_path is not None:
        written["html (copy)"] = html_report.write(stored, html_path)
    return written


def finish(
    rows: Sequence[Row],
    *,
    kind: str,
    targets: list[dict[str, Any]],
    report_dir: Path,
    duration: float,
    command: list[str] | None = None,
    extra: dict[str, Any] | None = None,
    expectations: Expectations | None = None,
    interrupted: int | str | None = None,
    junit_path: Path | None = None,
    html_path: Path | None = None,
    check_leftovers: bool = True,
    stream: TextIO | None = None,
    quiet: bool = False,
) -> ExitCode:
    """Write the reports of a finished (or interrupted) command, print the summary.

    ``rows`` are the results; ``kind`` is ``run``, ``fuzz``, ``handler-fuzz`` or
    ``merge``; ``targets`` describe the targets and baseline (``Target.describe()`` plus
    ``role``); ``extra`` adds top-level keys (``fuzz``, ``shard``, ``shards``).
    ``expectations`` marks expected rows and finds stale entries; ``interrupted`` is the
    signal that stopped the command. ``check_leftovers`` looks for server processes
    left behind (a harness failure). Returns the exit status.
    """
    rows = list(rows)
    applied = expectations.apply(rows) if expectations is not None else None
    report = json_report.build(
        rows,
        targets,
        list(sys.argv if command is None else command),
        duration,
        extra,
        kind=kind,
        expectations=applied,
        interrupted=signal_name(interrupted),
    )
    written = write_all(report, report_dir, junit_path=junit_path, html_path=html_path)
    left = False
    if check_leftovers:
        from harness.host import leftovers

        found = leftovers()
        left = bool(found["live"] or found["zombies"])
        if left:
            print(f"harness error: processes left behind: {found}", file=sys.stderr)
    if not quiet:
        terminal.summary(report, written, stream)
    return exit_status(report, left)
