"""Run the harness's command line as a user would, from the repository root."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def harness(
    *args: str, timeout: float = 150, cwd: Path = ROOT, token: str | None = None
) -> subprocess.CompletedProcess:
    """``python -m harness ARGS`` (from the repository unless ``cwd`` says otherwise); its
    output captured as text. ``token`` marks the server processes it starts
    (``HARNESS_TEST_TOKEN``), so that a test counts its own and no other run's."""
    env = {**os.environ, "HARNESS_TEST_TOKEN": token} if token else None
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
