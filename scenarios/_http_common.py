"""What the HTTP catalog modules share: an exchange of raw bytes, and its normalized record.

HTTP scenarios compare replies byte for byte after normalizing only what must vary: the
Date and Last-Modified values and the Server version (each checked for format first: a
malformed one stays and shows as a difference).
"""

from __future__ import annotations

from typing import Any

from harness.clients import Received, render_bytes
from harness.observation import normalize_http
from harness.scenario import Run

#: Client schedules every parser is fed with (h11's habit): the request in one send, one
#: byte per send, and in two pieces split inside the request line.
SCHEDULES = ("whole", "bytewise", "split")

#: How long ``exchange`` waits for the first byte of a reply when it reads with ``idle``:
#: long enough for a loaded machine, paid in full only by a server that stays silent.
FIRST_BYTE = 2.0


def reply_record(received: Received, inline: int = 16384) -> dict[str, Any]:
    """A reply as a fact: the normalized text and how it ended.

    A reply longer than ``inline`` keeps its head (up to the first blank line) as
    normalized text and is summarised after it by length and digest, so that a Date
    header in the head does not make a long reply differ from run to run.
    """
    data = received.data
    if len(data) <= inline:
        return {"reply": normalize_http(data.decode("latin-1")), "end": received.end}
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep or len(head) > inline:
        head, body = b"", data
    return {
        "reply": normalize_http((head + sep).decode("latin-1")),
        "body": render_bytes(body, inline=0),
        "end": received.end,
    }


async def exchange(
    run: Run,
    request: bytes,
    *,
    schedule: str = "whole",
    timeout: float = 5.0,
    idle: float | None = None,
    half_close: bool = False,
) -> dict[str, Any]:
    """Send ``request`` on a new connection and read the reply until EOF.

    ``idle`` ends the read after that long without bytes (``end="idle"``): for keep-alive
    replies and for servers that wait for more; the first byte gets ``FIRST_BYTE``.
    ``half_close`` shuts the client's write side after sending. Returns the record of
    ``reply_record`` plus ``sent`` (``ok``, or how sending failed when no reply came).
    """
    split: Any = None
    if schedule == "bytewise":
        split = 1
    elif schedule == "split":
        split = [max(1, min(len(request) - 1, 5))]
    elif schedule != "whole":
        raise ValueError(f"schedule={schedule!r}: use one of {', '.join(SCHEDULES)}")
    async with await run.connect() as client:
        sent = await client.send(request, split=split)
        if half_close:
            client.shutdown_write()
        first_byte = None if idle is None else max(idle, FIRST_BYTE)
        received = await client.recv_until_eof(timeout=timeout, idle=idle, first_byte=first_byte)
    record = reply_record(received)
    if sent != "ok" and received.data:
        # The server answered and closed while the request was still going out: whether
        # its last bytes were out first is a matter of timing (of the machine's load),
        # not of the server, whose reply is what is compared.
        sent = "ok"
    record["sent"] = sent
    return record
