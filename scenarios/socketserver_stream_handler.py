"""socketserver/stream_handler: StreamRequestHandler's options and files.

``timeout`` (a read that times out goes to handle_error), ``rbufsize`` (what a buffered
``rfile`` takes from the socket), ``wbufsize`` (``_SocketWriter`` sends at once, a buffered
``wfile`` only on flush/finish), ``disable_nagle_algorithm`` (TCP_NODELAY on the accepted
socket), the ``rfile``/``wfile``/``connection`` a handler sees, and what ``finish`` does.
"""

from __future__ import annotations

from harness.scenario import ServerSpec, scenario
from scenarios._ss_common import (
    STREAM_ECHO_LINE,
    handler,
    json_reply,
    serve,
    slow_read_mib,
    stop,
    stream_exchange,
)

DESCRIBE = handler("DescribeStream")


@scenario("socketserver/stream_handler/answers", server=ServerSpec(handler=STREAM_ECHO_LINE))
async def answers(run):
    """Sanity: a StreamRequestHandler reads one line through rfile and writes it back
    through wfile; the client reads it, then EOF."""
    serve_id = await serve(run)
    run.record("reply", await stream_exchange(run, b"one line\n", half_close=False))
    await stop(run, serve_id)


async def _describe(run, request: bytes = b"describe\n") -> None:
    serve_id = await serve(run)
    async with await run.connect() as client:
        await client.send(request)
        run.record("handler sees", json_reply(await client.recv_until_eof(timeout=5)))
    await stop(run, serve_id)


@scenario(
    "socketserver/stream_handler/defaults",
    server=ServerSpec(handler=DESCRIBE),
    events="sequence",
)
async def defaults(run):
    """With the defaults a handler sees: request is connection, a buffered rfile, a
    _SocketWriter wfile, no socket timeout, Nagle on; finish closes both files."""
    await _describe(run)


@scenario(
    "socketserver/stream_handler/buffered_files",
    server=ServerSpec(handler=DESCRIBE, handler_attrs={"rbufsize": 0, "wbufsize": 8192}),
    events="sequence",
)
async def buffered_files(run):
    """rbufsize=0 and wbufsize=8192: rfile is the raw SocketIO, wfile a BufferedWriter
    (flushed by finish, so the reply still arrives)."""
    await _describe(run)


@scenario(
    "socketserver/stream_handler/nagle_disabled",
    server=ServerSpec(handler=DESCRIBE, handler_attrs={"disable_nagle_algorithm": True}),
    events="sequence",
)
async def nagle_disabled(run):
    """disable_nagle_algorithm=True: setup sets TCP_NODELAY on the accepted socket (the
    handler reads it back with getsockopt)."""
    await _describe(run)


@scenario(
    "socketserver/stream_handler/timeout",
    server=ServerSpec(handler=handler("ReadLineTimeout"), handler_attrs={"timeout": 0.1}),
    events="sequence",
)
async def timeout(run):
    """Handler timeout=0.1 and a client that sends nothing: the socket has the timeout,
    readline raises TimeoutError, handle_error prints it, the client reads EOF."""
    serve_id = await serve(run)
    async with await run.connect() as client:
        run.record("reply", (await client.recv_until_eof(timeout=5)).summary())
    await stop(run, serve_id)


@scenario(
    "socketserver/stream_handler/timeout_not_reached",
    server=ServerSpec(handler=handler("ReadLineTimeout"), handler_attrs={"timeout": 5}),
    events="sequence",
)
async def timeout_not_reached(run):
    """Handler timeout=5 and a client that answers at once: the timeout is per operation,
    the line is read and answered normally."""
    serve_id = await serve(run)
    run.record("reply", await stream_exchange(run, b"in time\n", half_close=False))
    await stop(run, serve_id)


def _raw_after_line(name: str, attrs: dict, doc: str) -> None:
    @scenario(
        f"socketserver/stream_handler/{name}",
        server=ServerSpec(handler=handler("RawAfterLine"), handler_attrs=attrs),
        description=doc,
    )
    async def body(run):
        serve_id = await serve(run)
        async with await run.connect() as client:
            await client.send(b"line\nrest of it")
            client.shutdown_write()
            run.record("handler saw", json_reply(await client.recv_until_eof(timeout=5)))
        await stop(run, serve_id)


_raw_after_line(
    "rbufsize_default",
    {},
    "Default rbufsize (buffered): readline pulls everything that arrived into rfile's "
    "buffer, so a raw recv on the socket afterwards sees only EOF; the rest is in rfile.",
)
_raw_after_line(
    "rbufsize_0",
    {"rbufsize": 0},
    "rbufsize=0 (unbuffered): readline takes only the line from the socket, so a raw recv "
    "afterwards gets the rest of what the client sent.",
)


def _write_then_wait(name: str, attrs: dict, doc: str) -> None:
    @scenario(
        f"socketserver/stream_handler/{name}",
        server=ServerSpec(handler=handler("WriteThenWait"), handler_attrs=attrs),
        description=doc,
    )
    async def body(run):
        serve_id = await serve(run)
        async with await run.connect() as client:
            await run.wait_event("note", 1)
            # Whether the first write is on the wire before the handler returns: a
            # buffered wfile holds it (the read below then times out after 0.3 s).
            run.record("before the line", (await client.recv_some(timeout=0.3)).summary())
            await client.send(b"the line\n")
            run.record("after the line", (await client.recv_until_eof(timeout=5)).summary())
        await stop(run, serve_id)


_write_then_wait(
    "wbufsize_0",
    {},
    "Default wbufsize=0: wfile.write goes out at once (the client reads it while the "
    "handler still waits for its line).",
)
_write_then_wait(
    "wbufsize_buffered",
    {"wbufsize": 8192},
    "wbufsize=8192: wfile.write is buffered, nothing reaches the client until finish "
    "flushes after the handler returns.",
)


@scenario(
    "socketserver/stream_handler/buffered_flush_on_error",
    server=ServerSpec(handler=handler("RaiseOSError"), handler_attrs={"wbufsize": 8192}),
    events="sequence",
)
async def buffered_flush_on_error(run):
    """A buffered wfile and a handler that raises after writing: finish still runs and
    flushes, so the client gets the partial reply before EOF; handle_error reports."""
    serve_id = await serve(run)
    run.record("reply", await stream_exchange(run, b"line\n", half_close=False))
    await stop(run, serve_id)


@scenario(
    "socketserver/stream_handler/finish_flush_error",
    server=ServerSpec(handler=handler("WaitForGate"), handler_attrs={"wbufsize": 8192}),
    events="sequence",
)
async def finish_flush_error(run):
    """A buffered reply for a client that has reset: finish swallows the error of its
    flush, but closing wfile flushes again and raises BrokenPipeError into handle_error
    (what CPython does); the server serves on."""
    serve_id = await serve(run)
    client = await run.connect()
    await client.send(b"first\n")
    run.record("handler waiting", await run.wait_event("note", 1))
    client.reset()
    await run.exec("import scenarios.handlers.ss_basic as h; h.GATE.set()")
    run.record("second", await stream_exchange(run, b"second\n", half_close=False))
    await stop(run, serve_id)


@scenario(
    "socketserver/stream_handler/slow_reader_with_timeout",
    server=ServerSpec(handler=handler("SendBigSmallBuffer"), handler_attrs={"timeout": 5}),
)
async def slow_reader_with_timeout(run):
    """Handler timeout=5 (the socket is then non-blocking inside), an 8 KiB send buffer and
    a slow reader: one wfile.write of 1 MiB still delivers every byte (sendall, not send)."""
    await slow_read_mib(run)
