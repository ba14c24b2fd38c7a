"""The interpreter grid: ``run --python 3.9,3.10,3.11,3.12,3.13,pypy3`` in one run.

Each name is resolved to an interpreter: ``3.12`` is the newest CPython 3.12 that pyenv
has (``~/.pyenv/versions/3.12.*``), else ``python3.12`` on PATH; any other name is looked
up on PATH (``pypy3``); a path is taken as it is. ``all`` is every CPython from 3.9 on and
``pypy3`` that can be found. Every interpreter is asked its version before the run starts
(the server-side code needs 3.9 or later).
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess

from harness.errors import UsageError
from harness.targets import MIN_PYTHON, _check_python

#: what ``--python all`` looks for, oldest first
ALL = ("3.9", "3.10", "3.11", "3.12", "3.13", "3.14", "pypy3")
_MINOR = re.compile(r"^3\.\d+$")


def _works(path: str) -> bool:
    """Whether it runs at all (a pyenv shim of a version not enabled does not)."""
    try:
        return (
            subprocess.run(
                [path, "-c", "pass"], capture_output=True, timeout=30, check=False
            ).returncode
            == 0
        )
    except (OSError, subprocess.SubprocessError):
        return False


def find(name: str) -> str | None:
    """The interpreter a grid name means, or None when there is none here."""
    if os.sep in name:
        return name if os.access(name, os.X_OK) else None
    if _MINOR.match(name):
        pattern = os.path.expanduser(f"~/.pyenv/versions/{name}.*/bin/python{name}")
        found = [p for p in glob.glob(pattern) if os.access(p, os.X_OK)]
        if found:

            def release(path: str) -> list[int]:
                version = path.split("/versions/")[1].split("/")[0]
                return [int(n) for n in re.findall(r"\d+", version)]

            return max(found, key=release)
        name = f"python{name}"
    path = shutil.which(name)
    return path if path and _works(path) else None


def resolve(spec: str) -> list[tuple[str, str]]:
    """``--python`` value -> [(label, interpreter path)]; ``UsageError`` for a missing one."""
    names = [part.strip() for part in spec.split(",") if part.strip()]
    if not names:
        raise UsageError("--python: give interpreter names or paths, comma-separated")
    if names == ["all"]:
        found = [(n, p) for n in ALL if (p := find(n))]
        found = [(n, p) for n, p in found if _old_enough(p)]
        if not found:
            raise UsageError("--python all: no interpreter found")
        return found
    grid: list[tuple[str, str]] = []
    for name in names:
        path = find(name)
        if path is None:
            raise UsageError(f"--python {name}: no such interpreter here (pyenv or PATH)")
        try:
            checked = _check_python(path)
        except UsageError as exc:
            raise UsageError(f"--python {name}: {exc}") from None
        if any(label == name for label, _ in grid):
            raise UsageError(f"--python: {name} given twice")
        grid.append((name, checked))
    return grid


def _old_enough(path: str) -> bool:
    try:
        _check_python(path)
    except UsageError:
        return False
    return True


__all__ = ["ALL", "MIN_PYTHON", "find", "resolve"]
