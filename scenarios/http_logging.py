"""Log lines on stderr: the format (H20), control characters escaped (H21), overridden
``log_message``, ``log_error`` and ``log_request`` calls, and request timeouts (H23).

stderr is compared as text; the harness replaces the timestamp in ``[...]`` and client
ports, nothing else.
"""

from __future__ import annotations

from harness.scenario import scenario
from scenarios._http_common import reply_record
from scenarios._http_protocol_common import POLL, STATUS_LINE_FIX, Row, register_rows, spec, stop

FAMILY = "logging"

#: A handler timeout short enough for the catalog's time budget.
TIMEOUT = 0.3

ROWS = [
    Row("sanity", b"GET /logged HTTP/1.0\r\n\r\n", "One request, one log line (H20)."),
    Row(
        "error_two_lines",
        b"GET /404 HTTP/1.0\r\n\r\n",
        "An error reply logs two lines: 'code 404, message ...' then the request (H20).",
        server=spec("SendError"),
    ),
    Row(
        "control_chars",
        b"GET /a\x1b[31m\\x\x7f\x80\x9f\xe9 HTTP/1.0\r\n\r\n",
        "ESC, DEL and C1 bytes become \\xHH, a backslash becomes \\\\; Latin-1 letters stay (H21).",
    ),
    Row(
        "control_char_boundaries",
        b"GET /\x00\x1f\x20~\x7f\x9f\xa0| HTTP/1.0\r\n\r\n",
        "The edges of the escaped ranges: 0x00-0x1f and 0x7f-0x9f become \\xHH; space, "
        "'~' (0x7e) and 0xa0 stay (H21).",
    ),
    Row(
        "control_chars_error",
        b"GET /\x1b]0;title\x07 FUBAR\x00\r\n\r\n",
        "Control characters in an error message are escaped in both error lines (H21).",
        known=(STATUS_LINE_FIX,),
    ),
    Row(
        "http09",
        b"GET /nine\r\n",
        "A two-word HTTP/0.9 request is logged with its two words.",
        half_close=True,
    ),
    Row(
        "custom_log_message",
        b"GET /custom HTTP/1.0\r\n\r\n",
        "An overridden log_message receives the request log's format and arguments.",
        server=spec("CustomLog"),
    ),
    Row(
        "custom_log_message_error",
        b"FOO /custom HTTP/1.0\r\n\r\n",
        "An overridden log_message receives both lines of a 501 (through log_error).",
        server=spec("CustomLog"),
    ),
    Row(
        "log_error_and_request",
        b"GET /calls HTTP/1.0\r\n\r\n",
        "log_error, log_request(201, 1234) and log_message called by the handler, with "
        "control characters in the arguments.",
        server=spec("LogError"),
    ),
    Row(
        "log_request_size",
        b"GET /log_request_size HTTP/1.0\r\n\r\n",
        "send_response_only does not log; log_request(200, 17) logs the size.",
        server=spec("Responses"),
    ),
    Row(
        "expect_not_logged",
        b"POST /p HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n"
        b"Connection: close\r\n\r\nhi",
        "The interim 100 Continue is not logged; the final reply is.",
        server=spec(protocol="HTTP/1.1"),
    ),
    Row(
        "timeout_request_line",
        b"GET /slow HT",
        "A request line that never ends: after the handler timeout, 'Request timed out' is "
        "logged and the connection closes without a reply (H23).",
        server=spec(timeout=TIMEOUT),
    ),
    Row(
        "timeout_headers",
        b"GET /slow HTTP/1.0\r\nHost: h\r\n",
        "A header block that never ends times out the same way (H23).",
        server=spec(timeout=TIMEOUT),
    ),
    Row(
        "timeout_keepalive",
        b"GET /first HTTP/1.1\r\n\r\n",
        "A kept-alive connection left idle is closed by the handler timeout, with a log "
        "line (H23).",
        server=spec(protocol="HTTP/1.1", timeout=TIMEOUT),
    ),
]

register_rows(FAMILY, ROWS)


@scenario("http/logging/threading_two_clients", server=spec(threading=True), stderr="sorted")
async def threading_two_clients(run):
    """Two concurrent connections to a ThreadingHTTPServer each log one line."""
    serve = run.serve_forever(POLL)
    async with await run.connect() as first, await run.connect() as second:
        await first.send(b"GET /first HTTP/1.0\r\n\r\n")
        await second.send(b"GET /second HTTP/1.0\r\n\r\n")
        run.record("first", reply_record(await first.recv_until_eof(timeout=5)))
        run.record("second", reply_record(await second.recv_until_eof(timeout=5)))
    await stop(run, serve, 2)
