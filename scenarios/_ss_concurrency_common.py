"""What the threading, forking, shutdown and lifecycle scenario modules share.

The handler ``Command`` (scenarios/handlers/ss_concurrency.py) blocks until its client
sends a line, so a client holds a request open as long as it likes and releases it by
sending: the client, not a sleep, decides the order in which handlers finish.
"""

from __future__ import annotations

from typing import Any

from harness.clients import StreamClient
from harness.scenario import Run

HANDLERS = "scenarios.handlers.ss_concurrency"
COMMAND = f"{HANDLERS}:Command"
DATAGRAM_COMMAND = f"{HANDLERS}:DatagramCommand"

#: How long a scenario waits to see that something does *not* happen (a call stays
#: pending, a request is not handled). Short: the positive case ends the wait at once.
NOT_YET = 0.3

#: How long a call that the baseline finishes at once is given: long, because under load
#: "at once" can take a while, and only an implementation that blocks pays the wait.
PROMPTLY = 5.0

#: Python run in the server process: wraps ``os.waitpid`` so that every child reaped by
#: the server reports its exit code as a ``note`` event ("child reaped, exit code 1").
WATCH_EXIT_CODES = """
import os
if not getattr(os.waitpid, "harness_watching", False):
    _harness_waitpid = os.waitpid
    def _watching_waitpid(pid, options, _waitpid=_harness_waitpid):
        got = _waitpid(pid, options)
        if got[0]:
            emit("note", note="child reaped, exit code %d" % os.waitstatus_to_exitcode(got[1]))
        return got
    _watching_waitpid.harness_watching = True
    os.waitpid = _watching_waitpid
"""

#: Python run in the server process: waits (bounded, 2 s) until another thread is blocked
#: in a ``select`` or ``poll`` frame -- a serve loop waiting for requests, whether through
#: ``selectors`` (the stdlib) or a wait helper of its own (the reference). A state, not a
#: delay: a thread in that frame waits out its poll unless something wakes it. Sets
#: ``result``.
WAIT_IN_SELECT = """
import sys
import threading
import time

def _in_select():
    me = threading.get_ident()
    for ident, frame in sys._current_frames().items():
        code = frame.f_code
        if ident != me and code.co_name in ("select", "poll"):
            return True
    return False

_deadline = time.monotonic() + 2.0
while not _in_select() and time.monotonic() < _deadline:
    time.sleep(0.001)
result = _in_select()
"""


def no_processes_left(sample: dict[str, int]) -> bool:
    """No live child and no zombie."""
    return sample["children"] == 0 and sample["zombies"] == 0


def children_of(sample: dict[str, int]) -> dict[str, int]:
    """The process part of a sample (children and zombies), for recording."""
    return {"children": sample["children"], "zombies": sample["zombies"]}


async def ask(run: Run, line: bytes, timeout: float = 5.0) -> dict[str, Any]:
    """One request on a fresh connection: send ``line``, read the reply until EOF."""
    async with await run.connect() as client:
        await client.send(line + b"\n")
        return (await client.recv_until_eof(timeout=timeout)).summary()


async def hold(run: Run, handled_before: int) -> StreamClient:
    """Connect and wait until the server has started handling this connection.

    ``handled_before`` is the number of ``handle`` events seen so far; the handler then
    blocks in ``readline`` until ``release``. Returns the client (close it yourself).
    """
    client = await run.connect()
    started = await run.wait_event("handle", handled_before + 1, timeout=5.0)
    run.expect(started, f"request {handled_before + 1} is handled while the others are held")
    return client


async def release(client: StreamClient, word: bytes = b"go", timeout: float = 5.0) -> Any:
    """Let a held handler finish: send its line, read the reply until EOF, close."""
    await client.send(word + b"\n")
    received = await client.recv_until_eof(timeout=timeout)
    client.close()
    return received.summary()


async def reply_order(run: Run, second_wait: float) -> dict[str, Any]:
    """Two clients: the first is held open, the second sends at once.

    The second reply is awaited for ``second_wait`` seconds while the first is still held
    (long for a concurrent server: the wait ends when it comes; short for a serial one:
    it shows that it does not come); then the first client is released and the rest read.
    Returns the order in which the replies arrived and the replies.
    """
    first = await hold(run, 0)
    order = []
    async with await run.connect() as second:
        await second.send(b"b\n")
        early = await second.recv_until_eof(timeout=second_wait)
        data = early.data
        end = early.end
        if end == "eof":
            order.append("b")
        a_reply = await release(first, b"a")
        order.append("a")
        if end != "eof":
            late = await second.recv_until_eof(timeout=5.0)
            data += late.data
            end = late.end
            order.append("b")
    return {
        "order": order,
        "a": a_reply,
        "b": {"data": data.decode("latin-1"), "end": end},
    }


async def close_while_held(run: Run, blocks: bool, what: str) -> None:
    """Hold one request, stop serve_forever, then server_close while it is still held.

    Records what server_close did within a wait (``NOT_YET`` when the stdlib ``blocks``,
    else ``PROMPTLY``) under ``server_close while <what>``, the held client's reply after
    its release, and the final outcome of server_close.
    """
    serve = run.serve_forever(0.05)
    client = await hold(run, 0)
    run.record("shutdown", dict(await run.shutdown()))
    run.record("serve_forever", dict(await run.outcome(serve)))
    close = run.start("server_close")
    run.record(
        f"server_close while {what}",
        dict(await run.outcome(close, NOT_YET if blocks else PROMPTLY)),
    )
    run.record("held reply", await release(client))
    run.record("server_close at last", dict(await run.outcome(close, 5.0)))
