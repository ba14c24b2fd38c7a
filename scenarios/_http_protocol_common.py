"""What the HTTP protocol catalog modules share: server specs, a serve/stop frame, tables
of single exchanges, and the deliberate differences of the reference as ``Known`` entries.

The byte exchange itself is ``scenarios._http_common.exchange``; this module only frames
it: start ``serve_forever``, run the exchanges, then wait for the server to close every
connection, so that every hook event and log line
of the scenario is in the observation before the process is stopped).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from harness.scenario import Known, Run, ServerSpec, scenario
from scenarios._http_common import SCHEDULES, exchange

HANDLERS = "scenarios.handlers.http_protocol"

#: serve_forever's poll interval: shutdown() waits up to this long.
POLL = 0.05
#: How long a read waits for more bytes on a connection the server may keep open.
IDLE = 0.3


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

#: The defects a later CPython fixed and the reference always fixes: issue -> (the first
#: release of each branch that carries the fix, summary). Used until
#: ``implementation.deviations`` says otherwise (it is the single source when present).
_FALLBACK_FIXES: dict[str, tuple[tuple[tuple[int, ...], ...], str]] = {
    "gh-70765": (
        ((3, 13, 10), (3, 14, 1), (3, 15, 0)),
        "a two-word HTTP/0.9 request is answered at once, without waiting for a header block",
    ),
    "gh-54930": (
        ((3, 13, 15), (3, 14, 7), (3, 15, 0)),
        "an error reply to a malformed request line carries a status line and headers",
    ),
}


def _fixed_in_from_deviations(issue: str) -> tuple[tuple[int, ...], ...] | None:
    """The releases carrying the fix for ``issue``, as listed by the reference, if it does."""
    try:
        from implementation import deviations  # type: ignore[attr-defined]
    except ImportError:
        return None
    entries = getattr(deviations, "DEVIATIONS", None)
    if entries is None:
        return None
    items = entries.values() if isinstance(entries, dict) else entries
    for entry in items:
        fields = (
            entry if isinstance(entry, dict) else vars(entry) if hasattr(entry, "__dict__") else {}
        )
        if not fields and dataclasses.is_dataclass(entry):
            fields = dataclasses.asdict(entry)
        ids = [str(fields.get(k, "")) for k in ("issue", "id", "gh", "issues")]
        if not any(issue in value for value in ids):
            continue
        for key in ("fixed_in", "releases", "versions", "fixed"):
            value = fields.get(key)
            if value:
                return tuple(_version_tuple(v) for v in value)
    return None


def _version_tuple(value: Any) -> tuple[int, ...]:
    """``"3.13.10"``, ``"3.15.0a1"`` or ``(3, 13, 10)`` as a tuple of three ints."""
    if isinstance(value, str):
        match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", value.strip())
        if match is None:
            raise ValueError(f"not a version: {value!r}")
        return tuple(int(part or 0) for part in match.groups())
    return tuple(value)


def fixed_in(issue: str) -> tuple[tuple[int, ...], ...]:
    """First release of each branch with the fix for ``issue``."""
    return _fixed_in_from_deviations(issue) or _FALLBACK_FIXES[issue][0]


def stdlib_lacks(issue: str) -> Callable[[tuple[int, ...]], bool]:
    """``applies`` for a Known: true when the stdlib of that Python lacks the fix."""
    releases = fixed_in(issue)

    def lacks(version: tuple[int, ...]) -> bool:
        version = tuple(version[:3])
        for first in releases:
            if tuple(first[:2]) == version[:2]:
                return version < tuple(first)
        newest = max(tuple(first[:2]) for first in releases)
        return version[:2] < newest

    return lacks


def fix(issue: str, keys: Sequence[str] = ("facts.*",)) -> Known:
    """The reference's deliberate fix of ``issue``, covering ``keys``."""
    return Known(
        tuple(keys),
        f"the reference has the fix: {_FALLBACK_FIXES[issue][1]}",
        issue=issue,
        applies=stdlib_lacks(issue),
    )


H09_FIX = fix("gh-70765")
STATUS_LINE_FIX = fix("gh-54930")


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
