"""The grammar of fuzzed client behaviour: HTTP requests, byte edits, limits, streams,
datagrams and send schedules, as tables and generators.

Each generator takes a ``Chooser`` (``harness.fuzz.choice``) first: hypothesis strategies
and the seeded generators both run these functions, on the same tables. Tables list their
simplest entry first, which is where hypothesis shrinks to.

- ``http_request``: a request from the HTTP/1.x grammar (method, target, version, headers,
  body), rendered with chosen separators and line ends.
- ``mutate``: byte-level edits (insert or replace with CR, LF, whitespace, NUL, ``%``,
  ``:``, non-ASCII; delete; swap case; percent-encode; duplicate; truncate).
- ``limit_request``: a request at, just under or just over a documented limit.
- ``http_payload``: the bytes of one connection: a grammar request, edited or not, a
  pipelined pair, a limit request, or edits and splices of a ``base`` request.
- ``stream_payload``, ``datagram``: bytes for the line-echo and datagram servers.
- ``schedule``: how the bytes are cut into sends, the pause after each, the ending.
"""

from __future__ import annotations

import dataclasses

from harness.fuzz.choice import Chooser

#: CPython's documented limits (http.server / http.client / socketserver).
REQUEST_LINE_LIMIT = 65536
HEADER_LINE_LIMIT = 65536
HEADER_COUNT_LIMIT = 100
MAX_PACKET_SIZE = 8192
UDP_MAX = 65507

ENDINGS = ("half_close", "close", "reset", "open")

METHODS = (b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH")
METHODS += (b"TRACE", b"CONNECT", b"PRI")
VERSIONS = (
    b"HTTP/1.0",
    b"HTTP/1.1",
    b"",
    b"HTTP/0.9",
    b"HTTP/2.0",
    b"HTTP/1.10",
    b"HTTP/01.01",
    b"HTTP/1",
    b"HTTP/1.1.1",
    b"http/1.1",
    b"HTTP/1.+1",
    b"HTTP/1_1",
    b"HTTP/00000000001.1",
    b"HTTP/0.5",
    b"HTTP/3",
    b"FUBAR",
    b"HTTP/12345678901.0",
)
SEGMENTS = (b"a", b"index.html", b"..", b".", b"", b"%2e%2e", b"%2f", b"%2F", b"%00", b"%")
SEGMENTS += (b"%zz", b"a%20b", b"~user", b"\xc3\xa9", b"\xff", b"%C3%A9", b"\\", b";p=1")
SPECIAL_TARGETS = (b"*", b"//evil.example/x", b"http://h.example/x", b"/\\evil/%2e%2e%2f", b"?")
QUERIES = (b"q=1", b"", b"a=%00", b"x=<script>", b"?")
FRAGMENTS = (b"f", b"", b"%2e")
HEADER_NAMES = (b"Host", b"Content-Length", b"Connection", b"Transfer-Encoding", b"Expect")
HEADER_NAMES += (b"Content-Type", b"Accept", b"X-A", b"Cookie", b"If-Modified-Since")
HEADER_NAMES += (b"Range", b"Upgrade")
HEADER_VALUES = {
    b"Host": (b"h.example", b"", b"h.example:80", b"a b"),
    b"Content-Length": (b"0", b"5", b"-1", b"abc", b" 5", b"5, 5", b"99999999999999999999", b"3"),
    b"Connection": (b"close", b"keep-alive", b"Keep-Alive", b"keep-alive, close", b"upgrade"),
    b"Transfer-Encoding": (b"chunked", b"gzip, chunked", b"identity", b"Chunked"),
    b"Expect": (b"100-continue", b"100-Continue", b"200-ok"),
}
GENERIC_VALUES = (b"x", b"", b" padded ", b"a,b", b"\xc3\xa9", b"\x7f", b"v" * 40)
#: The values each header name is given: its own, then the generic ones.
VALUES = {name: HEADER_VALUES.get(name, ()) + GENERIC_VALUES for name in HEADER_NAMES}
HEADER_SEPARATORS = (b": ", b":", b" : ", b":\t", b": \t ")
LINE_ENDS = (b"\r\n", b"\n", b"\r")
WORD_SEPARATORS = (b" ", b"\t", b"  ", b"\x0b")
PREFIXES = (b"", b"", b"\r\n", b" ", b"\n")
BODIES = (b"hello", b"0\r\n\r\n", b"5\r\nhello\r\n0\r\n\r\n", b"x" * 70)
MUTATION_OPS = ("insert", "replace", "delete", "swapcase", "percent", "duplicate", "truncate")
INTERESTING_BYTES = (b"\r", b"\n", b"\r\n", b" ", b"\t", b"\x00", b":", b"%", b"/", b"\x7f")
INTERESTING_BYTES += (b"\x80", b"\xff", b"\xc3\xa9", b"\x0b", b"\x0c", b"\r\n\r\n")
LIMIT_KINDS = ("request_line", "header_count", "header_line")
STREAM_TOKENS = (b"\n", b"\r\n", b"\r", b"line\n", b"\x00\n")
DATAGRAM_ANCHORS = (0, MAX_PACKET_SIZE, 1, MAX_PACKET_SIZE * 2, UDP_MAX)

#: Weights of the schedules: every piece costs a send (and a read) on both sides, so the
#: many-piece schedules are rarer.
SCHEDULE_MODES = ((20, "whole"), (10, "offsets"), (6, "lines"), (3, "tokens"), (1, "bytewise"))
PAUSES = ((8, 0.0), (2, 0.001), (1, 0.01))
#: Endings, cheapest first: a half-close reads the whole reply and lets the server finish.
END_WEIGHTS = ((88, "half_close"), (5, "close"), (5, "reset"), (2, "open"))


@dataclasses.dataclass(frozen=True)
class HttpRequest:
    """A request as the grammar sees it, before rendering to bytes."""

    method: bytes = b"GET"
    target: bytes = b"/"
    version: bytes = b"HTTP/1.0"
    headers: tuple[tuple[bytes, bytes, bytes], ...] = ()  # (name, separator, value)
    body: bytes = b""
    line_end: bytes = b"\r\n"
    word_sep: bytes = b" "
    prefix: bytes = b""

    def render(self) -> bytes:
        """The request's bytes."""
        words = [self.method, self.target] + ([self.version] if self.version else [])
        out = [self.prefix, self.word_sep.join(words), self.line_end]
        for name, sep, value in self.headers:
            out += [name, sep, value, self.line_end]
        out += [self.line_end, self.body]
        return b"".join(out)


# --- HTTP --------------------------------------------------------------------------------


def method(c: Chooser) -> bytes:
    """A method token: a common one, its lower-case form, or up to 8 random bytes."""
    kind = c.weighted((70, 15, 15))
    if kind == 2:
        return bytes(b for b in c.binary(1, 8) if b not in b" \t\r\n") or b"X"
    token = c.pick(METHODS)
    return token.lower() if kind else token


def request_target(c: Chooser) -> bytes:
    """``/``, a path of interesting segments (dot segments, escapes, NUL, non-ASCII) with
    a query and fragment, or a special form (``*``, ``//host``, an absolute URL)."""
    kind = c.between(0, 3)
    if kind == 0:
        return b"/"
    if kind == 3:
        return c.pick(SPECIAL_TARGETS)
    target = b"/" + b"/".join(c.pick(SEGMENTS) for _ in range(c.between(1, 4)))
    if c.chance(50):
        target += b"?" + c.pick(QUERIES)
    if c.chance(50):
        target += b"#" + c.pick(FRAGMENTS)
    return target


def header_field(c: Chooser) -> tuple[bytes, bytes, bytes]:
    """``(name, separator, value)``: a known name (or its lower-case form) with a value
    that matters to a server, an odd separator, now and then an obs-fold continuation."""
    name = c.pick(HEADER_NAMES)
    value = c.pick(VALUES[name])
    if c.chance(50):
        name = name.lower()
    separator = c.pick(HEADER_SEPARATORS)
    if c.chance(6):
        value += b"\r\n " + c.pick(GENERIC_VALUES)
    return (name, separator, value)


def http_request(c: Chooser) -> HttpRequest:
    """A request from the grammar; the simplest is ``GET / HTTP/1.0`` and CRLF."""
    return HttpRequest(
        method=method(c),
        target=request_target(c),
        version=c.pick(VERSIONS),
        headers=tuple(header_field(c) for _ in range(c.between(0, 6))),
        body=c.pick(BODIES) if c.chance(50) else b"",
        line_end=c.pick(LINE_ENDS),
        word_sep=c.pick(WORD_SEPARATORS),
        prefix=c.pick(PREFIXES),
    )


def valid_http_request(c: Chooser, edits: bool = True) -> bytes:
    """A request a ``BaseHTTPRequestHandler`` parses and dispatches (to fuzz a handler, not
    the parser): a common method, HTTP/1.0 or 1.1, CRLF; with ``edits``, one in eight
    gets byte-level edits as well."""
    request = HttpRequest(
        method=c.pick(METHODS[:7]),
        target=request_target(c).lstrip(b"*") or b"/",
        version=c.pick((b"HTTP/1.0", b"HTTP/1.1")),
        headers=tuple(header_field(c) for _ in range(c.between(0, 6))),
        body=c.pick(BODIES) if c.chance(50) else b"",
    ).render()
    if edits and c.chance(12.5):
        request = mutate(c, request, c.between(1, 4))
    return request


def apply_mutation(data: bytes, op: str, position: int, arg: bytes) -> bytes:
    """Apply one byte-level edit at ``position`` (clamped into range)."""
    if not data:
        return arg if op in ("insert", "replace") else data
    pos = min(position, len(data) - 1)
    if op == "insert":
        return data[:pos] + arg + data[pos:]
    if op == "replace":
        return data[:pos] + arg + data[pos + 1 :]
    if op == "delete":
        return data[:pos] + data[pos + 1 :]
    if op == "swapcase":
        return data[:pos] + data[pos : pos + 1].swapcase() + data[pos + 1 :]
    if op == "percent":
        return data[:pos] + b"%%%02X" % data[pos] + data[pos + 1 :]
    if op == "duplicate":
        return data[: pos + len(arg)] + data[pos : pos + len(arg)] + data[pos + len(arg) :]
    if op == "truncate":
        return data[:pos]
    raise ValueError(f"op={op!r}: use one of {', '.join(MUTATION_OPS)}")


def mutate(c: Chooser, data: bytes, count: int) -> bytes:
    """``count`` byte-level edits of ``data`` (an interesting byte, or now and then any)."""
    for _ in range(count):
        op = c.pick(MUTATION_OPS)
        position = c.between(0, max(0, len(data) - 1))
        arg = c.binary(1, 1) if c.chance(10) else c.pick(INTERESTING_BYTES)
        data = apply_mutation(data, op, position, arg)
    return data


def limit_request(kind: str, delta: int, version: bytes) -> bytes:
    """A request ``delta`` bytes (or header fields) off the ``kind`` limit: a request line
    of 65536 bytes (CRLF included), 100 header fields, a header line of 65536 bytes."""
    if kind == "request_line":
        head = b"GET /"
        tail = (b" " + version if version else b"") + b"\r\n"
        fill = REQUEST_LINE_LIMIT + delta - len(head) - len(tail)
        return head + b"a" * max(0, fill) + tail + b"\r\n"
    version = version or b"HTTP/1.0"
    start = b"GET / " + version + b"\r\n"
    if kind == "header_count":
        count = HEADER_COUNT_LIMIT + delta
        return start + b"".join(b"X-%d: v\r\n" % i for i in range(count)) + b"\r\n"
    head = b"X-Long: "
    fill = HEADER_LINE_LIMIT + delta - len(head) - 2
    return start + head + b"v" * max(0, fill) + b"\r\n\r\n"


def any_limit_request(c: Chooser) -> bytes:
    """A limit request of any kind, exact or off by up to two (shrinks onto the limit)."""
    kind = c.pick(LIMIT_KINDS)
    return limit_request(kind, c.between(-2, 2), c.pick((b"HTTP/1.0", b"HTTP/1.1", b"")))


#: What the bytes of one HTTP connection are, with weights; the simplest first.
PAYLOAD_KINDS = ((25, "grammar"), (40, "edited"), (10, "pipelined"), (5, "limit"))
PAYLOAD_KINDS += ((15, "base-edited"), (5, "spliced"))


def http_payload(c: Chooser, base: bytes = b"") -> bytes:
    """The bytes of one HTTP connection (``PAYLOAD_KINDS``): a grammar request, one with
    byte edits, two pipelined (edited or not), a limit request; given a ``base``
    request, edits of it, or its head spliced onto the tail of another request."""
    kind = c.choose(PAYLOAD_KINDS)
    if kind == "limit":
        return any_limit_request(c)
    if kind == "base-edited" and base:
        return mutate(c, base, c.between(1, 4))
    if kind == "spliced" and base:
        other = http_request(c).render()
        return base[: c.between(0, len(base))] + other[c.between(0, len(other)) :]
    data = http_request(c).render()
    if kind == "pipelined":
        data += http_request(c).render()
    if kind != "grammar" and (kind != "pipelined" or c.chance(75)):
        data = mutate(c, data, c.between(1, 4))
    return data


# --- streams and datagrams -------------------------------------------------------------


def stream_payload(c: Chooser) -> bytes:
    """Bytes for a line-echo handler: random runs, line ends of every kind, lines of about
    64 KiB (around ``readline(65537)``), an unterminated tail."""
    parts = []
    for _ in range(c.between(0, 6)):
        kind = c.weighted((45, 45, 10))
        if kind == 0:
            parts.append(c.binary(0, 24))
        elif kind == 1:
            parts.append(c.pick(STREAM_TOKENS))
        else:
            parts.append(b"x" * (65535 + c.between(0, 3)) + b"\n")
    return b"".join(parts)


def datagram(c: Chooser) -> bytes:
    """One datagram: a size around ``max_packet_size`` (8192), around the UDP maximum
    (65507), or small; a pattern with a few arbitrary bytes at the end."""
    size = max(0, c.pick(DATAGRAM_ANCHORS) + c.between(-2, 2))
    edge = c.binary(0, 4)[:size]
    return b"d" * (size - len(edge)) + edge


def datagram_batch(c: Chooser) -> tuple[bytes, ...]:
    """One to four datagrams from one client socket."""
    return tuple(datagram(c) for _ in range(c.between(1, 4)))


# --- schedules ---------------------------------------------------------------------------


def cuts_to_splits(cuts: list[int], length: int) -> tuple[int, ...]:
    """Piece sizes that cut ``length`` bytes at each offset of ``cuts``."""
    points = sorted({cut for cut in cuts if 0 < cut < length})
    sizes, last = [], 0
    for point in points:
        sizes.append(point - last)
        last = point
    return tuple(sizes)


def boundaries(data: bytes, kind: str) -> list[int]:
    """Offsets in ``data`` just after each line end (``lines``) or around each separator
    (``tokens``: space, tab, colon, ``/``, ``%``)."""
    if kind == "lines":
        return [i + 1 for i, c in enumerate(data) if c in (10, 13)]
    if kind == "tokens":
        out = []
        for i, c in enumerate(data):
            if c in (32, 9, 58, 47, 37):
                out += [i, i + 1]
        return out
    raise ValueError(f"kind={kind!r}: use lines or tokens")


def splits_for(data: bytes, mode: str) -> tuple[int, ...]:
    """The piece sizes of a named schedule that needs no choices (``whole``, ``lines``,
    ``tokens``, ``bytewise``; only the first 4 KiB are cut, byte by byte only up to
    256 bytes)."""
    if mode in ("lines", "tokens"):
        return cuts_to_splits(boundaries(data[:4096], mode), min(len(data), 4096))
    if mode == "bytewise" and len(data) <= 256:
        return (1,) * max(0, len(data) - 1)
    return ()


def schedule(
    c: Chooser, data: bytes, allow_open: bool, cut: bool = True
) -> tuple[tuple[int, ...], float, str]:
    """How to send ``data``: ``(splits, pause, end)``.

    Splits: one send, at up to four chosen offsets, after every line end, around every
    separator, or byte by byte. Pause: none, 1 ms or 10 ms after each piece (only with
    few pieces). End: half-close, close, reset, or (``allow_open``) stay open. Without
    ``cut`` (batch mode, where the cut cannot be seen) the same choices are made but no
    splits are worked out.
    """
    mode = c.choose(SCHEDULE_MODES)
    splits: tuple[int, ...] = ()
    if mode == "offsets" and len(data) > 1:
        cuts = [c.between(1, len(data) - 1) for _ in range(c.between(1, 4))]
        splits = cuts_to_splits(cuts, len(data)) if cut else ()
    elif cut:
        splits = splits_for(data, mode)
    pause = c.choose(PAUSES) if len(splits) <= 4 else 0.0
    ends = END_WEIGHTS if allow_open else END_WEIGHTS[:-1]
    return splits, pause, c.choose(ends)
