"""Start, watch and stop server processes (agents).

Resource handling: an agent is never the harness's child. The harness starts its *keeper*
(``harness.keeper``), a child subreaper that forks a decoy parent, which forks the agent: so
a target that kills its parent kills the decoy (and, by ``PR_SET_PDEATHSIG``, itself), and
whatever the agent orphans (setsid daemons) comes back to the keeper. Everything an agent
ever started is the keeper's tree, and ``AgentProcess.stop`` freezes the keeper, kills the
tree by pid (whole process groups at once, again until nothing is left) and reaps it all.
The harness process makes itself a child subreaper (Linux) too, so what a killed keeper
held comes back to it to be reaped.

While an agent runs, the harness watches its tree (``watch``, from one scan of /proc shared
by every watcher): a tree of more than ``MAX_PROCESSES`` processes (a fork bomb: root is
exempt from RLIMIT_NPROC) or an agent that stays stopped (SIGSTOP) is killed at once.
What the harness had to do is an *incident* of the agent (``AgentProcess.incidents``): a
verdict about the target, never an error of the harness. So are a parent the target killed
and processes that outlived their parent (daemons) found when the agent is stopped.

Agents may be forked from a fork server (``harness.forkservers``): their keeper, which is
their parent too, stays the fork server's child; its exit fd tells the harness that it has
ended, and how (``AgentProcess._await_forked_keeper``).

Error handling: an agent that fails to start or dies is reported as ``AgentGone``; what the
target did before that stays in the observation (events, stdout, stderr).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Collection
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


#: How many processes an agent's tree (its keeper's descendants) may hold: far more than any
#: forking scenario starts, and few enough that a fork bomb caught this far is soon killed.
MAX_PROCESSES = 256
#: How often a running agent's tree is looked at (a scan of /proc takes milliseconds).
WATCH_INTERVAL = 0.1
#: How long an agent's keeper may take to exit once the agent's session is killed, before
#: the harness looks for what is left (``kill_tree``).
SESSION_END_LIMIT = 2.0
#: How long an agent may stay stopped (SIGSTOP) before it counts as stopped for good.
STOPPED_LIMIT = 1.0
#: How much of an agent's stdout or stderr is read (a target may write until its file-size
#: limit; the rest is left out, and the text says how much).
MAX_OUTPUT = 1 << 20


class AgentProcess:
    """One running server process and what it has reported so far.

    The process is spawned (``python -m harness.agent``, which becomes the agent's keeper),
    or forked by ``pool``'s fork server for the target when it has one that can give this
    agent (``forked`` says which): either way the harness's child is the agent's keeper,
    with the agent's stdin, and ``pid`` is the agent's own.
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
        self._dropped = 0  # events dropped from the front of ``events``, ever
        self._cursors: dict[object, list[int]] = {}  # where each wait under way has looked
        #: what the harness saw the agent do to its process tree or had to do about it
        #: (a fork bomb killed, its parent killed, daemons left...): faults of the target
        self.incidents: list[str] = []
        self._changed = trio.Event()
        self._popen: subprocess.Popen[bytes] | ForkedProcess | None = None
        self._next_id = 0
        self.exit_status: int | None = None
        self.stdout_path = workdir / "stdout"
        self.stderr_path = workdir / "stderr"
        self._events_closed = False
        self._agent_pid: int | None = None
        self._agent_status: int | None = None  # reported by its parent when it exited
        self._parent_gone = False  # the agent's parent ended before the agent did
        self._decoy: int | None = None  # its pid, once the end of the session has read it
        self._keeper_ended = trio.Event()  # a forked agent's keeper has ended
        self._killing = False  # the harness is killing the tree: what ends is its doing
        self._killed: list[int] = []  # killed by the watch, to be reaped by stop()

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
                    else:
                        self._agent_pid = self._popen.agent_pid
                finally:
                    os.close(write_fd)
        except BaseException:
            os.close(read_fd)
            raise
        stream = trio.lowlevel.FdStream(read_fd)
        nursery.start_soon(self._collect, stream)
        nursery.start_soon(self._watch)
        if self.forked:
            nursery.start_soon(self._await_forked_keeper)
        else:
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
                            event = json.loads(line)
                        except ValueError:
                            event = {"ev": "garbled", "text": line[:200].decode("latin-1")}
                        if not isinstance(event, dict):
                            event = {"ev": "garbled", "text": line[:200].decode("latin-1")}
                        if str(event.get("ev", "")).startswith("harness:"):
                            self._from_harness(event)
                        else:
                            self.events.append(event)
                self._notify()
        self._events_closed = True
        self._notify()

    def _from_harness(self, event: Event) -> None:
        """A line of the agent's begin() or of its keepers (``harness.keeper``)."""
        kind = event.get("ev")
        if kind == "harness:agent" and self._agent_pid is None:
            self._agent_pid = int(event.get("pid") or 0) or None
        elif kind == "harness:exit" and event.get("who") == "agent":
            self._agent_status = int(event.get("status", 0))
        elif kind == "harness:exit" and event.get("who") == "parent":
            self._parent_gone = True
            status = int(event.get("status", 0))
            if status < 0 and self._agent_status is None:
                # The agent dies with its parent (PR_SET_PDEATHSIG), unreported.
                self._agent_status = -signal.SIGKILL
                # The harness kills the parent only in kill_tree (the end of a session
                # kills the agent's group, which the parent is not in, and the parent then
                # exits 0), which kills the keeper first: a keeper that reports a killed
                # parent saw the target's doing, whenever its report arrives.
                self._incident(f"killed its parent process (signal {-status}), and so itself")

    async def _await_forked_keeper(self) -> None:
        """Wait for a forked agent's keeper to end (its exit fd); see whether the target
        killed it.

        A forked agent's keeper is its parent as well (``harness.forkserver``): what the
        keeper of a spawned agent reports of its decoy parent, the end of the keeper tells.
        """
        popen = self._popen
        assert popen is not None and not isinstance(popen, subprocess.Popen)
        try:
            while popen.poll() is None:
                await trio.lowlevel.wait_readable(popen.exit_fd)
        except (trio.ClosedResourceError, OSError):
            return  # released by stop(), which has looked already
        self._keeper_ended.set()
        self._note_parent_killed()
        self._notify()

    def _note_parent_killed(self, look: bool = False) -> None:
        """If a forked agent's keeper (its parent) was killed and not by the harness: the
        target's doing, an incident. With ``look``, one dying (a kill queued) counts too.

        The harness kills a keeper only after it has set ``_killing``, and it looks here
        before it does: a keeper already dead or dying then was killed by someone else.
        """
        popen = self._popen
        if not self.forked or popen is None or self._killing or self._parent_gone:
            return
        status = popen.poll()
        if status is None and not (look and dying(popen.pid)):
            return
        if status is not None and status >= 0:
            return  # it ended on its own, after the agent and all it started
        self._parent_gone = True
        if self._agent_status is None:
            self._agent_status = -signal.SIGKILL  # by PR_SET_PDEATHSIG, unreported
        self._incident(f"killed its parent process (signal {signal.SIGKILL}), and so itself")

    def _incident(self, text: str) -> None:
        if text not in self.incidents:
            self.incidents.append(text)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def _send(self, message: dict[str, Any]) -> None:
        assert self._popen is not None and self._popen.stdin is not None
        try:
            self._popen.stdin.write((json.dumps(message) + "\n").encode())
            self._popen.stdin.flush()
        except (BrokenPipeError, ValueError, OSError) as exc:
            why = "; ".join(self.incidents) or str(exc)
            raise AgentGone(f"server process is gone ({why})") from None

    @property
    def started(self) -> bool:
        """Whether a process was started (a target may fail before one is)."""
        return self._popen is not None

    @property
    def pid(self) -> int:
        """The agent's process id (its keeper's until the agent has said its own)."""
        assert self._popen is not None
        return self._agent_pid or self._popen.pid

    @property
    def keeper_pid(self) -> int:
        """The process id of the agent's keeper (the harness's child)."""
        assert self._popen is not None
        return self._popen.pid

    def alive(self) -> bool:
        """Whether the agent process still runs."""
        return (
            self._popen is not None
            and self._popen.poll() is None
            and self._agent_status is None
            and not self._parent_gone
            and not self._killing
        )

    # -- events --

    async def wait_for(
        self, predicate: Callable[[Event], bool], timeout: float, start: int = 0
    ) -> Event | None:
        """The first event from index ``start`` on that matches, or None after ``timeout``."""
        return await self._wait_for(predicate, timeout, start)

    async def _wait_for(
        self,
        predicate: Callable[[Event], bool],
        timeout: float,
        start: int = 0,
        agent_only: bool = False,
    ) -> Event | None:
        """``wait_for``; with ``agent_only`` (an event only the agent itself can send) it
        also gives up once the agent has ended, though its children may hold the pipe."""
        # Where this wait has looked up to, counted from the first event ever received
        # (``drop_examined_events`` may drop events from the front meanwhile).
        cursor = [self._dropped + start]
        token = object()
        self._cursors[token] = cursor
        try:
            with trio.move_on_after(timeout):
                while True:
                    index = max(0, cursor[0] - self._dropped)
                    while index < len(self.events):
                        if predicate(self.events[index]):
                            return self.events[index]
                        index += 1
                    cursor[0] = self._dropped + index
                    if self._events_closed or (agent_only and not self.alive()):
                        return None
                    await self._changed.wait()
        finally:
            del self._cursors[token]
        return None

    def drop_examined_events(self) -> int:
        """Forget the events that every wait under way has looked at already (all of them
        when none is): a long-lived server process answers commands for hours, and what it
        said is only ever waited for. How many were dropped."""
        end = self._dropped + len(self.events)
        upto = min((cursor[0] for cursor in self._cursors.values()), default=end) - self._dropped
        if upto > 0:
            del self.events[:upto]
            self._dropped += upto
        return max(upto, 0)

    async def wait_ready(self, timeout: float) -> Event:
        """Wait for ``ready`` or ``construct:raised`` of the server.

        Raises ``TargetDidNotStart`` when the target's modules failed to import, or the
        process exited, was killed by the harness or stayed silent before either event.
        """
        event = await self._wait_for(
            lambda e: e["ev"] in ("ready", "construct:raised"), timeout, agent_only=True
        )
        if event is not None and event["ev"] == "construct:raised" and event.get("stage"):
            raise TargetDidNotStart(f"{event.get('type')}: {event.get('message', '')}".strip())
        if event is not None:
            return event
        # The agent ended (its parent's report, or the keeper, tells how) or the time ran out.
        with trio.move_on_after(2.0):
            while self._events_closed and self._exit_status_now() is None:
                await trio.sleep(0.01)
        said = _last_line(self.read_stderr())
        said = f"; its last words: {said}" if said else ""
        if self.incidents:
            raise TargetDidNotStart("; ".join(self.incidents) + said)
        if not self.alive():
            status = self._exit_status_now()
            raise TargetDidNotStart(f"exited with status {status} before it was ready{said}")
        raise TargetDidNotStart(f"did not report ready within {timeout:g} s{said}")

    def _exit_status_now(self) -> int | None:
        """The agent's exit status as far as known: its parent's report, else its keeper's."""
        if self._agent_status is not None:
            return self._agent_status
        return self._popen.poll() if self._popen is not None else None

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

    def sample(self, tree: bool = True) -> dict[str, int]:
        """Threads, fds, live children and zombie children of the agent, right now.

        Without ``tree``, threads and fds only (no ``children`` or ``zombies``): counting
        the tree takes a read of every process in /proc, a hundred times the rest.
        """
        try:
            proc = psutil.Process(self.pid)
            with proc.oneshot():
                threads = proc.num_threads()
                fds = proc.num_fds()
        except psutil.NoSuchProcess:
            return {"alive": 0, "threads": 0, "fds": 0, "children": 0, "zombies": 0}
        if not tree:
            return {"alive": 1, "threads": threads, "fds": fds}
        # One read of /proc (psutil's recursive children() reads it more slowly, and
        # then each child's status again).
        table = proc_table()
        tree = descendants(table, self.pid)
        zombies = sum(1 for pid in tree if table[pid][1] == "Z")
        live = len(tree) - zombies
        return {"alive": 1, "threads": threads, "fds": fds, "children": live, "zombies": zombies}

    async def _watch(self) -> None:
        """Kill the agent's tree as soon as it grows past ``MAX_PROCESSES`` or the agent
        stays stopped; the reason becomes an incident."""
        assert self._popen is not None
        popen = self._popen
        incident = await watch(
            popen.pid,
            lambda: self._agent_pid,
            lambda: self._killing or popen.poll() is not None,
        )
        if incident is not None and not self._killing:
            self._incident(incident)
            self._killing = True
            self._killed += await trio.to_thread.run_sync(kill_tree, popen.pid)
            self._notify()

    def _orphans_of_forked_agent(self) -> list[int]:
        """What is left of a forked agent's process group when the target killed the
        agent's parent, its keeper: the agent (dead, or dying by ``PR_SET_PDEATHSIG``) and
        what it started, orphans of no keeper (they go to the fork server's keeper, a
        subreaper), to be killed now.

        A process the agent's family moved to a group of its own is not found here: it runs
        on under the fork server's keeper until the harness closes the server, at the end
        of the run. (A spawned agent's keeper outlives a killed decoy parent and holds all
        of them.)
        """
        if not (self.forked and self._parent_gone and self._agent_pid):
            return []
        found = []
        for pid, (_ppid, _state, group, start) in proc_table().items():
            if group == self._agent_pid:
                _killed_starts[pid] = start  # reaped only while it is still that process
                found.append(pid)
        return found

    def _note_strays(self, table: ProcTable) -> None:
        """Record processes the agent's family left outside it (daemons, the children of an
        agent that died): orphans, re-parented to the keeper, that still run.

        ``table`` is ``kill_tree``'s first scan, made once the keeper stood still.
        """
        assert self._popen is not None
        keeper = self._popen.pid
        if self._agent_pid is None:
            return  # it never said its pid: its parent cannot be told from a stray
        parent = table[self._agent_pid][0] if self._agent_pid in table else self._decoy
        strays = [
            pid
            for pid, (ppid, state, *_rest) in table.items()
            if ppid == keeper and pid not in (parent, self._agent_pid) and state != "Z"
        ]
        if strays:
            self._incident(
                f"left {len(strays)} process(es) running outside its process tree "
                "(orphaned or daemonized); the harness killed them"
            )

    def read_stdout(self) -> str:
        """What the server process wrote to stdout so far (the first ``MAX_OUTPUT`` bytes)."""
        return _read_output(self.stdout_path)

    def read_stderr(self) -> str:
        """What the server process wrote to stderr so far (the first ``MAX_OUTPUT`` bytes)."""
        return _read_output(self.stderr_path)

    async def stop(self, grace: float = 0.0) -> None:
        """End the agent and everything it started, and reap them all.

        With ``grace`` > 0 the agent is first asked to exit and given that long.
        """
        popen = self._popen
        if popen is None:
            return
        if grace > 0 and self.alive():
            with contextlib.suppress(AgentGone):
                self._send({"op": "exit"})
            with trio.move_on_after(grace):
                while self.alive():
                    await trio.sleep(0.005)
        killed: list[int] = []
        killed_already = self._killing  # by the watch (a fork bomb...): no strays to note
        self._note_parent_killed(look=True)
        if not await self._end_session():
            look = None
            if not killed_already and popen.poll() is None:
                # Also after a killed session whose keeper did not exit: what it still
                # waits for is outside the session (a daemon the census had not seen yet).
                look = self._note_strays
            self._killing = True
            orphans = self._orphans_of_forked_agent()
            killed = await trio.to_thread.run_sync(
                functools.partial(kill_tree, popen.pid, *orphans, inspect=look)
            )
            killed += orphans
        with contextlib.suppress(OSError):
            if popen.stdin:
                popen.stdin.close()
        # Reaping is quick once SIGKILL has landed; do it off the event loop all the same
        # (unless the end of the session already reaped it).
        status = popen.poll()
        if status is None:
            status = await trio.to_thread.run_sync(popen.wait)
        if not isinstance(popen, subprocess.Popen):
            if popen.exit_fd >= 0:
                trio.lowlevel.notify_closing(popen.exit_fd)  # _await_forked_keeper's
            popen.release()
        self.exit_status = self._agent_status if self._agent_status is not None else status
        if self._killed or killed:
            await trio.to_thread.run_sync(reap_pids, self._killed + killed)
        self._killed = []

    async def _end_session(self) -> bool:
        """The usual end, without ``kill_tree``'s three scans of /proc: kill the agent's
        session at once and wait for its keeper to exit; whether that ended the tree.

        The agent leads a session and its process group (``harness.keeper.split``), which only
        its descendants can be in, so one ``killpg`` ends the agent and every process that
        stayed in its group; a descendant in another group sends the end to ``kill_tree``.
        The keeper, a subreaper, exits on its own (status 0) only once it has no child left
        (a forked agent's keeper says so on its exit fd instead, and lives on for its next
        agent): nothing of the tree is left then, whatever the harness saw of it before. A
        forked agent that has ended on its own is waited for the same way
        (``_forked_tree_ends``). Anything else (a spawned agent already gone, a process that
        moved to a session of its own, a keeper that does not exit soon) is left to
        ``kill_tree``.

        What is in the tree is read from the census the watch shares (at most
        ``WATCH_INTERVAL`` old: a scan of its own cost every agent 2 ms); only a stray seen
        there (an orphan of the target's, re-parented to the keeper) calls for a scan of
        its own, to note the strays that still run. A process the target starts in its
        last ``WATCH_INTERVAL`` is killed all the same, by the session or by ``kill_tree``,
        but is not noted as a stray.
        """
        popen = self._popen
        pid = self._agent_pid
        if popen is None or pid is None or self._killing or self._parent_gone:
            return False
        if self.forked and popen.poll() is not None:
            return popen.poll() == 0  # its keeper said that the tree has ended
        if self._agent_status is not None or popen.poll() is not None:
            return self.forked and await self._forked_tree_ends()
        try:
            fields = _stat_fields(pid)
        except (OSError, ValueError, IndexError):
            return self.forked and await self._forked_tree_ends()
        if fields[0] in (b"Z", b"X", b"x"):
            return self.forked and await self._forked_tree_ends()
        if int(fields[2]) != pid:
            return False  # no longer the leader of its group
        decoy = self._decoy = int(fields[1])
        table, children = _census.take()
        others = [
            other for other in _still_under(table, children, popen.pid) if other not in (pid, decoy)
        ]
        if any(table[other][2] != pid for other in others):
            return False  # a process in a group of its own: kill_tree finds and freezes all
        if any(table[other][0] == popen.pid for other in others):
            self._note_strays(await trio.to_thread.run_sync(proc_table))
        self._killing = True
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            return False
        if isinstance(popen, subprocess.Popen):
            await wait_for_exit(popen, SESSION_END_LIMIT)
        else:
            with trio.move_on_after(SESSION_END_LIMIT):
                await self._keeper_ended.wait()
        return popen.poll() == 0

    async def _forked_tree_ends(self) -> bool:
        """Whether the tree of a forked agent that has ended on its own ends too: its
        keeper says so once nothing of it is left (and then forks its next agent). Only
        when the census shows nothing else under the keeper; else ``kill_tree`` ends the
        tree and notes the strays."""
        popen = self._popen
        assert popen is not None
        table, children = _census.take()
        for other in _still_under(table, children, popen.pid):
            if other != self._agent_pid and table[other][1] != "Z":
                return False
        with trio.move_on_after(SESSION_END_LIMIT):
            await self._keeper_ended.wait()
        return popen.poll() == 0


async def wait_for_exit(process: subprocess.Popen[bytes], timeout: float) -> None:
    """Return once ``process`` (a spawned agent's keeper) has exited, or after ``timeout``
    seconds.

    Woken by the exit itself, not by polling: a poll's pauses added about 10 ms to the end
    of every agent. A child of ours (not reaped yet, so that its pid cannot be another's)
    is watched through a pidfd (Linux 5.3 and later), elsewhere by polls. (A forked agent's
    keeper is watched through its exit fd: ``AgentProcess._await_forked_keeper``.)
    """
    pid = process.pid
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        fd = None
    if fd is None:
        deadline = time.monotonic() + timeout
        while not dying(pid) and time.monotonic() < deadline:
            await trio.sleep(0.005)
        return
    try:
        with trio.move_on_after(timeout):
            await trio.lowlevel.wait_readable(fd)
    finally:
        os.close(fd)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def _read_output(path: Path) -> str:
    with open(path, "rb") as handle:
        data = handle.read(MAX_OUTPUT)
        more = os.fstat(handle.fileno()).st_size - len(data)
    text = data.decode("utf-8", "backslashreplace")
    if more > 0:
        text += f"\n[... {more} more bytes not read]\n"
    return text


# --- the process table ---------------------------------------------------------------------

#: pid -> (parent pid, state letter, process group, start time) of every process
ProcTable = dict[int, tuple[int, str, int, int]]


def proc_table() -> ProcTable:
    """Every process's parent, state, process group and start time (in clock ticks since
    boot: with the pid, who it is), from one read of /proc (Linux)."""
    table: ProcTable = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return table
    for name in names:
        if not name.isdigit():
            continue
        try:
            fields = _stat_fields(name)
            table[int(name)] = (int(fields[1]), fields[0].decode(), int(fields[2]), int(fields[19]))
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
    return table


def _stat_fields(pid: int | str) -> list[bytes]:
    """The fields of ``/proc/<pid>/stat`` after the command name (state first).

    Read with bare ``os`` calls: a run reads this file hundreds of thousands of times, and a
    buffered file object costs three times as much per read.
    """
    fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
    try:
        data = os.read(fd, 4096)
    finally:
        os.close(fd)
    return data[data.rindex(b")") + 2 :].split()


def _start_time(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot), or None if there is none."""
    try:
        return int(_stat_fields(pid)[19])
    except (OSError, ValueError, IndexError):
        return None


#: pid -> start time of the processes ``kill_tree`` killed, until ``reap_pids`` reaps them:
#: a pid freed meanwhile may be another child of ours by then (a fork bomb runs through
#: the pids in seconds), whose exit status is not ours to take.
_killed_starts: dict[int, int] = {}


def descendants(table: ProcTable, root: int, children: Children | None = None) -> list[int]:
    """The pids under ``root`` in ``table`` (zombies included), parents before children.

    ``children`` is ``children_of(table)``, for a caller that looks at many roots.
    """
    if children is None:
        children = children_of(table)
    found: list[int] = []
    seen = {root}
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in seen:
                seen.add(child)
                found.append(child)
                todo.append(child)
    return found


Children = dict[int, list[int]]


def _still_under(table: ProcTable, children: Children, root: int) -> list[int]:
    """The pids under ``root`` in ``table`` (a census, maybe older than their end) that are
    still the processes it saw: a forked agent's keeper had agents before this one."""
    return [pid for pid in descendants(table, root, children) if _start_time(pid) == table[pid][3]]


def dying(pid: int) -> bool:
    """Whether process ``pid`` is gone or going: exited, exiting, or with a SIGKILL queued
    (a kill is queued at once, but the process ends only when it next runs)."""
    try:
        fields = _stat_fields(pid)
        with open(f"/proc/{pid}/status", "rb") as handle:
            status = handle.read()
    except (OSError, ValueError):
        return True
    if fields[0] in (b"Z", b"X", b"x") or int(fields[6]) & 0x4:  # PF_EXITING
        return True
    kill = 1 << (signal.SIGKILL - 1)
    for line in status.splitlines():
        if line.startswith((b"SigPnd:", b"ShdPnd:")) and int(line.split()[1], 16) & kill:
            return True
    return False


def children_of(table: ProcTable) -> Children:
    """Each pid's children in ``table``."""
    children: Children = {}
    for pid, (ppid, *_rest) in table.items():
        children.setdefault(ppid, []).append(pid)
    return children


class _Census:
    """One /proc scan shared by every watcher for a moment: agents watched at once cost
    one scan per interval, not one each."""

    def __init__(self, max_age: float) -> None:
        self.max_age = max_age
        self._table: ProcTable = {}
        self._children: Children = {}
        self._taken = -1e9

    def take(self) -> tuple[ProcTable, Children]:
        """The process table and each pid's children, at most ``max_age`` seconds old."""
        now = time.monotonic()
        if now - self._taken > self.max_age:
            self._table = proc_table()
            self._children = children_of(self._table)
            self._taken = time.monotonic()
        return self._table, self._children


_census = _Census(WATCH_INTERVAL * 0.9)


async def watch(
    root: int,
    watched: Callable[[], int | None],
    done: Callable[[], bool],
    limit: int = MAX_PROCESSES,
) -> str | None:
    """Look at the tree under ``root`` every ``WATCH_INTERVAL`` until ``done()``; what is
    wrong with it (the caller kills it), or None.

    Wrong: more than ``limit`` live processes in it (the kernel does not hold root to
    RLIMIT_NPROC, and a fork bomb takes the machine's pids and memory within seconds), or
    the process ``watched()`` names stopped (SIGSTOP) for ``STOPPED_LIMIT`` seconds.
    """
    stopped = 0.0
    while not done():
        await trio.sleep(WATCH_INTERVAL)
        if done():
            return None
        table, children = _census.take()
        tree = [pid for pid in descendants(table, root, children) if table[pid][1] != "Z"]
        if len(tree) > limit:
            return (
                f"started more than {limit} processes (a fork bomb?); the harness killed them all"
            )
        pid = watched()
        state = table[pid][1] if pid in table else ""
        stopped = stopped + WATCH_INTERVAL if state in ("T", "t") else 0.0
        if stopped >= STOPPED_LIMIT:
            return f"stopped itself (state {state}, SIGSTOP?) and stayed stopped; the harness killed it"
    return None


def kill_tree(
    *roots: int | psutil.Process,
    inspect: Callable[[ProcTable], None] | None = None,
    spare: Collection[int] = (),
) -> list[int]:
    """Kill each root and all its descendants; the descendants' pids (to reap).

    ``inspect``, if given, is called with the first scan of the process table, made once
    the roots are stopped and before anything is killed. The processes in ``spare`` and
    their descendants are left alone (a fork server's agents that still run).

    A root given as a ``psutil.Process`` is left alone if it is no longer the process it
    was (its pid reused); an int must be our child or otherwise safe from reuse. Everything
    is frozen before anything is killed: the roots first (a stopped keeper reaps nothing, so
    no pid in its tree is freed for reuse), then, until a scan finds no live process under
    them that was not stopped yet, every process group led from inside the trees at once (a
    member forking right now stops with its child) and every process by pid. A stopped
    process forks no more, so nothing killed next can leave an orphan unseen; and nothing
    killed runs again, so no keeper reports a death the harness caused.
    """
    pids = []
    for root in roots:
        if isinstance(root, psutil.Process):
            try:
                if not root.is_running():
                    continue
            except psutil.Error:
                continue
            root = root.pid
        pids.append(root)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGSTOP)
    seen: dict[int, None] = {}
    stopped: set[int] = set()
    patience = time.monotonic() + 2.0
    parked = 0  # scans in a row that found every process parked
    for _round in range(10000):
        table = proc_table()
        if inspect is not None:
            inspect(table)
            inspect = None
        children = children_of(table)
        for pid in spare:  # cut off from its parent: neither it nor its tree is seen
            if pid in table and pid in children.get(table[pid][0], ()):
                children[table[pid][0]].remove(pid)
        tree: dict[int, None] = {}
        for pid in pids:
            tree.update(dict.fromkeys(descendants(table, pid, children)))
        tree = {pid: None for pid in tree if pid not in pids}
        seen.update(tree)
        for pid in tree:
            _killed_starts[pid] = table[pid][3]
        fresh = [pid for pid in tree if pid not in stopped and table[pid][1] != "Z"]
        if not fresh:
            # Told to stop is not stopped: a process inside fork() finishes it first. Only
            # once every one of them is parked (or dead) can no child appear unseen, and
            # only a listing of /proc made after that shows every child: a scan lists the
            # pids before it reads their states.
            moving = [
                pid for pid in [*tree, *pids] if table.get(pid, (0, "Z", 0, 0))[1] not in "TtZX"
            ]
            parked = 0 if moving else parked + 1
            if parked >= 2 or time.monotonic() > patience:
                break
            if moving:
                time.sleep(0.001)
            continue
        parked = 0
        for group in {table[pid][2] for pid in fresh} & (set(tree) | set(pids)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGSTOP)
        for pid in fresh:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGSTOP)
        stopped.update(fresh)
    # The roots first: a keeper with a SIGKILL pending runs no more code, so it never
    # reports a death the harness caused (even one it was not stopped in time for).
    for pid in [*pids, *stopped]:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return list(seen)


def reap_pids(pids: list[int], timeout: float = 5.0) -> None:
    """Wait for each pid once it has become our child (we are a subreaper).

    A killed agent's descendants are handed to us only after their parent is gone, so
    "not my child" right after the kill may just mean "not yet": keep trying while the
    process exists, and stop once it is gone (its own parent reaped it) or reaped by us. A
    pid ``kill_tree`` killed is reaped only while it is still that process.
    """
    deadline = time.monotonic() + timeout
    for pid in pids:
        started = _killed_starts.pop(pid, None)
        while True:
            if started is not None and _start_time(pid) != started:
                break  # gone, and maybe another process's pid by now
            try:
                done, _status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                if not psutil.pid_exists(pid):
                    break
                done = 0
            if done or time.monotonic() > deadline:
                break
            time.sleep(0.005)


#: Where work folders go when the user names no temporary folder: a RAM-backed file system.
SHARED_MEMORY = "/dev/shm"
#: The space it must have free: an agent may write files of up to ``keeper.FILE_SIZE``.
SHARED_MEMORY_FREE = 1 << 30


def make_workdir(prefix: str = "ssh-") -> Path:
    """A fresh private directory for one agent (socket files, captured output, served
    file trees), under ``work_root()``."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir=work_root()))


@functools.cache
def work_root() -> str:
    """The folder work folders are made in: the user's (``TMPDIR``, ``TEMP`` or ``TMP``) if
    one is set, else ``SHARED_MEMORY`` if it is a writable tmpfs that allows programs (CGI
    scripts run from served trees) with ``SHARED_MEMORY_FREE`` bytes free, else the
    system's temporary folder.

    Why not the disk: a catalog run makes and removes about 15,000 files and folders, and on
    ext4 without a journal each new inode is searched for past the ones freed in the last
    minutes: measured, 6 % of the whole machine's CPU during a run, and 8 % of its time.
    """
    if any(os.environ.get(name) for name in ("TMPDIR", "TEMP", "TMP")):
        return tempfile.gettempdir()
    return SHARED_MEMORY if _usable_tmpfs(SHARED_MEMORY) else tempfile.gettempdir()


def _usable_tmpfs(path: str) -> bool:
    """Whether ``path`` is a tmpfs mount point, writable, without ``noexec``, with room."""
    try:
        with open("/proc/self/mounts") as mounts:
            # The last mount on a path is the one in force.
            found = [e for e in (line.split() for line in mounts) if len(e) > 3 and e[1] == path]
        if not found or found[-1][2] != "tmpfs":
            return False
        options = found[-1][3].split(",")
        if "noexec" in options or "ro" in options:
            return False
        if not os.access(path, os.W_OK | os.X_OK):
            return False
        stats = os.statvfs(path)
    except OSError:
        return False
    return stats.f_bavail * stats.f_frsize >= SHARED_MEMORY_FREE


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
