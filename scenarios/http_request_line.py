"""HTTP request lines: methods, targets, spacing, versions, HTTP/0.9, limits, line ends.

Every scenario sends raw bytes to an ``HTTPServer`` whose handler (``Echo``) replies with
what it parsed, so a difference in interpretation shows in the body. Error replies to a
malformed line are bare HTML in CPython before gh-54930 and carry a status line after it;
a two-word HTTP/0.9 request waits for a header block before gh-70765 (see
``_http_protocol_common`` for both).
"""

from __future__ import annotations

from harness.scenario import scenario
from scenarios._http_common import exchange, reply_record
from scenarios._http_protocol_common import (
    H09_FIX,
    IDLE,
    POLL,
    STATUS_LINE_FIX,
    Row,
    register_rows,
    scheduled,
    spec,
    stop,
)

FAMILY = "request_line"

#: The longest request line the server reads (CRLF included); one more byte is a 414.
LINE_LIMIT = 65536


def line_of(length: int, ending: bytes = b"\r\n") -> bytes:
    """A ``GET`` request line of exactly ``length`` bytes, ``ending`` included."""
    head, tail = b"GET /", b" HTTP/1.0" + ending
    return head + b"a" * (length - len(head) - len(tail)) + tail


ROWS = [
    Row("sanity", b"GET / HTTP/1.0\r\n\r\n", "The server answers a plain HTTP/1.0 GET with 200."),
    # -- methods
    Row(
        "method_post",
        b"POST /p HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello",
        "POST is dispatched to do_POST, which reads the declared body.",
    ),
    Row(
        "method_unknown",
        b"FOO / HTTP/1.0\r\n\r\n",
        "A method without do_<METHOD> gets 501 Unsupported method ('FOO') (H10).",
    ),
    Row(
        "method_lower_case",
        b"get / HTTP/1.0\r\n\r\n",
        "Method dispatch is case-sensitive: 'get' has no do_get, so 501 (H10).",
    ),
    Row(
        "method_long",
        b"X" * 3000 + b" / HTTP/1.0\r\n\r\n",
        "A 3000-character unknown method is echoed into the 501 message and the log (H10).",
    ),
    # -- targets
    Row(
        "target_absolute",
        b"GET http://example.com:8080/a?b=c#d HTTP/1.0\r\n\r\n",
        "An absolute-form target is passed as the path unchanged.",
    ),
    Row(
        "target_double_slash",
        b"GET //evil.com//x HTTP/1.0\r\n\r\n",
        "A leading run of slashes is collapsed to one (gh-87389).",
    ),
    Row(
        "target_missing",
        b"GET  HTTP/1.0\r\n\r\n",
        "Two words after split(): an HTTP/0.9 GET of the path 'HTTP/1.0' (H8), half-closed.",
        half_close=True,
    ),
    # -- spacing
    Row("spacing_tabs", b"GET\t/t\tHTTP/1.0\r\n\r\n", "Tabs separate the words (str.split, H8)."),
    Row(
        "spacing_runs",
        b"GET    /r     HTTP/1.0\r\n\r\n",
        "Runs of spaces separate the words; requestline keeps them (H8).",
    ),
    Row(
        "spacing_leading",
        b"  GET /l HTTP/1.0\r\n\r\n",
        "Leading spaces are ignored by the split; requestline keeps them.",
    ),
    Row(
        "spacing_unicode_whitespace",
        b"GET\x85/nel\xa0HTTP/1.0\r\n\r\n",
        "NEL (0x85) and NBSP (0xa0) decoded as Latin-1 are whitespace to str.split (H8).",
    ),
    # -- versions
    Row(
        "version_09_explicit",
        b"GET /nine HTTP/0.9\r\n\r\n",
        "Explicit HTTP/0.9 (three words): headers are read, the reply has no status line (H6).",
    ),
    Row(
        "version_05",
        b"GET / HTTP/0.5\r\n\r\n",
        "HTTP/0.5 is accepted and gets a status line: only 'HTTP/0.9' suppresses it (H6).",
    ),
    Row(
        "version_20",
        b"GET / HTTP/2.0\r\n\r\n",
        "HTTP/2.0 gets 505 Invalid HTTP version (2.0) (H7).",
        known=(STATUS_LINE_FIX,),
    ),
    Row(
        "version_plus",
        b"GET / HTTP/1.+1\r\n\r\n",
        "A '+' in the version number is rejected with 400 (gh-103204).",
        known=(STATUS_LINE_FIX,),
    ),
    Row(
        "version_underscore",
        b"GET / HTTP/1_1\r\n\r\n",
        "HTTP/1_1 has no dot: 400 Bad request version (H7).",
        known=(STATUS_LINE_FIX,),
    ),
    Row(
        "version_leading_zeros",
        b"GET / HTTP/01.01\r\n\r\n",
        "Leading zeros are accepted: HTTP/01.01 is 1.1 (H7).",
    ),
    Row(
        "version_ten_digits",
        b"GET / HTTP/1.0000000001\r\n\r\n",
        "A ten-digit minor version is accepted (the limit is 10 characters).",
    ),
    Row(
        "version_eleven_digits",
        b"GET / HTTP/1.00000000001\r\n\r\n",
        "An eleven-digit minor version is rejected with 400 (gh-103204).",
        known=(STATUS_LINE_FIX,),
    ),
    Row(
        "version_extra_slash",
        b"GET / HTTP/1.1/x\r\n\r\n",
        "A second '/' in the version stays in the number ('1.1/x'), which is not digits: 400.",
        known=(STATUS_LINE_FIX,),
    ),
    Row(
        "version_bad_prefix",
        b"GET / HTTPS/1.0\r\n\r\n",
        "A version that does not start with HTTP/ is rejected with 400 (H7).",
        known=(STATUS_LINE_FIX,),
    ),
    # -- HTTP/0.9 two-word requests
    Row(
        "http09_half_close",
        b"GET /old\r\n",
        "Two-word HTTP/0.9 GET, then the client half-closes: a bare body reply (H4).",
        half_close=True,
    ),
    Row(
        "http09_idle",
        b"GET /old\r\n",
        "Two-word HTTP/0.9 GET and silence: the old stdlib waits for headers (H4).",
        idle=IDLE,
        known=(H09_FIX,),
    ),
    Row(
        "http09_with_headers",
        b"GET /old\r\nHost: h\r\n\r\n",
        "Two-word HTTP/0.9 GET followed by header lines, half-closed: what becomes of them.",
        half_close=True,
        known=(H09_FIX,),
    ),
    Row(
        "http09_post",
        b"POST /old\r\n\r\n",
        "A two-word POST is refused: 400 Bad HTTP/0.9 request type ('POST') (H5).",
        known=(STATUS_LINE_FIX,),
    ),
    # -- word counts
    Row(
        "words_one",
        b"GET\r\n\r\n",
        "A one-word line: 400 Bad request syntax ('GET') (H5).",
        known=(STATUS_LINE_FIX,),
    ),
    Row(
        "words_four_bad_version",
        b"A B C D\r\n\r\n",
        "Four words whose last is no version: 400 Bad request version ('D') (H5).",
        known=(STATUS_LINE_FIX,),
    ),
    Row(
        "words_four_good_version",
        b"GET / x HTTP/1.0\r\n\r\n",
        "Four words ending in a valid version: 400 Bad request syntax with a status line.",
    ),
    # -- limits
    Row(
        "length_at_limit",
        line_of(LINE_LIMIT) + b"\r\n",
        "A request line of exactly 65536 bytes (CRLF included) is accepted (H1).",
    ),
    Row(
        "length_over_limit",
        line_of(LINE_LIMIT + 1),
        "A request line of 65537 bytes: 414 with a status line, then close (H1).",
    ),
    # -- line ends and bytes
    Row(
        "bare_lf",
        b"GET /lf HTTP/1.0\nHost: x\n\n",
        "Bare LF line endings are accepted for the request line and the headers (H8).",
    ),
    Row(
        "empty_line_first",
        b"\r\nGET / HTTP/1.0\r\n\r\n",
        "An empty line before the request: no reply, the connection closes (H9).",
    ),
    Row(
        "non_ascii",
        b"GET /caf\xc3\xa9/\xff\x80 HTTP/1.0\r\n\r\n",
        "Non-ASCII bytes are decoded as Latin-1 into the path (H8).",
    ),
]

SCHEDULED = [
    Row(
        "schedule_get",
        b"GET /s?x=1 HTTP/1.1\r\nHost: example\r\nAccept: */*\r\nX-Long: "
        + b"v" * 300
        + b"\r\n\r\n",
        "A GET with headers is parsed the same however it is cut.",
    ),
    Row(
        "schedule_bad_version",
        b"GET / HTTP/1.x\r\n\r\n",
        "A bad version is refused the same however the line is cut.",
        known=(STATUS_LINE_FIX,),
    ),
]

register_rows(FAMILY, [*ROWS, *scheduled(SCHEDULED)])


@scenario("http/request_line/eof_before_request", server=spec())
async def eof_before_request(run):
    """A client that connects and half-closes without a byte: silent close, no log (H24)."""
    serve = run.serve_forever(POLL)
    run.record("reply", await exchange(run, b"", half_close=True))
    await stop(run, serve, 1)


@scenario("http/request_line/threading_sanity", server=spec(threading=True))
async def threading_sanity(run):
    """A ThreadingHTTPServer answers two connections open at the same time."""
    serve = run.serve_forever(POLL)
    async with await run.connect() as first, await run.connect() as second:
        await first.send(b"GET /first HTTP/1.0\r\n")
        await second.send(b"GET /second HTTP/1.0\r\n\r\n")
        run.record("second", reply_record(await second.recv_until_eof(timeout=5)))
        await first.send(b"\r\n")
        run.record("first", reply_record(await first.recv_until_eof(timeout=5)))
    await stop(run, serve, 2)
