"""The harness's side of fork servers (``harness.forkserver``): a pool of them for one run.

Starting an agent means starting an interpreter and importing the agent and the target's
modules; a fork server does that once per (interpreter, module map) and forks each agent from
there. ``ForkServerPool.spawn`` gives an agent forked by the target's fork server (started on
first use, shared by every scenario run of the pool), or None when the agent must be spawned
as before: the fork server refused (an interpreter without ``os.fork``/``socket.send_fds``, a
target whose import started threads, opened fds...), could not start, died, or the agent
needs what a fork cannot give (environment variables the interpreter reads at start,
``pin_mimetypes`` false). A fork server that failed to start is never started again by the
same pool; ``start_failure`` tells why it failed. ``aclose`` kills and reaps them all.

A forked agent's keeper stays its fork server's child (reaped by the kernel) and serves
agent after agent: the harness learns that an agent's tree has ended from the keeper's exit
fd (``harness.keeper``), which is what ``ForkedProcess`` reads, and the host kills its tree
by pid like a spawned agent's keeper. The fork server itself runs under a keeper (the
process started here): its tree, and the server by its pid should the target's import have
killed that keeper, is killed when the server is closed, except the keepers of agents still
running (whose scenarios go on; they come to the harness, a child subreaper, which reaps
them). While the server imports the target, its tree is watched like an agent's
(``harness.host.watch``): a fork bomb or a stop (SIGSTOP) there is the target's start
failure at once.
"""

from __future__ import annotations

import array
import contextlib
import errno
import functools
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import threading
import time
import weakref
from pathlib import Path
from typing import Any

import psutil
import trio

from harness.forkserver import unforkable
from harness.host import (
    agent_environment,
    become_subreaper,
    dying,
    kill_tree,
    make_workdir,
    reap_pids,
    watch,
)
from harness.targets import Target

#: How long a fork server may take to import the target and say hello.
START_TIMEOUT = 30.0
#: How long one fork request may take (a fork takes milliseconds; this is for a stuck server).
REQUEST_TIMEOUT = 30.0
_MAX_MESSAGE = 1 << 20

_Key = tuple[str, tuple[tuple[str, str], ...]]


class ForkedProcess:
    """A forked agent's keeper, as the host uses a ``subprocess.Popen`` of a spawned one.

    ``pid`` (the keeper's), ``agent_pid``, ``stdin`` (a binary file on the agent's stdin
    pipe), ``poll()`` and ``wait()``. The keeper is its fork server's child, not ours, and
    outlives the agent to fork the next: "exited" here means that the agent's tree has
    ended, which the keeper says on ``exit_fd`` (the read end of its exit fd) as ``0`` and
    a newline; a keeper that ends without a word was killed (``-SIGKILL``). Should the
    fork server die first, the keeper comes to the server's keeper, or to us (a child
    subreaper) if that has gone too, and is reaped here.
    ``release`` closes the fds once the host is done with it, which lets the keeper go on.
    """

    def __init__(self, pid: int, stdin_fd: int, exit_fd: int, agent_pid: int | None = None) -> None:
        self.pid = pid
        self.agent_pid = agent_pid
        self.stdin = open(stdin_fd, "wb")  # noqa: SIM115 - closed by the host's stop()
        self.exit_fd = exit_fd
        self.returncode: int | None = None
        self._said = b""
        self._lock = threading.Lock()
        try:
            # Taken a moment after the agent said it was prepared: its keeper ends only
            # after it, and a freed pid comes back only once the kernel has gone through
            # the others, so the pidfd is that keeper (or none: it is gone, reaped).
            self._pidfd: int | None = os.pidfd_open(pid)
        except (AttributeError, OSError):
            self._pidfd = None

    def poll(self) -> int | None:
        """The keeper's exit status if it has ended, else None."""
        if self.returncode is None and self._lock.acquire(blocking=False):
            try:
                self._read(wait=False)
            finally:
                self._lock.release()
        return self.returncode

    def wait(self) -> int:
        """Wait for the keeper to end; its exit status (-N for signal N)."""
        with self._lock:
            while self.returncode is None:
                self._read(wait=True)
        return self.returncode

    def _read(self, wait: bool) -> None:
        while wait or _readable(self.exit_fd):
            chunk = os.read(self.exit_fd, 16)
            if not chunk:
                break
            self._said += chunk
            if self._said.endswith(b"\n"):
                break  # the end of the session: the keeper lives on for the next agent
        else:
            return
        said = self._said.strip()
        if self._said.endswith(b"\n") and said.lstrip(b"-").isdigit():
            self.returncode = int(said)
        else:
            self.returncode = -signal.SIGKILL  # it ended without a word: killed
            if self._pidfd is not None:
                _reap_if_ours(self._pidfd)

    def release(self) -> None:
        """Close the fds that watch the keeper (after the host is done waiting on them).

        The end of ``exit_fd`` tells the keeper that its next agent may come. Should the
        fork server have died, the keeper is our child by now and exits at once: reaped here.
        """
        exit_fd, pidfd = self.exit_fd, self._pidfd
        self.exit_fd, self._pidfd = -1, None
        if exit_fd >= 0:
            _close_all(exit_fd)
        if pidfd is not None:
            if self.returncode is not None and self.returncode >= 0:
                _reap_if_ours(pidfd)
            _close_all(pidfd)

    def __del__(self) -> None:
        self.release()


def _reap_if_ours(pidfd: int, patience: float = 1.0) -> None:
    """Reap the process of ``pidfd`` if it is our child (its fork server died first), once
    it is a zombie: its fds close a moment before it becomes one."""
    deadline = time.monotonic() + patience
    while True:
        try:
            if os.waitid(os.P_PIDFD, pidfd, os.WEXITED | os.WNOHANG) is not None:
                return
        except (ChildProcessError, OSError):
            return  # not our child: the kernel reaps it for its fork server
        if time.monotonic() > deadline:
            return
        time.sleep(0.001)


def _readable(fd: int) -> bool:
    """Whether a read of ``fd`` would not block (data or its end), without waiting."""
    return bool(select.select([fd], [], [], 0)[0])


class _ServerGone(Exception):
    """The fork server stopped answering: it is not asked again."""


class _ForkServer:
    """One running fork server: its process, its socket, its requests one at a time."""

    def __init__(self, popen: subprocess.Popen[bytes], sock: Any, directory: Path) -> None:
        self.popen = popen  # the server's keeper
        #: the server itself, once it has said its pid (it outlives a keeper the target kills)
        self.process: psutil.Process | None = None
        self.sock = sock
        self.directory = directory
        self.env: dict[str, str] = {}
        self.lock = trio.Lock()
        self.closed = False
        #: the keepers of the agents it forked (their scenarios go on if it is closed)
        self.handed: weakref.WeakSet[ForkedProcess] = weakref.WeakSet()

    async def receive(self) -> dict[str, Any]:
        """The next message from the server; _ServerGone when its end is closed."""
        try:
            data = await self.sock.recv(_MAX_MESSAGE)
        except OSError as exc:
            raise _ServerGone(f"its socket failed ({exc})") from None
        if not data:
            raise _ServerGone("it closed its socket")
        return json.loads(data)

    async def request(self, message: dict[str, Any], fds: list[int]) -> dict[str, Any]:
        """Send one fork request with its fds; the server's reply.

        The exchange is shielded from cancellation: once the request is out, an agent may
        exist, and only the reply tells us its pid, so that it can be stopped.
        """
        async with self.lock:
            if self.closed:
                raise _ServerGone("it is closed")
            with trio.CancelScope(shield=True):
                with trio.move_on_after(REQUEST_TIMEOUT):
                    data = json.dumps(message).encode()
                    ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))]
                    try:
                        await self.sock.sendmsg([data], ancillary)
                    except OSError as exc:
                        if exc.errno == errno.EMSGSIZE:
                            return {"refused": "the request is too long for one message"}
                        raise _ServerGone(f"sending to it failed ({exc})") from None
                    return await self.receive()
                raise _ServerGone(f"it did not answer within {REQUEST_TIMEOUT:g} s")

    async def close(self) -> None:
        """Kill the server (and anything it started) by pid, reap it, remove its directory."""
        if self.closed:
            return
        self.closed = True
        roots: list[Any] = [self.popen.pid]
        if self.process is not None:
            roots.append(self.process)
        # Killed before its socket closes: a server that sees the end of its socket exits,
        # and what it held as a subreaper (daemons its import left) would be let go. The
        # keepers of agents still running are its children, but not its to end.
        spare = [p.pid for p in list(self.handed) if p.poll() is None]
        descendants = await trio.to_thread.run_sync(
            functools.partial(kill_tree, *roots, spare=spare)
        )
        with contextlib.suppress(OSError):
            self.sock.close()
        await trio.to_thread.run_sync(self.popen.wait)
        if self.process is not None:
            descendants.append(self.process.pid)  # ours to reap if its keeper was killed
        await trio.to_thread.run_sync(reap_pids, descendants)
        shutil.rmtree(self.directory, ignore_errors=True)

    def stderr_tail(self) -> str:
        """The end of what the server wrote to stderr."""
        try:
            text = (self.directory / "stderr").read_bytes().decode("utf-8", "backslashreplace")
        except OSError:
            return ""
        return text.strip()[-1000:]


class ForkServerPool:
    """Fork servers by (interpreter, module map), started lazily, closed by ``aclose``."""

    def __init__(self, start_timeout: float = START_TIMEOUT) -> None:
        self.start_timeout = start_timeout
        #: fork servers started, agents forked, agents asked for but left to be spawned
        self.starts = 0
        self.forked = 0
        self.declined = 0
        self._servers: dict[_Key, _ForkServer] = {}
        self._locks: dict[_Key, trio.Lock] = {}
        self._failures: dict[_Key, str] = {}
        self._not_used: dict[_Key, str] = {}
        self._closed = False

    async def __aenter__(self) -> ForkServerPool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        with trio.CancelScope(shield=True):
            await self.aclose()

    def start_failure(self, target: Target) -> str | None:
        """Why ``target``'s fork server failed to start (its import raised, it exited, it
        did not start in time), or None if it started or was never tried."""
        return self._failures.get(_key(target))

    def not_forking(self, target: Target) -> str | None:
        """Why ``target``'s agents are spawned rather than forked (None when they are forked
        or it has not been tried yet): a start failure, a refusal, a server that died."""
        return self._not_used.get(_key(target))

    async def spawn(
        self,
        target: Target,
        setup: dict[str, Any],
        *,
        env: dict[str, str],
        cwd: str,
        fds: tuple[int, int, int],
    ) -> ForkedProcess | None:
        """An agent forked for ``setup`` (stdout, stderr and event pipe fds in ``fds``), or
        None: then the caller spawns it."""
        server = await self._server(target)
        why = "no fork server" if server is None else unforkable(setup, env, server.env)
        if server is None or why:
            self.declined += 1
            return None
        stdin_read, stdin_write = os.pipe()
        exit_read, exit_write = os.pipe()
        try:
            reply = await server.request(
                {"setup": setup, "env": env, "cwd": cwd}, [stdin_read, *fds, exit_write]
            )
        except _ServerGone as exc:
            _close_all(stdin_write, exit_read)
            self._not_used.setdefault(_key(target), f"the fork server died: {exc}")
            self.declined += 1
            with trio.CancelScope(shield=True):
                await server.close()
            return None
        except BaseException:
            _close_all(stdin_write, exit_read)
            raise
        finally:
            _close_all(stdin_read, exit_write)
        if "pid" not in reply:
            _close_all(stdin_write, exit_read)
            if "keeper" in reply:  # an agent that could not be prepared: its keeper's tree
                with trio.CancelScope(shield=True):
                    await _discard_keeper(int(reply["keeper"]))
            self.declined += 1
            if reply.get("final"):  # it would fail the same way for every agent
                self._not_used.setdefault(
                    _key(target), f"the fork server cannot prepare agents: {reply.get('refused')}"
                )
                with trio.CancelScope(shield=True):
                    await server.close()
            return None
        self.forked += 1
        process = ForkedProcess(int(reply["keeper"]), stdin_write, exit_read, int(reply["pid"]))
        server.handed.add(process)
        return process

    async def _server(self, target: Target) -> _ForkServer | None:
        key = _key(target)
        async with self._locks.setdefault(key, trio.Lock()):
            if self._closed or key in self._not_used:
                return None
            if key not in self._servers:
                await self._start(key, target)
            server = self._servers.get(key)
            popen = server.popen if server is not None and not server.closed else None
            if popen is not None and (popen.returncode is not None or dying(popen.pid)):
                # Its keeper is gone or going: killed by someone, so the server may be next.
                self._not_used.setdefault(key, "the fork server died: its keeper ended")
                with trio.CancelScope(shield=True):
                    await server.close()
            return None if server is None or server.closed else server

    async def _start(self, key: _Key, target: Target) -> None:
        """Start the fork server of ``key``; on failure, record why and leave it stopped."""
        if not become_subreaper():
            self._not_used[key] = "the harness cannot be a child subreaper here"
            return
        self.starts += 1
        directory = make_workdir(prefix="ssh-fs-")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            with open(directory / "stdout", "wb") as out, open(directory / "stderr", "wb") as err:
                popen = subprocess.Popen(
                    [target.python, "-m", "harness.agent", "--fork-server", str(theirs.fileno())],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    pass_fds=(theirs.fileno(),),
                    start_new_session=True,
                    env=agent_environment(None),
                    cwd=str(directory),
                )
        except OSError as exc:
            ours.close()
            shutil.rmtree(directory, ignore_errors=True)
            self._fail(key, f"cannot start {target.python}: {exc}")
            return
        finally:
            theirs.close()
        # Registered before anything can be cancelled, so that aclose() stops it.
        server = self._servers[key] = _ForkServer(
            popen, trio.socket.from_stdlib_socket(ours), directory
        )
        failure = None
        importing = False  # from then on, an exit or a hang is the target's import
        hello = None
        incident: list[str] = []

        async def exchange(cancel_scope: trio.CancelScope) -> None:
            nonlocal hello, importing
            try:
                await server.sock.send(json.dumps({"modules": target.module_map}).encode())
                hello = await server.receive()
                if "importing" in hello:
                    importing = True
                    if hello.get("pid"):
                        with contextlib.suppress(psutil.Error):
                            server.process = psutil.Process(int(hello["pid"]))
                    hello = await server.receive()
            except _ServerGone:
                hello = None
            cancel_scope.cancel()

        async def guard(cancel_scope: trio.CancelScope) -> None:
            found = await watch(
                popen.pid,
                lambda: server.process.pid if server.process is not None else None,
                lambda: False,
            )
            if found is not None:
                incident.append(found)
                cancel_scope.cancel()

        with trio.move_on_after(self.start_timeout) as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(exchange, nursery.cancel_scope)
                nursery.start_soon(guard, nursery.cancel_scope)
        if incident:
            # Only the target's import runs code of the target in the server.
            failure, importing = incident[0], True
        elif scope.cancelled_caught:
            failure = f"did not start within {self.start_timeout:g} s"
        elif hello is None:
            failure = await self._exit_status(server)
        elif "ok" in hello:
            server.env = hello["env"]
            return
        elif "failed" in hello:
            failure = f"{hello['failed']}\n{hello.get('traceback', '').strip()}"
        else:
            self._not_used[key] = f"the fork server refused: {hello.get('refused')}"
        if failure is not None and importing:
            self._fail(key, failure)
        elif failure is not None:
            self._not_used[key] = f"the fork server did not start: {failure}"
        with trio.CancelScope(shield=True):
            await server.close()

    async def _exit_status(self, server: _ForkServer) -> str:
        """How a server that closed its socket before its hello ended."""
        with trio.move_on_after(5.0):
            while server.popen.poll() is None:
                await trio.sleep(0.01)
        status = server.popen.poll()
        if status is None:
            return "closed its socket without a word"
        tail = server.stderr_tail()
        return f"exited with status {status}" + (f"; stderr: {tail}" if tail else "")

    def _fail(self, key: _Key, failure: str) -> None:
        self._failures[key] = failure
        self._not_used[key] = f"the fork server failed to start: {failure}"

    async def aclose(self) -> None:
        """Stop every fork server (killed by pid, reaped); spawns no more after this."""
        self._closed = True
        for server in list(self._servers.values()):
            await server.close()


async def _discard_keeper(pid: int) -> None:
    """Kill a keeper (our child) and its tree, and reap them."""
    descendants = await trio.to_thread.run_sync(kill_tree, pid)
    await trio.to_thread.run_sync(reap_pids, [pid, *descendants])


def _close_all(*fds: int) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def _key(target: Target) -> _Key:
    return (target.python, tuple(sorted(target.module_map.items())))
