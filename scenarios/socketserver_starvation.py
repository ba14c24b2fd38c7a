"""A server process out of file descriptors: ``accept()`` fails with EMFILE.

The handler ``scenarios.handlers.ss_starvation:Hog`` takes every free descriptor of the
server process on request, holds them until the scenario releases them, then gives them
back. Meanwhile more clients connect (the kernel queues them) and send a line each.

What a client sees is the same on every target: nothing while the process is starved,
its echo once descriptors are free (no queued connection is lost), in either way they
come back (the hog's request ends, or only the descriptors are freed). What differs is
the server's CPU while starved: the stdlib retries ``accept()`` at once, on a listening
socket that stays readable, and spins; the reference pauses (deviation
``accept-emfile-spin``). The CPU is measured inside the server process over a wait of
``QUIET`` seconds for a reply that must not come, and recorded in two buckets, under or
over ``BUSY`` of one CPU, so that load on the machine cannot move it across.
"""

from __future__ import annotations

import contextlib

import trio

from harness.known import deviation
from harness.scenario import Run, ServerSpec, scenario

FAMILY = "socketserver/starvation"
HOG = "scenarios.handlers.ss_starvation"
#: Clients that connect while the server is starved: fewer than the listen backlog (5).
QUEUED = 3
#: How long the first queued client waits for a reply that must not come (the CPU window).
QUIET = 0.5
#: The share of one CPU that tells a spinning loop from a waiting one. A spinning loop
#: gets far more even on a loaded machine; the reference's pauses cost well under 1 %.
BUSY = 0.05
CPU_FACT = "server cpu while starved"
SPIN = deviation("accept-emfile-spin", ("facts." + CPU_FACT,))


def starving_spec() -> ServerSpec:
    """A ThreadingTCPServer running ``Hog``."""
    return ServerSpec("ThreadingTCPServer", handler=f"{HOG}:Hog")


async def cpu_seconds(run: Run) -> float | None:
    """The server process's CPU seconds so far (None if they could not be read)."""
    value = await run.value("__import__('time').process_time()")
    return value if isinstance(value, float) else None


async def starve(run: Run, command: bytes, stay: bool) -> None:
    """The shared body: starve the server, queue clients, measure, release, collect."""
    serve = run.serve_forever()
    async with contextlib.AsyncExitStack() as stack:
        hog = await stack.enter_async_context(await run.connect())
        await hog.send(command + b"\n")
        started = await hog.recv_until(b"\n", timeout=5.0)
        run.record("hog", started.summary())
        if started.data != b"starved\n":
            # This platform cannot starve the process: nothing else to observe.
            return
        queued = []
        for index in range(QUEUED):
            client = await stack.enter_async_context(await run.connect())
            await client.send(b"queued %d\n" % index)
            queued.append(client)
        before = await cpu_seconds(run)
        opened = trio.current_time()
        # The measurement window: a bounded wait for a reply that must not come.
        early = await queued[0].recv_some(timeout=QUIET)
        window = trio.current_time() - opened
        after = await cpu_seconds(run)
        run.record("first queued client while starved", early.end)
        run.expect(early.end == "timeout", "no queued client is answered while starved")
        if before is None or after is None:
            run.record(CPU_FACT, "unmeasured")
        else:
            share = (after - before) / window
            run.record(CPU_FACT, f"under {BUSY:.0%}" if share < BUSY else f"{BUSY:.0%} or more")
        await run.exec(f"__import__({HOG!r}, fromlist=['release']).release()")
        if stay:
            # The descriptors are back, and no request of the server has ended.
            run.record("hog after release", (await hog.recv_until(b"\n", timeout=5.0)).summary())
        for index, client in enumerate(queued):
            reply = await client.recv_until_eof(timeout=5.0)
            run.record(f"queued {index}", reply.summary())
            run.expect(
                reply.data == b"echo queued %d\n" % index and reply.end == "eof",
                f"queued client {index} is served once descriptors are free",
            )
        if stay:
            await run.exec(f"__import__({HOG!r}, fromlist=['finish']).finish()")
        run.record("hog at the end", (await hog.recv_until_eof(timeout=5.0)).summary())
    run.expect(
        await run.wait_event("close_request", 1 + QUEUED, timeout=5.0),
        "the server closes every connection",
    )
    run.record("stop", await run.stop_serving(serve))


@scenario(f"{FAMILY}/request_ends", server=starving_spec(), known=[SPIN], deadline=30.0)
async def request_ends(run):
    """ThreadingTCPServer out of descriptors: queued clients are served once the request
    that held them ends; the server's CPU while starved is bucketed (the stdlib spins)."""
    await starve(run, b"hog", stay=False)


@scenario(f"{FAMILY}/descriptors_freed", server=starving_spec(), known=[SPIN], deadline=30.0)
async def descriptors_freed(run):
    """Out of descriptors, then they are freed while every request stays open: queued
    clients are served all the same (the reference's pause ends by itself)."""
    await starve(run, b"hog-and-stay", stay=True)
