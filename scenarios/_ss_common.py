"""What the socketserver catalog modules (tcp, stream_handler, udp, unix, ipv6) share.

Handler paths, a concurrent send-and-read exchange (an echo of megabytes deadlocks if the
client sends everything before reading), and small recorders for replies and outcomes.
"""

from __future__ import annotations

import json
from typing import Any

import trio

from harness.clients import Received, StreamClient
from harness.scenario import Run

HANDLERS = "scenarios.handlers.ss_basic"
STREAM_ECHO = "scenarios.handlers.stream:Echo"
STREAM_ECHO_LINE = "scenarios.handlers.stream:EchoLine"
STREAM_RAISE = "scenarios.handlers.stream:Raise"
DATAGRAM_ECHO = "scenarios.handlers.datagram:Echo"


#: serve_forever's poll interval in these scenarios: short, so shutdown() returns quickly.
POLL = 0.05


def handler(name: str) -> str:
    """``module:Class`` of a handler (or server subclass) in ``scenarios.handlers.ss_basic``."""
    return f"{HANDLERS}:{name}"


def pattern(size: int) -> bytes:
    """``size`` bytes of a fixed, non-repeating-at-small-scale pattern."""
    block = bytes((i * 7 + i // 256) % 256 for i in range(4096))
    return (block * (size // len(block) + 1))[:size]


async def exchange(
    client: StreamClient,
    data: bytes,
    *,
    split: Any = None,
    pause: float = 0.0,
    half_close: bool = True,
    timeout: float = 10.0,
    chunk: int = 65536,
    read_pause: float = 0.0,
) -> tuple[str, Received]:
    """Send ``data`` while reading the reply until EOF, concurrently.

    Returns how sending ended (``ok``, ``reset``, ``broken``) and what was read. With
    ``half_close`` the client shuts its write side once everything is sent.
    """
    sent = "not sent"

    async def sender() -> None:
        nonlocal sent
        sent = await client.send(data, split=split, pause=pause)
        if half_close and sent == "ok":
            try:
                client.shutdown_write()
            except OSError as exc:
                sent = f"shutdown_write: {type(exc).__name__}"

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sender)
        received = await client.recv_until_eof(timeout=timeout, chunk=chunk, pause=read_pause)
    return sent, received


async def stream_exchange(run: Run, data: bytes, **options: Any) -> dict[str, Any]:
    """A new connection, ``exchange``, closed; a record of what was sent and received."""
    async with await run.connect() as client:
        sent, received = await exchange(client, data, **options)
    return {"sent": sent, **received.summary()}


def json_reply(received: Received) -> Any:
    """The JSON document a describing handler sent, or the raw summary if it is not JSON."""
    try:
        return {"json": json.loads(received.data.decode("ascii")), "end": received.end}
    except (UnicodeDecodeError, ValueError):
        return received.summary()


def json_text(text: str | None) -> Any:
    """A datagram reply holding JSON, decoded; anything else as it is."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def outcome(value: Any) -> Any:
    """An ``Outcome`` (or any value) as a plain JSON value for ``run.record``."""
    return dict(value) if isinstance(value, dict) else value


async def serve(run: Run) -> int:
    """Start ``serve_forever`` with the short poll interval; returns the command id."""
    return run.serve_forever(POLL)


async def stop(run: Run, serve_id: int) -> None:
    """Shut down, wait for serve_forever, close; record all three outcomes as ``stop``."""
    run.record("stop", await run.stop_serving(serve_id))


def names(events: list[dict[str, Any]]) -> list[str]:
    """Event names with their context, e.g. ``handle_error[serve]``, in arrival order."""
    return [f"{e.get('ev')}[{e.get('ctx')}]" for e in events]


async def slow_read_mib(run: Run) -> None:
    """Ask a ``SendBig`` handler for 1 MiB and read it 16 KiB at a time with pauses:
    records what was sent and received, and expects every byte, in order."""
    serve_id = await serve(run)
    size = 1024 * 1024
    async with await run.connect() as client:
        sent, received = await exchange(
            client, b"%d\n" % size, half_close=False, chunk=16384, read_pause=0.002
        )
    expected = (bytes(range(256)) * (size // 256))[:size]
    run.record("sent", sent)
    run.record("reply", received.summary())
    run.expect(received.data == expected, "the slow reader gets the whole 1 MiB in order")
    await stop(run, serve_id)
