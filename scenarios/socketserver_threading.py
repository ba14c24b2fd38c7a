"""ThreadingMixIn: one thread per request, daemon_threads, block_on_close, clean-up, errors.

Facts S15, S20, S21 (CPYTHON_BEHAVIOUR.md 2a). Handlers block until their client sends, so
the clients order concurrent requests; waits that show something does *not* happen are
``NOT_YET`` seconds long.
"""

from __future__ import annotations

from harness.scenario import Known, ServerSpec, scenario
from scenarios._ss_concurrency_common import (
    COMMAND,
    DATAGRAM_COMMAND,
    NOT_YET,
    ask,
    close_while_held,
    reply_order,
)

FAMILY = "socketserver/threading"


def threading_spec(server: str = "ThreadingTCPServer", **attrs) -> ServerSpec:
    """A threading server running ``Command`` with ``attrs`` as server class attributes."""
    return ServerSpec(server, handler=COMMAND, server_attrs=attrs)


async def _settle_threads(run, extra: int) -> int:
    """Wait until the process has ``extra`` threads more than when it was ready."""
    sample = await run.settle(lambda s: s["threads"] == extra)
    return sample["threads"]


@scenario(f"{FAMILY}/answers", server=threading_spec())
async def answers(run):
    """A ThreadingTCPServer answers one request, in a thread it started, then stops."""
    serve = run.serve_forever(0.05)
    run.record("reply", await ask(run, b"hello"))
    run.record("stop", await run.stop_serving(serve))
    run.record("threads after close", await _settle_threads(run, 0))


@scenario(f"{FAMILY}/concurrent_clients", server=threading_spec(), stderr="sorted")
async def concurrent_clients(run):
    """A ThreadingTCPServer answers a second client while the first is still held open."""
    serve = run.serve_forever(0.05)
    run.record("replies", await reply_order(run, second_wait=5.0))
    run.record("stop", await run.stop_serving(serve))


@scenario(f"{FAMILY}/tcpserver_serial", server=ServerSpec("TCPServer", handler=COMMAND))
async def tcpserver_serial(run):
    """A plain TCPServer (the control): the second reply waits until the first request ends."""
    serve = run.serve_forever(0.05)
    run.record("replies", await reply_order(run, second_wait=NOT_YET))
    run.record("stop", await run.stop_serving(serve))


@scenario(
    f"{FAMILY}/unix_stream_concurrent",
    server=threading_spec("ThreadingUnixStreamServer"),
    stderr="sorted",
)
async def unix_stream_concurrent(run):
    """ThreadingUnixStreamServer answers a second client while the first is held open."""
    serve = run.serve_forever(0.05)
    run.record("replies", await reply_order(run, second_wait=5.0))
    run.record("stop", await run.stop_serving(serve))


@scenario(f"{FAMILY}/daemon_threads_default", server=threading_spec())
async def daemon_threads_default(run):
    """By default (daemon_threads=False) the handler thread is not a daemon."""
    serve = run.serve_forever(0.05)
    run.record("class daemon_threads", await run.value("server.daemon_threads"))
    run.record("reply", await ask(run, b"daemon"))
    run.record("stop", await run.stop_serving(serve))


@scenario(f"{FAMILY}/daemon_threads_true", server=threading_spec(daemon_threads=True))
async def daemon_threads_true(run):
    """With daemon_threads=True the handler thread is a daemon."""
    serve = run.serve_forever(0.05)
    run.record("reply", await ask(run, b"daemon"))
    run.record("stop", await run.stop_serving(serve))


async def _close_while_handling(run, blocks: bool):
    """Hold one request, stop serve_forever, then server_close while the handler runs.

    Records what server_close did within a wait (``NOT_YET`` when the stdlib ``blocks``,
    else ``PROMPTLY``), the held client's reply after its release, and the final outcome
    of server_close.
    """
    await close_while_held(run, blocks, "handling")
    run.record("threads after", await _settle_threads(run, 0))


@scenario(f"{FAMILY}/block_on_close_true", server=threading_spec())
async def block_on_close_true(run):
    """block_on_close=True (default): server_close waits for a running handler (S20)."""
    await _close_while_handling(run, blocks=True)


@scenario(f"{FAMILY}/block_on_close_false", server=threading_spec(block_on_close=False))
async def block_on_close_false(run):
    """block_on_close=False: server_close returns at once; the handler still completes."""
    await _close_while_handling(run, blocks=False)


@scenario(
    f"{FAMILY}/block_on_close_daemon_threads",
    server=threading_spec(daemon_threads=True),
)
async def block_on_close_daemon_threads(run):
    """daemon_threads=True: daemon threads are not waited for by server_close (S21)."""
    await _close_while_handling(run, blocks=False)


@scenario(
    f"{FAMILY}/thread_cleanup",
    server=threading_spec(),
    known=[
        Known(
            ("facts.finished threads kept",),
            "the reference keeps no finished thread; the stdlib keeps the last one until "
            "the next request (it reaps finished threads only when it appends a new one)",
            issue="bpo-37193 (S20)",
        )
    ],
)
async def thread_cleanup(run):
    """After five requests no handler thread is left; server_close leaves no extra thread."""
    serve = run.serve_forever(0.05)
    replies = [await ask(run, b"r%d" % i) for i in range(5)]
    run.record("replies", replies)
    run.record("threads while serving", await _settle_threads(run, 1))
    run.record(
        "finished threads kept",
        await run.value(
            "len(list(server._threads)) if hasattr(server, '_threads') else 'no _threads'"
        ),
    )
    run.record("stop", await run.stop_serving(serve))
    run.record("threads after close", await _settle_threads(run, 0))
    run.record(
        "threads kept after close",
        await run.value(
            "len(list(server._threads)) if hasattr(server, '_threads') else 'no _threads'"
        ),
    )


async def _datagrams(run):
    serve = run.serve_forever(0.05)
    replies = []
    async with await run.datagram() as client:
        for i in range(3):
            await client.send(b"d%d" % i)
            reply = await client.recv(timeout=5.0)
            replies.append(None if reply is None else reply.decode("latin-1"))
    run.record("replies", replies)
    run.record("stop", await run.stop_serving(serve))
    run.record("threads after close", await _settle_threads(run, 0))


@scenario(
    f"{FAMILY}/udp",
    server=ServerSpec("ThreadingUDPServer", handler=DATAGRAM_COMMAND),
)
async def udp(run):
    """ThreadingUDPServer handles each datagram in a thread of its own (S15)."""
    await _datagrams(run)


@scenario(
    f"{FAMILY}/unix_datagram",
    server=ServerSpec("ThreadingUnixDatagramServer", handler=DATAGRAM_COMMAND),
)
async def unix_datagram(run):
    """ThreadingUnixDatagramServer handles each datagram in a thread of its own."""
    await _datagrams(run)


@scenario(f"{FAMILY}/handle_error", server=threading_spec())
async def handle_error(run):
    """An exception in a handler thread goes to handle_error; the server keeps serving."""
    serve = run.serve_forever(0.05)
    run.record("failing request", await ask(run, b"raise"))
    run.record("next request", await ask(run, b"after"))
    run.record("stop", await run.stop_serving(serve))
    run.record("threads after close", await _settle_threads(run, 0))


@scenario(f"{FAMILY}/system_exit", server=threading_spec())
async def system_exit(run):
    """SystemExit in a handler thread: silent, the connection is closed, serving goes on."""
    serve = run.serve_forever(0.05)
    run.record("exiting request", await ask(run, b"exit"))
    run.record("next request", await ask(run, b"after"))
    run.record("stop", await run.stop_serving(serve))
    run.record("threads after close", await _settle_threads(run, 0))
