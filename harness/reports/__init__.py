"""Reports: ``Row``, one ``finish``, and one module per format, all rendered from the JSON.

- ``row``: ``Row`` (one result) and ``Finding`` (what a fuzzer found);
- ``finishing``: ``finish(...)`` and ``ExitCode``, the one way run, merge and fuzzing end;
- ``json_report`` (the source of truth, schema 2), ``markdown``, ``junit``,
  ``html_report``: the formats; ``terminal``: progress and the end-of-run summary;
- ``causes``: results grouped by root cause; ``expect``: ``--expect`` files;
- ``shards``: ``--shard K/N`` and ``merge``.
"""

import argparse
import os
import tempfile
from pathlib import Path

from harness.reports.finishing import ExitCode, finish
from harness.reports.row import Finding, Row

__all__ = ["ExitCode", "Finding", "Row", "default_report_dir", "finish", "report_dir_argument"]


def default_report_dir(*parts: str) -> Path:
    """Where reports go unless ``--report-dir`` says otherwise: ``./reports`` (+ parts).

    Under the current folder, never beside the installed package (``site-packages`` is
    not where a user looks, and a system install cannot be written to).
    """
    return Path.cwd().joinpath("reports", *parts)


def report_dir_argument(value: str) -> Path:
    """An argparse ``type`` for ``--report-dir``: a directory the run can write its reports to.

    Checked before any work starts, so that a run does not end, after all its scenarios,
    without a report: the directory is created if needed and a file is written and removed.
    """
    path = Path(value).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-check-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise argparse.ArgumentTypeError(
            f"{value}: cannot write reports there ({exc.strerror or exc})"
        ) from None
    return path
