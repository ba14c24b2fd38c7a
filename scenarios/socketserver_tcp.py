"""socketserver/tcp: TCPServer end to end, from echoes to the server's own life cycle.

Echoes of 0 bytes to 4 MiB, partial reads, half-close, client resets, slow readers,
``verify_request``, ``handle_error`` (Exception and BaseException), ``handle_request`` and
its timeouts, ``bind_and_activate=False``, ``server_close`` and the context manager,
``allow_reuse_address``/``allow_reuse_port`` and the attributes a server has once built.
"""

from __future__ import annotations

from harness.clients import connect_stream
from harness.scenario import ServerSpec, scenario
from scenarios._ss_common import (
    POLL,
    STREAM_ECHO,
    STREAM_ECHO_LINE,
    STREAM_RAISE,
    exchange,
    handler,
    outcome,
    pattern,
    serve,
    slow_read_mib,
    stop,
    stream_exchange,
)

ECHO = ServerSpec("TCPServer", handler=STREAM_ECHO)


@scenario("socketserver/tcp/answers", server=ECHO)
async def answers(run):
    """Sanity: a TCPServer under serve_forever echoes a short message and closes after the
    client half-closes."""
    serve_id = await serve(run)
    run.record("reply", await stream_exchange(run, b"hello, server"))
    await stop(run, serve_id)


# --- echoes of every size ------------------------------------------------------------------


def _echo(name: str, size: int, split: int | None, doc: str) -> None:
    @scenario(f"socketserver/tcp/echo_{name}", server=ECHO, description=doc, deadline=30.0)
    async def body(run):
        serve_id = await serve(run)
        data = pattern(size)
        async with await run.connect() as client:
            sent, received = await exchange(client, data, split=split, timeout=15.0)
        run.record("sent", sent)
        run.record("reply", received.summary(inline=64))
        run.expect(received.data == data, f"the echo of {size} bytes is what was sent")
        await stop(run, serve_id)


_echo("0", 0, None, "Echo of nothing: the client half-closes at once and reads EOF, no bytes.")
_echo("1", 1, None, "Echo of a single byte, then EOF after the client half-closes.")
_echo("1000", 1000, None, "Echo of 1000 bytes sent in one piece.")
_echo("64k", 64 * 1024, 1000, "Echo of 64 KiB sent in 1000-byte pieces.")
_echo(
    "4m",
    4 * 1024 * 1024,
    None,
    "Echo of 4 MiB, sent while reading (the handler's writes block until the client reads).",
)


# --- partial reads, half-close, resets, slow readers --------------------------------------


@scenario("socketserver/tcp/partial_reads", server=ServerSpec(handler=handler("ReadExact")))
async def partial_reads(run):
    """A handler reads exact sizes (rfile.read(n)) while the client sends in small pieces
    with pauses: every read gets all n bytes; the server closes without a half-close."""
    serve_id = await serve(run)
    sizes = [5, 1, 300, 70000]
    body = pattern(sum(sizes))
    request = b",".join(b"%d" % s for s in sizes) + b"\n" + body
    async with await run.connect() as client:
        sent, received = await exchange(
            client, request, split=[2, 3, 1, 4, 7, 200, 99, 30000], pause=0.005, half_close=False
        )
    run.record("sent", sent)
    run.record("reply", received.summary())
    await stop(run, serve_id)


@scenario("socketserver/tcp/half_close", server=ServerSpec(handler=handler("CountUntilEof")))
async def half_close(run):
    """The client half-closes after sending: the handler reads to EOF, and its reply still
    reaches the client; a second client half-closes without sending anything."""
    serve_id = await serve(run)
    run.record("with data", await stream_exchange(run, pattern(1000), split=100))
    run.record("empty", await stream_exchange(run, b""))
    await stop(run, serve_id)


@scenario(
    "socketserver/tcp/reset_while_reading",
    server=ServerSpec(handler=handler("TwoLines")),
    events="sequence",
)
async def reset_while_reading(run):
    """The client resets (RST) while the handler waits for its second line: the handler's
    read raises ConnectionResetError, handle_error reports it, the server keeps serving."""
    serve_id = await serve(run)
    client = await run.connect()
    await client.send(b"one\npart")
    run.record("first line read", await run.wait_event("note", 1))
    client.reset()
    run.record("handle_error called", await run.wait_event("handle_error", 1))
    run.record("after", await stream_exchange(run, b"a\nb\n", half_close=False))
    await stop(run, serve_id)


@scenario(
    "socketserver/tcp/reset_while_writing",
    server=ServerSpec(handler=handler("Flood")),
    events="sequence",
)
async def reset_while_writing(run):
    """The client resets while the handler writes faster than it reads: the handler's write
    fails with a connection error, which handle_error reports."""
    serve_id = await serve(run)
    client = await run.connect()
    await client.send(b"go\n")
    run.record("flooding", await run.wait_event("note", 1))
    client.reset()
    run.record("handle_error called", await run.wait_event("handle_error", 1))
    await stop(run, serve_id)


@scenario("socketserver/tcp/slow_reader", server=ServerSpec(handler=handler("SendBig")))
async def slow_reader(run):
    """A handler writes 1 MiB in one write to a client reading 16 KiB at a time with
    pauses: every byte arrives, in order (the writer must not lose partial sends)."""
    await slow_read_mib(run)


@scenario(
    "socketserver/tcp/silent_handler",
    server=ServerSpec(handler=handler("Silent")),
    events="sequence",
)
async def silent_handler(run):
    """A handler that does nothing: once it returns the server shuts the connection down,
    so a client that sent nothing reads EOF at once."""
    serve_id = await serve(run)
    async with await run.connect() as client:
        run.record("reply", (await client.recv_until_eof(timeout=5)).summary())
    await stop(run, serve_id)


@scenario(
    "socketserver/tcp/close_with_unread_data",
    server=ServerSpec(handler=handler("PeekThenReturn")),
    events="sequence",
)
async def close_with_unread_data(run):
    """A handler returns without consuming what the client sent (it only peeks): shutdown
    (SHUT_WR) sends FIN before close() resets, so the client reads EOF, not a reset (S9)."""
    serve_id = await serve(run)
    async with await run.connect() as client:
        run.record("sent", await client.send(b"never read by the handler"))
        run.record("closed", await run.wait_event("close_request", 1))
        run.record("reply", (await client.recv_until_eof(timeout=5)).summary())
    await stop(run, serve_id)


# --- verify_request and handle_error -------------------------------------------------------


@scenario(
    "socketserver/tcp/verify_refused",
    server=ServerSpec(handler("RefusingTCPServer"), handler=STREAM_ECHO),
    events="sequence",
)
async def verify_refused(run):
    """verify_request returns False: the connection is shut down and closed unhandled (no
    process_request), the client reads EOF; a second client is refused the same way."""
    serve_id = await serve(run)
    for label in ("first", "second"):
        async with await run.connect() as client:
            run.record(label, (await client.recv_until_eof(timeout=5)).summary())
    await stop(run, serve_id)


@scenario(
    "socketserver/tcp/handle_error",
    server=ServerSpec(handler=STREAM_RAISE),
    events="sequence",
)
async def handle_error(run):
    """A handler raises ValueError: handle_error prints the dashed block with the client
    address and traceback to stderr, the client reads EOF, the server serves the next one."""
    serve_id = await serve(run)
    for label in ("first", "second"):
        run.record(label, await stream_exchange(run, b"line\n", half_close=False))
    await stop(run, serve_id)


@scenario(
    "socketserver/tcp/handle_error_oserror",
    server=ServerSpec(handler=handler("RaiseOSError")),
    events="sequence",
)
async def handle_error_oserror(run):
    """A handler writes part of a reply, then raises OSError: the client gets the part, then
    EOF; handle_error reports the OSError with its errno text."""
    serve_id = await serve(run)
    run.record("reply", await stream_exchange(run, b"line\n", half_close=False))
    await stop(run, serve_id)


@scenario(
    "socketserver/tcp/system_exit_serve_forever",
    server=ServerSpec(handler=handler("RaiseSystemExit")),
    events="sequence",
)
async def system_exit_serve_forever(run):
    """A handler raises SystemExit: no handle_error; the request is shut down (client reads
    EOF) and SystemExit leaves serve_forever; the server socket stays open until closed."""
    serve_id = await serve(run)
    run.record("reply", await stream_exchange(run, b"line\n", half_close=False))
    run.record("serve_forever", outcome(await run.outcome(serve_id, 5)))
    run.record("socket open", await run.value("server.socket.fileno() >= 0"))
    run.record("close", outcome(await run.server_close()))


@scenario(
    "socketserver/tcp/keyboard_interrupt_handle_request",
    server=ServerSpec(handler=handler("RaiseKeyboardInterrupt")),
    events="sequence",
)
async def keyboard_interrupt_handle_request(run):
    """A handler raises KeyboardInterrupt under handle_request: no handle_error, the client
    reads EOF, and KeyboardInterrupt leaves handle_request."""
    call = run.start("handle_request")
    run.record("reply", await stream_exchange(run, b"line\n", half_close=False))
    run.record("handle_request", outcome(await run.outcome(call, 5)))
    run.record("close", outcome(await run.server_close()))


# --- handle_request and timeouts -----------------------------------------------------------


@scenario(
    "socketserver/tcp/handle_request",
    server=ServerSpec(handler=STREAM_ECHO_LINE),
    events="sequence",
)
async def handle_request(run):
    """handle_request serves exactly one request and returns None; without a timeout it
    waits for a client (still pending after 0.2 s), then serves the one that comes."""
    call = run.start("handle_request")
    run.record("first", await stream_exchange(run, b"one\n", half_close=False))
    run.record("first handle_request", outcome(await run.outcome(call, 5)))
    call = run.start("handle_request")
    run.record("waiting", outcome(await run.outcome(call, 0.2)))
    run.record("second", await stream_exchange(run, b"two\n", half_close=False))
    run.record("second handle_request", outcome(await run.outcome(call, 5)))
    run.record("close", outcome(await run.server_close()))


@scenario(
    "socketserver/tcp/handle_request_timeout_attr",
    server=ServerSpec(handler=STREAM_ECHO_LINE, server_attrs={"timeout": 0.05}),
    events="sequence",
)
async def handle_request_timeout_attr(run):
    """Server attribute timeout=0.05: handle_request with no client calls handle_timeout
    and returns; with a client already waiting it serves it without a timeout."""
    run.record("idle", outcome(await run.call("handle_request", timeout=3)))
    async with await run.connect() as client:
        await client.send(b"waiting\n")
        run.record("served", outcome(await run.call("handle_request", timeout=3)))
        run.record("reply", (await client.recv_until_eof(timeout=5)).summary())
    run.record("close", outcome(await run.server_close()))


@scenario(
    "socketserver/tcp/handle_request_socket_timeout",
    server=ServerSpec(handler=STREAM_ECHO_LINE),
    events="sequence",
)
async def handle_request_socket_timeout(run):
    """No server timeout, but the listening socket has a 0.05 s timeout: handle_request uses
    it, calls handle_timeout and returns."""
    await run.exec("server.socket.settimeout(0.05)")
    run.record("idle", outcome(await run.call("handle_request", timeout=3)))
    run.record("close", outcome(await run.server_close()))


@scenario(
    "socketserver/tcp/handle_request_min_timeout",
    server=ServerSpec(handler=STREAM_ECHO_LINE, server_attrs={"timeout": 30}),
    events="sequence",
)
async def handle_request_min_timeout(run):
    """Server timeout and socket timeout both set: handle_request waits for the smaller one
    (socket 0.05 s under server 30 s, then server 0.05 s under socket 30 s)."""
    await run.exec("server.socket.settimeout(0.05)")
    run.record("socket smaller", outcome(await run.call("handle_request", timeout=3)))
    await run.exec("server.socket.settimeout(30); server.timeout = 0.05")
    run.record("server smaller", outcome(await run.call("handle_request", timeout=3)))
    run.record("close", outcome(await run.server_close()))


@scenario(
    "socketserver/tcp/handle_timeout_return",
    server=ServerSpec(handler("ReturningTimeoutTCPServer"), handler=STREAM_ECHO_LINE),
    events="sequence",
)
async def handle_timeout_return(run):
    """A handle_timeout override returns a value: handle_request returns that value."""
    run.record("idle", outcome(await run.call("handle_request", timeout=3)))
    run.record("close", outcome(await run.server_close()))


@scenario(
    "socketserver/tcp/serve_forever_ignores_timeout",
    server=ServerSpec(handler=STREAM_ECHO_LINE, server_attrs={"timeout": 0.02}),
)
async def serve_forever_ignores_timeout(run):
    """serve_forever never calls handle_timeout, even with a short server timeout (watched
    for 0.3 s around one request)."""
    serve_id = await serve(run)
    run.record("reply", await stream_exchange(run, b"x\n", half_close=False))
    run.record("handle_timeout seen", await run.wait_event("handle_timeout", 1, timeout=0.3))
    await stop(run, serve_id)


# --- construction, binding, closing --------------------------------------------------------


@scenario(
    "socketserver/tcp/bind_and_activate_false",
    server=ServerSpec(handler=STREAM_ECHO_LINE, bind_and_activate=False),
    events="sequence",
)
async def bind_and_activate_false(run):
    """bind_and_activate=False: the socket exists but is unbound; server_bind binds it and
    rewrites server_address (connections refused until server_activate), then it serves."""
    await run.exec("import socket")
    run.record(
        "before",
        await run.value(
            "{'address': list(server.server_address), 'fileno_ok': server.fileno() >= 0,"
            " 'sockname_port': server.socket.getsockname()[1]}"
        ),
    )
    run.record("server_bind", outcome(await run.call("server_bind")))
    address = await run.value("list(server.server_address)")
    run.record("bound port set", isinstance(address, list) and address[1] != 0)
    run.record(
        "listening before activate",
        await run.value("server.socket.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)"),
    )
    try:
        early = await connect_stream("inet", address, timeout=2)
        early.close()
        run.record("connect before activate", "connected")
    except OSError as exc:
        run.record("connect before activate", type(exc).__name__)
    run.record("server_activate", outcome(await run.call("server_activate")))
    call = run.start("handle_request")
    async with await connect_stream("inet", address, timeout=2) as client:
        _sent, received = await exchange(client, b"bound by hand\n", half_close=False)
    run.record("reply", received.summary())
    run.record("handle_request", outcome(await run.outcome(call, 5)))
    run.record("close", outcome(await run.server_close()))


@scenario("socketserver/tcp/server_close", server=ECHO, events="sequence")
async def server_close(run):
    """server_close closes the listening socket (fileno -1, connections refused), may be
    called twice, and serve_forever afterwards fails at once (S3)."""
    run.record("first close", outcome(await run.server_close()))
    run.record("fileno", await run.value("server.socket.fileno()"))
    run.record("connect", await run.connect_result())
    run.record("second close", outcome(await run.server_close()))
    run.record("serve_forever after close", outcome(await run.call("serve_forever", POLL)))


_CONTEXT_MANAGER = """
import socketserver
calls = []

class Tracked(socketserver.TCPServer):
    def shutdown(self):
        calls.append("shutdown")
        socketserver.TCPServer.shutdown(self)

    def server_close(self):
        calls.append("server_close")
        socketserver.TCPServer.server_close(self)

with Tracked(("127.0.0.1", 0), socketserver.BaseRequestHandler) as inner:
    entered_self = inner
    open_inside = inner.socket.fileno() >= 0
plain = {"enter returns the server": entered_self is inner, "open inside": open_inside,
         "closed after": inner.socket.fileno() == -1, "calls": list(calls)}
del calls[:]
try:
    with Tracked(("127.0.0.1", 0), socketserver.BaseRequestHandler) as failing:
        raise ValueError("raised inside with")
    propagated = None
except ValueError as exc:
    propagated = str(exc)
raising = {"propagated": propagated, "closed after": failing.socket.fileno() == -1,
           "calls": list(calls)}
result = {"plain": plain, "raising": raising}
"""


@scenario("socketserver/tcp/context_manager", server=ECHO)
async def context_manager(run):
    """``with TCPServer(...) as s``: __enter__ returns the server, __exit__ calls
    server_close only (never shutdown), also when the block raises, which propagates."""
    run.record("with", outcome(await run.exec(_CONTEXT_MANAGER)))
    run.record("close", outcome(await run.server_close()))


_REBIND = """
import errno, socket, socketserver

class Second(socketserver.TCPServer):
    allow_reuse_address = {reuse_address}
    allow_reuse_port = {reuse_port}

try:
    second = Second(tuple(server.server_address), socketserver.BaseRequestHandler)
except OSError as exc:
    result = errno.errorcode.get(exc.errno, str(exc.errno))
else:
    result = "bound, same port: %s" % (second.server_address[1] == server.server_address[1],)
    second.server_close()
"""

_SOCKOPTS = (
    "{'SO_REUSEADDR': bool(server.socket.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)),"
    " 'SO_REUSEPORT': bool(server.socket.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT))}"
)


def _time_wait(name: str, flag: bool, doc: str) -> None:
    @scenario(
        f"socketserver/tcp/{name}",
        server=ServerSpec(handler=STREAM_ECHO_LINE, server_attrs={"allow_reuse_address": flag}),
        description=doc,
    )
    async def body(run):
        await run.exec("import socket")
        run.record("sockopts", await run.value(_SOCKOPTS))
        call = run.start("handle_request")
        # The server closes first (after its reply), so its side of the connection ends
        # in FIN_WAIT2/TIME_WAIT on the listening port.
        run.record("reply", await stream_exchange(run, b"close first\n", half_close=False))
        run.record("handle_request", outcome(await run.outcome(call, 5)))
        run.record("close", outcome(await run.server_close()))
        code = _REBIND.format(reuse_address=flag, reuse_port=False)
        run.record("rebind", outcome(await run.exec(code)))


_time_wait(
    "reuse_address_time_wait",
    True,
    "allow_reuse_address=True sets SO_REUSEADDR: after a served connection left the port in "
    "TIME_WAIT and the server closed, a new server binds the same port.",
)
_time_wait(
    "no_reuse_address_time_wait",
    False,
    "allow_reuse_address=False (default): after a served connection left the port in "
    "TIME_WAIT and the server closed, binding the same port fails with EADDRINUSE.",
)


def _reuse_port(name: str, flag: bool, doc: str) -> None:
    @scenario(
        f"socketserver/tcp/{name}",
        server=ServerSpec(handler=STREAM_ECHO_LINE, server_attrs={"allow_reuse_port": flag}),
        description=doc,
    )
    async def body(run):
        await run.exec("import socket")
        run.record("sockopts", await run.value(_SOCKOPTS))
        code = _REBIND.format(reuse_address=False, reuse_port=flag)
        run.record("second server", outcome(await run.exec(code)))
        run.record("close", outcome(await run.server_close()))


_reuse_port(
    "reuse_port",
    True,
    "allow_reuse_port=True sets SO_REUSEPORT: a second server with the flag binds the port "
    "the first one listens on.",
)
_reuse_port(
    "no_reuse_port",
    False,
    "allow_reuse_port=False (default): a second server on the port the first one listens on "
    "fails with EADDRINUSE.",
)


_ATTRIBUTES = """
import socket
s = server
result = {
    "server_address type": type(s.server_address).__name__,
    "server_address is getsockname": s.server_address == s.socket.getsockname(),
    "host": s.server_address[0],
    "port set": s.server_address[1] != 0,
    "socket family": s.socket.family.name,
    "socket type": s.socket.type.name,
    "address_family": getattr(s.address_family, "name", s.address_family),
    "socket_type": getattr(s.socket_type, "name", s.socket_type),
    "fileno is the socket's": s.fileno() == s.socket.fileno(),
    "listening": s.socket.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN),
    "blocking": s.socket.getblocking(),
    "socket timeout": s.socket.gettimeout(),
    "inheritable": s.socket.get_inheritable(),
    "timeout": s.timeout,
    "allow_reuse_address": s.allow_reuse_address,
    "allow_reuse_port": s.allow_reuse_port,
    "request_queue_size": s.request_queue_size,
    "RequestHandlerClass": s.RequestHandlerClass.__name__,
}
"""


@scenario("socketserver/tcp/attributes", server=ECHO)
async def attributes(run):
    """What a constructed TCPServer exposes: server_address replaced by getsockname(), the
    socket's family/type, fileno(), listening state and the class defaults."""
    run.record("attributes", outcome(await run.exec(_ATTRIBUTES)))
    run.record("close", outcome(await run.server_close()))


_BIND_FAILURE = """
import errno, os, socketserver
calls = []

class Tracked(socketserver.TCPServer):
    def server_close(self):
        calls.append("server_close")
        socketserver.TCPServer.server_close(self)

before = len(os.listdir("/proc/self/fd"))
try:
    Tracked(tuple(server.server_address), socketserver.BaseRequestHandler)
    error = None
except OSError as exc:
    error = errno.errorcode.get(exc.errno, str(exc.errno))
after = len(os.listdir("/proc/self/fd"))
result = {"error": error, "calls": calls, "fds leaked": after - before}
"""


@scenario("socketserver/tcp/bind_failure", server=ECHO)
async def bind_failure(run):
    """Constructing a second server on a port in use raises EADDRINUSE, after calling
    server_close itself: no file descriptor is leaked (S10)."""
    run.record("second server", outcome(await run.exec(_BIND_FAILURE)))
    run.record("close", outcome(await run.server_close()))
