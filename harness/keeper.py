"""What keeps a server process's misdeeds away from the harness: its keepers and its limits.

A server process (an agent, or a fork server) never has the harness for its parent. ``split``
forks: the child goes on as the server process and the parent stays behind as its *keeper*,
which never returns into the caller's code. A spawned agent gets two of them::

    harness ── keeper (child subreaper) ── parent (a decoy) ── agent

and a forked agent one, its parent and keeper at once, which keeps agent after agent, one at
a time (``harness.forkserver``, with ``fork_child`` and ``keep_child``: a fork of a fork
server costs 2 ms)::

    fork server ── keeper (child subreaper) ── agent

- The keeper is a child subreaper (Linux): whatever the target orphans (a daemon that forked
  twice and called ``setsid``, the children of a server that died) is re-parented to it, so
  the agent's whole family stays one tree under one pid the harness knows and kills, and the
  keeper reaps each orphan that ends.
- The parent is the one process a target's ``os.kill(os.getppid(), SIGKILL)`` reaches. The
  agent asked the kernel to be killed when its parent dies (``PR_SET_PDEATHSIG``), so killing
  the parent ends the agent too; the keeper, still alive, holds what they left and reports
  that the parent was killed. (Killing a forked agent's keeper, its parent, sends what the
  agent left to the fork server's keeper, a subreaper: the harness kills the agent's
  process group at once, and the rest with the fork server's tree.)
- Each reports the exit of its child on the agent's event pipe, as one line the harness
  reads and keeps out of the events: ``{"ev": "harness:exit", "who": "agent"|"parent",
  "status": N}`` (``N`` is an exit code, or minus a signal number), then closes its end, so
  the pipe still reaches its end once the agent and everything it started are gone.
- A keeper forked by a fork server is that server's child, not the harness's, so the
  harness cannot wait for it: each agent gives it an *exit fd* (a pipe's write end whose
  read end the harness holds). Once nothing of the agent's tree is left, it says ``0`` and a
  newline there, and goes on to fork its next agent when the harness has closed its end
  (``harness.forkserver``); a keeper killed says nothing, and the end of the pipe tells the
  harness.

``limit_resources`` sets the limits an agent runs under (before the target is imported):
processes, address space, file size, core files.

Stdlib-only and Python 3.9-compatible: this runs under the target's interpreter.
"""

import json
import os
import signal
import socket
import sys
from typing import Any, Dict, Optional, Tuple

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_libc: Any = None

#: The address space an agent may use. Generous, because every thread reserves its stack
#: (8 MiB) in it: at 2 GiB CPython starts about 130 threads and PyPy about 90; at 4 GiB over
#: 300. A target that allocates past it gets MemoryError instead of the machine's memory.
ADDRESS_SPACE = 4 << 30
#: The largest file an agent may write (its captured stdout and stderr included): past it a
#: write fails with EFBIG (the interpreters ignore SIGXFSZ) instead of filling the disk.
FILE_SIZE = 512 << 20
#: Processes (threads, for Linux) the agent's user may have beyond those it had when the
#: limit was set. Root is exempt from this limit; the harness counts the agent's processes
#: itself as well (``harness.host``).
PROCESS_HEADROOM = 1024


def prctl(option: int, value: int) -> bool:
    """Call Linux's ``prctl(option, value)``; whether it succeeded (False elsewhere)."""
    global _libc
    if not sys.platform.startswith("linux"):
        return False
    try:
        if _libc is None:
            import ctypes

            _libc = ctypes.CDLL(None, use_errno=True)
        return _libc.prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError, ImportError):
        return False


def set_subreaper(on: bool) -> bool:
    """Make orphaned descendants of this process its own to reap (or stop doing so)."""
    return prctl(_PR_SET_CHILD_SUBREAPER, 1 if on else 0)


def split(
    who: str,
    report_fd: int = -1,
    subreaper: bool = False,
    die_with_parent: bool = True,
    mirror: bool = False,
) -> None:
    """Fork; return in the child, and keep it from the parent, which never returns.

    The parent waits for the child (``who`` names it in the report on ``report_fd``, if
    given), reaps whatever else comes back to it (``subreaper``) and, once it has no child
    left, exits: as its child did with ``mirror``, else with status 0. The child is in a
    session of its own and, with ``die_with_parent``, is killed when its parent dies.
    """
    if subreaper:
        set_subreaper(True)  # the flag is the calling process's; a child does not inherit it
    child = fork_child(die_with_parent)
    if child == 0:
        return
    try:
        _keep(child, who, report_fd, mirror)
    finally:
        os._exit(70)  # only a defect of the keeper itself gets here


def fork_child(die_with_parent: bool = True) -> int:
    """Fork a child in a session of its own (killed when its parent dies, with
    ``die_with_parent``): 0 in the child, its pid in the parent."""
    parent = os.getpid()
    child = os.fork()
    if child == 0:
        os.setsid()
        if die_with_parent:
            prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() != parent:
                # The parent died before the kernel was asked: it is as if it had just died.
                os.kill(os.getpid(), signal.SIGKILL)
    return child


def send_report_fd(sock: int, fd: int, exit_fd: int = -1) -> None:
    """Give a keeper waiting on ``sock`` (its ``report_from``, see ``keep_child``) the fd to
    report on, and its exit fd (``exit_fd``, if given)."""
    with socket.socket(fileno=os.dup(sock)) as channel:
        socket.send_fds(channel, [b"fd"], [fd] if exit_fd < 0 else [fd, exit_fd])


def _keep(child: int, who: str, report_fd: int, mirror: bool) -> None:
    """The keeper's whole life: hold nothing of the child's, wait, report, exit."""
    hold_only(report_fd)
    ignore_signals()
    status, _exit_fd = keep_child(child, who, report_fd)
    if mirror and status is not None and status < 0:
        _die_of(-status)
    os._exit(status if mirror and status is not None else 0)


#: The signals a keeper ignores: only the harness ends one, with SIGKILL, and a Python
#: handler inherited from the server process would raise inside its loop instead.
KEEPER_IGNORES = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM")


def ignore_signals() -> Dict[int, Any]:
    """Ignore ``KEEPER_IGNORES``; the handlers they had (to give a child forked later)."""
    before = {}
    for name in KEEPER_IGNORES:
        number = getattr(signal, name, None)
        if number is None:
            continue
        try:
            before[number] = signal.getsignal(number)
            signal.signal(number, signal.SIG_IGN)
        except (OSError, ValueError):
            pass
    return before


def keep_child(
    child: int, who: str, report_fd: int = -1, report_from: int = -1
) -> Tuple[Optional[int], int]:
    """Wait for ``child`` and every orphan that comes back to us, and report the child's
    exit on ``report_fd``; the child's status (None if it was not ours to wait for) and the
    exit fd (-1 if none), still open, once no child is left.

    With ``report_from`` (a Unix socket) the fds come from there first (``send_report_fd``):
    a keeper forks its agent before the agent has an event pipe. The end of the socket
    without an fd means no report.
    """
    exit_fd = -1
    if report_from >= 0:
        try:
            with socket.socket(fileno=report_from) as channel:
                _data, fds, _flags, _address = socket.recv_fds(channel, 16, 2)
        except OSError:
            fds = []
        report_fd = fds[0] if fds else -1
        exit_fd = fds[1] if len(fds) > 1 else -1
    status: Optional[int] = None
    while True:
        try:
            pid, wait_status = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        if pid != child:
            continue  # an orphan that came back to us, now reaped
        status = os.waitstatus_to_exitcode(wait_status)
        if report_fd >= 0:
            line = json.dumps({"ev": "harness:exit", "who": who, "status": status})
            try:
                os.write(report_fd, (line + "\n").encode())
            except OSError:
                pass  # the harness has gone
            os.close(report_fd)
            report_fd = -1
    if report_fd >= 0:
        os.close(report_fd)
    return status, exit_fd


def hold_only(*keep: int) -> None:
    """Close every fd but those in ``keep``; 0, 1 and 2 become /dev/null.

    The keeper must not hold the agent's stdin (the harness's writes would not fail once
    the agent is gone), nor its output, nor a socket the target opened.
    """
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        if fd != null:
            os.dup2(null, fd)
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        fds = list(range(3, 1024))
    for fd in fds:
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def _die_of(signum: int) -> None:
    """End this process by ``signum``, as its child ended (falls back to 128 + signum)."""
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file of a mirror
    except (ImportError, OSError, ValueError):
        pass
    try:
        signal.signal(signum, signal.SIG_DFL)
    except (OSError, ValueError):
        pass  # SIGKILL and SIGSTOP cannot be changed, nor need to be
    os.kill(os.getpid(), signum)
    os._exit(128 + signum)


# --- limits ------------------------------------------------------------------------------


def limit_resources() -> None:
    """Set the limits an agent and everything it starts run under (never raising them)."""
    try:
        import resource
    except ImportError:
        return
    wanted = [
        ("RLIMIT_AS", ADDRESS_SPACE),
        ("RLIMIT_FSIZE", FILE_SIZE),
        ("RLIMIT_CORE", 0),
    ]
    tasks = _tasks_of_user()
    if tasks is not None:
        wanted.append(("RLIMIT_NPROC", tasks + PROCESS_HEADROOM))
    for name, value in wanted:
        which = getattr(resource, name, None)
        if which is None:
            continue
        try:
            soft, hard = resource.getrlimit(which)
            if hard != resource.RLIM_INFINITY:
                value = min(value, hard)
            if soft == resource.RLIM_INFINITY or soft > value:
                resource.setrlimit(which, (value, hard))
        except (OSError, ValueError):
            pass


def _tasks_of_user() -> Optional[int]:
    """How many threads this process's real user runs now (what RLIMIT_NPROC counts)."""
    uid = os.getuid()
    try:
        names = os.listdir("/proc")
    except OSError:
        return None
    count = 0
    for name in names:
        if not name.isdigit():
            continue
        try:
            if os.stat("/proc/" + name).st_uid != uid:
                continue
            with open("/proc/%s/stat" % name, "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
            count += int(fields[17])  # num_threads
        except (OSError, IndexError, ValueError):
            continue
    return count
