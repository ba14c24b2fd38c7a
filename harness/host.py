"""Start, watch and stop server processes (agents).

Resource handling: every agent runs in a session of its own; ``AgentProcess.stop`` freezes
it, kills it and every descendant by pid, and reaps them all. The harness process makes
itself a child subreaper (Linux), so forked grandchildren orphaned by a killed agent come
back to us to be reaped instead of lingering as zombies under an init that may not reap.

Agents may be forked from a fork server (``harness.forkservers``): double-forked, so they are
re-parented to us and handled exactly like spawned ones.

Error handling: an agent that fails to start or dies is reported as ``AgentGone``; what the
target did before that stays in the observation (events, stdout, stderr).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import trio

from harness.errors import AgentGone, TargetDidNotStart
from harness.targets import PROJECT_ROOT, Target

if TYPE_CHECKING:
    from harness.forkservers import ForkedProcess, ForkServerPool

Event = dict[str, Any]

_PR_SET_CHILD_SUBREAPER = 36
_subreaper_set = False


def become_subreaper() -> bool:
    """Make orphaned descendants of this process ours to reap (Linux only; else a no-op).

    Returns whether this process is a child subreaper now.
    """
    global _subreaper_set
    if _subreaper_set or not sys.platform.startswith("linux"):
        return _subreaper_set
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    _subreaper_set = True
    return True


def agent_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The server process's environment: the user's, plus the project on PYTHONPATH."""
    env = dict(os.environ)
    paths = [str(PROJECT_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if "" not in paths:
        paths.append(os.getcwd())
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["NO_COLOR"] = "1"
    env.pop("FORCE_COLOR", None)
    env.pop("PYTHON_COLORS", None)
    env["PYTHONHASHSEED"] = "0"
    # A file or socket left for the garbage collector to close is a leak on PyPy and a
    # warning on CPython: shown on stderr, it becomes part of what is compared.
    env["PYTHONWARNINGS"] = "always::ResourceWarning"
    if extra:
        env.update(extra)
    return env


class AgentProcess:
    """One running server process and what it has reported so far.

    The process is spawned (``python -m harness.agent``), or forked by ``pool``'s fork server
    for the target when it has one that can give this agent (``forked`` says which): either
    way it is a child of the harness, with the same pid, stdin, stop and exit status.
    """

    def __init__(
        self,
        target: Target,
        spec: dict[str, Any],
        workdir: Path,
        pool: ForkServerPool | None = None,
    ) -> None:
        self.target = target
        self.spec = spec
        self.workdir = workdir
        self.pool = pool
        self.forked = False
        self.events: list[Event] = []
        self._changed = trio.Event()
        self._popen: subprocess.Popen[bytes] | ForkedProcess | None = None
        self._next_id = 0
        self.exit_status: int | None = None
        self.stdout_path = workdir / "stdout"
        self.stderr_path = workdir / "stderr"
        self._events_closed = False

    # -- lifecycle --

    async def start(self, nursery: trio.Nursery, cwd: Path | None = None) -> None:
        """Spawn the agent and begin collecting its events (returns before ``ready``)."""
        become_subreaper()
        read_fd, write_fd = os.pipe()
        setup = {
            "modules": self.target.module_map,
            "spec": self.spec,
            "tmpdir": str(self.workdir),
            "event_fd": write_fd,
        }
        env = agent_environment(self.spec.get("env"))
        directory = str(cwd or self.workdir)
        try:
            with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
                try:
                    if self.pool is not None:
                        self._popen = await self.pool.spawn(
                            self.target,
                            setup,
                            env=env,
                            cwd=directory,
                            fds=(out.fileno(), err.fileno(), write_fd),
                        )
                        self.forked = self._popen is not None
                        failure = self.pool.start_failure(self.target)
                        if self._popen is None and failure:
                            # The target's own import failed in its fork server: a new
                            # process would fail the same way (or hang as long again).
                            raise TargetDidNotStart(failure.strip().splitlines()[0])
                    if self._popen is None:
                        self._popen = subprocess.Popen(
                            [self.target.python, "-m", "harness.agent"],
                            stdin=subprocess.PIPE,
                            stdout=out,
                            stderr=err,
                            pass_fds=(write_fd,),
                            start_new_session=True,
                            env=env,
                            cwd=directory,
                        )
                finally:
                    os.close(write_fd)
        except BaseException:
            os.close(read_fd)
            raise
        stream = trio.lowlevel.FdStream(read_fd)
        nursery.start_soon(self._collect, stream)
        if not self.forked:
            self._send(setup)  # a forked agent had it with its fork request

    async def _collect(self, stream: trio.lowlevel.FdStream) -> None:
        buffer = b""
        async with stream:
            while True:
                try:
                    chunk = await stream.receive_some(65536)
                except (trio.ClosedResourceError, trio.BrokenResourceError):
                    break
                if not chunk:
                    break
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        try:
                            self.events.append(json.loads(line))
                        except ValueError:
                            self.events.append(
                                {"ev": "garbled", "text": line[:200].decode("latin-1")}
                            )
                self._notify()
        self._events_closed = True
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def _send(self, message: dict[str, Any]) -> None:
        assert self._popen is not None and self._popen.stdin is not None
        try:
            self._popen.stdin.write((json.dumps(message) + "\n").encode())
            self._popen.stdin.flush()
        except (BrokenPipeError, ValueError, OSError) as exc:
            raise AgentGone(f"server process is gone ({exc})") from None

    @property
    def started(self) -> bool:
        """Whether a process was started (a target may fail before one is)."""
        return self._popen is not None

    @property
    def pid(self) -> int:
        """The agent's process id."""
        assert self._popen is not None
        return self._popen.pid

    def alive(self) -> bool:
        """Whether the agent process still runs."""
        return self._popen is not None and self._popen.poll() is None

    # -- events --

    async def wait_for(
        self, predicate: Callable[[Event], bool], timeout: float, start: int = 0
    ) -> Event | None:
        """The first event from index ``start`` on that matches, or None after ``timeout``."""
        with trio.move_on_after(timeout):
            index = start
            while True:
                while index < len(self.events):
                    if predicate(self.events[index]):
                        return self.events[index]
                    index += 1
                if self._events_closed:
                    return None
                await self._changed.wait()
        return None

    async def wait_ready(self, timeout: float) -> Event:
        """Wait for ``ready`` or ``construct:raised`` of the server.

        Raises ``TargetDidNotStart`` when the target's modules failed to import, or the
        process exited or stayed silent before either event.
        """
        event = await self.wait_for(lambda e: e["ev"] in ("ready", "construct:raised"), timeout)
        if event is not None and event["ev"] == "construct:raised" and event.get("stage"):
            raise TargetDidNotStart(f"{event.get('type')}: {event.get('message', '')}".strip())
        if event is not None:
            return event
        # The event pipe closed (the process ended) or the time ran out.
        with trio.move_on_after(2.0):
            while self.alive() and self._events_closed:
                await trio.sleep(0.01)
        said = _last_line(self.read_stderr())
        said = f"; its last words: {said}" if said else ""
        if not self.alive():
            status = self._popen.poll() if self._popen is not None else None
            raise TargetDidNotStart(f"exited with status {status} before it was ready{said}")
        raise TargetDidNotStart(f"did not report ready within {timeout:g} s{said}")

    def command(self, op: str, *, thread: bool = False, **fields: Any) -> int:
        """Send a command; returns its id (wait for ``command:*`` events with it)."""
        self._next_id += 1
        self._send({"op": op, "id": self._next_id, "thread": thread, **fields})
        return self._next_id

    async def wait_command(self, cid: int, timeout: float) -> Event | None:
        """The ``command:returned``/``command:raised`` event of a command, or None."""
        return await self.wait_for(
            lambda e: e.get("id") == cid and e["ev"] in ("command:returned", "command:raised"),
            timeout,
        )

    # -- watching --

    def sample(self) -> dict[str, int]:
        """Threads, fds, live children and zombie children of the agent, right now."""
        try:
            proc = psutil.Process(self.pid)
            with proc.oneshot():
                threads = proc.num_threads()
                fds = proc.num_fds()
            children = proc.children(recursive=True)
            zombies = 0
            live = 0
            for child in children:
                try:
                    if child.status() == psutil.STATUS_ZOMBIE:
                        zombies += 1
                    else:
                        live += 1
                except psutil.NoSuchProcess:
                    pass
        except psutil.NoSuchProcess:
            return {"alive": 0, "threads": 0, "fds": 0, "children": 0, "zombies": 0}
        return {"alive": 1, "threads": threads, "fds": fds, "children": live, "zombies": zombies}

    def read_stdout(self) -> str:
        """What the server process wrote to stdout so far."""
        return self.stdout_path.read_bytes().decode("utf-8", "backslashreplace")

    def read_stderr(self) -> str:
        """What the server process wrote to stderr so far."""
        return self.stderr_path.read_bytes().decode("utf-8", "backslashreplace")

    async def stop(self, grace: float = 0.0) -> None:
        """End the agent and everything it started, and reap them all.

        With ``grace`` > 0 the agent is first asked to exit and given that long.
        """
        popen = self._popen
        if popen is None:
            return
        if grace > 0 and popen.poll() is None:
            with contextlib.suppress(AgentGone):
                self._send({"op": "exit"})
            with trio.move_on_after(grace):
                while popen.poll() is None:
                    await trio.sleep(0.005)
        descendants = kill_tree(popen.pid)
        with contextlib.suppress(OSError):
            if popen.stdin:
                popen.stdin.close()
        # Reaping is quick once SIGKILL has landed; do it off the event loop all the same.
        self.exit_status = await trio.to_thread.run_sync(popen.wait)
        await trio.to_thread.run_sync(reap_pids, descendants)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def kill_tree(pid: int) -> list[int]:
    """Freeze ``pid``, SIGKILL it and all its descendants; returns the descendants' pids."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGSTOP)  # so it cannot fork while we list its children
    try:
        descendants = [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        descendants = []
    for victim in [pid, *descendants]:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(victim, signal.SIGKILL)
    return descendants


def reap_pids(pids: list[int], timeout: float = 5.0) -> None:
    """Wait for each pid once it has become our child (we are a subreaper).

    A killed agent's descendants are handed to us only after their parent is gone, so
    "not my child" right after the kill may just mean "not yet": keep trying while the
    process exists, and stop once it is gone (its own parent reaped it) or reaped by us.
    """
    deadline = time.monotonic() + timeout
    for pid in pids:
        while True:
            try:
                done, _status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                if not psutil.pid_exists(pid):
                    break
                done = 0
            if done or time.monotonic() > deadline:
                break
            time.sleep(0.005)


def make_workdir() -> Path:
    """A fresh private directory for one agent (socket files, captured output)."""
    return Path(tempfile.mkdtemp(prefix="ssh-"))


def leftovers() -> dict[str, list[int]]:
    """Our own children still running or unreaped: should be empty after a run."""
    me = psutil.Process()
    live, zombies = [], []
    for child in me.children(recursive=True):
        try:
            (zombies if child.status() == psutil.STATUS_ZOMBIE else live).append(child.pid)
        except psutil.NoSuchProcess:
            pass
    return {"live": live, "zombies": zombies}
