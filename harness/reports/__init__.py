"""Report formats, each rendered from the JSON report (the source of truth)."""

import argparse
import os
import tempfile
from pathlib import Path


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
