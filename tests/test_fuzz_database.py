"""Fuzz campaigns over several machines: ``fuzz --database redis://HOST:PORT/N``.

A real ``redis-server`` (Debian's package) is started on a free loopback port in a
temporary folder, without persistence, and stopped by its pid. One campaign finds a
planted bug and stores it in Redis; a second campaign, with a report folder of its own
("another machine") and a budget too small to find the bug by itself, replays it from
Redis at once; the same small campaign on an empty Redis database finds nothing.

Skipped, with the reason, where ``redis-server`` or the redis client is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REDIS_SERVER = shutil.which("redis-server")
redis = pytest.importorskip("redis", reason="the redis client is not installed")
pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def redis_server(tmp_path):
    """A redis-server of our own: its port; stopped (by pid) afterwards."""
    port = free_port()
    proc = subprocess.Popen(
        [
            REDIS_SERVER,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(tmp_path),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(host="127.0.0.1", port=port)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"redis-server did not start (exit status {proc.poll()})")
                time.sleep(0.05)
        yield port
    finally:
        client.close()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def fuzz(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "harness", "fuzz", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ),
    )


def test_campaigns_share_and_replay_their_findings_through_redis(redis_server, tmp_path):
    stdlib = Path(sysconfig.get_paths()["stdlib"]) / "http" / "server.py"
    source = stdlib.read_text()
    assert "if len(self.raw_requestline) > 65536:" in source
    mutant = tmp_path / "server.py"
    mutant.write_text(source.replace("> 65536:", "> 65535:", 1))
    target = [
        "--target",
        f"name=mutant,http.server={mutant}",
        "--max-findings",
        "1",
        "--shrink-seconds",
        "5",
    ]
    shared = f"redis://127.0.0.1:{redis_server}/0"

    first = fuzz(
        *target,
        "--duration",
        "90",
        "--database",
        shared,
        "--report-dir",
        str(tmp_path / "machine-a"),
        cwd=tmp_path,
    )
    assert first.returncode == 1, first.stdout + first.stderr
    found = json.loads((tmp_path / "machine-a" / "report.json").read_text())["results"][0]
    assert found["verdict"] == "differs" and found["finding"]["replay"]
    stored = redis.Redis(host="127.0.0.1", port=redis_server, db=0)
    assert stored.dbsize() > 0  # the example is in Redis, not in machine A's folder
    assert not (tmp_path / "machine-a" / "hypothesis").exists()

    small = ["--max-cases", "200"]
    alone = fuzz(
        *target,
        *small,
        "--database",
        f"redis://127.0.0.1:{redis_server}/1",
        "--report-dir",
        str(tmp_path / "machine-c"),
        cwd=tmp_path,
    )
    if alone.returncode == 1:
        pytest.fail("200 cases now find the planted bug without the database: plant a rarer one")
    assert alone.returncode == 0, alone.stdout + alone.stderr

    second = fuzz(
        *target,
        *small,
        "--database",
        shared,
        "--report-dir",
        str(tmp_path / "machine-b"),
        cwd=tmp_path,
    )
    assert second.returncode == 1, second.stdout + second.stderr
    replayed = json.loads((tmp_path / "machine-b" / "report.json").read_text())["results"][0]
    assert replayed["verdict"] == "differs"
    assert replayed["scenario"].split("/")[1] == found["scenario"].split("/")[1]


def test_an_unreachable_database_is_bad_usage_before_any_work(tmp_path):
    result = fuzz(
        "--database",
        f"redis://127.0.0.1:{free_port()}/0",
        "--duration",
        "5",
        "--report-dir",
        str(tmp_path),
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "--database redis://127.0.0.1:" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "report.json").exists()
