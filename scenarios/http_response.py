"""Writing replies: ``send_response`` / ``send_header`` / ``end_headers`` /
``flush_headers`` sequences, ``send_response_only``, writing to ``wfile`` directly,
HTTP/0.9 replies (H6), ``version_string`` and ``date_time_string`` (H18, H19) and header
injection through ``send_header`` (H26).

The ``Responses`` handler picks a sequence by path: ``GET /<name>`` runs ``seq_<name>``.
"""

from __future__ import annotations

from scenarios._http_protocol_common import IDLE, Row, register_rows, spec

FAMILY = "response"

RESPONSES = spec("Responses")


def seq(
    name: str,
    doc: str,
    method: str = "GET",
    version: str = "1.0",
    path: str | None = None,
    **options,
) -> Row:
    """A row that runs sequence ``path`` (default: ``name``) of the Responses handler."""
    request = f"{method} /{path or name} HTTP/{version}\r\n\r\n".encode("latin-1")
    options.setdefault("server", RESPONSES)
    return Row(name, request, doc, **options)


ROWS = [
    seq("sanity", "The server answers with status line, Server, Date, one header and a body."),
    seq("only", "send_response_only: status line and own headers, no Server or Date, no log."),
    seq(
        "flush_midway",
        "flush_headers after one header, body bytes, then a second header and end_headers: "
        "the second header goes out after the body bytes.",
    ),
    seq(
        "header_first",
        "send_header before send_response: the buffered header precedes the status line.",
    ),
    seq("raw", "A handler writing to wfile directly: the bytes go out with no status line."),
    seq("nothing", "A handler that writes nothing: the connection closes with no reply."),
    seq("custom_phrase", "send_response(200, 'Fine & <dandy>'): the phrase is sent as given."),
    seq("unknown_code", "send_response(799): no phrase, the status line ends after the code."),
    seq(
        "injection",
        "send_header with CR LF in the value writes them unchecked: an extra header line "
        "appears (H26, documented).",
    ),
    seq(
        "formats",
        "server_version, sys_version, version_string, date_time_string for fixed times, and "
        "the format of the current date and log time (H18, H19).",
    ),
    seq(
        "raise",
        "do_GET raises after sending headers: handle_error reports it, the headers already "
        "sent stay sent.",
    ),
    seq(
        "body_on_head",
        "A HEAD handler that writes a body anyway: the server does not strip it.",
        method="HEAD",
    ),
    seq(
        "error_after_headers",
        "send_error after send_response and a header: both status lines are in the buffer.",
    ),
    seq(
        "sanity_http09",
        "An explicit HTTP/0.9 request: send_response and send_header write nothing, only the "
        "body goes out (H6, H18).",
        version="0.9",
        path="sanity",
    ),
    Row(
        "only_http09_two_words",
        b"GET /only\r\n",
        "A two-word HTTP/0.9 request: send_response_only writes nothing either (H6).",
        server=RESPONSES,
        half_close=True,
    ),
    seq(
        "sanity_http11",
        "An HTTP/1.1 handler answering HTTP/1.1: the status line says HTTP/1.1.",
        version="1.1",
        path="sanity",
        server=spec("Responses", protocol="HTTP/1.1"),
        idle=IDLE,
    ),
    Row(
        "nothing_keepalive",
        b"GET /nothing HTTP/1.1\r\n\r\nGET /sanity HTTP/1.1\r\nConnection: close\r\n\r\n",
        "On a kept-alive connection a handler that writes nothing leaves the connection "
        "open: the next request is answered.",
        server=spec("Responses", protocol="HTTP/1.1"),
    ),
    Row(
        "raise_keepalive",
        b"GET /raise HTTP/1.1\r\n\r\nGET /sanity HTTP/1.1\r\nConnection: close\r\n\r\n",
        "An exception in do_GET ends the connection: the pipelined request is not answered.",
        server=spec("Responses", protocol="HTTP/1.1"),
    ),
    Row(
        "custom_server_version",
        b"GET /sanity HTTP/1.0\r\n\r\n",
        "server_version 'Custom/1.0' and an empty sys_version: 'Server: Custom/1.0 ' with "
        "the trailing space.",
        server=spec("Responses", server_version="Custom/1.0", sys_version=""),
    ),
    Row(
        "protocol_version_odd",
        b"GET /sanity HTTP/1.1\r\n\r\n",
        "protocol_version 'HTTP/1.10' is sent as is, and compares >= 'HTTP/1.1' as a string: "
        "the connection is kept open.",
        server=spec("Responses", protocol="HTTP/1.10"),
        idle=IDLE,
    ),
]

register_rows(FAMILY, ROWS)
