"""Hostile targets: whatever a target does to the processes that run it, the run ends in
bounded time with a verdict about the target (``fails``, ``hang`` or ``differs``, never
``error``), exits 1 (never 3), and leaves nothing behind: no process, no zombie, no file in
its TMPDIR, no listening port.

Each target is a copy of the stdlib's ``socketserver`` with hostile code appended: run at
its import (which happens in the target's fork server first, then in spawned agents when
the fork server gives up), or patched into the handler's ``setup``, ``serve_forever`` or
``server_activate``. They run through ``python -m harness run``, several targets per run
and the runs at once (real processes, real signals); each test reads what it needs from
them. Fork bombs count their processes in a file and stop by themselves at 3000 or after
60 s, so that a harness that failed to stop them could not take the machine down.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socketserver
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parent.parent
BOUND = 90.0  # seconds a run of a few hostile targets may take, however busy the machine
BOMB_CAP = 3000  # processes after which a fork bomb stops by itself (the harness failed)

# --- the hostile code -------------------------------------------------------------------


def in_setup(body: str) -> str:
    """Code that runs ``body`` in every stream handler's ``setup``, then the real one."""
    indented = "".join(f"    {line}\n" for line in body.strip().splitlines())
    return (
        "def _hostile_setup(self, _original=StreamRequestHandler.setup):\n"
        f"{indented}"
        "    _original(self)\n"
        "StreamRequestHandler.setup = _hostile_setup\n"
    )


def fork_bomb(counters: Path) -> str:
    """A function ``_bomb()``: fork without end; every process forks too, until the
    counter file of the tree (named after the process that started it) reaches
    ``BOMB_CAP`` bytes or a minute has passed."""
    return f"""
def _bomb():
    import os as _o, time as _t
    end = _t.monotonic() + 60
    path = {str(counters)!r} + "/bomb-%d" % _o.getpid()
    fd = _o.open(path, _o.O_WRONLY | _o.O_APPEND | _o.O_CREAT, 0o600)
    while _t.monotonic() < end and _o.fstat(fd).st_size < {BOMB_CAP}:
        try:
            if _o.fork() == 0:
                _o.write(fd, b"x")
        except OSError:
            _t.sleep(0.01)
    _t.sleep(60)
    _o._exit(0)
"""


DAEMON = """
def _daemon():
    import os as _o, time as _t
    if _o.fork() == 0:
        _o.setsid()
        if _o.fork() == 0:
            _t.sleep(3600)
        _o._exit(0)
    _o.wait()
"""


def port_holder(ports: Path, daemon: bool) -> str:
    """After ``server_activate``, a forked child (a setsid daemon with ``daemon``) keeps
    the listening socket and sleeps; the port and the holder's pid go to ``ports``."""
    leave = (
        "_o.setsid()\n        if _o.fork():\n            _o._exit(0)\n        " if daemon else ""
    )
    return f"""
def _activate(self, _original=TCPServer.server_activate):
    import os as _o, time as _t
    _original(self)
    if _o.fork() == 0:
        {leave}with open({str(ports)!r}, "a") as f:
            f.write("%d %d\\n" % (self.server_address[1], _o.getpid()))
        _t.sleep(3600)
        _o._exit(0)
TCPServer.server_activate = _activate
"""


@dataclass
class Hostile:
    """One hostile target and what its rows must say."""

    name: str
    code: str
    #: scenario -> (verdicts allowed, text the reason, diff or observation must contain)
    expect: dict[str, tuple[set[str], str]]


ECHO = "socketserver/tcp/echo_1"
CLOSE = "socketserver/shutdown/answers"  # serves, shuts down, closes, connects after close
NOSTART = {"fails"}


def hostile_targets(work: Path) -> list[Hostile]:
    """Every hostile target, with its code written for ``work`` (counters, ports)."""
    both = (ECHO, CLOSE)

    def each(verdicts: set[str], text: str, scenarios=both):
        return {scenario: (verdicts, text) for scenario in scenarios}

    sig = "import os as _o, signal as _s\n"
    return [
        # 1, 2: a target that never gets as far as serving
        Hostile("hang_import", "import time as _t\n_t.sleep(3600)\n", each(NOSTART, "did not")),
        Hostile("exit_import", "import os as _o\n_o._exit(7)\n", each(NOSTART, "status 7")),
        # 3: fork bombs, at import and in serve_forever
        Hostile(
            "bomb_import",
            fork_bomb(work) + "_bomb()\n",
            each(NOSTART, "started more than"),
        ),
        Hostile(
            "bomb_serve",
            fork_bomb(work) + "BaseServer.serve_forever = lambda self, *a, **k: _bomb()\n",
            each({"fails"}, "started more than"),
        ),
        # 4: stdin, stdout and stderr closed at import (the fork server refuses: spawned)
        Hostile(
            "close_stdio",
            "import os as _o\nfor _fd in (0, 1, 2):\n    _o.close(_fd)\n",
            each({"differs", "fails"}, "server process is gone"),
        ),
        # 5: the parent killed, at import and in a handler
        Hostile(
            "kill_parent_import",
            sig + "_o.kill(_o.getppid(), _s.SIGKILL)\n",
            each(NOSTART, "killed its parent"),
        ),
        Hostile(
            "kill_parent_handler",
            in_setup(sig + "_o.kill(_o.getppid(), _s.SIGKILL)"),
            each({"fails"}, "killed its parent"),
        ),
        # 6: stopped, at import and in a handler
        Hostile(
            "stop_import",
            sig + "_o.kill(_o.getpid(), _s.SIGSTOP)\n",
            each(NOSTART, "stopped itself"),
        ),
        Hostile(
            "stop_handler",
            in_setup(sig + "_o.kill(_o.getpid(), _s.SIGSTOP)"),
            each({"fails"}, "stopped itself"),
        ),
        # 7: a handler that spins: the client's timeout or the deadline ends it
        Hostile(
            "spin_handler",
            in_setup("while True:\n    pass"),
            each({"fails", "hang"}, "", scenarios=(ECHO,)),
        ),
        # 8: 10 GiB asked for in a handler: MemoryError under the address-space limit
        Hostile(
            "memory_handler",
            in_setup("hog = [bytes(1 << 30) for _ in range(10)]"),
            each({"fails", "differs"}, "MemoryError"),
        ),
        # 9: daemons (double fork, setsid), at import and in a handler
        Hostile("daemon_import", DAEMON + "_daemon()\n", each({"fails"}, "outside its process")),
        Hostile(
            "daemon_handler",
            DAEMON + in_setup("_daemon()"),
            each({"fails"}, "outside its process"),
        ),
        # 9b: both: a daemon (which holds the client's connection, the agent's stdin and its
        # event pipe), then the parent killed. A forked agent's keeper is its parent: the
        # daemon goes to the fork server's keeper, and is killed with the server's tree.
        Hostile(
            "daemon_kill_parent_handler",
            DAEMON + in_setup("_daemon()\n" + sig + "_o.kill(_o.getppid(), _s.SIGKILL)"),
            each({"fails", "hang"}, "", scenarios=(ECHO,)),
        ),
        # 10: a handler that writes a file in its work folder until it cannot
        Hostile(
            "disk_handler",
            in_setup(
                "with open('fill', 'wb') as f:\n    while True:\n        f.write(bytes(1 << 20))"
            ),
            each({"fails", "differs"}, "File too large"),
        ),
        # 11: the listening socket held by a child after the server closed it
        Hostile(
            "port_child",
            port_holder(work / "ports", daemon=False),
            each({"differs"}, "connect after close", scenarios=(CLOSE,)),
        ),
        Hostile(
            "port_daemon",
            port_holder(work / "ports", daemon=True),
            each({"fails"}, "outside its process"),
        ),
    ]


#: The harness runs made at once: (label, scenarios, jobs, targets). The spinning target
#: runs alone on one scenario: another target's difference would rerun it.
GROUPS = [
    (
        "start",
        (ECHO, CLOSE),
        8,
        [
            "hang_import",
            "exit_import",
            "bomb_import",
            "close_stdio",
            "kill_parent_import",
            "stop_import",
            "daemon_import",
        ],
    ),
    (
        "run",
        (ECHO, CLOSE),
        8,
        [
            "bomb_serve",
            "kill_parent_handler",
            "stop_handler",
            "memory_handler",
            "daemon_handler",
            "disk_handler",
            "port_child",
            "port_daemon",
        ],
    ),
    ("spin", (ECHO,), 2, ["spin_handler", "daemon_kill_parent_handler"]),
]


# --- running them ------------------------------------------------------------------------


@dataclass
class Outcome:
    """One harness run of a group: how it ended and what it left."""

    status: int
    seconds: float
    output: str
    rows: list[dict] = field(default_factory=list)
    processes: list[str] = field(default_factory=list)  # left behind, by the run's token
    files: list[str] = field(default_factory=list)  # left in its TMPDIR


def processes_of(token: str) -> list[str]:
    """Processes (of any parent) whose environment carries ``token``."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("HARNESS_TEST_TOKEN") == token:
                found.append(f"{proc.pid} {proc.status()} {proc.cmdline()[-3:]}")
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    return found


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """Every group run at once; (targets by name, outcomes by group label, work dir)."""
    work = tmp_path_factory.mktemp("hostile")
    targets = {t.name: t for t in hostile_targets(work)}
    source = Path(socketserver.__file__).read_text()
    for target in targets.values():
        (work / f"{target.name}.py").write_text(source + "\n" + target.code)
    started = {}
    for label, select, jobs, names in GROUPS:
        # A short TMPDIR of the run's own (Unix socket paths must stay under 108 bytes).
        scratch = Path(tempfile.mkdtemp(prefix="hz-"))
        token = f"test-hostile-{os.getpid()}-{label}"
        command = [sys.executable, "-m", "harness", "run", "--quiet", "--jobs", str(jobs)]
        command += ["--report-dir", str(work / f"report-{label}")]
        for scenario in select:
            command += ["--select", scenario]
        for name in names:
            command += ["--target", f"name={name},socketserver={work / name}.py"]
        proc = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            env={**os.environ, "HARNESS_TEST_TOKEN": token, "TMPDIR": str(scratch)},
        )
        started[label] = (proc, time.monotonic(), scratch, token)
    outcomes = {}
    try:
        for label, (proc, began, _scratch, _token) in started.items():
            try:
                output, _ = proc.communicate(timeout=max(1.0, began + 3 * BOUND - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                output, _ = proc.communicate()
                output = "THE HARNESS HUNG\n" + output
            outcome = Outcome(proc.returncode, time.monotonic() - began, output)
            report = work / f"report-{label}" / "report.json"
            if report.exists():
                outcome.rows = json.loads(report.read_text())["results"]
            outcomes[label] = outcome
        # Looked at once every run is over: a run's leftovers could be still dying while
        # another runs.
        for label, (_proc, _began, scratch, token) in started.items():
            outcomes[label].processes = processes_of(token)
            outcomes[label].files = sorted(p.name for p in scratch.iterdir())
    finally:
        for proc, _began, scratch, _token in started.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            shutil.rmtree(scratch, ignore_errors=True)
    return targets, outcomes, work


def rows_of(outcomes: dict[str, Outcome], name: str) -> list[dict]:
    """The report rows of target ``name``, from whichever run it was in."""
    return [row for outcome in outcomes.values() for row in outcome.rows if row["target"] == name]


# --- the tests ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", [n for _label, _select, _jobs, names in GROUPS for n in names])
def test_a_hostile_target_gets_a_verdict_of_its_own(hostile, name):
    targets, outcomes, _work = hostile
    rows = {row["scenario"]: row for row in rows_of(outcomes, name)}
    assert rows, f"no rows for {name}: " + "".join(o.output[-2000:] for o in outcomes.values())
    for row in rows.values():
        assert row["verdict"] != "error", row
    for scenario, (verdicts, text) in targets[name].expect.items():
        row = rows[scenario]
        said = row["reason"] + row["diff"] + json.dumps(row["observation"])
        assert row["verdict"] in verdicts, (scenario, row["verdict"], said[:3000])
        assert text in said, (scenario, row["verdict"], said[:3000])


@pytest.mark.parametrize("label", [group[0] for group in GROUPS])
def test_a_run_of_hostile_targets_exits_1_in_bounded_time_and_leaves_nothing(hostile, label):
    _targets, outcomes, _work = hostile
    outcome = outcomes[label]
    assert outcome.status == 1, outcome.output[-4000:]
    assert outcome.seconds < BOUND, outcome.output[-2000:]
    assert outcome.processes == [], outcome.processes
    assert outcome.files == [], f"the run left temporary files behind: {outcome.files}"
    # The harness reaped everything of its own (else it exits 3); nothing came back to us.
    mine = psutil.Process().children(recursive=True)
    assert [p.pid for p in mine if p.status() == psutil.STATUS_ZOMBIE] == []


def test_fork_bombs_are_stopped_long_before_they_stop_themselves(hostile):
    _targets, _outcomes, work = hostile
    counters = {p.name: p.stat().st_size for p in work.glob("bomb-*")}
    assert counters, "no fork bomb ran"
    # Each bomb's processes, counted by the bomb itself: the harness kills a tree past
    # 256 processes, and what a bomb forks in the moment before counts too.
    assert all(size < BOMB_CAP // 2 for size in counters.values()), counters


def test_ports_held_after_close_are_free_and_their_holders_gone(hostile):
    _targets, _outcomes, work = hostile
    held = [line.split() for line in (work / "ports").read_text().splitlines()]
    assert held, "no port holder ran"
    ports = {int(port) for port, _pid in held}
    listening = [
        c.laddr.port
        for c in psutil.net_connections("tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr.port in ports
    ]
    assert listening == []
    for _port, pid in held:
        try:
            holder = psutil.Process(int(pid))
            assert "HARNESS_TEST_TOKEN" not in holder.environ(), holder
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            pass


def test_the_limits_leave_pypy_and_threads_working(tmp_path):
    """The agents' address-space limit is above what PyPy and a threading server need."""
    pypy = shutil.which("pypy3")
    if pypy is None:
        pytest.skip("pypy3 is not installed on this machine")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            "run",
            "--quiet",
            "--target",
            f"name=pypy,python={pypy}",
            "--select",
            "socketserver/smoke/*",
            "--select",
            "socketserver/threading/*",
            "--report-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    rows = json.loads((tmp_path / "report.json").read_text())["results"]
    bad = [
        (r["scenario"], r["verdict"], r["reason"])
        for r in rows
        if r["verdict"] not in ("same", "explained")
    ]
    assert not bad and result.returncode == 0, (bad, result.stdout[-3000:])
    version = subprocess.run(
        [pypy, "-c", "import sys; print(*sys.version_info[:2])"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    assert {tuple(r["python"][:2]) for r in rows} == {tuple(map(int, version))}  # pypy3's
