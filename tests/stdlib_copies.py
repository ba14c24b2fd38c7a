"""Copies of the stdlib modules with one planted change, for tests that check the catalog
tells such a copy apart from the stdlib."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def stdlib_source(module: str) -> str:
    """The running interpreter's stdlib source of ``module``, located in a child process
    (the harness process never imports the modules under test)."""
    path = subprocess.run(
        [sys.executable, "-c", f"import {module} as m; print(m.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()
    return Path(path).read_text()


def with_method(source: str, cls: str, method: str) -> str:
    """``source`` with ``method`` (source text, indented) first in the body of ``cls``."""
    at = source.index("\n", source.index(f"class {cls}")) + 1
    return source[:at] + method + "\n" + source[at:]
