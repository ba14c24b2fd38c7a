"""The command line end to end: real server processes, real sockets."""

import json
import os
import socketserver
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from harness_cli import harness as run_harness

ROOT = Path(__file__).resolve().parent.parent
# Server processes inherit the harness's environment: this marks the ones our runs started,
# so that other harness runs on the machine are not counted.
TOKEN = f"test-cli-{os.getpid()}"


def harness(*args, cwd=ROOT, timeout=240):
    return run_harness(*args, cwd=cwd, timeout=timeout, token=TOKEN)


def agents_running():
    """Processes started by this module's harness runs that are still there."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("HARNESS_TEST_TOKEN") == TOKEN:
                found.append(proc.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    return found


def test_list_shows_the_catalog_as_text_and_json():
    text = harness("list", "--select", "socketserver/smoke/*")
    assert text.returncode == 0, text.stderr
    assert "socketserver/smoke/tcp_echo" in text.stdout
    rows = json.loads(harness("list", "--json", "--select", "socketserver/smoke/*").stdout)
    assert {r["id"] for r in rows} >= {"socketserver/smoke/tcp_echo", "socketserver/smoke/udp_echo"}
    assert all(r["description"] for r in rows)


def test_run_stdlib_against_itself_is_all_same(tmp_path):
    result = harness(
        "run",
        "--select",
        "socketserver/smoke/*",
        "--target",
        "name=again,modules=stdlib",
        "--report-dir",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["schema"] == 2
    assert [t["role"] for t in report["targets"]] == ["target", "baseline"]
    assert report["results"] and {r["verdict"] for r in report["results"]} == {"same"}
    assert (tmp_path / "report.md").exists()
    assert not agents_running()


def broken_copy(tmp_path, old, new):
    source = Path(socketserver.__file__).read_text()
    assert old in source
    path = tmp_path / "broken_socketserver.py"
    path.write_text(source.replace(old, new, 1))
    return path


def test_run_flags_a_broken_target_with_a_diff_saying_what_went_wrong(tmp_path):
    broken = broken_copy(
        tmp_path,
        "self.socket.sendto(self.wfile.getvalue(), self.client_address)",
        "pass",
    )
    result = harness(
        "run",
        "--select",
        "socketserver/smoke/udp_echo",
        "--target",
        f"name=broken,socketserver={broken}",
        "--report-dir",
        str(tmp_path / "r"),
    )
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    (row,) = report["results"]
    assert row["verdict"] == "differs"
    assert row["differing_keys"] == ["facts.reply"]
    assert "\n-ping\n+null" in row["diff"]
    assert "--target 'name=broken,socketserver=" in row["reproducer"]
    assert "facts.reply" in result.stdout
    assert not agents_running()


def test_a_target_that_does_not_import_differs_and_says_why(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("raise ImportError('deliberately broken')\n")
    result = harness(
        "run",
        "--select",
        "socketserver/smoke/tcp_echo",
        "--target",
        f"name=bad,socketserver={bad}",
        "--report-dir",
        str(tmp_path),
    )
    assert result.returncode == 1
    assert "ImportError: deliberately broken" in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--target", "nonsense"],
        ["run", "--select", "no/such/*"],
        ["run", "--jobs", "0"],
        ["run", "--target", "name=stdlib"],
        ["frobnicate"],
    ],
)
def test_bad_usage_exits_2_with_a_message_and_no_traceback(args):
    result = harness(*args)
    assert result.returncode == 2
    assert "error:" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["run", "fuzz"])
def test_an_unwritable_report_dir_is_bad_usage_before_any_work(command, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    for bad in ("/proc/x", str(blocker / "reports")):
        result = harness(command, "--report-dir", bad, timeout=60)
        assert result.returncode == 2, result.stderr
        assert "--report-dir" in result.stderr and bad in result.stderr
        assert "Traceback" not in result.stderr
        assert "running" not in result.stderr  # nothing was started


@pytest.mark.parametrize(
    ("python", "says"),
    [
        (str(Path.home() / ".pyenv/versions/2.7.18/bin/python2.7"), "is 2.7"),
        ("/usr/bin/false", "did not say its version"),
    ],
)
def test_an_interpreter_older_than_39_is_bad_usage(python, says):
    if not os.access(python, os.X_OK):
        pytest.skip(f"{python} is not installed")
    result = harness("run", "--target", f"name=old,python={python}", timeout=60)
    assert result.returncode == 2, result.stderr
    assert "needs Python 3.9 or later" in result.stderr and says in result.stderr
    assert "Traceback" not in result.stderr


def test_an_uncaught_exception_is_an_internal_error_with_its_traceback(monkeypatch, capsys):
    from harness import cli

    def broken(args):
        raise RuntimeError("a defect of the harness")

    monkeypatch.setattr(cli, "cmd_list", broken)
    assert cli.main(["list"]) == cli.ExitCode.INTERNAL == 3
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError: a defect of the harness" in err


@pytest.mark.parametrize(("signum", "status"), [(2, 130), (15, 143)])
def test_a_signal_mid_run_leaves_a_partial_report_and_nothing_running(signum, status, tmp_path):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness",
            "run",
            "--select",
            "http/*",
            "--report-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "HARNESS_TEST_TOKEN": TOKEN},
    )
    try:
        # Mid-run: once the first scenario has finished (its progress line is out).
        seen = []
        for line in proc.stderr:
            seen.append(line)
            if line.startswith("["):
                break
        proc.send_signal(signum)
        _out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == status, "".join(seen) + err[-3000:]
    assert "Traceback" not in err
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["interrupted"] == {2: "SIGINT", 15: "SIGTERM"}[signum]
    assert 0 < len({r["scenario"] for r in report["results"]}) < 300
    assert not agents_running()
