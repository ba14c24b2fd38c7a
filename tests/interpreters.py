"""Finding the other interpreters the tests run the reference under."""

from __future__ import annotations

import glob
import os
import re
import shutil

#: The CPython branches the server-side code supports.
CPYTHON_MINORS = ("3.9", "3.10", "3.11", "3.12", "3.13")


def find_cpython(minor: str) -> str | None:
    """The newest CPython ``minor`` (``"3.9"``) from pyenv, else from PATH, or None."""
    pattern = os.path.expanduser(f"~/.pyenv/versions/{minor}.*/bin/python{minor}")
    candidates = [path for path in glob.glob(pattern) if os.access(path, os.X_OK)]

    def release(path: str) -> list[int]:
        name = path.split("/versions/")[1].split("/")[0]
        return [int(number) for number in re.findall(r"\d+", name)]

    if candidates:
        return max(candidates, key=release)
    return shutil.which(f"python{minor}")
