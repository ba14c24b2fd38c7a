"""Replies over one kept-alive connection: the same bytes, without the stdlib's stall.

Each scenario sends a series of requests on one HTTP/1.1 connection, each after the
previous reply is complete, and records every reply (normalized like every HTTP reply of
the catalog): small files, HEAD, a directory listing, a redirect, a 304, a large file, an
empty file, and last a 404, which closes the connection. Handlers are the plain
``SimpleHTTPRequestHandler`` and subclasses that override what sits between a reply's
header block and its body (``end_headers``, ``copyfile``, ``send_head``), a buffered
``wfile``, ``TCP_NODELAY``, and a ``BaseHTTPRequestHandler`` writing header block and
body itself.

The stdlib writes the header block and the body in two sends: Nagle's algorithm holds the
body back until the client acknowledges the header block, and the client delays that
acknowledgement (40 ms on Linux) while it waits for the rest, so each reply after the
first takes about 40 ms. The reference sends exactly the same bytes without that wait
(deviation ``keepalive-nagle-stall``). Where the stdlib stalls, the ``timing`` fact
buckets the median time of the small replies 2 to ``TIMED`` (the first never waits: a new
connection acknowledges at once) at ``STALL``, below what one delayed acknowledgement
costs: the stdlib's is always over it, however loaded the machine; the reference's is far
under it unless other work on the machine slows every reply down (then both read
``stalled``, and the result is ``same``). Series where the stdlib does not stall (a
buffered ``wfile``, ``TCP_NODELAY``) record no timing: load alone could move it.
"""

from __future__ import annotations

import dataclasses
import re
import statistics
from typing import Any

import trio

from harness.clients import Received, StreamClient
from harness.known import deviation
from harness.scenario import Run, ServerSpec, scenario
from scenarios._http_common import reply_record
from scenarios._http_files_common import MTIME_HTTP, Dir, File, get, open_site
from scenarios._http_protocol_common import stop

FAMILY = "http/keepalive_replies"
REPLIES = "scenarios.handlers.http_replies"
#: Small GETs at the start of every series, all but the first timed.
TIMED = 8
#: Median time per timed reply that tells a stalled series from one that is not.
STALL = 0.020
#: How long one reply may take to arrive in full.
REPLY_TIMEOUT = 5.0
NAGLE = deviation("keepalive-nagle-stall", ("facts.timing",))

TREE = (
    File("a.txt", b"hello a\n"),
    File("big.bin", lambda: bytes(range(256)) * 1200),
    File("empty.txt", b""),
    File("sub/b.txt", b"in sub\n"),
    Dir("sub/deeper"),
)


def request(path: str, *headers: str, method: str = "GET") -> bytes:
    """An HTTP/1.1 request with a Host header."""
    return get(path, "Host: h", *headers, method=method, version="HTTP/1.1")


@dataclasses.dataclass(frozen=True)
class Series:
    """One scenario: ``TIMED`` GETs of ``timed``, then ``rest`` as (request, HEAD?, status)
    pairs; the last one closes the connection. ``stalls``: whether the stdlib stalls on
    it, so that the timing is recorded."""

    name: str
    doc: str
    handler: str
    timed: bytes
    rest: tuple[tuple[bytes, bool, int], ...]
    handler_attrs: dict[str, Any] = dataclasses.field(default_factory=dict)
    stalls: bool = True


FILE_REQUESTS = (
    (request("/a.txt", method="HEAD"), True, 200),
    (request("/sub/"), False, 200),
    (request("/sub"), False, 301),
    (request("/a.txt", f"If-Modified-Since: {MTIME_HTTP}"), False, 304),
    (request("/big.bin"), False, 200),
    (request("/empty.txt"), False, 200),
    (request("/missing.txt"), False, 404),
)
FILES = f"{REPLIES}:Files"


def files_series(
    name: str, doc: str, handler: str = FILES, stalls: bool = True, **attrs: Any
) -> Series:
    """A series of file requests served by ``handler``."""
    return Series(name, doc, handler, request("/a.txt"), FILE_REQUESTS, attrs, stalls)


SERIES = [
    files_series("files", "SimpleHTTPRequestHandler as it is."),
    files_series(
        "cors_end_headers",
        "end_headers overridden to add a header (the usual CORS recipe).",
        f"{REPLIES}:CorsFiles",
    ),
    files_series(
        "copyfile_small_pieces",
        "copyfile overridden to write the body 7 bytes at a time.",
        f"{REPLIES}:SmallPieceFiles",
    ),
    files_series(
        "send_head_wrapped",
        "send_head overridden (delegating to the original).",
        f"{REPLIES}:WrappedSendHead",
    ),
    files_series(
        "buffered_wfile",
        "wbufsize -1: wfile is buffered and flushed once per request (no stall anywhere).",
        stalls=False,
        wbufsize=-1,
    ),
    files_series(
        "nodelay",
        "disable_nagle_algorithm True: TCP_NODELAY from the start (no stall anywhere).",
        stalls=False,
        disable_nagle_algorithm=True,
    ),
    Series(
        "two_writes",
        "A BaseHTTPRequestHandler whose do_GET writes the header block, then the body.",
        f"{REPLIES}:TwoWrites",
        request("/x"),
        (
            (request("/x", method="HEAD"), True, 200),
            (request("/last", "Connection: close"), False, 200),
        ),
    ),
]


def _reply_size(data: bytes, head_only: bool) -> int | None:
    """The length of the reply at the start of ``data`` once it is all there, else None."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = data[:end]
    status = head.split(b" ", 2)[1:2]
    body = 0
    if not head_only and status != [b"304"]:
        length = re.search(rb"\r\ncontent-length:[ \t]*(\d+)", head, re.I)
        body = int(length.group(1)) if length else 0
    size = end + 4 + body
    return size if len(data) >= size else None


async def read_reply(
    client: StreamClient, pending: bytes, head_only: bool
) -> tuple[Received, bytes]:
    """Read one reply (framed by its ``Content-Length``) after ``pending`` bytes already
    read; returns it (end ``complete``, or how the read stopped) and what followed it."""
    deadline = trio.current_time() + REPLY_TIMEOUT
    data = pending
    while True:
        size = _reply_size(data, head_only)
        if size is not None:
            return Received(data[:size], "complete"), data[size:]
        got = await client.recv_some(timeout=max(0.0, deadline - trio.current_time()))
        if got.end != "data":
            return Received(data, got.end), b""
        data += got.data


def status_of(received: Received) -> int | None:
    """The status code of a reply, or None."""
    match = re.match(rb"HTTP/1\.[01] (\d{3}) ", received.data)
    return int(match.group(1)) if match else None


def series_body(series: Series):
    """The scenario body of a ``Series``."""

    async def body(run: Run) -> None:
        # Serves the tree; the requests go on one connection of our own.
        await open_site(run, TREE)
        async with await run.connect() as client:
            pending = b""
            durations = []
            for index in range(TIMED):
                sent_at = trio.current_time()
                await client.send(series.timed)
                reply, pending = await read_reply(client, pending, head_only=False)
                durations.append(trio.current_time() - sent_at)
                run.record(f"reply {index + 1}", reply_record(reply))
                run.expect(status_of(reply) == 200, f"reply {index + 1} is a 200")
            if series.stalls:
                typical = statistics.median(durations[1:])
                run.record(
                    "timing",
                    f"under {STALL * 1000:g} ms a reply" if typical < STALL else "stalled",
                )
            last = len(series.rest) - 1
            for offset, (sent, head_only, code) in enumerate(series.rest):
                number = TIMED + offset + 1
                await client.send(sent)
                reply, pending = await read_reply(client, pending, head_only)
                run.record(f"reply {number}", reply_record(reply))
                run.expect(status_of(reply) == code, f"reply {number} is a {code}")
                if offset == last:
                    after = await client.recv_until_eof(timeout=REPLY_TIMEOUT)
                    run.record("after the last reply", after.summary())
        await stop(run, 0, 1)

    return body


for _series in SERIES:
    scenario(
        f"{FAMILY}/{_series.name}",
        server=ServerSpec(
            "http.server:HTTPServer",
            handler=_series.handler,
            handler_attrs={"protocol_version": "HTTP/1.1", **_series.handler_attrs},
        ),
        description=f"Kept-alive replies, same bytes, no stall: {_series.doc}",
        known=[NAGLE] if _series.stalls else [],
    )(series_body(_series))
