"""Installed as users install it: a wheel (not editable) in a fresh venv, used from another
folder: ``list``, ``run`` (reports under the current folder, never in site-packages) and
the pytest plugin.

The wheel is built from a copy of the source tree (a build leaves ``build/`` and
``*.egg-info`` behind). The fresh venv gets the wheel alone (``--no-deps``, no index, no
network); its dependencies come from this interpreter's site-packages through a ``.pth``
line, which adds that folder to ``sys.path`` without running its own ``.pth`` files (so the
editable install of this checkout stays out).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_EVERYWHERE = shutil.ignore_patterns("__pycache__", "*.egg-info", ".pytest_cache", ".ruff_cache")
_AT_THE_TOP = {".git", ".venv", "reports", "build", ".hypothesis"}


def ignore(folder: str, names: list[str]) -> set[str]:
    """What the copy leaves out: caches anywhere, the checkout's own state at its top."""
    left_out = set(_EVERYWHERE(folder, names))
    if Path(folder) == ROOT:
        left_out |= _AT_THE_TOP & set(names)
    return left_out


def run(command, cwd, timeout=300, env=None):
    result = subprocess.run(
        command,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **(env or {})},
    )
    assert result.returncode == 0, f"{command}: {result.stdout[-3000:]}{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv python, venv site-packages, a folder of the user's) with the wheel installed."""
    pytest.importorskip("setuptools", reason="building the wheel needs setuptools here")
    pytest.importorskip("wheel", reason="building the wheel needs the wheel package here")
    base = tmp_path_factory.mktemp("install")
    source = base / "source"
    shutil.copytree(ROOT, source, ignore=ignore)
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(base / "dist"),
            str(source),
        ],
        cwd=base,
    )
    (wheel,) = (base / "dist").glob("socketserver_harness-*.whl")
    venv = base / "venv"
    run([sys.executable, "-m", "venv", str(venv)], cwd=base)
    python = venv / "bin" / "python"
    run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], cwd=base
    )
    purelib = Path(
        run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            cwd=base,
        ).stdout.strip()
    )
    ours = sysconfig.get_paths()["purelib"]
    (purelib / "zz_harness_test_dependencies.pth").write_text(ours + "\n")
    work = base / "user"
    work.mkdir()
    return python, purelib, work


def test_the_installed_package_is_the_wheel_not_this_checkout(installed):
    python, purelib, work = installed
    where = run(
        [
            str(python),
            "-c",
            "import harness, scenarios; print(harness.__file__); print(scenarios.__file__)",
        ],
        cwd=work,
    ).stdout.split()
    assert all(Path(p).is_relative_to(purelib) for p in where), where
    assert (purelib / "scenarios" / "_api_versions.json").exists()  # package data in the wheel


def test_list_and_run_from_another_folder_write_reports_there(installed):
    python, purelib, work = installed
    script = python.parent / "socketserver-harness"
    listed = run([str(script), "list"], cwd=work)
    assert "socketserver/smoke/tcp_echo" in listed.stdout
    result = run([str(script), "run", "--select", "socketserver/smoke/*", "--quiet"], cwd=work)
    assert "4 scenarios" in result.stdout
    for name in ("report.json", "report.md", "report.html", "junit.xml"):
        assert (work / "reports" / name).exists(), name
    assert not (purelib / "reports").exists()


def test_the_pytest_plugin_is_registered_by_the_wheel(installed):
    python, _, work = installed
    result = run(
        [
            str(python),
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--harness-target",
            "reference",
            "--harness-select",
            "socketserver/smoke/tcp_echo",
            "-v",
        ],
        cwd=work,
    )
    assert "socketserver/smoke/tcp_echo PASSED" in result.stdout
    assert "1 passed" in result.stdout
