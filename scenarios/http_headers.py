"""HTTP request headers: count and line limits, folding, malformed lines, duplicates,
line ends, long, empty and non-ASCII values.

The handler (``Echo``) lists the headers it got as ``(name, value)`` pairs, so a header
dropped, merged or altered by one implementation shows in the body.
"""

from __future__ import annotations

from scenarios._http_protocol_common import Row, register_rows, scheduled

FAMILY = "headers"

#: The longest header line read (CRLF included); one more byte is a 431.
LINE_LIMIT = 65536


def with_headers(*lines: bytes, start: bytes = b"GET /h HTTP/1.0") -> bytes:
    """A request with these header lines (CRLF added to each) and the blank line."""
    return start + b"\r\n" + b"".join(line + b"\r\n" for line in lines) + b"\r\n"


def numbered(count: int) -> list[bytes]:
    """``count`` distinct header lines ``X-Hn: n``."""
    return [b"X-H%d: %d" % (n, n) for n in range(count)]


def header_line_of(length: int) -> bytes:
    """An ``X-Big`` header line of exactly ``length`` bytes, CRLF included."""
    head = b"X-Big: "
    return head + b"b" * (length - len(head) - 2)


ROWS = [
    Row(
        "sanity",
        with_headers(b"Host: example.com", b"User-Agent: harness"),
        "The server answers a GET with two headers and lists both.",
    ),
    Row("count_99", with_headers(*numbered(99)), "99 header fields are accepted (H3)."),
    Row(
        "count_100",
        with_headers(*numbered(100)),
        "100 header fields: 431 Too many headers on 3.11-3.14, the blank line counts (H3).",
    ),
    Row("count_101", with_headers(*numbered(101)), "101 header fields: 431 on every version (H3)."),
    Row(
        "line_at_limit",
        with_headers(header_line_of(LINE_LIMIT)),
        "A header line of exactly 65536 bytes (CRLF included) is accepted (H2).",
    ),
    Row(
        "line_over_limit",
        with_headers(header_line_of(LINE_LIMIT + 1)),
        "A header line of 65537 bytes: 431 Line too long, with the explanation (H2).",
    ),
    Row(
        "obs_fold",
        with_headers(b"X-Fold: first", b"  second", b"\tthird", b"X-After: 1"),
        "Folded continuation lines (obs-fold) are accepted and kept in the value (H11).",
    ),
    Row(
        "no_colon",
        with_headers(b"X-Before: 1", b"NoColonHere", b"X-After: 2"),
        "A line without a colon ends the header block: later headers are dropped (H11).",
    ),
    Row(
        "space_before_colon",
        with_headers(b"Host : example.com", b"X-After: 2"),
        "'Host : x' ends header parsing: no headers at all, still 200 (H11).",
    ),
    Row(
        "leading_whitespace_first",
        with_headers(b" X-Indented: 1", b"X-After: 2"),
        "Leading whitespace on the first header line is tolerated (H11).",
    ),
    Row(
        "duplicate",
        with_headers(b"Host: one", b"X-Dup: a", b"Host: two", b"X-Dup: b"),
        "Duplicate fields are all kept, in order (H11).",
    ),
    Row(
        "duplicate_content_length",
        with_headers(b"Content-Length: 3", b"Content-Length: 5", start=b"POST /p HTTP/1.0")
        + b"abcde",
        "Conflicting Content-Length fields are accepted; the handler reads the first (H13).",
    ),
    Row(
        "bare_lf",
        b"GET /lf HTTP/1.0\r\nX-A: 1\nX-B: 2\n\n",
        "Header lines ending in a bare LF, and a bare-LF blank line, are accepted.",
    ),
    Row(
        "long_value",
        with_headers(b"X-Long: " + b"v" * 20000, b"X-After: 1"),
        "A 20000-byte value is kept whole.",
    ),
    Row(
        "empty_value",
        with_headers(b"X-Empty:", b"X-Space: ", b"X-After: 1"),
        "Empty values, with and without a space after the colon.",
    ),
    Row(
        "non_ascii",
        with_headers(b"X-Name: caf\xc3\xa9 \xff\x80", b"X-\xe9: latin"),
        "Non-ASCII bytes in names and values are decoded as Latin-1.",
    ),
]

SCHEDULED = [
    Row(
        "schedule_many",
        with_headers(b"Host: h", b"X-Fold: a", b" b", *numbered(20)),
        "Twenty-three header lines with a fold are parsed the same however they are cut.",
    ),
]

register_rows(FAMILY, [*ROWS, *scheduled(SCHEDULED)])
