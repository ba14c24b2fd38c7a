"""The server-side code stays stdlib-only and runs on Python 3.9+ (and PyPy)."""

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVER_SIDE = ["harness.agent", "harness.cpython_suite", "harness.substitution"]
SERVER_SIDE += [
    name
    for name, path in (
        ("implementation.socketserver", "implementation/socketserver.py"),
        ("implementation.http.server", "implementation/http/server.py"),
    )
    if (ROOT / path).exists()
]
SERVER_SIDE += sorted(
    "scenarios.handlers." + Path(p).stem
    for p in glob.glob(str(ROOT / "scenarios" / "handlers" / "*.py"))
    if not p.endswith("__init__.py")
)
THIRD_PARTY = ("trio", "psutil", "hypothesis", "h11", "pytest")

CHECK = """
import importlib, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
bad = [m for m in %r if m in sys.modules]
print("third-party:", bad)
sys.exit(1 if bad else 0)
""" % (THIRD_PARTY,)


def interpreters():
    found = [pytest.param(sys.executable, id="current")]
    for version in ("3.9", "3.10", "3.12", "3.13"):
        paths = sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python")))
        found.append(
            pytest.param(
                paths[-1] if paths else None,
                id=f"cpython{version}",
            )
        )
    found.append(pytest.param(shutil.which("pypy3"), id="pypy3"))
    return found


@pytest.mark.parametrize("python", interpreters())
def test_server_side_modules_import_without_third_party_packages(python):
    if python is None:
        pytest.skip("interpreter not installed on this machine")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [python, "-c", CHECK, *SERVER_SIDE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
