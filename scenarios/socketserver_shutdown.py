"""shutdown(): in-flight requests, repeated and concurrent calls, the wrong thread, restart.

Facts S1-S4 (CPYTHON_BEHAVIOUR.md 2a). Calls that may block are started in threads of the
server process and waited for with a bound; "still pending after ``NOT_YET`` s" is an
observation.
"""

from __future__ import annotations

from harness.scenario import Known, ServerSpec, scenario
from scenarios._ss_concurrency_common import (
    COMMAND,
    HANDLERS,
    NOT_YET,
    PROMPTLY,
    WAIT_IN_SELECT,
    ask,
    hold,
    release,
)

FAMILY = "socketserver/shutdown"

TCP = ServerSpec("TCPServer", handler=COMMAND)
THREADING = ServerSpec("ThreadingTCPServer", handler=COMMAND)


@scenario(f"{FAMILY}/answers", server=TCP)
async def answers(run):
    """A TCPServer answers under serve_forever; shutdown then stops the loop."""
    serve = run.serve_forever(0.05)
    run.record("reply", await ask(run, b"hello"))
    run.record("shutdown", dict(await run.shutdown()))
    run.record("serve_forever", dict(await run.outcome(serve)))
    run.record("server_close", dict(await run.server_close()))
    run.record("connect after close", await _refused(run))


async def _refused(run) -> str:
    """What a new connection gets: the error's name, or "accepted"."""
    got = await run.try_connect()
    if isinstance(got, str):
        return got
    got.close()
    return "accepted"


@scenario(f"{FAMILY}/in_flight_threading", server=THREADING)
async def in_flight_threading(run):
    """ThreadingTCPServer: shutdown returns while a handler runs; that request still
    completes afterwards."""
    serve = run.serve_forever(0.05)
    client = await hold(run, 0)
    run.record("shutdown", dict(await run.shutdown()))
    run.record("serve_forever", dict(await run.outcome(serve)))
    run.record("in-flight reply", await release(client))
    run.record("server_close", dict(await run.server_close()))


@scenario(f"{FAMILY}/in_flight_sync", server=TCP)
async def in_flight_sync(run):
    """TCPServer: the handler runs inside serve_forever, so shutdown waits for it to end."""
    serve = run.serve_forever(0.05)
    client = await hold(run, 0)
    call = run.start("shutdown")
    run.record("shutdown while handling", dict(await run.outcome(call, NOT_YET)))
    run.record("in-flight reply", await release(client))
    run.record("shutdown at last", dict(await run.outcome(call, 5.0)))
    run.record("serve_forever", dict(await run.outcome(serve)))
    run.record("server_close", dict(await run.server_close()))


@scenario(f"{FAMILY}/twice", server=TCP)
async def twice(run):
    """shutdown twice: the second call returns at once; serve_forever started afterwards
    still serves (or returns at once when the second call left the request flag set)."""
    serve = run.serve_forever(0.05)
    run.record("first", dict(await run.shutdown()))
    run.record("serve_forever", dict(await run.outcome(serve)))
    run.record("second", dict(await run.shutdown(timeout=2.0)))
    again = run.serve_forever(0.05)
    run.record("serve_forever after the second", dict(await run.outcome(again, PROMPTLY)))
    run.record("reply", await ask(run, b"x", timeout=NOT_YET))
    run.record("third", dict(await run.shutdown(timeout=2.0)))
    run.record("serve_forever at last", dict(await run.outcome(again, 2.0)))
    run.record("server_close", dict(await run.server_close()))


@scenario(f"{FAMILY}/concurrent", server=TCP)
async def concurrent(run):
    """Two threads call shutdown at once: both return and serve_forever ends once."""
    serve = run.serve_forever(0.05)
    run.record("reply", await ask(run, b"x"))
    calls = [run.start("shutdown"), run.start("shutdown")]
    run.record("shutdowns", [dict(await run.outcome(c, 5.0)) for c in calls])
    run.record("serve_forever", dict(await run.outcome(serve)))
    run.record("server_close", dict(await run.server_close()))


@scenario(f"{FAMILY}/before_serve_forever", server=TCP)
async def before_serve_forever(run):
    """shutdown before serve_forever blocks; serve_forever then returns at once and
    releases it (S2)."""
    call = run.start("shutdown")
    run.record("shutdown alone", dict(await run.outcome(call, NOT_YET)))
    serve = run.serve_forever(0.05)
    run.record("serve_forever", dict(await run.outcome(serve, 5.0)))
    run.record("shutdown", dict(await run.outcome(call, 5.0)))
    run.record("server_close", dict(await run.server_close()))


@scenario(f"{FAMILY}/from_threading_handler", server=THREADING)
async def from_threading_handler(run):
    """A ThreadingTCPServer handler calls server.shutdown(): the loop stops and the
    handler's call returns."""
    serve = run.serve_forever(0.05)
    run.record("reply", await ask(run, b"shutdown"))
    run.record("serve_forever", dict(await run.outcome(serve)))
    run.record("server_close", dict(await run.server_close()))


@scenario(f"{FAMILY}/from_sync_handler", server=TCP)
async def from_sync_handler(run):
    """A TCPServer handler calls server.shutdown() inside serve_forever: a deadlock (S2);
    bounded here, and the server process is ended with the scenario."""
    serve = run.serve_forever(0.05)
    async with await run.connect() as client:
        await client.send(b"shutdown\n")
        first = await client.recv_until(b"\n", timeout=5.0)
        run.record("first line", first.summary())
        rest = await client.recv_until_eof(timeout=NOT_YET)
        run.record("rest", rest.summary())
    run.record("serve_forever", dict(await run.outcome(serve, 0.0)))


@scenario(f"{FAMILY}/serve_again", server=TCP)
async def serve_again(run):
    """serve_forever can run again after shutdown and serves as before (S4)."""
    for round_ in range(2):
        serve = run.serve_forever(0.05)
        run.record(f"reply {round_}", await ask(run, b"round%d" % round_))
        run.record(f"shutdown {round_}", dict(await run.shutdown()))
        run.record(f"serve_forever {round_}", dict(await run.outcome(serve)))
    run.record("server_close", dict(await run.server_close()))


def _error_type(outcome) -> object:
    """An outcome with only the exception type kept (messages name internals)."""
    if "raised" in outcome:
        return {"raised": outcome["raised"].split(":", 1)[0]}
    return dict(outcome)


@scenario(f"{FAMILY}/serve_after_close", server=TCP)
async def serve_after_close(run):
    """serve_forever after server_close raises ValueError at once (S3)."""
    run.record("server_close", dict(await run.server_close()))
    serve = run.serve_forever(0.05)
    outcome = await run.outcome(serve, 2.0)
    run.record("serve_forever", _error_type(outcome))
    if outcome.pending:
        run.record("shutdown", dict(await run.shutdown(timeout=2.0)))


@scenario(
    f"{FAMILY}/service_actions",
    server=ServerSpec(f"{HANDLERS}:ServiceCountingServer", handler=COMMAND),
)
async def service_actions(run):
    """serve_forever calls service_actions (at least once); handle_request does not."""
    run.record("handle_request reply", await _one_handle_request(run))
    run.record("calls during handle_request", await run.value("server.service_calls"))
    serve = run.serve_forever(0.05)
    run.record("called in serve_forever", await run.value("server.service_called.wait(5)"))
    run.record("stop", await run.stop_serving(serve))


async def _one_handle_request(run):
    async with await run.connect() as client:
        await client.send(b"x\n")
        await run.call("handle_request", timeout=5.0)
        return (await client.recv_until_eof(timeout=5.0)).summary()


SHUTDOWN_TIMED = """
import time
_started = time.monotonic()
server.shutdown()
_took = time.monotonic() - _started
result = "< 1 s" if _took < 1.0 else ">= 1 s"
"""


@scenario(
    f"{FAMILY}/latency",
    server=TCP,
    known=[
        Known(
            ("facts.shutdown took",),
            "the reference wakes serve_forever at once; the stdlib waits for the current "
            "poll (poll_interval) to end",
            issue="bpo-35017/gh-88932 (S1)",
        )
    ],
)
async def latency(run):
    """serve_forever(poll_interval=2): how long shutdown takes right after a request, when
    the loop has just begun a fresh poll (S1), measured in the server process once the loop is seen blocked in select."""
    serve = run.serve_forever(2.0)
    run.record("reply", await ask(run, b"x"))
    run.expect((await run.exec(WAIT_IN_SELECT)).get("returned"), "serve_forever is polling")
    run.record("shutdown took", (await run.exec(SHUTDOWN_TIMED, timeout=5.0)).get("returned"))
    run.record("serve_forever", dict(await run.outcome(serve, 5.0)))
    run.record("server_close", dict(await run.server_close()))


SHUTDOWN_REQUESTED = """
import time
_deadline = time.monotonic() + 2.0
while time.monotonic() < _deadline and not (
    getattr(server, "_BaseServer__shutdown_request", True)
    or server._BaseServer__is_shut_down.is_set()
):
    time.sleep(0.001)
"""


@scenario(f"{FAMILY}/no_request_after_shutdown", server=TCP)
async def no_request_after_shutdown(run):
    """A connection arriving while shutdown waits for the poll to end wakes the loop, which
    then stops without handling it (bpo-35017, S1); closing the server resets it."""
    serve = run.serve_forever(2.0)
    run.record("reply", await ask(run, b"x"))
    run.expect((await run.exec(WAIT_IN_SELECT)).get("returned"), "serve_forever is polling")
    call = run.start("shutdown")
    await run.exec(SHUTDOWN_REQUESTED)
    async with await run.connect() as client:
        await client.send(b"late\n")
        run.record("late request", (await client.recv_until_eof(timeout=NOT_YET)).summary())
        run.record("shutdown", dict(await run.outcome(call, 5.0)))
        run.record("serve_forever", dict(await run.outcome(serve, 5.0)))
        run.record("server_close", dict(await run.server_close()))
        run.record("late request after close", (await client.recv_until_eof()).summary())
