"""What the HTTP protocol catalog modules share: server specs, a serve/stop frame, tables
of single exchanges, and the deliberate differences of the reference as ``Known`` entries.

The byte exchange itself is ``scenarios._http_common.exchange``; this module only frames
it: start ``serve_forever``, run the exchanges, then wait for the server to close every
connection, so that every hook event and log line
of the scenario is in the observation before the process is stopped).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from harness.known import deviation
from harness.scenario import Known, Run, ServerSpec, scenario
from scenarios._http_common import SCHEDULES, exchange

HANDLERS = "scenarios.handlers.http_protocol"

#: serve_forever's poll interval: shutdown() waits up to this long.
POLL = 0.05
#: How long a read waits for more bytes on a connection the server may keep open.
IDLE = 0.5


def spec(
    handler: str = "Echo",
    *,
    protocol: str | None = None,
    threading: bool = False,
    **attrs: Any,
) -> ServerSpec:
    """An ``HTTPServer`` (or ``ThreadingHTTPServer``) running ``handler`` from
    ``scenarios.handlers.http_protocol``, with ``protocol_version`` and other handler
    attributes set."""
    handler_attrs = dict(attrs)
    if protocol is not None:
        handler_attrs["protocol_version"] = protocol
    server = "http.server:ThreadingHTTPServer" if threading else "http.server:HTTPServer"
    return ServerSpec(server, handler=f"{HANDLERS}:{handler}", handler_attrs=handler_attrs)


async def stop(run: Run, serve_id: int, connections: int) -> None:
    """Wait until the server has closed all ``connections``.

    ``close_request`` is the last hook of a connection, reached after the handler's log
    lines and the client's EOF, so every event and line of output of the scenario is in
    the observation when it returns. The server itself is not shut down: the process is
    stopped after the scenario (``shutdown`` would only add its poll interval).
    """
    del serve_id  # serve_forever runs until the process ends
    run.expect(
        await run.wait_event("close_request", connections, timeout=5),
        f"the server closes all {connections} connections",
    )


# -- deliberate differences of the reference ---------------------------------------------


#: gh-70765: a two-word HTTP/0.9 request is answered without waiting for headers.
H09_FIX = deviation("gh-70765", ("facts.reply",))
#: gh-54930: error replies to malformed request lines carry a status line.
STATUS_LINE_FIX = deviation("gh-54930", ("facts.reply",))


# -- tables of exchanges --------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Row:
    """One scenario made of one request on one connection, its reply recorded.

    ``name`` completes the id, ``doc`` is the description. The reply is read until EOF, or
    for ``idle`` seconds of silence; ``half_close`` shuts the client's write side after the
    request; ``schedule`` is one of ``SCHEDULES``. Several requests can be given as
    ``extra``: each is sent on its own connection after the first one's reply.
    """

    name: str
    request: bytes
    doc: str
    server: ServerSpec = dataclasses.field(default_factory=spec)
    schedule: str = "whole"
    idle: float | None = None
    half_close: bool = False
    known: tuple[Known, ...] = ()
    extra: tuple[bytes, ...] = ()
    stderr: str = "text"


def exchange_body(row: Row) -> Callable[[Run], Awaitable[None]]:
    """The scenario body of a ``Row``: serve, exchange, stop."""

    async def body(run: Run) -> None:
        serve = run.serve_forever(POLL)
        requests = (row.request, *row.extra)
        for index, request in enumerate(requests):
            record = await exchange(
                run,
                request,
                schedule=row.schedule,
                idle=row.idle,
                half_close=row.half_close,
            )
            run.record("reply" if index == 0 else f"reply{index + 1}", record)
            if index == 0 and STATUS_LINE_FIX in row.known:
                # The fix adds a status line and headers; the page itself must not change.
                text = record.get("reply")
                start = text.find("<!DOCTYPE") if isinstance(text, str) else -1
                run.record("page", text[start:] if start >= 0 else text)
        await stop(run, serve, len(requests))

    return body


def register_rows(family: str, rows: Iterable[Row], **options: Any) -> None:
    """Register one scenario ``http/<family>/<row.name>`` per row."""
    for row in rows:
        scenario(
            f"http/{family}/{row.name}",
            server=row.server,
            description=row.doc,
            known=row.known,
            stderr=row.stderr,
            **options,
        )(exchange_body(row))


def scheduled(rows: Iterable[Row], schedules: Sequence[str] = SCHEDULES) -> list[Row]:
    """Each row once per client schedule, ``<name>_<schedule>``."""
    out = []
    for row in rows:
        for schedule in schedules:
            out.append(
                dataclasses.replace(
                    row,
                    name=f"{row.name}_{schedule}",
                    doc=f"{row.doc} Sent {_SCHEDULE_WORDS[schedule]}.",
                    schedule=schedule,
                )
            )
    return out


_SCHEDULE_WORDS = {
    "whole": "in one piece",
    "bytewise": "one byte per send",
    "split": "in two pieces, split inside the request line",
}
