"""Persistent connections: the keep-alive decision (H12), pipelining (H14), unread bodies
(H13) and handlers that set ``Connection`` themselves.

Most scenarios send the request under test and, in the same send, a probe
(``GET /probe`` with ``Connection: close``). A server that keeps the connection open
answers the probe and then closes; one that closes after the first reply never reads it.
So the reply shows the decision without waiting for an idle timeout. A few scenarios wait
for silence (``idle``) instead, as a client of a kept-alive connection would.
"""

from __future__ import annotations

from harness.scenario import scenario
from scenarios._http_common import reply_record
from scenarios._http_protocol_common import IDLE, POLL, Row, register_rows, spec, stop

FAMILY = "keepalive"

PROBE = b"GET /probe HTTP/1.1\r\nConnection: close\r\n\r\n"


def request(version: str, connection: str | None, path: str = "/first") -> bytes:
    """A GET with the given version and ``Connection`` value (None: no such header)."""
    head = f"GET {path} HTTP/{version}\r\nHost: h\r\n"
    if connection is not None:
        head += f"Connection: {connection}\r\n"
    return (head + "\r\n").encode("latin-1")


#: (request version, server protocol_version, Connection value, what CPython does)
MATRIX = [
    ("1.1", "1.1", None, "both sides speak 1.1: the connection stays open"),
    ("1.1", "1.1", "close", "Connection: close closes it"),
    ("1.1", "1.1", "Close", "the value is compared case-insensitively: closes"),
    ("1.1", "1.1", "keep-alive", "keep-alive on 1.1: stays open"),
    ("1.1", "1.1", "keep-alive, close", "the list is compared whole, so it does not close"),
    ("1.0", "1.1", None, "an HTTP/1.0 request closes by default"),
    ("1.0", "1.1", "keep-alive", "keep-alive from a 1.0 client to a 1.1 server: stays open"),
    ("1.0", "1.1", "Keep-Alive", "odd case Keep-Alive from a 1.0 client: stays open"),
    ("1.0", "1.1", "keep-alive, close", "the list is compared whole, so a 1.0 request closes"),
    ("1.0", "1.1", "Keep-Alive, Upgrade", "not exactly keep-alive: a 1.0 request closes"),
    ("1.1", "1.0", None, "a 1.0 server closes after every request"),
    ("1.1", "1.0", "keep-alive", "a 1.0 server ignores keep-alive and closes"),
    ("1.0", "1.0", None, "HTTP/1.0 on both sides: closes"),
    ("1.0", "1.0", "keep-alive", "HTTP/1.0 on both sides, keep-alive asked: closes"),
    ("0.9", "1.1", "keep-alive", "explicit HTTP/0.9 with keep-alive to a 1.1 server"),
]


def _token(value: str | None) -> str:
    if value is None:
        return "absent"
    return "".join(ch if ch.isalnum() else "_" for ch in value).strip("_").lower() + (
        "_upper" if value.isupper() else "_odd" if value != value.lower() else ""
    )


def matrix_rows() -> list[Row]:
    """One probe row per MATRIX entry."""
    rows = []
    for version, protocol, connection, what in MATRIX:
        name = (
            f"req{version.replace('.', '')}_server{protocol.replace('.', '')}_{_token(connection)}"
        )
        shown = "no Connection header" if connection is None else f"Connection: {connection}"
        rows.append(
            Row(
                name,
                request(version, connection) + PROBE,
                f"HTTP/{version} request, HTTP/{protocol} handler, {shown}: {what} (H12).",
                server=spec(protocol=f"HTTP/{protocol}"),
            )
        )
    return rows


ROWS = [
    Row(
        "sanity",
        request("1.1", None) + PROBE,
        "An HTTP/1.1 handler answers two pipelined requests on one connection.",
        server=spec(protocol="HTTP/1.1"),
    ),
    *matrix_rows(),
    Row(
        "idle_open",
        request("1.1", None),
        "HTTP/1.1 on both sides: after the reply the connection stays open (read ends idle).",
        server=spec(protocol="HTTP/1.1"),
        idle=IDLE,
    ),
    Row(
        "pipeline_three",
        request("1.1", None, "/one")
        + request("1.1", None, "/two")
        + request("1.1", "close", "/three"),
        "Three pipelined requests in one send are answered in order (H14).",
        server=spec(protocol="HTTP/1.1"),
    ),
    Row(
        "pipeline_post_body",
        b"POST /p HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody" + PROBE,
        "A POST whose handler reads the body, then a pipelined GET: both answered.",
        server=spec(protocol="HTTP/1.1"),
    ),
    Row(
        "unread_body",
        b"GET /g HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello" + PROBE,
        "A GET body the handler never reads becomes the start of the next request line: "
        "501 ('helloGET') (H13).",
        server=spec(protocol="HTTP/1.1"),
    ),
    Row(
        "pipeline_error_first",
        b"GET / HTTP/1.1\r\n"
        + b"".join(b"X-H%d: %d\r\n" % (n, n) for n in range(100))
        + b"\r\n"
        + PROBE,
        "A 431 (100 headers) for the first request closes the connection: the probe gets "
        "nothing (H30).",
        server=spec(protocol="HTTP/1.1"),
    ),
    Row(
        "handler_sends_close",
        request("1.1", None) + PROBE,
        "A handler that sends Connection: close itself ends a 1.1 connection (H12).",
        server=spec("CloseEcho", protocol="HTTP/1.1"),
    ),
    Row(
        "handler_sends_keepalive",
        request("1.0", None) + PROBE,
        "A handler that sends Connection: keep-alive keeps even an HTTP/1.0 server's "
        "connection open (H12).",
        server=spec("KeepAliveEcho"),
    ),
]

register_rows(FAMILY, ROWS)


@scenario("http/keepalive/sequential", server=spec("Responses", protocol="HTTP/1.1"))
async def sequential(run):
    """Three requests on one connection, each sent after the previous reply arrived."""
    serve = run.serve_forever(POLL)
    async with await run.connect() as client:
        for index in range(3):
            last = index == 2
            head = b"GET /sanity HTTP/1.1\r\n" + (b"Connection: close\r\n" if last else b"")
            await client.send(head + b"\r\n")
            got = await (client.recv_until_eof(timeout=5) if last else client.recv_until(b"ok\n"))
            run.record(f"reply{index + 1}", reply_record(got))
    await stop(run, serve, 1)


@scenario("http/keepalive/two_clients", server=spec(protocol="HTTP/1.1", threading=True))
async def two_clients(run):
    """Two kept-alive connections to a ThreadingHTTPServer, served in alternation."""
    serve = run.serve_forever(POLL)
    async with await run.connect() as first, await run.connect() as second:
        for index, client in enumerate((first, second, first)):
            await client.send(request("1.1", None, f"/{index}"))
            run.record(f"reply{index + 1}", reply_record(await client.recv_until(b")]\n")))
        for client in (first, second):
            await client.send(PROBE)
        run.record("close_first", reply_record(await first.recv_until_eof(timeout=5)))
        run.record("close_second", reply_record(await second.recv_until_eof(timeout=5)))
    await stop(run, serve, 2)
