"""``http/conditional``: If-Modified-Since on files served by SimpleHTTPRequestHandler (F9).

Used only when there is no ``If-None-Match``; parsed by ``email.utils.parsedate_to_datetime``
(an unparsable value is ignored); a naive date is taken as UTC; only a UTC date is compared
(any other zone: ignored, 200); the file's mtime is truncated to whole seconds; ``mtime <=
date`` gives ``304`` with only Server and Date. Every mtime is pinned (``MTIME`` = Tue, 14
Nov 2023 22:13:20 GMT), and each reply also records its raw ``Last-Modified``.
"""

from collections.abc import Callable
from typing import Any

from harness.scenario import Run
from scenarios._http_files_common import (
    MTIME,
    MTIME_HTTP,
    STANDARD,
    File,
    Row,
    expect_status,
    get,
    register_rows,
)

TREE = (
    *STANDARD,
    File("fraction.txt", b"sub-second mtime\n", mtime=MTIME + 0.7),
    File("epoch.txt", b"mtime 0\n", mtime=0),
    File("before_epoch.txt", b"mtime -86400\n", mtime=-86400),
    File("future.txt", b"mtime in 2100\n", mtime=4_102_444_800),
    File("withindex/index.html", b"<h1>index</h1>\n"),
)

SECOND_BEFORE = "Tue, 14 Nov 2023 22:13:19 GMT"
LATER = "Wed, 15 Nov 2023 00:00:00 GMT"


def ims(path: str, *values: str, method: str = "GET", extra: tuple[str, ...] = ()) -> bytes:
    """A request for ``path`` with one If-Modified-Since header per value."""
    headers = [f"If-Modified-Since: {value}" for value in values]
    return get(path, *headers, *extra, method=method)


def bare_304(run: Run, replies: list[dict[str, Any]]) -> None:
    """Invariant: a 304 carries only Server and Date, and no body."""
    for index, record in enumerate(replies):
        lines = record["head"].split("\r\n")
        if lines[0].split(" ")[1:2] == ["304"]:
            names = [line.split(":", 1)[0] for line in lines[1:]]
            run.expect(
                names == ["Server", "Date"] and record["body"] == "",
                f"reply {index + 1}: a 304 carries only Server and Date (got {names})",
            )


def row(
    name: str,
    requests: Any,
    doc: str,
    check: Callable[[Run, list[dict[str, Any]]], None] | None = None,
    **fields: Any,
) -> Row:
    """A row whose replies record the head, the body digest and the raw Last-Modified."""

    def checks(run: Run, replies: list[dict[str, Any]]) -> None:
        bare_304(run, replies)
        if check is not None:
            check(run, replies)

    return Row(
        name, requests, doc, long=True, options={"keep": ("Last-Modified",)}, check=checks, **fields
    )


ROWS = [
    row(
        "server_answers",
        get("/a.txt"),
        f"Sanity: GET /a.txt is 200 with Last-Modified: {MTIME_HTTP} (the pinned mtime).",
        check=expect_status(200),
    ),
    row(
        "equal",
        ims("/a.txt", MTIME_HTTP),
        "If-Modified-Since equal to the mtime: 304 Not Modified, only Server and Date.",
        check=expect_status(304),
    ),
    row(
        "older",
        ims("/a.txt", SECOND_BEFORE),
        "If-Modified-Since one second before the mtime: 200 with the file.",
        check=expect_status(200),
    ),
    row(
        "newer",
        [ims("/a.txt", LATER), ims("/a.txt", "Fri, 31 Dec 9999 23:59:59 GMT")],
        "If-Modified-Since after the mtime: 304.",
        check=expect_status(304, 304),
    ),
    row(
        "unparsable",
        [
            ims("/a.txt", "yesterday"),
            ims("/a.txt", ""),
            ims("/a.txt", "Tue, 14 Nov 2023"),
            ims("/a.txt", "Tue, 32 Nov 2023 22:13:20 GMT"),
            ims("/a.txt", "Tue, 14 Nov 2023 25:13:20 GMT"),
        ],
        "Values parsedate_to_datetime rejects (no time, day 32, hour 25, empty): ignored, 200.",
    ),
    row(
        "zone_plus0100",
        [
            ims("/a.txt", "Tue, 14 Nov 2023 23:13:20 +0100"),
            ims("/a.txt", "Wed, 15 Nov 2023 23:00:00 +0100"),
        ],
        "A +0100 zone, the same instant and a later one: not UTC, so ignored: 200 both.",
    ),
    row(
        "zone_names",
        [
            ims("/a.txt", "Tue, 14 Nov 2023 22:13:20 +0000"),
            ims("/a.txt", "Tue, 14 Nov 2023 22:13:20 -0000"),
            ims("/a.txt", "Tue, 14 Nov 2023 22:13:20 UT"),
            ims("/a.txt", "Tue, 14 Nov 2023 22:13:20 UTC"),
            ims("/a.txt", "Tue, 14 Nov 2023 17:13:20 EST"),
            ims("/a.txt", "Tue, 14 Nov 2023 22:13:20 XYZ"),
        ],
        "Zones spelt +0000, -0000 (naive), UT, UTC, EST (not UTC: ignored), an unknown one.",
    ),
    row(
        "naive",
        [ims("/a.txt", "Tue, 14 Nov 2023 22:13:20"), ims("/a.txt", "Tue, 14 Nov 2023 22:13:19")],
        "No zone at all: taken as UTC, so equal is 304 and a second earlier 200.",
        check=expect_status(304, 200),
    ),
    row(
        "with_if_none_match",
        [
            ims("/a.txt", LATER, extra=("If-None-Match: *",)),
            ims("/a.txt", LATER, extra=('If-None-Match: "x"',)),
        ],
        "If-None-Match present (any value): If-Modified-Since is not looked at: 200.",
        check=expect_status(200, 200),
    ),
    row(
        "sub_second_mtime",
        [ims("/fraction.txt", MTIME_HTTP), get("/fraction.txt")],
        "mtime 0.7 s after the second: truncated, so If-Modified-Since equal to the second "
        "is 304, and Last-Modified shows that second.",
        check=expect_status(304, 200),
    ),
    row(
        "odd_mtimes",
        [
            get("/epoch.txt"),
            ims("/epoch.txt", "Thu, 01 Jan 1970 00:00:00 GMT"),
            get("/before_epoch.txt"),
            ims("/before_epoch.txt", "Thu, 01 Jan 1970 00:00:00 GMT"),
            get("/future.txt"),
            ims("/future.txt", LATER),
        ],
        "mtimes at the epoch, before it and in 2100: Last-Modified and the comparison.",
    ),
    row(
        "listing_ignores",
        [ims("/sub/", LATER), ims("/withindex/", LATER)],
        "A directory listing is never 304; an index page is a file, so it is.",
        check=expect_status(200, 304),
    ),
    row(
        "head",
        [ims("/a.txt", MTIME_HTTP, method="HEAD"), ims("/a.txt", SECOND_BEFORE, method="HEAD")],
        "HEAD with If-Modified-Since: 304, or the 200 headers without a body.",
        check=expect_status(304, 200),
    ),
    row(
        "obsolete_formats",
        [
            ims("/a.txt", "Tuesday, 14-Nov-23 22:13:20 GMT"),
            ims("/a.txt", "Tue Nov 14 22:13:20 2023"),
            ims("/a.txt", "14 Nov 2023 22:13:20 GMT"),
            ims("/a.txt", "Tue, 14 Nov 23 22:13:20 GMT"),
        ],
        "RFC 850, asctime, no weekday, two-digit year: what parsedate_to_datetime makes of each.",
    ),
    row(
        "out_of_range",
        [
            ims("/a.txt", "Mon, 01 Jan 0001 00:00:00 GMT"),
            ims("/a.txt", "Sat, 01 Jan 10000 00:00:00 GMT"),
            ims("/a.txt", "Tue, 14 Nov 2023 22:13:20 +9999"),
        ],
        "Year 1 (200), year 10000 and a +9999 zone (rejected: ignored, 200).",
    ),
    row(
        "duplicate_headers",
        [ims("/a.txt", SECOND_BEFORE, LATER), ims("/a.txt", LATER, SECOND_BEFORE)],
        "Two If-Modified-Since headers: the first one counts.",
        check=expect_status(200, 304),
    ),
    row(
        "header_name_case",
        get("/a.txt", f"if-modified-since: {MTIME_HTTP}"),
        "The header name in lower case: matched case-insensitively, 304.",
        check=expect_status(304),
    ),
    Row(
        "keep_alive_304",
        get("/a.txt", "Host: h", f"If-Modified-Since: {MTIME_HTTP}", version="HTTP/1.1")
        + get("/a.txt", "Host: h", "Connection: close", version="HTTP/1.1"),
        "Under HTTP/1.1 a 304 (no body, no Content-Length) keeps the connection: the "
        "pipelined second request gets the file.",
        handler_attrs={"protocol_version": "HTTP/1.1"},
        options={"idle": 2.0},
    ),
]

register_rows("conditional", ROWS, tree=TREE)
