"""``http/methods``: which methods SimpleHTTPRequestHandler serves (F12, F13, F14).

GET and HEAD only: HEAD sends GET's headers without the body (F13); every other method,
and any spelling other than upper case, is ``501 Unsupported method`` (F12). ``Range`` is
ignored: always the full ``200`` (F14, gh-86809 open).
"""

from typing import Any

from harness.scenario import Run
from scenarios._http_files_common import Row, expect_status, get, register_rows

KEEP_ALIVE = {"protocol_version": "HTTP/1.1"}


def head_matches_get(run: Run, replies: list[dict[str, Any]]) -> None:
    """Invariant: reply 2 (HEAD) is reply 1 (GET) without its body."""
    got, head = replies[0]["reply"], replies[1]["reply"]
    run.expect(
        head == got.split("\r\n\r\n", 1)[0] + "\r\n\r\n",
        "HEAD sends exactly the headers GET sends, and no body",
    )


def http11(*requests: bytes) -> bytes:
    """Requests pipelined on one connection (HTTP/1.1, Host set; the last one closes)."""
    return b"".join(requests)


ROWS = [
    Row("server_answers", get("/a.txt"), "Sanity: GET /a.txt is 200 with the file."),
    Row(
        "send_head_fails_after_open",
        [get("/a.txt"), get("/a.txt", method="HEAD"), get("/sub/")],
        "A handler whose Last-Modified date fails: send_head has opened the file and must "
        "close it before the error reaches handle_error (no ResourceWarning on stderr); a "
        "listing, which has no Last-Modified, is still served.",
        handler="BadDates",
    ),
    Row(
        "head_file",
        [get("/a.txt"), get("/a.txt", method="HEAD")],
        "HEAD /a.txt: the same status and headers as GET, no body (F13).",
        check=head_matches_get,
    ),
    Row(
        "head_listing",
        [get("/sub/"), get("/sub/", method="HEAD")],
        "HEAD on a directory listing: the listing's headers, no body.",
        check=head_matches_get,
    ),
    Row(
        "head_errors",
        [get("/missing", method="HEAD"), get("/sub", method="HEAD"), get("/a.txt/", method="HEAD")],
        "HEAD on a 404, a 301 and a trailing-slash 404: headers only (H16).",
        check=expect_status(404, 301, 404),
    ),
    Row(
        "unsupported",
        [
            get("/a.txt", method=method)
            for method in ("POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT")
        ],
        "POST, PUT, DELETE, OPTIONS, PATCH, TRACE, CONNECT: 501 Unsupported method (F12).",
        check=expect_status(501, 501, 501, 501, 501, 501, 501),
    ),
    Row(
        "method_case",
        [get("/a.txt", method="get"), get("/a.txt", method="Head"), get("/a.txt", method="GET_")],
        "Method names are case-sensitive (do_<METHOD>): get, Head, GET_ are 501.",
        check=expect_status(501, 501, 501),
    ),
    Row(
        "post_with_body",
        get("/a.txt", "Content-Length: 11", method="POST")[:-2] + b"\r\nhello=world",
        "POST with a body: 501, the body unread, the connection closed.",
        check=expect_status(501),
    ),
    Row(
        "range_ignored",
        [
            get("/a.txt", "Range: bytes=0-1"),
            get("/a.txt", "Range: bytes=-3"),
            get("/a.txt", "Range: bytes=100-200"),
            get("/a.txt", "Range: bytes=0-0,2-3"),
            get("/a.txt", "Range: lines=1"),
        ],
        "Range is ignored: every reply is the full 200 without Content-Range (F14).",
        check=expect_status(200, 200, 200, 200, 200),
    ),
    Row(
        "range_head",
        get("/a.txt", "Range: bytes=0-1", "If-Range: x", method="HEAD"),
        "HEAD with Range and If-Range: the full 200 headers.",
    ),
    Row(
        "http09",
        [get("/a.txt", version="HTTP/0.9"), get("/sub/", version="HTTP/0.9")],
        "An explicit HTTP/0.9 request: headers are read, the reply is the body only (H6).",
    ),
    Row(
        "pipelined",
        http11(
            get("/a.txt", "Host: h", version="HTTP/1.1"),
            get("/sub/b.txt", "Host: h", version="HTTP/1.1"),
            get("/sub", "Host: h", version="HTTP/1.1"),
            get("/b.html", "Host: h", "Connection: close", version="HTTP/1.1"),
        ),
        "HTTP/1.1 server, four pipelined requests (file, file, 301, file) on one "
        "connection: four replies in order.",
        handler_attrs=KEEP_ALIVE,
        options={"idle": 2.0},
    ),
    Row(
        "head_then_get",
        http11(
            get("/a.txt", "Host: h", method="HEAD", version="HTTP/1.1"),
            get("/a.txt", "Host: h", "Connection: close", version="HTTP/1.1"),
        ),
        "HEAD then GET pipelined: HEAD must not send the body, or the second reply would "
        "be misframed.",
        handler_attrs=KEEP_ALIVE,
        options={"idle": 2.0},
    ),
    Row(
        "error_closes",
        http11(
            get("/a.txt", "Host: h", method="POST", version="HTTP/1.1"),
            get("/a.txt", "Host: h", version="HTTP/1.1"),
        ),
        "A 501 on a keep-alive connection sends Connection: close and closes: the "
        "pipelined GET is not answered (H30).",
        handler_attrs=KEEP_ALIVE,
        options={"idle": 2.0},
    ),
    Row(
        "missing_then_file",
        http11(
            get("/missing", "Host: h", version="HTTP/1.1"),
            get("/a.txt", "Host: h", version="HTTP/1.1"),
        ),
        "A 404 on a keep-alive connection closes it too (send_error sets Connection: close).",
        handler_attrs=KEEP_ALIVE,
        options={"idle": 2.0},
    ),
]

register_rows("methods", ROWS)
