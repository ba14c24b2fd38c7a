"""The fork server: a pre-started server process that forks fresh agents for one target.

Started by ``harness.forkservers`` once per (interpreter, module map) as
``python -m harness.agent --fork-server FD``, so that it is the agent program itself (its
``__main__``, its ``sys.argv[0]``); FD is its end of a ``SOCK_SEQPACKET`` socket pair with the
harness. Every message either way is one JSON object.

1. The harness sends ``{"modules": {...}}``, the target's substitutions. The server does what
   every agent of the target does before its scenario matters (``harness.agent``'s
   ``prepare_process``; then, after telling ``{"importing": true}``, ``install_target``, in
   the agent's order), pre-imports modules agents commonly import (``PREIMPORTS``), checks
   that all this left nothing a fork would copy wrongly (threads, fds, children, signal
   handlers, replaced stdio, output written) and answers ``{"ok": true, "pid": N}``, or
   ``{"refused": why}`` (this interpreter or target cannot be forked from; spawn its agents)
   or ``{"failed": "Type: message", "traceback": ...}`` (the target's import raised), and
   exits after either of the last two.
2. An agent is forked ahead of its request by a keeper (``harness.keeper``), the server's
   child and the agent's parent, and waits. Each request is
   ``{"setup": ..., "env": {...}, "cwd": ...}`` (the agent's setup, its whole environment
   and its working directory) with five fds: the agent's stdin (read end), stdout, stderr
   and event pipe (write end), and the keeper's exit fd (write end). It goes to a waiting
   agent, which gives the event pipe and the exit fd to its keeper, and prepares. The
   server answers ``{"pid": AGENT, "keeper": KEEPER}`` or ``{"refused": why}`` (with
   ``"keeper"`` when there is one whose tree the harness must kill). The keeper stays the
   server's child (the server ignores SIGCHLD, so the kernel reaps it), and kills its tree
   by pid like a spawned agent's. Once the agent and everything it started are gone, the
   keeper says ``0`` and a newline on the exit fd (a keeper killed says nothing: its end
   is all the harness reads), waits for the harness to close its end of it, forks its next
   agent and tells the server that it stands by again: a keeper serves agent after agent,
   one at a time, and the server forks a new one only when none stands by. That saves
   each agent about 3 ms of CPU (a keeper's fork and exit, and the first steps of a
   process forked from this server): a catalog run took about a fifth more CPU when each
   agent had a keeper of its own.
   A spawned agent has a decoy parent under its keeper, so that a target that kills its
   parent leaves the keeper to hold what the agent started. A forked one has none: each
   fork of this server costs 2 ms of CPU (its page tables, copied pages, its exit), and a
   third process per agent cost a catalog run 13 % of its CPU. A target that kills a forked
   agent's parent kills its keeper: the harness sees the exit fd end without a word while
   it was killing nothing, which is that incident, and kills and reaps what the agent's
   process group left, which comes to the server's keeper. A daemon it had started (a
   process in a session of its own) comes there too and is killed with the server's tree
   when the harness closes the server, at the end of the run.

Like a spawned agent, the server has a keeper of its own, the process the harness started
(a subreaper: agents' keepers come to it should the server die): a target whose import
kills its parent kills that keeper, which the server sees and reports as the target's
failure. During
the import the server is a child subreaper, so that a daemon the import leaves shows as a
child (and the server refuses); after a refusal or a failure it waits for the harness to
kill it with whatever the import left.

The agent, in the grandchild, is made what a spawned agent is: a session of its
own (and an agent killed with its parent); its fds
on 0, 1, 2 and on the event fd number the setup names (the harness's number, which is what a
spawned agent inherits), every other fd closed; stdio objects made anew on them; the working
directory, environment, ``sys.argv`` and ``sys.path[0]`` of a spawned agent; ``random``
reseeded; then the agent's own code path after module installation (``harness.agent.serve``).

Stdlib-only and Python 3.9-compatible; under an interpreter without ``os.fork`` or
``socket.recv_fds`` the server refuses and the harness spawns agents as before.
"""

import importlib
import io
import json
import os
import select
import signal
import socket
import sys
import threading
import time
import traceback
from typing import Any, Dict, List, Optional, Tuple

from harness.keeper import (
    fork_child,
    hold_only,
    ignore_signals,
    keep_child,
    send_report_fd,
    set_subreaper,
    split,
)
from harness.precompiled import precompile

#: Modules the agents of most scenarios import after the target's: importing them once here
#: saves each agent the time. Stdlib modules (and the handlers' package, which imports no
#: handler) only, because their import does nothing that depends on the process or the
#: scenario; a handler module is not, since its import may change the target's modules.
PREIMPORTS = (
    "socketserver",
    "http.server",
    "copy",
    "hashlib",
    "random",
    "string",
    "struct",
    "weakref",
    # HTTPServer.server_bind calls socket.getfqdn, which looks up the idna codec (and with
    # it imports stringprep and unicodedata): 1.6 ms of every HTTP agent.
    "encodings.idna",
    "scenarios.handlers",
    # What the stdlib's users of the targets (the dependents family) import: heavy (pydoc,
    # expat, pickle), and bound to the target's classes exactly as in an agent, since the
    # target is imported first.
    "datetime",
    "logging.config",
    "logging.handlers",
    "pickle",
    "urllib.parse",
    "wsgiref.simple_server",
    "xmlrpc.client",
    "xmlrpc.server",
)

#: Environment variables read when an interpreter (or the C library under it) starts, or
#: cached by the modules a fork server has imported: a fork cannot give an agent other values.
STARTUP_PREFIXES = ("PYTHON", "PYPY", "LC_", "LD_", "MALLOC_")
STARTUP_NAMES = frozenset(
    ("LANG", "LANGUAGE", "TZ", "HOME", "TMPDIR", "TEMP", "TMP", "GLIBC_TUNABLES")
)

#: The fds a request carries, in order.
REQUEST_FDS = ("stdin", "stdout", "stderr", "events", "exit")
_MAX_MESSAGE = 1 << 20
#: Keepers tried for one request before the server gives up (each one found gone).
_KEEPER_ATTEMPTS = 3


def read_at_start(name: str) -> bool:
    """Whether an environment variable is read at interpreter start (forking cannot set it)."""
    return name in STARTUP_NAMES or name.startswith(STARTUP_PREFIXES)


def unforkable(
    setup: Dict[str, Any], env: Dict[str, str], server_env: Dict[str, str]
) -> Optional[str]:
    """Why an agent with ``setup`` and ``env`` cannot come from a fork server started with
    ``server_env`` (None when it can)."""
    spec = setup.get("spec") or {}
    if not setup.get("pin_mimetypes", True) or not spec.get("pin_mimetypes", True):
        return "the agent does not pin mimetypes (its fork server does)"
    differ = sorted(
        name
        for name in set(env) | set(server_env)
        if env.get(name) != server_env.get(name) and read_at_start(name)
    )
    if differ:
        return "the interpreter reads %s at start" % ", ".join(differ)
    return None


# --- the server ------------------------------------------------------------------------


def serve_forks(fd: int) -> None:
    """Run as a fork server on the socket ``fd``; exits when the harness closes its end."""
    # This process stays as the server's keeper (it mirrors the server's exit status); the
    # server outlives it if the target kills it, to report that. A subreaper: what an
    # agent whose keeper the target killed leaves (a daemon) comes to it, in the server's
    # tree, which the harness kills when it closes the server.
    split("fork server", die_with_parent=False, mirror=True, subreaper=True)
    sock = socket.socket(fileno=fd)
    # The agents must see the argv of a spawned agent, and so must the target's import.
    del sys.argv[1:]
    if hasattr(sys, "orig_argv"):
        sys.orig_argv = sys.orig_argv[: len(sys.orig_argv) - 2]
    modules: Dict[str, str] = {}
    try:
        modules = json.loads(sock.recv(_MAX_MESSAGE) or b"{}").get("modules") or {}
        hello = _start(sock, modules)
    except BaseException as exc:  # our own failure: the target's is caught in _start
        traceback.print_exc()
        hello = {"refused": "the fork server failed: %s: %s" % (type(exc).__name__, exc)}
    _reply(sock, hello)
    if "ok" not in hello:
        # What the import left (daemons, come back to us) stays in our tree until the
        # harness kills it; or we go when it closes its end.
        _flush_stdio()
        try:
            while sock.recv(_MAX_MESSAGE):
                pass
        finally:
            os._exit(0)
    server = _Server(sock, dict(hello.pop("env")), modules)
    server.run()


def _start(sock: socket.socket, modules: Dict[str, str]) -> Dict[str, Any]:
    """Prepare the process as every agent of the target; the hello message.

    ``{"importing": true, "pid": N}`` goes out first: whatever happens after it (an exit, a
    hang) is the target's import, and the harness records it as the target's start failure.
    """
    if not hasattr(os, "fork") or not hasattr(socket, "recv_fds"):
        return {"refused": "this interpreter has no os.fork or socket.recv_fds"}
    from harness import agent

    server_env = dict(os.environ)
    agent.prepare_process()
    parent = os.getppid()
    set_subreaper(True)  # a daemon the import leaves comes back to us: a child we can see
    before = _process_state()
    _reply(sock, {"importing": True, "pid": os.getpid()})
    try:
        agent.install_target(modules)
    except BaseException as exc:  # the target may raise anything, SystemExit included
        return {
            "failed": "%s: %s" % (type(exc).__name__, str(exc)[:300]),
            "traceback": traceback.format_exc()[-2000:],
        }
    for name in PREIMPORTS:
        try:
            importlib.import_module(name)
        except Exception:
            pass  # an agent that needs it meets the same error when it imports it
    if "scenarios.handlers" in sys.modules:
        # Compiled, not imported: an agent imports its handler after the target's modules.
        precompile("scenarios.handlers")
    if _parent_killed(parent):
        return {"failed": "the target's import killed its parent process (the server's keeper)"}
    _freeze_heap()
    changes = _compare(before, _process_state())
    if changes:
        return {"refused": "importing the target " + "; ".join(changes)}
    # From here on what the server's children orphan (an agent's keeper killed with its
    # tree) goes on to the harness, which reaps what it kills.
    set_subreaper(False)
    return {"ok": True, "pid": os.getpid(), "env": server_env}


def _freeze_heap() -> None:
    """Collect the import's garbage, then exempt every object left from later collections.

    A full collection in an agent would otherwise write to the header of every object the
    server made, and each page written is copied from the server's: measured, a forked
    child's full collection copied 5.2 MB (0.16 MB with the heap frozen), for nothing, as
    these objects live as long as the agent. Garbage is collected first, here, so that what
    a spawned agent's collector would find (and finalize) is not kept forever instead. The
    price: ``gc.get_objects()`` in an agent leaves out what the server imported (what
    the agent makes is listed as usual). CPython 3.7 and later; elsewhere nothing to do.
    """
    import gc

    if hasattr(gc, "freeze"):
        gc.collect()
        gc.freeze()


def _parent_killed(parent: int) -> bool:
    """Whether our parent has died or is dying: a kill is queued at once, but the process
    ends only when it next runs, so a kill that has not landed yet counts too."""
    if os.getppid() != parent:
        return True
    try:
        with open("/proc/%d/status" % parent) as handle:
            status = handle.read()
        with open("/proc/%d/stat" % parent, "rb") as handle:
            flags = int(handle.read().rsplit(b")", 1)[1].split()[6])
    except (OSError, ValueError, IndexError):
        return False  # gone meanwhile (then getppid says so next time), or no /proc
    if flags & 0x4:  # PF_EXITING
        return True
    kill = 1 << (signal.SIGKILL - 1)
    for line in status.splitlines():
        if line.startswith(("SigPnd:", "ShdPnd:")) and int(line.split()[1], 16) & kill:
            return True
    return False


class _Server:
    """The request loop: one agent per request, answered with its pid and its keeper's.

    Each agent comes from a keeper standing by (``_stand_by``), which forked it ahead of its
    request: a request wakes only the agent. A keeper serves agent after agent, one at a
    time: once everything its agent started is gone and the harness has let go of it, it
    forks the next and says its pid again (``_keeper_rounds``). Keepers that stand by are
    ``ready``; those whose agents run are ``busy``, until they say their pid again or their
    socket ends (killed). A new keeper is forked only when none is ready.
    """

    def __init__(self, sock: socket.socket, env: Dict[str, str], modules: Dict[str, str]):
        self.sock = sock
        self.env = env
        self.modules = modules
        self.start_dir = os.getcwd()
        #: (our end of its socket, its pid) of each keeper whose agent waits for a request
        self.ready: List[Tuple[socket.socket, int]] = []
        #: our end of the socket of each keeper whose agent runs, by fd
        self.busy: Dict[int, socket.socket] = {}

    def run(self) -> None:
        """Serve requests until the harness closes its end, then exit."""
        # The keepers are our children, and nobody waits for them: the kernel reaps them
        # (a keeper sets SIGCHLD back to the default for itself and its agent).
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)
        while True:
            if not self.ready:
                self._stand_by()
            waiting = [self.sock, *self.busy.values()]
            try:
                readable = select.select(waiting, [], [])[0]
            except (OSError, ValueError):
                break
            for keeper in readable:
                if keeper is not self.sock:
                    self._back(keeper)
            if self.sock not in readable:
                continue
            try:
                data, fds, flags, _address = socket.recv_fds(self.sock, _MAX_MESSAGE, 8)
            except OSError:
                break
            if not data and not fds:
                break  # the harness is gone
            try:
                reply = self._handle(data, fds, flags)
            except Exception as exc:
                reply = {"refused": "%s: %s" % (type(exc).__name__, exc)}
            finally:
                for fd in fds:
                    _close(fd)
            try:
                _reply(self.sock, reply)
            except OSError:
                break
        _flush_stdio()
        os._exit(0)

    def _back(self, sock: socket.socket) -> None:
        """A busy keeper spoke: its pid (its next agent stands by), or the end (gone)."""
        del self.busy[sock.fileno()]
        self._ready_when_it_says(sock)

    def _ready_when_it_says(self, sock: socket.socket) -> None:
        """Read what a keeper says on ``sock``: its pid (its agent stands by: ready), or
        anything else (why it failed, or the end: it is gone)."""
        try:
            said = sock.recv(64)
        except OSError:
            said = b""
        if said.isdigit():
            self.ready.append((sock, int(said)))
        else:
            sock.close()

    def _handle(self, data: bytes, fds: List[int], flags: int) -> Dict[str, Any]:
        if flags & (getattr(socket, "MSG_TRUNC", 0) | getattr(socket, "MSG_CTRUNC", 0)):
            return {"refused": "the request was truncated"}
        if len(fds) != len(REQUEST_FDS):
            return {"refused": "expected %d fds, got %d" % (len(REQUEST_FDS), len(fds))}
        request = json.loads(data)
        setup = request["setup"]
        if (setup.get("modules") or {}) != self.modules:
            return {"refused": "the setup names other modules than this server's"}
        if int(setup["event_fd"]) <= 2:
            return {"refused": "the event fd would be one of 0, 1, 2"}
        why = unforkable(setup, request["env"], self.env)
        if why:
            return {"refused": why}
        return self._fork(data, fds)

    def _fork(self, request: bytes, fds: List[int]) -> Dict[str, Any]:
        """Hand the request (as received) to an agent standing by; the reply once it is
        prepared."""
        for _attempt in range(_KEEPER_ATTEMPTS):
            if not self.ready:
                self._stand_by()
            if not self.ready:
                return {"refused": "the keeper could not be forked", "final": True}
            sock, keeper = self.ready.pop()
            try:
                socket.send_fds(sock, [request], fds)
            except OSError:
                sock.close()  # a keeper gone meanwhile (killed): the next one
                continue
            try:
                said = sock.recv(4096).decode("utf-8", "replace")
            except OSError as exc:
                said = "the agent failed: %s" % (exc,)
            break
        else:
            return {"refused": "each keeper tried was gone", "final": True}
        if said.startswith("ok ") and said[3:].isdigit():
            self.busy[sock.fileno()] = sock
            return {"keeper": keeper, "pid": int(said[3:])}
        sock.close()
        # The same preparation would fail for every agent: the harness stops asking, and
        # kills what there is of this one (the keeper is our child).
        return {
            "refused": "a forked agent failed to prepare: " + said,
            "final": True,
            "keeper": keeper,
        }

    def _stand_by(self) -> None:
        """Fork a keeper, which forks the next agent ahead of its request; ready once it
        says its pid (nothing is ready if it could not be forked or failed).

        The keeper is our child, in our tree (killed with it) until its agent is handed out.
        """
        _flush_stdio()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            keeper = os.fork()
        except OSError:
            ours.close()
            theirs.close()
            return
        if keeper == 0:
            # Nothing may return from here into the server's loop: this process is a copy.
            try:
                ours.close()
                self._keeper_rounds(theirs)
            finally:
                os._exit(0)
        theirs.close()
        self._ready_when_it_says(ours)

    def _keeper_rounds(self, sock: socket.socket) -> None:
        """In a keeper: fork an agent, which waits on ``sock`` for its request; say our pid
        there; keep the agent (``harness.keeper.keep_child``), and once everything it
        started is gone and the harness has let go of its exit fd, fork the next. Never
        returns; ends with the server (the end of ``sock``).

        The keeper is the parent of its agents (no decoy: a fork of this server costs 2 ms
        of CPU, see the module's docstring), a child subreaper, and holds nothing of
        theirs: its fds 0-2 are /dev/null, and each agent gives it only its event pipe and
        its exit fd.
        """
        try:
            # Waited for by the keeper (and a spawned agent has the default too).
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os.setsid()  # out of the server's process group, which the harness may kill
            # The harness must see the end of the server's socket when the server dies.
            _close(self.sock.detach())
            hold_only(sock.fileno())
            set_subreaper(True)
            handlers = ignore_signals()
        except BaseException as exc:
            try:
                sock.send(("%s: %s" % (type(exc).__name__, exc)).encode()[:2000])
            finally:
                os._exit(1)
        while True:
            to_keeper, keeper_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            agent = fork_child()
            if agent == 0:
                keeper_end.close()
                self._stand_by_as_agent(sock, to_keeper, handlers)
            to_keeper.close()
            try:
                sock.send(b"%d" % os.getpid())
            except OSError:
                os._exit(0)  # the server has gone; the agent dies with us
            _status, exit_fd = keep_child(agent, "agent", report_from=keeper_end.detach())
            if exit_fd < 0:
                os._exit(0)  # the agent never had a request: the server has gone
            try:
                os.write(exit_fd, b"0\n")  # its whole tree has ended (harness.forkservers)
            except OSError:
                pass  # the harness has let go of it already
            if not _released(exit_fd, sock):
                os._exit(0)
            os.close(exit_fd)

    def _stand_by_as_agent(
        self, sock: socket.socket, to_keeper: socket.socket, handlers: Dict[int, Any]
    ) -> None:
        """In an agent: wait for the request, give the event pipe and the exit fd to the
        keeper, become the agent. Never returns."""
        try:
            for number, handler in handlers.items():
                signal.signal(number, handler)  # the server's, which the keeper ignores
            data, fds, _flags, _address = socket.recv_fds(sock, _MAX_MESSAGE, 8)
            if not data:
                os._exit(0)
            request = json.loads(data)
            send_report_fd(to_keeper.fileno(), fds[3], fds[4])
            to_keeper.close()
            _close(fds.pop(4))  # the keeper's alone: it tells the harness the tree has ended
        except BaseException as exc:
            try:
                sock.send(("%s: %s" % (type(exc).__name__, exc)).encode()[:2000])
            finally:
                os._exit(1)
        self._become_agent(request, fds, sock.fileno())

    def _become_agent(self, request: Dict[str, Any], fds: List[int], ready: int) -> None:
        """In the agent: make this process a fresh agent and run it; never returns.

        Says ``ok PID`` on ``ready`` once prepared (from then on it is the agent, whatever
        the target does), or why it could not be prepared, and waits to be killed with its
        keeper by the harness (a report of its exit would reach the event pipe, which the
        harness then gives to a spawned agent).
        """
        try:
            setup = request["setup"]
            self.sock.detach()  # its fd is closed below; the object must not close it again
            ready = _place_fds(fds, int(setup["event_fd"]), ready)
            _rebuild_stdio()
            os.chdir(request["cwd"])
            _replace_environment(request["env"])
            if sys.path and sys.path[0] == self.start_dir:
                sys.path[0] = os.getcwd()  # what ``-m`` puts there: the start directory
            # Directory listings cached by the server's imports may be stale by now (a
            # module file written since): a new process would list them afresh.
            importlib.invalidate_caches()
            if "random" in sys.modules:
                sys.modules["random"].seed()  # CPython reseeds at fork; other VMs may not
            from harness import agent

            agent.begin(setup)
        except BaseException as exc:
            try:
                os.write(ready, ("%s: %s" % (type(exc).__name__, exc)).encode()[:2000])
                _close(ready)
                time.sleep(60)  # killed long before, with its keeper
            finally:
                os._exit(1)
        os.write(ready, b"ok %d" % os.getpid())
        _close(ready)
        try:
            agent.serve(setup)  # exits the process
        except BaseException:
            # Only a defect of the agent itself gets here; a spawned agent would print the
            # traceback and exit 1 too.
            sys.excepthook(*sys.exc_info())
        _flush_stdio()
        os._exit(1)


def _released(exit_fd: int, sock: socket.socket) -> bool:
    """Wait until the harness closes its end of ``exit_fd`` (True) or the server has gone
    (False).

    The harness reads the end of a session on the exit fd, and closes it once it is done
    with the session (``ForkedProcess.release``): the next agent comes only then, so that
    nothing the harness still looks at (the keeper's tree, for strays) has it in it.
    """
    poller = select.poll()
    poller.register(exit_fd, 0)  # POLLERR once the read end is closed
    poller.register(sock.fileno(), 0)  # POLLHUP once the server has gone
    while True:
        events = dict(poller.poll())
        if sock.fileno() in events:
            return False
        if exit_fd in events:
            return True


def _read_all(fd: int) -> bytes:
    """Everything from ``fd`` until EOF."""
    chunks = []
    while True:
        chunk = os.read(fd, 4096)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


# --- process state -----------------------------------------------------------------------


def _process_state() -> Dict[str, Any]:
    """What a fork would copy and a fresh process would not have: threads, fds, children..."""
    state: Dict[str, Any] = {
        "threads": threading.active_count(),
        "fds": sorted(_open_fds()),
        "children": _has_children(),
        "signals": _signal_handlers(),
        "stdio": [id(s) for s in (sys.stdin, sys.stdout, sys.stderr)],
        "output": _output_size(),
    }
    if os.path.isdir("/proc/self/task"):
        state["native threads"] = len(os.listdir("/proc/self/task"))
    return state


def _compare(before: Dict[str, Any], after: Dict[str, Any]) -> List[str]:
    """What changed between two process states, in words."""
    found = []
    for key in ("threads", "native threads"):
        if before.get(key) != after.get(key):
            found.append("changed the %s (%s -> %s)" % (key, before.get(key), after.get(key)))
    opened = sorted(set(after["fds"]) - set(before["fds"]))
    closed = sorted(set(before["fds"]) - set(after["fds"]))
    if opened:
        found.append("left fds open %s" % (opened,))
    if closed:
        found.append("closed fds %s" % (closed,))
    if after["children"] and not before["children"]:
        found.append("started child processes")
    signals = sorted(
        name for name in after["signals"] if after["signals"][name] != before["signals"].get(name)
    )
    if signals:
        found.append("changed signal handlers (%s)" % ", ".join(signals))
    if after["stdio"] != before["stdio"]:
        found.append("replaced sys.stdin, sys.stdout or sys.stderr")
    if after["output"] != before["output"]:
        # A spawned agent's import writes that into the agent's own, compared, output.
        found.append("wrote to stdout or stderr")
    return found


def _output_size() -> int:
    """How much has been written to stdout and stderr (files, as the harness makes them)."""
    _flush_stdio()
    size = 0
    for fd in (1, 2):
        try:
            size += os.fstat(fd).st_size
        except OSError:
            pass
    return size


def _open_fds() -> List[int]:
    """This process's open fds (the directory listing's own fd left out)."""
    for directory in ("/proc/self/fd", "/dev/fd"):
        if os.path.isdir(directory):
            candidates = [int(name) for name in os.listdir(directory) if name.isdigit()]
            break
    else:
        candidates = list(range(256))
    found = []
    for fd in candidates:
        try:
            os.fstat(fd)
        except OSError:
            continue
        found.append(fd)
    return found


def _has_children() -> bool:
    """Whether this process has a child, running or not yet reaped."""
    if not hasattr(os, "waitid"):
        return False
    try:
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    return True


def _signal_handlers() -> Dict[str, str]:
    handlers = {}
    for number in signal.valid_signals():
        try:
            handler = signal.getsignal(number)
        except (OSError, ValueError):
            continue
        handlers[str(number)] = repr(handler)
    try:
        old = signal.set_wakeup_fd(-1)
    except ValueError:
        old = -1  # not the main thread: nothing to read
    if old != -1:
        signal.set_wakeup_fd(old)
    handlers["wakeup fd"] = str(old)
    return handlers


# --- becoming an agent ---------------------------------------------------------------------


def _place_fds(received: List[int], event_fd: int, keep_open: int) -> int:
    """Put the received fds on 0, 1, 2 and ``event_fd``; close every other fd but
    ``keep_open``, which moves out of their way: its new number."""
    import fcntl

    wanted = [0, 1, 2, event_fd]
    # First out of the way of every number they are going to, then onto those numbers.
    floor = max([*wanted, *received, keep_open]) + 1
    moved = [fcntl.fcntl(fd, fcntl.F_DUPFD, floor) for fd in [*received, keep_open]]
    for fd, number in zip(moved, wanted):
        os.dup2(fd, number)  # inheritable, as a spawned agent's are
    keep = {*wanted, moved[-1]}
    for fd in _open_fds():
        if fd not in keep:
            _close(fd)
    return moved[-1]


def _rebuild_stdio() -> None:
    """New ``sys.stdin``/``stdout``/``stderr`` on fds 0-2, made as the interpreter made its own.

    The server's own objects were made for its own files (what they cached at start, such as
    whether the file is seekable, is theirs). Their settings (encoding, errors, buffering)
    came from the environment, the command line and the interpreter, the same as a spawned
    agent's, and neither process has a terminal: the new objects copy them.
    """
    streams = []
    for fd, old in ((0, sys.__stdin__), (1, sys.__stdout__), (2, sys.__stderr__)):
        writing = fd != 0
        unbuffered = isinstance(getattr(old, "buffer", None), io.FileIO)
        # Never closed: like the interpreter's own, it lives as long as the process.
        binary = open(  # noqa: SIM115
            fd, "wb" if writing else "rb", 0 if unbuffered else -1, closefd=False
        )
        raw = binary if isinstance(binary, io.FileIO) else binary.raw
        raw.name = getattr(old, "name", fd)  # "<stdin>"..., as the interpreter names them
        text = io.TextIOWrapper(
            binary,
            encoding=getattr(old, "encoding", None),
            errors=getattr(old, "errors", None),
            newline="\n",
            line_buffering=getattr(old, "line_buffering", False),
            write_through=getattr(old, "write_through", False),
        )
        text.mode = "w" if writing else "r"
        streams.append(text)
    sys.stdin, sys.stdout, sys.stderr = streams
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = streams


def _replace_environment(env: Dict[str, str]) -> None:
    """Make ``os.environ`` (and the C environment under it) exactly ``env``."""
    for name in list(os.environ):
        if name not in env:
            del os.environ[name]
    for name, value in env.items():
        if os.environ.get(name) != value:
            os.environ[name] = value


# --- small helpers -------------------------------------------------------------------------


def _reply(sock: socket.socket, message: Dict[str, Any]) -> None:
    sock.send(json.dumps(message).encode())


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def _flush_stdio() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
