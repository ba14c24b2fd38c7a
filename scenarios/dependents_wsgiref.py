"""``dependents/wsgiref``: the stdlib's WSGI server on top of each target's modules.

``wsgiref.simple_server`` builds on ``http.server`` (request parsing, ``send_error``,
``log_request``, ``address_string``, ``HTTPServer.server_bind``) and on ``socketserver``
(the stream handler's ``rfile``/``wfile``, the serve loop, ``ThreadingMixIn``). These
scenarios run it unchanged in the server process (applications in
``scenarios/handlers/dep_wsgiref.py``) and drive it with raw requests, so that a target
that breaks what wsgiref relies on differs here even where its own catalog says ``same``.

Replies are compared byte for byte (Date normalized); the log lines on stderr as text
(timestamp normalized); the applications' own notes (an iterable closed) as events.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from harness.known import deviation
from harness.scenario import Known, Run, ServerSpec, scenario
from scenarios._http_common import exchange, reply_record
from scenarios._http_protocol_common import H09_FIX, POLL, stop

FAMILY = "dependents/wsgiref"
HANDLERS = "scenarios.handlers.dep_wsgiref"
WSGI_HANDLER = "wsgiref.simple_server:WSGIRequestHandler"

#: How long a read waits for more bytes on a connection the server might keep open.
IDLE = 0.5

#: gh-54930: the reference answers a malformed request line with a status line and
#: headers; the error page itself (recorded apart as ``page``) must not change.
STATUS_LINE_FIX = deviation("gh-54930", ("facts.reply", "facts.reply2"))

#: The limit of ``WSGIRequestHandler.handle``'s request line read (longer gets 414).
LINE_LIMIT = 65536


def spec(app: str, *, threading: bool = False, **handler_attrs: Any) -> ServerSpec:
    """A ``WSGIServer`` (or its ``ThreadingMixIn`` variant) serving ``app`` from
    ``dep_wsgiref.APPS`` with wsgiref's own request handler (``handler_attrs`` set on it)."""
    server = "ThreadingAppServer" if threading else "AppServer"
    return ServerSpec(
        f"{HANDLERS}:{server}",
        handler=WSGI_HANDLER,
        server_attrs={"app_name": app},
        handler_attrs=dict(handler_attrs),
    )


@dataclasses.dataclass(frozen=True)
class Row:
    """Requests to one application, each on a connection of its own, replies recorded.

    ``split`` sends each request in pieces of these sizes with ``pause`` seconds after
    each piece (a body that arrives while the application is already reading it).
    """

    name: str
    app: str
    requests: tuple[bytes, ...]
    doc: str
    half_close: bool = False
    idle: float | None = None
    split: tuple[int, ...] | None = None
    pause: float = 0.0
    known: tuple[Known, ...] = ()
    handler_attrs: tuple[tuple[str, Any], ...] = ()


def get(path: str, version: str = "HTTP/1.0", *headers: str) -> bytes:
    """A GET request for ``path`` with ``headers`` (``Name: value``) and a blank line."""
    lines = [f"GET {path} {version}", *headers, "", ""]
    return "\r\n".join(lines).encode("latin-1")


def post(path: str, body: bytes, *headers: str) -> bytes:
    """An HTTP/1.0 POST of ``body`` with its Content-Length and ``headers``."""
    lines = [f"POST {path} HTTP/1.0", f"Content-Length: {len(body)}", *headers, "", ""]
    return "\r\n".join(lines).encode("latin-1") + body


def line_of(length: int) -> bytes:
    """A GET request line of exactly ``length`` bytes, CRLF included."""
    head, tail = b"GET /", b" HTTP/1.0\r\n"
    return head + b"a" * (length - len(head) - len(tail)) + tail


BODY = bytes(range(256)) * 16  # 4 KiB with every byte value

ROWS = [
    Row(
        "hello_http10",
        "hello",
        (get("/hello"),),
        "An HTTP/1.0 GET: 200 with the application's headers (one repeated), Date, Server "
        "and a Content-Length wsgiref computes from the one chunk; one log line.",
    ),
    Row(
        "hello_http11",
        "hello",
        (get("/hello", "HTTP/1.1", "Host: example"),),
        "An HTTP/1.1 GET: wsgiref still answers HTTP/1.0 and closes the connection (read "
        "with an idle limit, so a connection left open shows as 'idle').",
        idle=IDLE,
    ),
    Row(
        "head",
        "hello",
        (b"HEAD /hello HTTP/1.0\r\n\r\n",),
        "HEAD: wsgiref leaves the body to the application, so this one is sent in full.",
    ),
    Row(
        "status_codes",
        "status",
        tuple(
            get("/?" + line)
            for line in (
                "201%20Created",
                "204%20No%20Content",
                "302%20Found",
                "304%20Not%20Modified",
                "404%20Not%20Here",
                "418%20I%27m%20a%20teapot",
                "299%20An%20Odd%20Reason",
                "500%20Broken%20Inside",
            )
        ),
        "Status codes and reasons the application chooses (no body for 204 and 304, a "
        "Location for 3xx), each logged with its code and size.",
    ),
    Row(
        "chunks",
        "chunks",
        (get("/chunks"),),
        "A body of four pieces, one empty, from an iterable with no length: no "
        "Content-Length, the body ends at close; the server calls the iterable's close().",
    ),
    Row(
        "generator_close",
        "generator",
        (get("/generator"),),
        "A generator body: sent line by line, then closed by the server (its finally runs).",
    ),
    Row(
        "write_callable",
        "write",
        (get("/write"),),
        "The write() callable of start_response sends the headers and two pieces, then the "
        "returned iterable follows; no Content-Length.",
    ),
    Row(
        "raise_before_start_response",
        "raise_before",
        (get("/boom"),),
        "An application that raises before start_response: wsgiref's 500 page, the "
        "traceback and the 500 log line on stderr.",
    ),
    Row(
        "raise_after_start_response",
        "raise_after_start",
        (get("/boom"),),
        "An application that raises after start_response but before any body: nothing "
        "was sent, so the 500 replaces its status.",
    ),
    Row(
        "raise_after_first_chunk",
        "raise_after_chunk",
        (get("/boom"),),
        "A body that raises after its first chunk: the headers and that chunk are out, "
        "the traceback goes to stderr and the connection closes.",
    ),
    Row(
        "post_whole",
        "post",
        (post("/upload", BODY, "Content-Type: application/octet-stream"),),
        "A 4 KiB POST body in one send, read with one wsgi.input.read(CONTENT_LENGTH).",
    ),
    Row(
        "post_split",
        "post",
        (post("/upload", BODY, "Content-Type: application/octet-stream"),),
        "A 4 KiB POST body sent in three pieces with pauses: one "
        "wsgi.input.read(CONTENT_LENGTH) still returns all of it (wsgi.input is buffered).",
        split=(100, 1000),
        pause=0.1,
    ),
    Row(
        "large_body",
        "large",
        (get("/large"),),
        "A 1 MiB body in one chunk: Content-Length from wsgiref, every byte through the "
        "handler's wfile.",
    ),
    Row(
        "large_body_chunks",
        "large_chunks",
        (get("/large"),),
        "A 1 MiB body from a generator of 64 chunks of 16 KiB, each written and flushed.",
    ),
    Row(
        "huge_body_timeout",
        "huge",
        (get("/huge"),),
        "An 8 MiB body in one chunk from a handler with a timeout: its socket is then "
        "non-blocking underneath and one send takes only part of it, yet every byte "
        "arrives (wfile writes all).",
        handler_attrs=(("timeout", 5.0),),
    ),
    Row(
        "environ_get",
        "environ",
        (
            get(
                "/caf%C3%A9/a%20b/%2F/x;p?q=1&r=%20s&q=2",
                "HTTP/1.1",
                "Host: example.test:8080",
                "User-Agent: dependents/1.0",
                "X-Repeated: one",
                "X-Repeated: two",
                "Accept:   text/plain  ",
                "Connection: close",
            ),
        ),
        "The environ of a GET: percent-decoded PATH_INFO (as Latin-1), the raw "
        "QUERY_STRING, SERVER_PROTOCOL, a default CONTENT_TYPE, HTTP_* headers (repeats "
        "joined by commas, values stripped), REMOTE_ADDR, no REMOTE_HOST, wsgi.* keys.",
    ),
    Row(
        "environ_post",
        "environ",
        (
            post(
                "/form",
                b"a=1&b=2",
                "Content-Type: application/x-www-form-urlencoded",
                "Content-Length: 7",
                "X-Empty:",
            ),
        ),
        "The environ of a POST: CONTENT_TYPE and CONTENT_LENGTH from the headers (not "
        "repeated as HTTP_*), an empty header, an empty QUERY_STRING.",
    ),
    Row(
        "request_line_too_long",
        "hello",
        (line_of(LINE_LIMIT + 1),),
        "A request line of 65537 bytes: http.server's send_error(414) through wsgiref's "
        "handle, logged with an empty request line.",
    ),
    Row(
        "request_line_max",
        "hello",
        (line_of(LINE_LIMIT) + b"\r\n",),
        "A request line of exactly 65536 bytes is accepted and answered by the application.",
    ),
    Row(
        "bad_request_line",
        "hello",
        (b"GET / HTTP/1.0 extra\r\n\r\n",),
        "A request line of four words: parse_request's 400, the application never runs.",
        known=(STATUS_LINE_FIX,),
    ),
    Row(
        "bad_version",
        "hello",
        (b"GET / HTTP/9.9\r\n\r\n", b"GET / HTTP/1.x\r\n\r\n"),
        "Unsupported and malformed versions: parse_request's 505 and 400.",
        known=(STATUS_LINE_FIX,),
    ),
    Row(
        "too_many_headers",
        "hello",
        (get("/many", "HTTP/1.0", *(f"X-H{i}: {i}" for i in range(101))),),
        "101 header lines: parse_request's 431 with a status line; the application never runs.",
    ),
    Row(
        "http09",
        "hello",
        (b"GET /hello\r\n",),
        "An HTTP/0.9 request (the client half-closes): the body alone, no status line.",
        half_close=True,
        known=(H09_FIX,),
    ),
    Row(
        "keepalive_pipelined",
        "hello",
        (get("/first", "HTTP/1.1", "Host: a") + get("/second", "HTTP/1.1", "Host: a"),),
        "Two pipelined HTTP/1.1 requests in one send: wsgiref answers the first and closes "
        "(its handler serves one request per connection).",
        idle=IDLE,
    ),
    Row(
        "log_control_chars",
        "hello",
        (b"GET /a\x1b[31m\\b\x7f?c=%1b HTTP/1.0\r\n\r\n",),
        "The request log line with control characters and a backslash in the path, as "
        "http.server's log_message escapes them.",
    ),
]


def _body(row: Row):
    async def body(run: Run) -> None:
        serve = run.serve_forever(POLL)
        for index, request in enumerate(row.requests):
            if row.split is None:
                record = await exchange(run, request, idle=row.idle, half_close=row.half_close)
            else:
                record = await _exchange_split(run, request, row.split, row.pause)
            suffix = "" if index == 0 else str(index + 1)
            run.record(f"reply{suffix}", record)
            if STATUS_LINE_FIX in row.known:
                text = record["reply"]
                run.record(f"page{suffix}", text[max(text.find("<!DOCTYPE"), 0) :])
        await stop(run, serve, len(row.requests))

    return body


async def _exchange_split(
    run: Run, request: bytes, split: tuple[int, ...], pause: float
) -> dict[str, Any]:
    """``exchange`` with the request sent in pieces and a pause after each."""
    async with await run.connect() as client:
        sent = await client.send(request, split=list(split), pause=pause)
        received = await client.recv_until_eof(timeout=5.0)
    record = reply_record(received)
    record["sent"] = sent
    return record


for _row in ROWS:
    scenario(
        f"{FAMILY}/{_row.name}",
        server=spec(_row.app, **dict(_row.handler_attrs)),
        description=_row.doc,
        known=_row.known,
    )(_body(_row))


# -- demo_app: its page lists the whole environ, so only the stable keys are kept ---------

_DEMO_LINE = re.compile(r"^(\S+) = (.*)$")
_STABLE = re.compile(
    r"^(HTTP_\w+|wsgi\.\w+|CONTENT_LENGTH|CONTENT_TYPE|GATEWAY_INTERFACE|PATH_INFO|"
    r"QUERY_STRING|REMOTE_ADDR|REMOTE_HOST|REQUEST_METHOD|SCRIPT_NAME|SERVER_NAME|"
    r"SERVER_PORT|SERVER_PROTOCOL|SERVER_SOFTWARE)$"
)
_FD_NAME = re.compile(r"name=\d+")


def demo_page(text: str, port: int) -> dict[str, Any]:
    """``demo_app``'s reply with what varies taken out.

    The page lists the server process's whole environment (``os.environ``) and objects
    whose repr names file descriptors: only the CGI/WSGI keys are kept, the port and fd
    numbers replaced, and the Content-Length checked against the body rather than kept.
    """
    head, _, page = text.partition("\r\n\r\n")
    match = re.search(r"^Content-Length: (\d+)\r?$", head, re.MULTILINE)
    declared = int(match.group(1)) if match else None
    head = re.sub(r"^(Content-Length: )\d+", r"\1<n>", head, flags=re.MULTILINE)
    kept = []
    for line in page.split("\n"):
        found = _DEMO_LINE.match(line)
        if found and not _STABLE.match(found.group(1)):
            continue
        if found and found.group(1) == "SERVER_PORT":
            line = line.replace(repr(str(port)), "'<port>'")
        kept.append(_FD_NAME.sub("name=<fd>", line))
    return {
        "head": head,
        "page": kept,
        "content_length_matches": declared == len(page.encode("latin-1")),
    }


@scenario(f"{FAMILY}/demo_app", server=spec("demo"))
async def demo_app(run: Run) -> None:
    """``wsgiref.simple_server.demo_app``: 'Hello world!' and the sorted environ (the
    CGI and WSGI keys kept), with a Content-Length that matches the page."""
    serve = run.serve_forever(POLL)
    record = await exchange(run, get("/demo?x=1", "HTTP/1.0", "X-Demo: yes"))
    port = run.address[1]
    run.record("end", record["end"])
    run.record("reply", demo_page(record["reply"], port))
    await stop(run, serve, 1)


# -- a threading WSGI server ----------------------------------------------------------------


@scenario(
    f"{FAMILY}/threading_rendezvous", server=spec("rendezvous", threading=True), stderr="sorted"
)
async def threading_rendezvous(run: Run) -> None:
    """``ThreadingMixIn`` + ``WSGIServer`` (as development servers combine them): a request
    waiting in the application is released by a second request served meanwhile."""
    serve = run.serve_forever(POLL)
    async with await run.connect() as waiting:
        await waiting.send(get("/wait"))
        run.record("handle started", await run.wait_event("handle", 1, timeout=5))
        release = await exchange(run, get("/release"))
        run.record("release", release)
        run.record("wait", reply_record(await waiting.recv_until_eof(timeout=5.0)))
    await stop(run, serve, 2)
