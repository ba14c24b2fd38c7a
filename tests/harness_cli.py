"""Run the harness's command line as a user would, from the repository root."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def harness(*args: str, timeout: float = 150) -> subprocess.CompletedProcess:
    """``python -m harness ARGS`` from the repository; its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
