"""Where server processes' work folders go (``harness.host.work_root``): the user's
temporary folder when one is named, else a RAM-backed tmpfs that can hold them, else the
system's; and a run leaves nothing there either way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from harness.host import SHARED_MEMORY, _usable_tmpfs

ROOT = Path(__file__).resolve().parent.parent
NAMED = ("TMPDIR", "TEMP", "TMP")


def _environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in NAMED}
    env.update(extra)
    return env


def _work_root(env: dict[str, str]) -> str:
    """``work_root()`` as a fresh interpreter with ``env`` sees it (it is cached)."""
    code = "from harness.host import work_root; print(work_root())"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_a_named_temporary_folder_wins(tmp_path: Path) -> None:
    for name in NAMED:
        assert _work_root(_environment(**{name: str(tmp_path)})) == str(tmp_path)


def test_without_one_shared_memory_is_used_only_when_usable() -> None:
    expected = SHARED_MEMORY if _usable_tmpfs(SHARED_MEMORY) else tempfile.gettempdir()
    assert _work_root(_environment()) == expected


def test_a_folder_that_is_no_tmpfs_mount_is_not_usable(tmp_path: Path) -> None:
    assert not _usable_tmpfs(str(tmp_path))  # not a mount point at all
    assert not _usable_tmpfs(str(tmp_path / "missing"))


def test_a_run_in_the_default_place_serves_files_and_leaves_nothing(tmp_path: Path) -> None:
    """Served trees, CGI scripts run from them (a ``noexec`` mount would fail them) and a
    chmod-000 folder, the reference against the stdlib, where no temporary folder is
    named: every result ``same`` or ``explained``, and no work folder left."""
    env = _environment()
    root = Path(_work_root(env))
    before = {p.name for p in root.iterdir() if p.name.startswith("ssh-")}
    command = [sys.executable, "-m", "harness", "run", "--quiet", "--report-dir", str(tmp_path)]
    for pattern in ("http/cgi/fork_*", "http/listing/locked", "http/paths/*"):
        command += ["--select", pattern]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads((tmp_path / "report.json").read_text())["results"]
    assert len(results) > 10
    assert {r["verdict"] for r in results} <= {"same", "explained"}
    after = {p.name for p in root.iterdir() if p.name.startswith("ssh-")}
    # Another run on this machine may be making its own meanwhile: only ours must be gone,
    # and ours are the ones that appeared and stayed.
    assert not (after - before), f"left in {root}: {sorted(after - before)}"


@pytest.mark.skipif(not _usable_tmpfs(SHARED_MEMORY), reason=f"{SHARED_MEMORY} is no usable tmpfs")
def test_shared_memory_is_where_agents_work() -> None:
    """An agent's work folder (its ``tmpdir``, where a Unix server binds) is under /dev/shm."""
    code = (
        "from harness.host import make_workdir; import shutil; d = make_workdir(); "
        "print(d); shutil.rmtree(d)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=_environment(), capture_output=True, text=True
    )
    assert Path(done.stdout.strip()).parent == Path(SHARED_MEMORY)
