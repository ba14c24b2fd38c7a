"""Fork servers: forked agents are as fresh as spawned ones, and the pool falls back,
records start failures and leaves nothing running. Real processes, loopback only."""

import json
import os
import shutil
import signal
import socketserver
import sys
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest
import trio
from interpreters import find_cpython

from harness.engine import Engine, Settings
from harness.forkserver import read_at_start, unforkable
from harness.forkservers import ForkServerPool
from harness.host import (
    AgentProcess,
    agent_environment,
    kill_tree,
    leftovers,
    make_workdir,
    reap_pids,
)
from harness.scenario import ServerSpec
from harness.targets import BUILTIN, Target

REFERENCE = BUILTIN["reference"]
STDLIB = BUILTIN["stdlib"]
START = 120.0  # generous: the machine may be busy; nothing here measures time

# What a scenario could tell about the process it runs in, other than the pid.
PROBE = """
import os, random, signal, sys, threading
def stdio(s):
    return [s.name, s.encoding, s.errors, s.line_buffering, s.write_through, s.mode,
            type(s.buffer).__name__, s.seekable()]
result = {
    "argv": sys.argv, "orig_argv": getattr(sys, "orig_argv", [None])[1:],
    "path0": sys.path[0], "cwd": os.getcwd(), "tmpdir": tmpdir,
    "main": sys.modules["__main__"].__name__, "server class module": type(server).__module__,
    "agent module is main": sys.modules["harness.agent"] is sys.modules["__main__"],
    "session leader": os.getsid(0) == os.getpid(), "parent": os.getppid(),
    "threads": threading.active_count(), "main thread": threading.current_thread().name,
    "fds": sorted(int(n) for n in os.listdir("/proc/self/fd") if os.path.exists("/proc/self/fd/" + n)),
    "server fd": server.fileno(), "event fd": sys.modules["harness.agent"]._event_fd,
    "stdio": [stdio(sys.stdin), stdio(sys.stdout), stdio(sys.stderr)],
    "stdio are originals": [sys.stdin is sys.__stdin__, sys.stdout is sys.__stdout__],
    "environ": dict(os.environ),
    "flags": repr(sys.flags),
    "random": random.random(),
    "pid": os.getpid(),
    "signals": {n: repr(signal.getsignal(n)) for n in sorted(signal.valid_signals())
                if n not in (signal.SIGKILL, signal.SIGSTOP)},
}
print("to stdout"); print("to stderr", file=sys.stderr)
"""


# What an agent leaves in its process, and a look for it from another agent.
MARK = "import socketserver, sys; socketserver.left_by_first = 1; sys.modules['left'] = sys"
LOOK = "import socketserver, sys; result = [hasattr(socketserver, 'left_by_first'), 'left' in sys.modules]"


async def run_agent(pool, target, codes, spec=None):
    """Start an agent, run ``codes`` in it one after the other, stop it; what happened."""
    spec = spec or ServerSpec("TCPServer", handler="scenarios.handlers.stream:Echo")
    workdir = make_workdir()
    agent = AgentProcess(target, spec.to_agent(), workdir, pool=pool)
    values = []
    try:
        async with trio.open_nursery() as nursery:
            try:
                await agent.start(nursery)
                ready = await agent.wait_ready(START)
                at_ready = agent.sample()
                for code in codes:
                    event = await agent.wait_command(agent.command("exec", code=code), START)
                    assert event is not None and event["ev"] == "command:returned", event
                    if "value_file" in event:  # too long for an event line
                        values.append(json.loads(Path(event["value_file"]).read_text()))
                    else:
                        values.append(event.get("value"))
            finally:
                with trio.CancelScope(shield=True):
                    await agent.stop(grace=5.0)
                nursery.cancel_scope.cancel()
        output = (agent.read_stdout(), agent.read_stderr())
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return SimpleNamespace(
        agent=agent,
        forked=agent.forked,
        ready=ready,
        values=values,
        at_ready=at_ready,
        output=output,
    )


def comparable(probe):
    """A probe's result without what must differ between two processes."""
    probe = dict(probe)
    for key in ("pid", "parent", "random", "cwd", "path0", "tmpdir", "event fd"):
        probe.pop(key)
    # The event pipe sits on the fd number the harness had for it, which varies.
    probe["fds"] = [fd for fd in probe["fds"] if fd != probe.get("event fd")]
    return probe


def interpreters():
    found = [pytest.param(sys.executable, id="current")]
    for minor in ("3.9", "3.13"):
        found.append(pytest.param(find_cpython(minor), id=f"cpython{minor}"))
    found.append(pytest.param(shutil.which("pypy3"), id="pypy3"))
    return found


@pytest.mark.parametrize("python", interpreters())
def test_forked_agents_are_as_fresh_as_spawned_ones(python):
    if python is None:
        pytest.skip("interpreter not installed on this machine")
    target = REFERENCE.with_python(python)

    async def main():
        async with ForkServerPool() as pool:
            first = await run_agent(pool, target, [PROBE, MARK, LOOK])
            second = await run_agent(pool, target, [PROBE, LOOK])
            spawned = await run_agent(None, target, [PROBE, LOOK])
            assert pool.forked == 2 and pool.declined == 0, pool.not_forking(target)
        return first, second, spawned

    first, second, spawned = trio.run(main)
    assert [first.forked, second.forked, spawned.forked] == [True, True, False]
    for run in (first, second, spawned):
        probe = run.values[0]
        # Ready in the agent's main thread, alone: nothing carried over from the fork server.
        assert run.ready["ev"] == "ready" and run.ready["ctx"] == "main"
        assert run.at_ready["threads"] == 1 and run.at_ready["children"] == 0
        assert probe["threads"] == 1 and probe["main thread"] == "MainThread"
        assert probe["pid"] == run.agent.pid
        # Never the harness: a forked agent's parent is its keeper (harness.forkserver), a
        # spawned one's a decoy under its keeper (harness.keeper).
        assert probe["parent"] != os.getpid()
        if run.forked:
            assert probe["parent"] == run.agent.keeper_pid
        else:
            assert probe["parent"] != run.agent.keeper_pid
        assert probe["cwd"] == probe["path0"] == os.path.realpath(probe["tmpdir"])
        assert probe["fds"] == sorted({0, 1, 2, probe["server fd"], probe["event fd"]})
        assert run.output == ("to stdout\n", "to stderr\n")
    # What the first agent changed stayed in it.
    assert first.values[2] == [True, True]
    assert second.values[1] == [False, False] and spawned.values[1] == [False, False]
    # A random state of its own in each.
    assert len({run.values[0]["random"] for run in (first, second, spawned)}) == 3
    # Everything else a scenario can see is what a spawned agent has.
    assert comparable(first.values[0]) == comparable(spawned.values[0])
    assert comparable(second.values[0]) == comparable(spawned.values[0])
    assert leftovers() == {"live": [], "zombies": []}


@pytest.mark.parametrize("python", interpreters())
def test_a_keeper_forks_agent_after_agent_each_as_fresh_as_a_spawned_one(python):
    """A keeper whose agent's tree has ended forks the next agent (``harness.forkserver``):
    that agent sees nothing of the one before, and sees its process as a spawned one does."""
    if python is None:
        pytest.skip("interpreter not installed on this machine")
    target = REFERENCE.with_python(python)

    async def main():
        async with ForkServerPool() as pool:
            # Each agent looks for what those before it left, then leaves its own mark.
            runs = [await run_agent(pool, target, [PROBE, LOOK, MARK])]
            for _ in range(8):
                # The keeper forks its next agent once the harness has let go of the last
                # one; until it says so, the server hands out agents of other keepers.
                await trio.sleep(0.3)
                runs.append(await run_agent(pool, target, [PROBE, LOOK, MARK]))
                if runs[-1].agent.keeper_pid in {run.agent.keeper_pid for run in runs[:-1]}:
                    break
            spawned = await run_agent(None, target, [PROBE])
        return runs, spawned

    runs, spawned = trio.run(main)
    again = runs[-1]
    earlier = [run for run in runs[:-1] if run.agent.keeper_pid == again.agent.keeper_pid]
    assert earlier, "no keeper forked a second agent"
    assert all(run.forked for run in runs)
    assert again.values[0]["parent"] == again.agent.keeper_pid
    assert all(run.values[1] == [False, False] for run in runs)  # nothing of the earlier ones
    assert comparable(again.values[0]) == comparable(spawned.values[0])
    assert len({run.values[0]["random"] for run in runs}) == len(runs)
    assert len({run.agent.pid for run in runs}) == len(runs)
    assert leftovers() == {"live": [], "zombies": []}


def test_an_agent_environment_is_applied_or_the_agent_is_spawned():
    plain = ServerSpec("TCPServer", env={"HARNESS_FORK_TEST": "yes"})
    startup = ServerSpec("TCPServer", env={"PYTHONFORKTEST": "yes"})
    code = "import os; result = [os.environ.get('HARNESS_FORK_TEST'), os.environ.get('PYTHONFORKTEST')]"

    async def main():
        async with ForkServerPool() as pool:
            return [await run_agent(pool, STDLIB, [code], spec) for spec in (plain, startup)]

    forked, spawned = trio.run(main)
    assert forked.forked and forked.values == [["yes", None]]
    assert not spawned.forked and spawned.values == [[None, "yes"]]


def test_what_forking_cannot_give_is_named():
    env = {"PATH": "/bin", "PYTHONPATH": "/a"}
    setup = {"spec": {}}
    assert unforkable(setup, env, dict(env)) is None
    assert unforkable(setup, {**env, "HARNESS_X": "1"}, env) is None
    assert "PYTHONPATH" in unforkable(setup, {**env, "PYTHONPATH": "/b"}, env)
    assert "LC_ALL" in unforkable(setup, {**env, "LC_ALL": "C"}, env)
    assert "mimetypes" in unforkable({"spec": {}, "pin_mimetypes": False}, env, env)
    assert read_at_start("PYTHONHASHSEED") and not read_at_start("NO_COLOR")


def socketserver_copy(tmp_path, name, appended):
    """A copy of the stdlib's socketserver with code appended (run at its import)."""
    path = tmp_path / f"{name}.py"
    path.write_text(Path(socketserver.__file__).read_text() + "\n" + appended + "\n")
    return Target(name, (("socketserver", str(path)),))


@pytest.mark.parametrize(
    ("appended", "named"),
    [
        (
            "import threading as _t\n_t.Thread(target=_t.Event().wait, daemon=True).start()",
            "threads",
        ),
        ("_kept = open(__file__)", "fds"),
        ("import signal as _s\n_s.signal(_s.SIGUSR1, lambda *a: None)", "signal handlers"),
        ("print('imported')", "wrote to stdout"),
    ],
)
def test_a_target_whose_import_has_side_effects_is_spawned(tmp_path, appended, named):
    target = socketserver_copy(tmp_path, "sideeffects", appended)
    code = "import threading; result = threading.active_count()"

    async def main():
        async with ForkServerPool() as pool:
            got = await run_agent(pool, target, [code])
            return got, pool.not_forking(target), pool.start_failure(target)

    run, why, failure = trio.run(main)
    assert not run.forked
    assert named in why and failure is None
    assert run.ready["ev"] == "ready"  # the spawned agent runs the target as before
    if named == "threads":
        assert run.values == [2]
    if named == "wrote to stdout":
        assert run.output[0] == "imported\n"  # in the agent's output, as it would be
    assert leftovers() == {"live": [], "zombies": []}


@pytest.mark.parametrize(
    ("appended", "recorded"),
    [
        ("raise RuntimeError('boom at import')", "RuntimeError: boom at import"),
        ("import os as _o\n_o._exit(7)", "exited with status 7"),
        ("import time as _t\n_t.sleep(600)", "did not start within 3 s"),
    ],
)
def test_a_fork_server_that_fails_to_start_is_recorded_and_not_retried(
    tmp_path, appended, recorded
):
    target = socketserver_copy(tmp_path, "failing", appended)

    async def ask(pool):
        # Asks for an agent without starting one when the answer is "spawn it".
        read_fd, write_fd = os.pipe()
        try:
            setup = {"modules": target.module_map, "spec": {}, "tmpdir": "/", "event_fd": 9}
            got = await pool.spawn(
                target, setup, env=dict(os.environ), cwd="/", fds=(write_fd, write_fd, write_fd)
            )
            assert got is None
        finally:
            os.close(read_fd)
            os.close(write_fd)

    async def main():
        async with ForkServerPool(start_timeout=3.0) as pool:
            await ask(pool)
            await ask(pool)
            return pool

    pool = trio.run(main)
    assert pool.starts == 1 and pool.declined == 2 and pool.forked == 0
    failure = pool.start_failure(target)
    assert recorded in failure
    if "boom" in recorded:
        assert "Traceback" in failure and "failing.py" in failure
    assert pool.start_failure(STDLIB) is None
    assert leftovers() == {"live": [], "zombies": []}


def test_an_agent_that_cannot_be_prepared_is_spawned_and_forking_stops(tmp_path):
    async def main():
        async with ForkServerPool() as pool:
            read_fd, write_fd = os.pipe()
            try:
                setup = {"modules": {}, "spec": {}, "tmpdir": "/", "event_fd": 9}
                env = agent_environment(None)
                missing = str(tmp_path / "missing")
                got = await pool.spawn(STDLIB, setup, env=env, cwd=missing, fds=(write_fd,) * 3)
            finally:
                os.close(read_fd)
                os.close(write_fd)
            later = await run_agent(pool, STDLIB, [])
            return got, later, pool.not_forking(STDLIB), pool.start_failure(STDLIB)

    got, later, why, failure = trio.run(main)
    assert got is None and not later.forked
    assert "FileNotFoundError" in why and failure is None
    assert leftovers() == {"live": [], "zombies": []}


def test_agents_are_spawned_once_their_fork_server_died():
    async def main():
        async with ForkServerPool() as pool:
            first = await run_agent(pool, STDLIB, [])
            servers = [p for p in psutil.Process().children() if "--fork-server" in p.cmdline()]
            assert len(servers) == 1
            servers[0].kill()
            second = await run_agent(pool, STDLIB, ["result = 1"])
            third = await run_agent(pool, STDLIB, [])
            return first, second, third, pool.not_forking(STDLIB), pool.start_failure(STDLIB)

    first, second, third, why, failure = trio.run(main)
    assert [first.forked, second.forked, third.forked] == [True, False, False]
    assert second.values == [1]
    assert "died" in why and failure is None
    assert leftovers() == {"live": [], "zombies": []}


def test_a_running_agent_outlives_its_fork_server_and_its_keeper_says_how_it_ended():
    """A forked agent's keeper is its fork server's child: closing the server spares the
    agents still running, whose keepers come to the harness; a keeper's exit status is what
    it said on its exit fd (0 when it ended on its own, -SIGKILL when killed)."""
    spec = ServerSpec("TCPServer", handler="scenarios.handlers.stream:Echo").to_agent()

    async def start(pool, nursery):
        agent = AgentProcess(STDLIB, spec, make_workdir(), pool=pool)
        await agent.start(nursery)
        await agent.wait_ready(START)
        assert agent.forked
        return agent

    async def main():
        async with ForkServerPool() as pool, trio.open_nursery() as nursery:
            first, second = await start(pool, nursery), await start(pool, nursery)
            keeper = psutil.Process(first.keeper_pid)
            server = keeper.parent()
            assert "--fork-server" in server.cmdline() and server.pid != os.getpid()
            await pool.aclose()  # kills the server's tree, but not the agents still running
            assert not server.is_running()
            event = await first.wait_command(first.command("exec", code="result = 2"), START)
            assert event is not None and event.get("value") == 2
            assert keeper.ppid() == os.getpid()  # it came to the harness, a subreaper
            await first.stop(grace=5.0)
            killed = await trio.to_thread.run_sync(kill_tree, second.keeper_pid)
            await second.stop()
            await trio.to_thread.run_sync(reap_pids, killed)
            nursery.cancel_scope.cancel()
        for agent in (first, second):
            shutil.rmtree(agent.workdir, ignore_errors=True)
        return first, second

    first, second = trio.run(main)
    assert (first.exit_status, first._popen.returncode) == (0, 0)
    assert second._popen.returncode == -signal.SIGKILL
    assert leftovers() == {"live": [], "zombies": []}


def test_nothing_is_left_running_after_a_run_even_a_cancelled_one():
    from scenarios import select

    chosen = select(["socketserver/smoke/*"])
    assert len(chosen) >= 3
    engine = Engine([REFERENCE], STDLIB, Settings(jobs=2))

    async def main():
        with trio.CancelScope() as scope:
            # Cancelled as soon as the first scenario is done, others in flight.
            engine.progress = lambda scenario, results: scope.cancel()
            await engine.run(chosen)
        return scope.cancelled_caught

    assert trio.run(main)
    assert engine.pool is not None and engine.pool.forked > 0
    assert leftovers() == {"live": [], "zombies": []}
    done = trio.run(Engine([REFERENCE], STDLIB, Settings(jobs=2)).run, chosen[:2])
    assert {r.verdict for r in done} <= {"same", "explained"}
    assert leftovers() == {"live": [], "zombies": []}


def test_no_fork_server_means_every_agent_is_spawned():
    from scenarios import select

    engine = Engine([REFERENCE], STDLIB, Settings(jobs=2, fork_server=False))
    results = trio.run(engine.run, select(["socketserver/smoke/*"])[:1])
    assert engine.pool is None and results
    assert leftovers() == {"live": [], "zombies": []}


def test_a_forked_agent_runs_its_handler_module_from_code_compiled_by_its_fork_server():
    look = (
        "import sys; m = sys.modules['scenarios.handlers.stream']; "
        "result = [type(m.__spec__.loader).__name__, m.Echo.__module__]"
    )

    async def main():
        async with ForkServerPool() as pool:
            forked = await run_agent(pool, REFERENCE, [look])
        spawned = await run_agent(None, REFERENCE, [look])
        return forked, spawned

    forked, spawned = trio.run(main)
    assert forked.forked and not spawned.forked
    assert forked.values == [["PrecompiledLoader", "scenarios.handlers.stream"]]
    assert spawned.values == [["SourceFileLoader", "scenarios.handlers.stream"]]


def test_a_module_changed_since_it_was_precompiled_is_compiled_afresh(tmp_path, monkeypatch):
    from harness import precompiled

    package = tmp_path / "precompiled_probe"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "same.py").write_text("VALUE = 'compiled ahead'\n")
    (package / "edited.py").write_text("VALUE = 'compiled ahead'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    monkeypatch.setattr(precompiled, "_compiled", {})
    monkeypatch.setattr(precompiled, "_packages", ())
    import precompiled_probe

    try:
        assert precompiled.precompile("precompiled_probe") == 2
        (package / "edited.py").write_text("VALUE = 'edited since, and longer'\n")
        from precompiled_probe import edited, same

        assert same.VALUE == "compiled ahead"
        assert type(same.__spec__.loader).__name__ == "PrecompiledLoader"
        assert edited.VALUE == "edited since, and longer"
    finally:
        for name in [n for n in sys.modules if n.startswith("precompiled_probe")]:
            del sys.modules[name]
        del precompiled_probe
