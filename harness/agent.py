"""The server process: builds one server from a spec and reports what it does.

Run as ``python -m harness.agent`` by ``harness.host``, or forked from a fork server
(``harness.forkserver``, which runs as ``python -m harness.agent --fork-server FD`` and shares
``main``'s pieces: ``begin``, ``prepare_process``, ``install_target``, ``serve``). A spawned
agent reads one JSON line from stdin, the *setup* (a forked one gets it with its request)::

    {"modules": {"socketserver": "implementation.socketserver"},   # substitutions, may be {}
     "spec": {...},                                                # a ServerSpec as a dict
     "tmpdir": "/tmp/ssh-...", "event_fd": 3}

then forks twice (``harness.keeper``: the process the harness started stays as the agent's
keeper, the next as its decoy parent), sets its limits (``harness.keeper.limit_resources``),
installs the target's modules under the stdlib names before anything else imports them,
builds the server (instrumented so that every hook reports an event), writes a ``ready``
event and then executes *commands*, one JSON line each on stdin, until ``exit`` or EOF.

Events are JSON lines on ``event_fd``, a pipe of their own (the handler's stdout and stderr
are part of the observation and stay untouched). Each write is one line shorter than
PIPE_BUF, so lines from threads and forked children never interleave.

Stdlib-only and Python 3.9-compatible: this runs under the interpreter of the target
(another CPython, PyPy).
"""

import importlib
import json
import os
import sys
import threading
import time
import traceback
from typing import Any, Callable, Dict, Optional

from harness.keeper import limit_resources, split
from harness.substitution import SUBSTITUTABLE, install_module

_event_fd = -1
_agent_pid = os.getpid()
_MAX_EVENT = 3500  # below PIPE_BUF (4096) so one os.write is atomic


def emit(ev: str, **fields: Any) -> None:
    """Report one event to the harness. Safe from any thread and from forked children.

    Handler modules may call this to report facts of their own (``emit("note", text=...)``).
    """
    if _event_fd < 0:
        return
    fields["ev"] = ev
    fields["ctx"] = _context()
    fields["t"] = round(time.monotonic(), 6)
    line = json.dumps(fields, default=repr, sort_keys=True)
    if len(line) > _MAX_EVENT:
        line = json.dumps({"ev": ev, "ctx": fields["ctx"], "truncated": line[:1000]})
    try:
        os.write(_event_fd, (line + "\n").encode("utf-8", "backslashreplace"))
    except OSError:
        pass  # the harness has gone; nothing left to report to


def _context() -> str:
    """Where the caller runs: the agent's main thread, another thread, or a forked child."""
    if os.getpid() != _agent_pid:
        return "child"
    if threading.current_thread() is threading.main_thread():
        return "main"
    name = threading.current_thread().name
    return "serve" if name.startswith("harness-") else "thread"


def _exc_fields(exc: BaseException) -> Dict[str, Any]:
    return {"type": type(exc).__name__, "message": str(exc)[:300]}


def resolve(path: str, default_module: Optional[str] = None) -> Any:
    """Find an object from ``module:attr`` (or a bare ``attr`` in ``default_module``)."""
    if ":" in path:
        module_name, attr = path.split(":", 1)
    elif default_module is not None:
        module_name, attr = default_module, path
    else:
        raise ValueError(f"expected MODULE:NAME, got {path!r}")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            if obj is not sys.modules.get(module_name):
                raise
            # Named as asked for: a substituted module's own __name__ (say,
            # implementation.socketserver) is not what the scenario or the user wrote.
            raise AttributeError("module %r has no attribute %r" % (module_name, part)) from None
    return obj


def _describe(value: Any) -> Any:
    """A JSON-friendly rendering of a value returned by a command."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, bytes):
        return {"bytes": value.decode("latin-1")}
    if isinstance(value, (list, tuple)):
        return [_describe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _describe(v) for k, v in value.items()}
    return repr(value)


# --- instrumentation -------------------------------------------------------------------


def _client_kind(addr: Any) -> str:
    """The client address with what varies from run to run (ports, paths) left out."""
    if isinstance(addr, tuple) and addr:
        return "ip:%s" % (addr[0],)
    if isinstance(addr, (str, bytes)):
        return "unix:%s" % ("named" if addr else "unnamed")
    return type(addr).__name__


def instrument_server(cls: type) -> type:
    """A subclass of ``cls`` whose hooks report events, then do what ``cls`` does."""

    def report(name: str, extra: Callable[..., Dict[str, Any]] = lambda *a: {}) -> Callable:
        original = getattr(cls, name, None)
        if original is None:
            return None  # type: ignore[return-value]

        def hook(self: Any, *args: Any, **kwargs: Any) -> Any:
            emit(name, **extra(*args))
            try:
                result = original(self, *args, **kwargs)
            except BaseException as exc:
                emit(name + ":raised", **_exc_fields(exc))
                raise
            if name == "verify_request":
                emit("verify_request:returned", value=bool(result))
            return result

        hook.__name__ = name
        return hook

    def error_info(*args: Any) -> Dict[str, Any]:
        exc = sys.exc_info()[1]
        info = {"client": _client_kind(args[1]) if len(args) > 1 else None}
        if exc is not None:
            info.update(_exc_fields(exc))
        return info

    namespace: Dict[str, Any] = {}
    for name, extra in (
        ("verify_request", lambda *a: {"client": _client_kind(a[1]) if len(a) > 1 else None}),
        ("process_request", lambda *a: {}),
        ("finish_request", lambda *a: {}),
        ("handle_error", error_info),
        ("handle_timeout", lambda *a: {}),
        ("shutdown_request", lambda *a: {}),
        ("close_request", lambda *a: {}),
        ("server_close", lambda *a: {}),
    ):
        hook = report(name, extra)
        if hook is not None:
            namespace[name] = hook
    return type(cls.__name__, (cls,), namespace)


def instrument_handler(cls: type) -> type:
    """A subclass of ``cls`` whose setup/handle/finish report begin and end events."""

    def wrap(name: str) -> Callable:
        original = getattr(cls, name)

        def hook(self: Any) -> Any:
            emit(name, client=_client_kind(getattr(self, "client_address", None)))
            try:
                result = original(self)
            except BaseException as exc:
                emit(name + ":raised", **_exc_fields(exc))
                raise
            emit(name + ":returned")
            return result

        hook.__name__ = name
        return hook

    namespace = {name: wrap(name) for name in ("setup", "handle", "finish") if hasattr(cls, name)}
    return type(cls.__name__, (cls,), namespace)


# --- building the server ---------------------------------------------------------------


def server_address(spec: Dict[str, Any], tmpdir: str) -> Any:
    """The address to bind, from the spec's ``family``."""
    family = spec.get("family", "inet")
    if "address" in spec and spec["address"] is not None:
        address = spec["address"]
        return tuple(address) if isinstance(address, list) else address
    if family == "inet":
        return ("127.0.0.1", 0)
    if family == "inet6":
        return ("::1", 0)
    if family == "unix":
        return os.path.join(tmpdir, "server.sock")
    if family == "unix-abstract":
        return "\0harness-%d-%s" % (os.getpid(), os.path.basename(tmpdir))
    raise ValueError(f"unknown family {family!r}")


def build_server(spec: Dict[str, Any], tmpdir: str) -> Any:
    """Construct the server the spec describes; exceptions propagate to the caller."""
    server_cls = resolve(spec["server"], default_module="socketserver")
    handler_cls = resolve(spec["handler"])
    if spec.get("handler_attrs"):
        handler_cls = type(handler_cls.__name__, (handler_cls,), dict(spec["handler_attrs"]))
    if spec.get("server_attrs"):
        server_cls = type(server_cls.__name__, (server_cls,), dict(spec["server_attrs"]))
    if spec.get("instrument", True):
        handler_cls = instrument_handler(handler_cls)
        server_cls = instrument_server(server_cls)
    kwargs = dict(spec.get("server_kwargs") or {})
    if not spec.get("bind_and_activate", True):
        kwargs["bind_and_activate"] = False
    return server_cls(server_address(spec, tmpdir), handler_cls, **kwargs)


# --- commands ----------------------------------------------------------------------------


class Agent:
    """Holds the server and runs the harness's commands against it."""

    def __init__(self, spec: Dict[str, Any], tmpdir: str) -> None:
        self.spec = spec
        self.tmpdir = tmpdir
        self.server: Any = None
        self.namespace: Dict[str, Any] = {"emit": emit, "tmpdir": tmpdir}
        self.threads: Dict[Any, threading.Thread] = {}
        self.finished: set = set()

    def start(self) -> bool:
        """Build the server and report ``ready`` (or ``construct:raised``)."""
        try:
            self.server = build_server(self.spec, self.tmpdir)
        except BaseException as exc:
            emit("construct:raised", traceback=_short_traceback(exc), **_exc_fields(exc))
            return False
        self.namespace["server"] = self.server
        address = getattr(self.server, "server_address", None)
        emit(
            "ready",
            address=_describe(address),
            python=list(sys.version_info[:3]),
            implementation=sys.implementation.name,
            executable=sys.executable,
            modules={
                name: getattr(sys.modules.get(name), "__file__", None) for name in SUBSTITUTABLE
            },
        )
        return True

    def run_command(self, command: Dict[str, Any]) -> None:
        """Execute one command; long-running ones go to a thread of their own."""
        op = command.get("op")
        cid = command.get("id")
        if op == "call":
            target: Callable[[], Any] = self._call_target(command)
        elif op == "exec":
            target = self._exec_target(command)
        elif op == "quiesce":
            target = self._quiesce
        else:
            emit("command:error", id=cid, message="unknown op %r" % (op,))
            return
        if command.get("thread", False):
            thread = threading.Thread(
                target=self._finish, args=(cid, target), name="harness-%s" % (cid,), daemon=True
            )
            self.threads[cid] = thread
            thread.start()
            emit("command:started", id=cid)
        else:
            self._finish(cid, target)

    def _call_target(self, command: Dict[str, Any]) -> Callable[[], Any]:
        method = command["method"]
        args = command.get("args") or []
        kwargs = command.get("kwargs") or {}
        return lambda: getattr(self.server, method)(*args, **kwargs)

    def _exec_target(self, command: Dict[str, Any]) -> Callable[[], Any]:
        code = compile(command["code"], "<scenario %s>" % (command.get("id"),), "exec")

        def run() -> Any:
            scope = self.namespace
            scope.pop("result", None)
            exec(code, scope)
            return scope.get("result")

        return run

    def _finish(self, cid: Any, target: Callable[[], Any]) -> None:
        try:
            value = target()
        except BaseException as exc:  # SystemExit from serve_forever is an observation
            self.finished.add(cid)
            emit("command:raised", id=cid, **_exc_fields(exc))
            return
        self.finished.add(cid)
        described = _describe(value)
        text = json.dumps(described, default=repr)
        if len(text) > _MAX_EVENT // 2:
            # Too long for one atomic event line: the value goes into a file of the run's
            # private directory, and the event says where.
            path = os.path.join(self.tmpdir, "result-%s.json" % (cid,))
            with open(path, "w") as handle:
                handle.write(text)
            emit("command:returned", id=cid, value_file=path)
        else:
            emit("command:returned", id=cid, value=described)

    def _quiesce(self) -> int:
        """Join the command threads whose command has finished; how many still run.

        A thread that has reported its result still exists for a moment; joining it first
        keeps the harness's own threads out of the thread counts a scenario samples.
        """
        for cid, thread in list(self.threads.items()):
            if cid in self.finished:
                thread.join(1.0)
            if not thread.is_alive():
                del self.threads[cid]
        return len(self.threads)


def _short_traceback(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()[-500:]


def main() -> None:
    """Entry point of the server process."""
    setup = json.loads(sys.stdin.readline())
    event_fd = int(setup["event_fd"])
    # This process stays as the keeper, the next as the decoy parent; the third is the agent.
    split("parent", event_fd, subreaper=True)
    split("agent", event_fd)
    begin(setup)
    prepare_process(setup.get("pin_mimetypes", True))
    try:
        install_target(setup.get("modules") or {})
    except BaseException as exc:
        emit(
            "construct:raised", stage="modules", traceback=_short_traceback(exc), **_exc_fields(exc)
        )
        _exit(3)
    serve(setup)


def begin(setup: Dict[str, Any]) -> None:
    """Make this process the agent of ``setup``: events go to its pipe, from this pid.

    A forked agent calls this too: the pid the module saw at import is its fork server's.
    Its first event tells the harness its pid (which is not the harness's child's).
    """
    global _event_fd, _agent_pid
    _event_fd = int(setup["event_fd"])
    _agent_pid = os.getpid()
    emit("harness:agent", pid=_agent_pid)


def prepare_process(pin_mimetypes: bool = True) -> None:
    """The per-process preparation that comes before the target's modules are installed.

    Nothing in it depends on the scenario, so a fork server does it once for its agents.
    The limits come first: the target's import is the target's code already.
    """
    limit_resources()
    os.environ.setdefault("NO_COLOR", "1")
    if pin_mimetypes:
        # The host's /etc/mime.types would otherwise leak into Content-type replies.
        import mimetypes

        mimetypes.init(files=[])


def install_target(modules: Dict[str, str]) -> None:
    """Install the target's modules under the stdlib names, in dependency order."""
    for stdname in SUBSTITUTABLE:
        if stdname in modules:
            install_module(stdname, modules[stdname])


def serve(setup: Dict[str, Any]) -> None:
    """Build the server, report ``ready`` and run commands until ``exit`` or EOF; exits."""
    agent = Agent(setup["spec"], setup["tmpdir"])
    agent.start()
    _wait_for_exit(agent)


def _wait_for_exit(agent: Agent) -> None:
    for line in sys.stdin:
        if not line.strip():
            continue
        command = json.loads(line)
        if command.get("op") == "exit":
            break
        if agent.server is None and command.get("op") == "call":
            emit("command:raised", id=command.get("id"), type="NoServer", message="")
            continue
        agent.run_command(command)
    _exit(0)


def _exit(status: int) -> None:
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        # Threads the target left running (non-daemon handlers) must not keep us alive:
        # the harness decides when a run is over.
        os._exit(status)


if __name__ == "__main__":
    # Handlers ``import harness.agent`` to call ``emit``: they must get this module, the one
    # that holds the event pipe, not a second copy.
    sys.modules.setdefault("harness.agent", sys.modules["__main__"])
    if sys.argv[1:2] == ["--fork-server"]:
        # A fork server runs as this module's ``__main__`` too, so that its agents are the
        # same program as a spawned agent (``__main__``, class ``__module__`` names, argv).
        from harness.forkserver import serve_forks

        serve_forks(int(sys.argv[2]))
    else:
        main()
