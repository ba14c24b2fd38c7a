"""A server's life: construction (and its failure), the context manager, fileno, closing.

Facts S3, S10, S23 (CPYTHON_BEHAVIOUR.md 2a). Calls that could block (an ``__exit__``
that called shutdown would) run in a thread of the server process with a bounded wait.
"""

from __future__ import annotations

from harness.scenario import ServerSpec, scenario
from scenarios._ss_concurrency_common import COMMAND, HANDLERS, ask

FAMILY = "socketserver/lifecycle"

TCP = ServerSpec("TCPServer", handler=COMMAND)


async def _handle_one(run, line: bytes = b"x") -> dict:
    """One request served by one handle_request call: its outcome and the reply."""
    async with await run.connect() as client:
        await client.send(line + b"\n")
        handled = await run.call("handle_request", timeout=5.0)
        reply = (await client.recv_until_eof(timeout=5.0)).summary()
    return {"handle_request": dict(handled), "reply": reply}


def _error_type(outcome) -> object:
    """An outcome with only the exception type kept (messages name internals)."""
    if "raised" in outcome:
        return {"raised": outcome["raised"].split(":", 1)[0]}
    return dict(outcome)


@scenario(f"{FAMILY}/answers", server=TCP)
async def answers(run):
    """A TCPServer answers one request through handle_request, then closes."""
    run.record("request", await _handle_one(run, b"hello"))
    run.record("server_close", dict(await run.server_close()))
    run.record("connect after close", await run.connect_result())


WITH_SERVER = """
with server as _entered:
    _same = _entered is server
result = _same
"""


@scenario(f"{FAMILY}/context_manager", server=TCP)
async def context_manager(run):
    """``with server`` returns the server and on exit calls server_close only, never
    shutdown (which would block without serve_forever) (S23)."""
    run.record("with server", dict(await run.outcome(run.start_exec(WITH_SERVER), 2.0)))
    run.record("connect after the with", await run.connect_result())


@scenario(f"{FAMILY}/server_close_twice", server=TCP)
async def server_close_twice(run):
    """server_close twice: the second call is harmless."""
    run.record("first", dict(await run.server_close()))
    run.record("second", dict(await run.server_close()))
    run.record("connect after close", await run.connect_result())


@scenario(f"{FAMILY}/handle_request_after_close", server=TCP)
async def handle_request_after_close(run):
    """handle_request after server_close raises ValueError at once (closed fd, S3)."""
    run.record("server_close", dict(await run.server_close()))
    run.record(
        "handle_request", _error_type(await run.call("handle_request", thread=True, timeout=2.0))
    )


FILENO = """
_fileno = server.fileno()
result = {
    "int": isinstance(_fileno, int),
    "open": _fileno >= 0,
    "is the socket's": _fileno == server.socket.fileno(),
}
"""


@scenario(f"{FAMILY}/fileno", server=TCP)
async def fileno(run):
    """fileno() is the listening socket's descriptor; -1 once the server is closed."""
    run.record("fileno", (await run.exec(FILENO)).get("returned"))
    run.record("server_close", dict(await run.server_close()))
    run.record("fileno after close", await run.value("server.fileno()"))


@scenario(
    f"{FAMILY}/fileno_unix_datagram",
    server=ServerSpec("UnixDatagramServer", handler=f"{HANDLERS}:DatagramCommand"),
)
async def fileno_unix_datagram(run):
    """fileno() of a UnixDatagramServer is its socket's descriptor; -1 once closed."""
    run.record("fileno", (await run.exec(FILENO)).get("returned"))
    run.record("server_close", dict(await run.server_close()))
    run.record("fileno after close", await run.value("server.fileno()"))


BIND_IN_USE = """
import os
import socketserver

def _fds():
    return len(os.listdir("/proc/self/fd"))

_before = _fds()
try:
    _second = getattr(socketserver, {cls!r})(server.server_address, server.RequestHandlerClass)
except OSError as _exc:
    result = {{
        "raised": type(_exc).__name__,
        "errno": _exc.errno,
        "fds held while the error is alive": _fds() - _before,
    }}
else:
    _second.server_close()
    result = "constructed"
"""


async def _bind_in_use(run, cls: str) -> None:
    before = (await run.sample())["fds"]
    run.record("second server", (await run.exec(BIND_IN_USE.format(cls=cls))).get("returned"))
    after = (await run.settle(lambda s: s["fds"] == before, timeout=1.0))["fds"]
    run.record("fds leaked", after - before)
    run.record("first still answers", await _handle_one(run))


@scenario(f"{FAMILY}/bind_in_use", server=TCP)
async def bind_in_use(run):
    """A second TCPServer on the same port fails with EADDRINUSE (98) and leaks no fd:
    the constructor closes its socket (S10)."""
    await _bind_in_use(run, "TCPServer")


@scenario(f"{FAMILY}/bind_in_use_unix", server=ServerSpec("UnixStreamServer", handler=COMMAND))
async def bind_in_use_unix(run):
    """A second UnixStreamServer on the same path fails with EADDRINUSE and leaks no fd."""
    await _bind_in_use(run, "UnixStreamServer")


@scenario(
    f"{FAMILY}/activate_fails",
    server=ServerSpec(f"{HANDLERS}:FailingActivateServer", handler=COMMAND),
)
async def activate_fails(run):
    """server_activate raising makes the constructor call server_close and re-raise
    (seen as the construct error and a server_close event); the body never runs."""
    run.record("constructed", True)


@scenario(
    f"{FAMILY}/bind_and_activate_false",
    server=ServerSpec("UnixStreamServer", handler=COMMAND, bind_and_activate=False),
)
async def bind_and_activate_false(run):
    """bind_and_activate=False: nothing listens until server_bind and server_activate."""
    run.record("connect before", await run.connect_result())
    run.record("server_bind", dict(await run.call("server_bind")))
    run.record("server_activate", dict(await run.call("server_activate")))
    run.record("request", await _handle_one(run, b"late"))
    run.record("server_close", dict(await run.server_close()))


@scenario(
    f"{FAMILY}/close_while_serving_threading",
    server=ServerSpec("ThreadingTCPServer", handler=COMMAND),
)
async def close_while_serving_threading(run):
    """shutdown then server_close of a ThreadingTCPServer that has served: new
    connections are refused afterwards."""
    serve = run.serve_forever(0.05)
    run.record("reply", await ask(run, b"x"))
    run.record("stop", await run.stop_serving(serve))
    run.record("connect after close", await run.connect_result())
