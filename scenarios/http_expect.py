"""``Expect: 100-continue`` (H15): when the interim ``100 Continue`` is sent, what a
``handle_expect_100`` override can do, and other ``Expect`` values.

The client behaves like a careful one: it sends the header block, waits a short while for
an interim reply, sends the body only if no final reply came, then reads to EOF. Every
request says ``Connection: close`` so that the read ends with the server's close. The
handler (``ExpectLogged``) reports in its body whether ``handle_expect_100`` ran.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from harness.clients import Received
from harness.scenario import scenario
from scenarios._http_common import reply_record
from scenarios._http_protocol_common import IDLE, POLL, Row, register_rows, spec, stop

FAMILY = "expect"

BODY = b"body-of-the-post"


def head(version: str = "1.1", expect: str | None = "100-continue", method: str = "POST") -> bytes:
    """A header block announcing BODY, with ``Expect: <expect>`` unless None."""
    text = f"{method} /upload HTTP/{version}\r\nHost: h\r\nContent-Length: {len(BODY)}\r\n"
    if expect is not None:
        text += f"Expect: {expect}\r\n"
    return (text + "Connection: close\r\n\r\n").encode("latin-1")


@dataclasses.dataclass(frozen=True)
class Case:
    """One careful-client exchange: ``head`` first, the body after the interim wait."""

    name: str
    head: bytes
    doc: str
    handler: str = "ExpectLogged"
    protocol: str = "HTTP/1.1"
    split: Any = None
    send_body: bool = True


CASES = [
    Case("sanity", head(), "HTTP/1.1 both sides: 100 Continue before the body, then 200 (H15)."),
    Case(
        "request10_server11",
        head("1.0"),
        "An HTTP/1.0 request's Expect is ignored: no 100, handle_expect_100 not called (H15).",
    ),
    Case(
        "request11_server10",
        head(),
        "A handler with protocol_version HTTP/1.0 ignores Expect: no 100 (H15).",
        protocol="HTTP/1.0",
    ),
    Case(
        "request10_server10",
        head("1.0"),
        "HTTP/1.0 on both sides: Expect is ignored (H15).",
        protocol="HTTP/1.0",
    ),
    Case(
        "refused",
        head(),
        "handle_expect_100 refuses with send_error(417) and returns False: no do_POST (H15).",
        handler="RefuseExpect",
    ),
    Case("odd_case", head(expect="100-Continue"), "The Expect value is case-insensitive."),
    Case(
        "other_value",
        head(expect="something-else"),
        "An unknown expectation is ignored (no 417): the request is served.",
    ),
    Case(
        "list_value",
        head(expect="100-continue, foo"),
        "'100-continue, foo' is compared whole: not a 100-continue, no interim reply.",
    ),
    Case(
        "with_get",
        head(method="GET"),
        "Expect on a GET: 100 Continue too; the client never sends the body, the GET "
        "handler never reads one.",
        send_body=False,
    ),
    Case(
        "bytewise",
        head(),
        "The header block sent one byte at a time: 100 Continue once it is complete.",
        split=1,
    ),
]


def careful_body(case: Case):
    """Send the head, wait up to IDLE for an interim reply, then the body, then read."""

    async def body(run) -> None:
        serve = run.serve_forever(POLL)
        async with await run.connect() as client:
            await client.send(case.head, split=case.split)
            interim = await client.recv_until(b"\r\n\r\n", timeout=IDLE)
            # Only the first line and how the wait ended are stable: what else came with
            # it depends on how the server's writes were cut into segments.
            first_line = interim.data.split(b"\r\n", 1)[0].decode("latin-1")
            run.record("before body", {"first line": first_line, "end": interim.end})
            continued = interim.data.startswith(b"HTTP/1.1 100 ")
            if interim.end == "eof" or (interim.data and not continued) or not case.send_body:
                run.record("body sent", False)
            else:
                run.record("body sent", await client.send(BODY))
            rest = await client.recv_until_eof(timeout=5)
            run.record("reply", reply_record(Received(interim.data + rest.data, rest.end)))
        await stop(run, serve, 1)

    return body


for _case in CASES:
    scenario(
        f"http/{FAMILY}/{_case.name}",
        server=spec(_case.handler, protocol=_case.protocol),
        description=_case.doc,
    )(careful_body(_case))


register_rows(
    FAMILY,
    [
        Row(
            "body_without_waiting",
            head() + BODY,
            "A client that sends the body at once still gets 100 Continue, then 200.",
            server=spec("ExpectLogged", protocol="HTTP/1.1"),
        ),
        Row(
            "refused_body_sent",
            head() + BODY,
            "A refused expectation with the body already sent: 417, and the body unread.",
            server=spec("RefuseExpect", protocol="HTTP/1.1"),
        ),
    ],
)
