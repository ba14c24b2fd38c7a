"""ForkingMixIn: one child per request, max_children, reaping, block_on_close, errors.

Facts S17, S18, S19 (CPYTHON_BEHAVIOUR.md 2a). Children are counted with ``run.sample()``
(live children, zombies). Scenarios never kill anything: held handlers are released by
their clients, and every scenario ends with no child and no zombie left.
"""

from __future__ import annotations

from harness.scenario import SLOW, Known, ServerSpec, scenario
from scenarios._ss_concurrency_common import (
    COMMAND,
    DATAGRAM_COMMAND,
    NOT_YET,
    WATCH_EXIT_CODES,
    ask,
    children_of,
    close_while_held,
    hold,
    no_processes_left,
    release,
    reply_order,
)

FAMILY = "socketserver/forking"

#: The stdlib reaps only in service_actions/handle_timeout; the reference reaps a child as
#: soon as it exits.
REAPS_AT_ONCE = Known(
    ("facts.zombies*",),
    "the reference reaps a finished child at once; the stdlib leaves it a zombie until "
    "service_actions (serve_forever) or handle_timeout runs",
    issue="gh-90093/S17",
)


def forking_spec(server: str = "ForkingTCPServer", **attrs) -> ServerSpec:
    """A forking server running ``Command`` with ``attrs`` as server class attributes."""
    return ServerSpec(server, handler=COMMAND, server_attrs=attrs)


async def _all_gone(run, stop=None) -> dict[str, int]:
    """Stop serving (if ``stop`` is a serve_forever id), then wait for no child left."""
    if stop is not None:
        run.record("stop", await run.stop_serving(stop))
    after = children_of(await run.settle(no_processes_left))
    run.expect(after == {"children": 0, "zombies": 0}, "no child and no zombie is left")
    return after


async def _exits_reported(run, count: int) -> None:
    """Wait (bounded) until ``count`` children have reported their exit code."""
    await run.wait_event("note", count, timeout=2.0)


@scenario(f"{FAMILY}/answers", server=forking_spec())
async def answers(run):
    """A ForkingTCPServer answers one request in a forked child, then stops cleanly."""
    serve = run.serve_forever(0.05)
    run.record("reply", await ask(run, b"hello"))
    run.record("after close", await _all_gone(run, serve))


@scenario(f"{FAMILY}/concurrent_clients", server=forking_spec(), stderr="sorted")
async def concurrent_clients(run):
    """A ForkingTCPServer answers a second client while the first is still held open."""
    serve = run.serve_forever(0.05)
    run.record("replies", await reply_order(run, second_wait=5.0))
    run.record("after close", await _all_gone(run, serve))


@scenario(f"{FAMILY}/child_per_request", server=forking_spec())
async def child_per_request(run):
    """Each of three requests is handled in a child of its own, never in the server."""
    serve = run.serve_forever(0.05)
    pids = []
    for _ in range(3):
        reply = await ask(run, b"pid")
        data = reply["data"]
        pids.append(int(data[4:]) if data.startswith("pid=") else data)
    run.record("distinct handler pids", len(set(pids)))
    run.record("handled in the server process", run.agent.pid in pids)
    run.record("after close", await _all_gone(run, serve))


@scenario(f"{FAMILY}/max_children", server=forking_spec(max_children=2), stderr="sorted")
async def max_children(run):
    """max_children=2: with two requests held, a third is not handled until a child exits."""
    serve = run.serve_forever(0.05)
    first = await hold(run, 0)
    second = await hold(run, 1)
    third = await run.connect()
    await third.send(b"c\n")
    run.record(
        "third handled while two held",
        await run.wait_event("handle", 3, timeout=NOT_YET),
    )
    run.record("first reply", await release(first, b"a"))
    run.record("third handled after one exit", await run.wait_event("handle", 3, timeout=5.0))
    run.record("third reply", (await third.recv_until_eof(timeout=5.0)).summary())
    third.close()
    run.record("second reply", await release(second, b"b"))
    run.record("after close", await _all_gone(run, serve))


@scenario(f"{FAMILY}/zombies_serve_forever", server=forking_spec())
async def zombies_serve_forever(run):
    """In a serve_forever loop finished children are reaped: no zombie stays (S17)."""
    serve = run.serve_forever(0.05)
    run.record("replies", [await ask(run, b"r%d" % i) for i in range(3)])
    serving = children_of(await run.settle(no_processes_left))
    run.record("while serving", serving)
    run.record("after close", await _all_gone(run, serve))


async def _handle_requests(run, count: int) -> list:
    """``count`` requests, each served by one ``handle_request`` call."""
    replies = []
    for i in range(count):
        async with await run.connect() as client:
            await client.send(b"r%d\n" % i)
            handled = await run.call("handle_request", timeout=5.0)
            reply = (await client.recv_until_eof(timeout=5.0)).summary()
            replies.append({"handle_request": dict(handled), "reply": reply})
    return replies


@scenario(f"{FAMILY}/zombies_handle_request", server=forking_spec(), known=[REAPS_AT_ONCE])
async def zombies_handle_request(run):
    """In a handle_request loop the stdlib leaves a zombie per request, even while the next
    handle_request waits, until server_close reaps them (S17)."""
    run.record("requests", await _handle_requests(run, 3))
    await run.settle(lambda s: s["children"] == 0)
    waiting = run.start("handle_request")
    reaped = await run.settle(lambda s: s["zombies"] == 0, timeout=0.5)
    run.record("zombies while handle_request waits", reaped["zombies"])
    run.record("fourth request", await ask(run, b"r3"))
    run.record("handle_request", dict(await run.outcome(waiting, 5.0)))
    run.record("server_close", dict(await run.server_close()))
    run.record("after close", await _all_gone(run))


@scenario(f"{FAMILY}/handle_timeout_reaps", server=forking_spec(timeout=0.2))
async def handle_timeout_reaps(run):
    """A handle_request that times out (timeout=0.2) calls handle_timeout, which reaps."""
    run.record("requests", await _handle_requests(run, 2))
    await run.settle(lambda s: s["children"] == 0)
    run.record("idle handle_request", dict(await run.call("handle_request", timeout=5.0)))
    run.record("after the timeout", children_of(await run.sample()))
    run.record("server_close", dict(await run.server_close()))
    run.record("after close", await _all_gone(run))


async def _close_while_child_runs(run, blocks: bool):
    """Hold one request in a child, stop serve_forever, then server_close."""
    await close_while_held(run, blocks, "child runs")


@scenario(f"{FAMILY}/block_on_close_true", server=forking_spec())
async def block_on_close_true(run):
    """block_on_close=True (default): server_close waits for the running child (S17)."""
    await _close_while_child_runs(run, blocks=True)
    run.record("right after close", children_of(await run.sample()))
    run.record("after close", await _all_gone(run))


@scenario(
    f"{FAMILY}/block_on_close_false",
    server=forking_spec(block_on_close=False),
    known=[REAPS_AT_ONCE],
)
async def block_on_close_false(run):
    """block_on_close=False: server_close returns at once and the child still answers;
    collect_children(blocking=True) reaps it afterwards."""
    await _close_while_child_runs(run, blocks=False)
    exited = await run.settle(lambda s: s["children"] == 0 and s["zombies"] in (0, 1))
    run.record("zombies once the child exited", exited["zombies"])
    run.record(
        "collect_children(blocking=True)",
        dict(await run.call("collect_children", blocking=True)),
    )
    run.record("after collect", await _all_gone(run))


@scenario(f"{FAMILY}/handle_error_in_child", server=forking_spec())
async def handle_error_in_child(run):
    """An exception in a child: handle_error runs there (stderr), the child exits with 1;
    a good request's child exits with 0 (S19)."""
    await run.exec(WATCH_EXIT_CODES)
    serve = run.serve_forever(0.05)
    run.record("failing request", await ask(run, b"raise"))
    run.record("next request", await ask(run, b"after"))
    await _exits_reported(run, 2)
    run.record("after close", await _all_gone(run, serve))


@scenario(f"{FAMILY}/system_exit_in_child", server=forking_spec())
async def system_exit_in_child(run):
    """SystemExit in a child: no handle_error, no output, exit status 1; serving goes on."""
    await run.exec(WATCH_EXIT_CODES)
    serve = run.serve_forever(0.05)
    run.record("exiting request", await ask(run, b"exit"))
    run.record("next request", await ask(run, b"after"))
    await _exits_reported(run, 2)
    run.record("after close", await _all_gone(run, serve))


@scenario(
    f"{FAMILY}/active_children",
    server=forking_spec(),
)
async def active_children(run):
    """active_children counts held children; collect_children() empties it once they exit."""
    count = "len(server.active_children or ())"
    run.record("active_children before", await run.value(count))
    clients = []
    for i in range(2):
        client = await run.connect()
        run.record(f"handle_request {i}", dict(await run.call("handle_request", timeout=5.0)))
        clients.append(client)
    await run.wait_event("handle", 2, timeout=5.0)
    run.record("active_children while held", await run.value(count))
    run.record("replies", [await release(c, b"x%d" % i) for i, c in enumerate(clients)])
    await run.settle(lambda s: s["children"] == 0)
    run.record("active_children once exited", await run.value(count))
    run.record("collect_children()", dict(await run.call("collect_children")))
    run.record("active_children after collect", await run.value(count))
    run.record("after collect", await _all_gone(run))
    run.record("server_close", dict(await run.server_close()))


@scenario(
    f"{FAMILY}/max_children_handle_request",
    server=forking_spec(max_children=2),
    known=[
        Known(
            ("facts.third handle_request within the wait",),
            "the reference holds max_children in handle_request loops too; the stdlib "
            "checks it only in serve_forever's service_actions",
            issue="gh-90093/S18",
        )
    ],
    tags=(SLOW,),  # the reference: the 1 s wait for the third handle_request
)
async def max_children_handle_request(run):
    """max_children=2 in a handle_request loop: does a third handle_request fork while
    two children are held? (the stdlib: yes, it checks the limit only in serve_forever)"""
    held = []
    for _ in range(2):
        client = await run.connect()
        await run.call("handle_request", timeout=5.0)
        held.append(client)
    await run.wait_event("handle", 2, timeout=5.0)
    async with await run.connect() as third:
        await third.send(b"c\n")
        call = run.start("handle_request")
        # The stdlib returns at once (a fork); only an implementation that waits pays 1 s.
        within = await run.outcome(call, 1.0)
        run.record("third handle_request within the wait", dict(within))
        run.record("held replies", [await release(c, b"x%d" % i) for i, c in enumerate(held)])
        run.record("third handle_request", dict(await run.outcome(call, 5.0)))
        run.record("third reply", (await third.recv_until_eof(timeout=5.0)).summary())
    run.record("server_close", dict(await run.server_close()))
    run.record("after close", await _all_gone(run))


@scenario(f"{FAMILY}/udp", server=ServerSpec("ForkingUDPServer", handler=DATAGRAM_COMMAND))
async def udp(run):
    """ForkingUDPServer answers each datagram from a child of its own."""
    serve = run.serve_forever(0.05)
    replies = []
    async with await run.datagram() as client:
        for i in range(2):
            await client.send(b"d%d" % i)
            reply = await client.recv(timeout=5.0)
            replies.append(None if reply is None else reply.decode("latin-1"))
    run.record("replies", replies)
    run.record("after close", await _all_gone(run, serve))
