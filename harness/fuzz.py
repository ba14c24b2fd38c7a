"""Hypothesis strategies for fuzzing servers, and the fuzz case they produce.

Everything public here is re-exported from this one module (``harness.fuzz``); the
differential loop lives in ``harness.fuzz_run``, the handler fuzzer in
``harness.fuzz_handler``.

A ``Case`` is one client behaviour: the bytes a client sends on one connection (or the
datagrams it sends from one socket), how the bytes are cut into sends, the pause after
each send, and how the client ends its side (half-close, close, reset, or stay open).

The strategies, what they generate, and their shrink direction:

- ``http_requests()``: requests built from the HTTP/1.x grammar (method, target, version,
  headers, body), rendered with chosen separators and line ends; shrinks towards
  ``GET / HTTP/1.0`` with no headers, CRLF line ends and single spaces.
- ``mutations(data)``: byte-level edits of a rendered request (insert or replace with CR,
  LF, whitespace, NUL, ``%``, ``:``, non-ASCII; delete; swap case; percent-encode;
  duplicate; truncate); shrinks towards fewer edits, earlier positions.
- ``limit_requests()``: requests whose request line, header count or header line length is
  at, just under or just over CPython's limits (65536-byte request line, 100 headers,
  65536-byte header line); shrinks towards exactly the limit.
- ``http_payloads()``: one of the three above (mutated grammar requests most often), or two
  pipelined requests; shrinks towards one plain grammar request.
- ``stream_payloads()``: lines and binary runs for a line-echo handler; shrinks towards
  ``b""``.
- ``schedules(data)``: how to cut ``data`` into sends (whole, byte by byte, at line ends,
  at separators, at chosen offsets), a pause, and the ending; shrinks towards one send,
  no pause, half-close.
- ``datagram_batches()``: datagrams of every size around ``max_packet_size`` (8192) and
  around the UDP maximum; shrinks towards one empty datagram.
- ``cases(family)``: a whole ``Case`` for ``http``, ``stream`` or ``datagram``.
- ``case_batches(family)``: lists of cases, run concurrently as one hypothesis example; a
  batch may contain ``open`` endings only if its first draw says so (they cost an idle
  timeout each); shrinks towards one case.
- ``templates(family, count)``: what the differential fuzzer draws per example: a case as
  above and a seed; ``derive`` expands it into the case's standard expansion and ``count``
  seeded cases made without hypothesis (``random.Random``: grammar requests from the same
  tables, byte-level edits of the drawn request or a fresh one, pipelined pairs, splices,
  limit requests; a schedule and an ending), so one draw feeds hundreds of cases. Seeded
  case ``i`` depends on the seed and ``i`` only. Shrinks the case, then the seed.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import random
from collections.abc import Iterator
from typing import Any

from hypothesis import strategies as st

#: CPython's documented limits (http.server / http.client / socketserver).
REQUEST_LINE_LIMIT = 65536
HEADER_LINE_LIMIT = 65536
HEADER_COUNT_LIMIT = 100
MAX_PACKET_SIZE = 8192
UDP_MAX = 65507

FAMILIES = ("http", "stream", "datagram")
ENDINGS = ("half_close", "close", "reset", "open")

METHODS = (
    b"GET",
    b"HEAD",
    b"POST",
    b"PUT",
    b"DELETE",
    b"OPTIONS",
    b"PATCH",
    b"TRACE",
    b"CONNECT",
    b"PRI",
)
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
SEGMENTS = (
    b"a",
    b"index.html",
    b"..",
    b".",
    b"",
    b"%2e%2e",
    b"%2f",
    b"%2F",
    b"%00",
    b"%",
    b"%zz",
    b"a%20b",
    b"~user",
    b"\xc3\xa9",
    b"\xff",
    b"%C3%A9",
    b"\\",
    b";p=1",
)
SPECIAL_TARGETS = (b"*", b"//evil.example/x", b"http://h.example/x", b"/\\evil/%2e%2e%2f", b"?")
HEADER_NAMES = (
    b"Host",
    b"Content-Length",
    b"Connection",
    b"Transfer-Encoding",
    b"Expect",
    b"Content-Type",
    b"Accept",
    b"X-A",
    b"Cookie",
    b"If-Modified-Since",
    b"Range",
    b"Upgrade",
)
HEADER_VALUES = {
    b"Content-Length": (b"0", b"5", b"-1", b"abc", b" 5", b"5, 5", b"99999999999999999999", b"3"),
    b"Connection": (b"close", b"keep-alive", b"Keep-Alive", b"keep-alive, close", b"upgrade"),
    b"Transfer-Encoding": (b"chunked", b"gzip, chunked", b"identity", b"Chunked"),
    b"Expect": (b"100-continue", b"100-Continue", b"200-ok"),
    b"Host": (b"h.example", b"", b"h.example:80", b"a b"),
}
GENERIC_VALUES = (b"x", b"", b" padded ", b"a,b", b"\xc3\xa9", b"\x7f", b"v" * 40)
HEADER_SEPARATORS = (b": ", b":", b" : ", b":\t", b": \t ")
LINE_ENDS = (b"\r\n", b"\n", b"\r")
WORD_SEPARATORS = (b" ", b"\t", b"  ", b"\x0b")
MUTATION_OPS = ("insert", "replace", "delete", "swapcase", "percent", "duplicate", "truncate")
INTERESTING_BYTES = (
    b"\r",
    b"\n",
    b"\r\n",
    b" ",
    b"\t",
    b"\x00",
    b":",
    b"%",
    b"/",
    b"\x7f",
    b"\x80",
    b"\xff",
    b"\xc3\xa9",
    b"\x0b",
    b"\x0c",
    b"\r\n\r\n",
)


# Strategies are built once: building one validates it, which costs more than a draw.
_S_BOOL = st.booleans()
_S_0_3 = st.integers(0, 3)
_S_0_4 = st.integers(0, 4)
_S_0_15 = st.integers(0, 15)
_S_METHOD = st.sampled_from(METHODS)
_S_SPECIAL = st.sampled_from(SPECIAL_TARGETS)
_S_SEGMENTS = st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=4)
_S_QUERY = st.sampled_from((b"q=1", b"", b"a=%00", b"x=<script>", b"?"))
_S_FRAGMENT = st.sampled_from((b"f", b"", b"%2e"))
_S_HEADER_NAME = st.one_of(
    st.sampled_from(HEADER_NAMES), st.sampled_from(HEADER_NAMES).map(bytes.lower)
)
_VALUE_STRATEGIES = {
    name.title(): st.sampled_from(HEADER_VALUES.get(name, ()) + GENERIC_VALUES)
    for name in HEADER_NAMES
}
_S_HEADER_SEP = st.sampled_from(HEADER_SEPARATORS)
_S_GENERIC = st.sampled_from(GENERIC_VALUES)
_S_BODY = st.sampled_from((b"hello", b"0\r\n\r\n", b"5\r\nhello\r\n0\r\n\r\n", b"x" * 70))
_S_VERSION = st.sampled_from(VERSIONS)
_S_LINE_END = st.sampled_from(LINE_ENDS)
_S_WORD_SEP = st.sampled_from(WORD_SEPARATORS)
_S_PREFIX = st.sampled_from((b"", b"", b"\r\n", b" ", b"\n"))
_S_OP = st.sampled_from(MUTATION_OPS)
_S_INTERESTING = st.sampled_from(INTERESTING_BYTES)


# --- the case -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Case:
    """One client behaviour against one server.

    ``data`` goes out on one stream connection in pieces: ``splits`` are the sizes of the
    first pieces (the rest goes last), ``pause`` seconds after each piece but the last.
    ``end`` says what the client does after sending: ``half_close`` (shutdown SHUT_WR, then
    read until EOF), ``close`` (close at once, read nothing), ``reset`` (abortive close,
    RST), ``open`` (read until the server closes or stays idle). Datagram cases send each of
    ``datagrams`` from one socket and read one reply per datagram.
    """

    family: str
    data: bytes = b""
    splits: tuple[int, ...] = ()
    pause: float = 0.0
    end: str = "half_close"
    datagrams: tuple[bytes, ...] = ()

    def pieces(self) -> list[bytes]:
        """The sends, in order."""
        out, start = [], 0
        for size in self.splits:
            if start >= len(self.data):
                break
            out.append(self.data[start : start + size])
            start += size
        if start < len(self.data) or not out:
            out.append(self.data[start:])
        return out

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form (bytes as base64, plus a readable Latin-1 preview)."""
        return {
            "family": self.family,
            "data_b64": base64.b64encode(self.data).decode(),
            "preview": _preview(self.data),
            "length": len(self.data),
            "splits": list(self.splits),
            "pause": self.pause,
            "end": self.end,
            "datagrams_b64": [base64.b64encode(d).decode() for d in self.datagrams],
            "datagram_sizes": [len(d) for d in self.datagrams],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Case:
        """The case back from ``to_json`` output."""
        return cls(
            family=data["family"],
            data=base64.b64decode(data.get("data_b64", "")),
            splits=tuple(data.get("splits", ())),
            pause=float(data.get("pause", 0.0)),
            end=data.get("end", "half_close"),
            datagrams=tuple(base64.b64decode(d) for d in data.get("datagrams_b64", ())),
        )

    def wire(self) -> dict[str, Any]:
        """The compact form sent to an agent (bytes as Latin-1 text)."""
        return {
            "family": self.family,
            "data": self.data.decode("latin-1"),
            "splits": list(self.splits),
            "end": self.end,
            "datagrams": [d.decode("latin-1") for d in self.datagrams],
        }

    def key(self) -> str:
        """A short stable hash of the case (used in scenario ids and file names)."""
        blob = json.dumps(self.to_json(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    def describe(self) -> str:
        """One line for people."""
        if self.family == "datagram":
            return f"datagrams of sizes {[len(d) for d in self.datagrams]}"
        pieces = len(self.pieces())
        return (
            f"{len(self.data)} bytes {_preview(self.data, 80)!r} in {pieces} send(s)"
            f"{f', pause {self.pause:g}s' if self.pause else ''}, then {self.end}"
        )


def _preview(data: bytes, limit: int = 300) -> str:
    text = data[:limit].decode("latin-1")
    return text + (f"... ({len(data)} bytes)" if len(data) > limit else "")


# --- HTTP grammar ------------------------------------------------------------------------


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


def methods() -> st.SearchStrategy[bytes]:
    """Method tokens: common ones, their lower-case forms, and random tokens.

    Shrinks towards ``GET``.
    """
    return st.one_of(
        _S_METHOD,
        _S_METHOD.map(bytes.lower),
        st.binary(min_size=1, max_size=8).map(
            lambda b: bytes(c for c in b if c not in b" \t\r\n") or b"X"
        ),
    )


@st.composite
def request_targets(draw: Any) -> bytes:
    """Request targets: ``/``, paths from interesting segments (dot segments, percent
    escapes, NUL, non-ASCII), a query and fragment, and special forms (``*``,
    ``//host``, absolute URLs). Shrinks towards ``/``."""
    kind = draw(_S_0_3)
    if kind == 0:
        return b"/"
    if kind == 3:
        return draw(_S_SPECIAL)
    segments = draw(_S_SEGMENTS)
    target = b"/" + b"/".join(segments)
    if draw(_S_BOOL):
        target += b"?" + draw(_S_QUERY)
    if draw(_S_BOOL):
        target += b"#" + draw(_S_FRAGMENT)
    return target


@st.composite
def header_fields(draw: Any) -> tuple[bytes, bytes, bytes]:
    """One header field ``(name, separator, value)``: well-known names with values that
    matter to a server (lengths, keep-alive, chunked, 100-continue), odd separators (no
    space, space before the colon, tabs), obs-fold continuation. Shrinks towards
    ``Host: h.example``."""
    name = draw(_S_HEADER_NAME)
    value = draw(_VALUE_STRATEGIES[name.title()])
    sep = draw(_S_HEADER_SEP)
    if draw(_S_0_15) == 15:
        value += b"\r\n " + draw(_S_GENERIC)  # obs-fold
    return (name, sep, value)


_S_HEADERS = st.lists(header_fields(), max_size=6)
_S_TARGET = request_targets()


@st.composite
def http_requests(draw: Any) -> HttpRequest:
    """Requests from the grammar: method, target, version, headers, body, separators.

    Shrinks towards ``GET / HTTP/1.0`` with no headers and CRLF line ends.
    """
    method = draw(methods())
    body = b""
    headers = tuple(draw(_S_HEADERS))
    if draw(_S_BOOL):
        body = draw(_S_BODY)
    return HttpRequest(
        method=method,
        target=draw(_S_TARGET),
        version=draw(_S_VERSION),
        headers=headers,
        body=body,
        line_end=draw(_S_LINE_END),
        word_sep=draw(_S_WORD_SEP),
        prefix=draw(_S_PREFIX),
    )


_S_VALID_METHOD = st.sampled_from(METHODS[:7])
_S_VALID_VERSION = st.sampled_from((b"HTTP/1.0", b"HTTP/1.1"))
_S_0_7 = st.integers(0, 7)


@st.composite
def valid_http_requests(draw: Any, edits: bool = True) -> bytes:
    """Requests a ``BaseHTTPRequestHandler`` parses and dispatches (for fuzzing a handler
    rather than the parser): a common method, ``HTTP/1.0`` or ``HTTP/1.1``, CRLF, grammar
    targets, headers and bodies; with ``edits``, one in eight gets byte-level edits as well.

    Shrinks towards ``GET / HTTP/1.0`` with no headers, unedited.
    """
    request = HttpRequest(
        method=draw(_S_VALID_METHOD),
        target=draw(_S_TARGET).lstrip(b"*") or b"/",
        version=draw(_S_VALID_VERSION),
        headers=tuple(draw(_S_HEADERS)),
        body=draw(_S_BODY) if draw(_S_BOOL) else b"",
    )
    data = request.render()
    if edits and draw(_S_0_7) == 7:
        data = draw(mutations(data))
    return data


# --- byte-level mutation -------------------------------------------------------------------


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


@st.composite
def mutations(draw: Any, data: bytes) -> bytes:
    """``data`` with up to four byte-level edits: separators, case, whitespace, CR and LF,
    percent-encoding, non-ASCII, deletions, duplications and truncation.

    Shrinks towards no edit (``data`` unchanged), then earlier positions.
    """
    count = draw(_S_0_4)
    for _ in range(count):
        op = draw(_S_OP)
        position = draw(st.integers(0, max(0, len(data) - 1)))
        arg = draw(_S_INTERESTING)
        data = apply_mutation(data, op, position, arg)
    return data


# --- limits ----------------------------------------------------------------------------


@st.composite
def limit_requests(draw: Any) -> bytes:
    """Requests sized at, just under and just over a documented limit: a request line of
    65536 bytes (CRLF included), 100 header fields, a header line of 65536 bytes.

    Shrinks towards exactly the limit (offset 0) of the request-line kind.
    """
    kind = draw(st.sampled_from(LIMIT_KINDS))
    delta = draw(st.integers(-2, 2))
    version = draw(st.sampled_from((b"HTTP/1.0", b"HTTP/1.1", b"")))
    return limit_request(kind, delta, version)


LIMIT_KINDS = ("request_line", "header_count", "header_line")


def limit_request(kind: str, delta: int, version: bytes) -> bytes:
    """A request ``delta`` bytes (or header fields) off the ``kind`` limit."""
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


@st.composite
def http_payloads(draw: Any) -> bytes:
    """The bytes of one HTTP connection: a grammar request (mutated three times in four),
    a limit request, or two pipelined grammar requests. Shrinks towards one unmutated
    grammar request."""
    kind = draw(st.integers(0, 9))
    if kind == 9:
        return draw(limit_requests())
    data = draw(http_requests()).render()
    if kind == 8:
        data += draw(http_requests()).render()
    if kind % 4:
        data = draw(mutations(data))
    return data


@st.composite
def stream_payloads(draw: Any) -> bytes:
    """Bytes for a line-echo stream handler: lines with every kind of line end, long
    lines, binary runs and an unterminated tail. Shrinks towards ``b""``."""
    parts = draw(
        st.lists(
            st.one_of(
                st.binary(max_size=24),
                st.sampled_from((b"\n", b"\r\n", b"\r", b"line\n", b"\x00\n")),
                st.integers(0, 3).map(lambda k: b"x" * (65536 + k - 1) + b"\n"),
            ),
            max_size=6,
        )
    )
    return b"".join(parts)


# --- schedules -------------------------------------------------------------------------


def _cuts_to_splits(cuts: list[int], length: int) -> tuple[int, ...]:
    points = sorted({c for c in cuts if 0 < c < length})
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


@st.composite
def schedules(
    draw: Any, data: bytes, allow_open: bool = True
) -> tuple[tuple[int, ...], float, str]:
    """How to send ``data``: ``(splits, pause, end)``.

    Splits: one send, byte by byte (short data only), after every line end, around every
    separator, or at up to four chosen offsets. Pause: none, 1 ms or 10 ms after each
    piece (only with few pieces). End: half-close, close, reset, or (if ``allow_open``)
    stay open. Shrinks towards one send, no pause, half-close.
    """
    mode = draw(st.sampled_from(("whole", "offsets", "lines", "tokens", "bytewise")))
    splits: tuple[int, ...] = ()
    if mode == "offsets" and len(data) > 1:
        cuts = draw(st.lists(st.integers(1, len(data) - 1), max_size=4))
        splits = _cuts_to_splits(cuts, len(data))
    elif mode in ("lines", "tokens"):
        splits = _cuts_to_splits(boundaries(data[:4096], mode), min(len(data), 4096))
    elif mode == "bytewise" and len(data) <= 256:
        splits = (1,) * max(0, len(data) - 1)
    pause = 0.0
    if len(splits) <= 4:
        pause = draw(st.sampled_from((0.0, 0.0, 0.001, 0.01)))
    endings = ENDINGS if allow_open else ENDINGS[:-1]
    end = draw(st.sampled_from(endings))
    return splits, pause, end


# --- datagrams -------------------------------------------------------------------------


@st.composite
def datagrams(draw: Any) -> bytes:
    """One datagram: a size around ``max_packet_size`` (8192), around the UDP maximum
    (65507), or small; filled with a pattern and a few drawn bytes at the edges.

    Shrinks towards an empty datagram.
    """
    anchor = draw(st.sampled_from((0, MAX_PACKET_SIZE, 1, MAX_PACKET_SIZE * 2, UDP_MAX)))
    size = max(0, anchor + draw(st.integers(-2, 2)))
    edge = draw(st.binary(max_size=4))[:size]
    return b"d" * (size - len(edge)) + edge


def datagram_batches() -> st.SearchStrategy[list[bytes]]:
    """One to four datagrams from one client socket. Shrinks towards one empty datagram."""
    return st.lists(datagrams(), min_size=1, max_size=4)


# --- cases and batches ---------------------------------------------------------------------


@st.composite
def cases(draw: Any, family: str = "http", allow_open: bool = True) -> Case:
    """A whole ``Case`` of ``family`` (``http``, ``stream`` or ``datagram``; or
    ``http-valid``: an ``http`` case from ``valid_http_requests``).

    Shrinks towards a plain ``GET / HTTP/1.0`` (http), ``b""`` (stream) or one empty
    datagram, sent in one piece and half-closed.
    """
    if family == "datagram":
        return Case("datagram", datagrams=tuple(draw(datagram_batches())))
    if family == "http":
        data = draw(http_payloads())
    elif family == "http-valid":
        data = draw(valid_http_requests())
        family = "http"
    elif family == "stream":
        data = draw(stream_payloads())
    else:
        raise ValueError(f"family={family!r}: use one of {', '.join(FAMILIES)}")
    splits, pause, end = draw(schedules(data, allow_open))
    return Case(family, data, splits, pause, end)


_BATCH_STRATEGIES: dict[tuple[str, bool, int], st.SearchStrategy[list[Case]]] = {}


@st.composite
def case_batches(draw: Any, family: str = "http", max_size: int = 8) -> list[Case]:
    """A list of cases run concurrently as one example. One batch in eight may contain
    ``open`` endings (each of those costs an idle timeout). Shrinks towards one case."""
    allow_open = draw(_S_0_7) == 7
    size = max_size if not allow_open else min(max_size, 4)
    key = (family, allow_open, size)
    if key not in _BATCH_STRATEGIES:
        _BATCH_STRATEGIES[key] = st.lists(cases(family, allow_open), min_size=1, max_size=size)
    return draw(_BATCH_STRATEGIES[key])


#: The schedules every drawn stream case is also fed in (h11's habit: whole, byte by byte,
#: at every boundary), each with the ending that lets the server finish at once.
STANDARD_SCHEDULES = (
    ("whole", "half_close"),
    ("whole", "close"),
    ("whole", "reset"),
    ("lines", "half_close"),
    ("tokens", "half_close"),
    ("bytewise", "half_close"),
)


def _lf_only(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n")


def _lower_head(data: bytes) -> bytes:
    head, sep, rest = data.partition(b"\n")
    return head.lower() + sep + rest


def _upper_all(data: bytes) -> bytes:
    return data.upper()


def _blank_line_first(data: bytes) -> bytes:
    return b"\r\n" + data


#: Deterministic byte-level variants of every drawn payload (an AFL-style deterministic
#: stage): bare LF line ends, a lower-case request line, everything upper case, a blank
#: line before the request. Each is sent whole and half-closed.
DATA_VARIANTS = (_lf_only, _lower_head, _upper_all, _blank_line_first)


def expand(case: Case) -> list[Case]:
    """``case`` first, then its data in each of ``STANDARD_SCHEDULES``, then each of
    ``DATA_VARIANTS`` of its data sent whole (no duplicates).

    Drawing costs far more than running (hypothesis spends about 100 us a draw), so each
    drawn payload is fed every standard way: one example covers many client behaviours,
    and a difference found in any of them shrinks through the payload they share.
    """
    if case.family == "datagram":
        return [case]
    out = [case]
    seen = {(case.splits, case.pause, case.end)}
    if len(case.data) <= 4096:
        datas = {case.data}
        for variant in DATA_VARIANTS:
            data = variant(case.data)
            if data not in datas:
                datas.add(data)
                out.append(Case(case.family, data))
    limit = min(len(case.data), 4096)
    for mode, end in STANDARD_SCHEDULES:
        if mode == "whole":
            splits: tuple[int, ...] = ()
        elif mode == "bytewise":
            if len(case.data) > 256:
                continue
            splits = (1,) * max(0, len(case.data) - 1)
        else:
            splits = _cuts_to_splits(boundaries(case.data[:limit], mode), limit)
        if (splits, 0.0, end) in seen:
            continue
        seen.add((splits, 0.0, end))
        out.append(dataclasses.replace(case, splits=splits, pause=0.0, end=end))
    return out


# --- templates: one hypothesis draw, many seeded cases ------------------------------------
#
# A hypothesis draw costs about as much as running tens of cases, so an example is not one
# case but a *template*: a grammar case drawn as above (it shrinks as before) and a seed.
# ``derive`` turns it into the base case's standard expansion followed by ``count`` cases
# from a cheap deterministic generator: case ``i`` comes from ``random.Random(seed * 2**20
# + i)`` alone (grammar requests from the same tables, byte-level edits of the base or of a
# fresh request, pipelined pairs, splices, limit requests; a schedule and an ending), so it
# depends on neither the base nor the other cases, and the same template always gives the
# same cases.

#: Seeded cases per template; case ``i`` of a template is seeded with ``seed * 2**20 + i``.
MAX_DERIVED = 1 << 20


@dataclasses.dataclass(frozen=True)
class Template:
    """One hypothesis example: ``base`` (a drawn case) and the seed of the derived cases.

    ``count`` seeded cases follow the base's expansion; ``allow_open`` lets a few of them
    stay open (each costs an idle timeout); ``batch`` derives for batch mode, where the
    cut of the sends cannot be seen and a reset is a close (``batch_form``), so that no
    case is derived twice under two names.
    """

    base: Case
    seed: int
    count: int
    allow_open: bool = False
    batch: bool = False

    def __repr__(self) -> str:
        # Short: hypothesis shows it, and the base's bytes may be 64 KiB.
        return (
            f"Template(base={self.base.describe()!r} #{self.base.key()}, seed={self.seed}, "
            f"count={self.count}, allow_open={self.allow_open}, batch={self.batch})"
        )


def batch_form(case: Case) -> Case:
    """``case`` as batch mode can run it: one send (the handler reads only after the
    client has sent everything, so where the sends were cut cannot be seen), no pause,
    and ``reset`` is ``close``."""
    if not case.splits and case.pause == 0.0 and case.end != "reset":
        return case
    end = "close" if case.end == "reset" else case.end
    return dataclasses.replace(case, splits=(), pause=0.0, end=end)


def derive(template: Template) -> list[Case]:
    """Every case of ``template``, without duplicates: ``expand(base)``, then the seeded
    cases in seed order."""
    return list(derive_iter(template))


def derive_iter(template: Template) -> Iterator[Case]:
    """``derive``, one case at a time (the fuzzer derives the next chunk while the last
    one runs)."""
    out = expand(template.base)
    if template.batch:
        out = [batch_form(c) for c in out]
    seen: set[Case] = set()
    for case in out:
        if case not in seen:
            seen.add(case)
            yield case
    for index in range(min(template.count, MAX_DERIVED)):
        case = seeded_case(template, index)
        if case not in seen:
            seen.add(case)
            yield case


def _pick(rng: random.Random, items: Any) -> Any:
    """``rng.choice``, three times cheaper (and as deterministic)."""
    return items[int(rng.random() * len(items))]


def _between(rng: random.Random, low: int, high: int) -> int:
    """``rng.randint``, cheaper."""
    return low + int(rng.random() * (high - low + 1))


def seeded_case(template: Template, index: int) -> Case:
    """Seeded case ``index`` of ``template`` (deterministic; see ``derive``)."""
    rng = random.Random(template.seed * MAX_DERIVED + index)
    family = template.base.family
    if family == "datagram":
        return Case(
            "datagram", datagrams=tuple(_rng_datagram(rng) for _ in range(_between(rng, 1, 4)))
        )
    if family == "stream":
        data = _rng_stream(rng)
    else:
        data = _rng_http(rng, template.base.data)
    splits, pause, end = _rng_schedule(rng, data, template.allow_open, template.batch)
    if template.batch:  # as batch_form makes it
        return Case(family, data, end="close" if end == "reset" else end)
    return Case(family, data, splits, pause, end)


def _rng_http(rng: random.Random, base: bytes) -> bytes:
    kind = rng.random()
    if kind < 0.30 and base:  # edits of the drawn request
        return _rng_mutate(rng, base, _between(rng, 1, 4))
    if kind < 0.33:  # a limit request, exact or off by up to two
        version = _pick(rng, (b"HTTP/1.0", b"HTTP/1.1", b""))
        return limit_request(_pick(rng, LIMIT_KINDS), _between(rng, -2, 2), version)
    if kind < 0.43:  # two pipelined requests
        data = _rng_request(rng) + _rng_request(rng)
    elif kind < 0.50 and base:  # a splice: the head of the base, the tail of another
        other = _rng_request(rng)
        data = base[: _between(rng, 0, len(base))] + other[_between(rng, 0, len(other)) :]
    else:
        data = _rng_request(rng)
    if rng.random() < 0.75:
        data = _rng_mutate(rng, data, _between(rng, 1, 4))
    return data


def _rng_request(rng: random.Random) -> bytes:
    """A grammar request from the tables ``http_requests`` draws from."""
    kind = rng.random()
    if kind < 0.7:
        method = _pick(rng, METHODS)
    elif kind < 0.85:
        method = _pick(rng, METHODS).lower()
    else:
        raw = rng.randbytes(_between(rng, 1, 8))
        method = bytes(c for c in raw if c not in b" \t\r\n") or b"X"
    kind = int(rng.random() * 4)
    if kind == 0:
        target = b"/"
    elif kind == 3:
        target = _pick(rng, SPECIAL_TARGETS)
    else:
        target = b"/" + b"/".join(_pick(rng, SEGMENTS) for _ in range(_between(rng, 1, 4)))
        if rng.random() < 0.5:
            target += b"?" + _pick(rng, (b"q=1", b"", b"a=%00", b"x=<script>", b"?"))
        if rng.random() < 0.5:
            target += b"#" + _pick(rng, (b"f", b"", b"%2e"))
    headers = []
    for _ in range(_between(rng, 0, 6)):
        name = _pick(rng, HEADER_NAMES)
        value = _pick(rng, HEADER_VALUES.get(name, ()) + GENERIC_VALUES)
        if rng.random() < 0.5:
            name = name.lower()
        if rng.random() < 1 / 16:
            value += b"\r\n " + _pick(rng, GENERIC_VALUES)
        headers.append((name, _pick(rng, HEADER_SEPARATORS), value))
    body = b""
    if rng.random() < 0.5:
        body = _pick(rng, (b"hello", b"0\r\n\r\n", b"5\r\nhello\r\n0\r\n\r\n", b"x" * 70))
    return HttpRequest(
        method=method,
        target=target,
        version=_pick(rng, VERSIONS),
        headers=tuple(headers),
        body=body,
        line_end=_pick(rng, LINE_ENDS),
        word_sep=_pick(rng, WORD_SEPARATORS),
        prefix=_pick(rng, (b"", b"", b"\r\n", b" ", b"\n")),
    ).render()


def _rng_mutate(rng: random.Random, data: bytes, count: int) -> bytes:
    """``count`` byte-level edits, as ``mutations`` makes them (plus a random byte)."""
    for _ in range(count):
        op = _pick(rng, MUTATION_OPS)
        position = int(rng.random() * len(data)) if data else 0
        if rng.random() < 0.1:
            arg = rng.randbytes(1)
        else:
            arg = _pick(rng, INTERESTING_BYTES)
        data = apply_mutation(data, op, position, arg)
    return data


_STREAM_TOKENS = (b"\n", b"\r\n", b"\r", b"line\n", b"\x00\n")


def _rng_stream(rng: random.Random) -> bytes:
    parts = []
    for _ in range(_between(rng, 0, 6)):
        kind = rng.random()
        if kind < 0.45:
            parts.append(rng.randbytes(_between(rng, 0, 24)))
        elif kind < 0.9:
            parts.append(_pick(rng, _STREAM_TOKENS))
        else:
            parts.append(b"x" * (65536 + int(rng.random() * 4) - 1) + b"\n")
    return b"".join(parts)


def _rng_datagram(rng: random.Random) -> bytes:
    anchor = _pick(rng, (0, MAX_PACKET_SIZE, 1, MAX_PACKET_SIZE * 2, UDP_MAX))
    size = max(0, anchor + _between(rng, -2, 2))
    edge = rng.randbytes(_between(rng, 0, 4))[:size]
    return b"d" * (size - len(edge)) + edge


#: Weights of the schedules of seeded cases: every piece costs a send (and a read) on both
#: sides, so the many-piece schedules are rarer (one case in 40 goes byte by byte).
_MODES = ("whole",) * 20 + ("offsets",) * 10 + ("lines",) * 6 + ("tokens",) * 3 + ("bytewise",)


def _rng_schedule(
    rng: random.Random, data: bytes, allow_open: bool, batch: bool = False
) -> tuple[tuple[int, ...], float, str]:
    """As ``schedules`` draws them, weighted towards one send and a half-close (the
    cheapest ending that still reads the whole reply). With ``batch`` the same draws are
    made, but the splits (which batch mode drops) are not worked out."""
    mode = _pick(rng, _MODES)
    splits: tuple[int, ...] = ()
    if mode == "offsets" and len(data) > 1:
        cuts = [_between(rng, 1, len(data) - 1) for _ in range(_between(rng, 1, 4))]
        splits = () if batch else _cuts_to_splits(cuts, len(data))
    elif batch:
        pass
    elif mode in ("lines", "tokens"):
        splits = _cuts_to_splits(boundaries(data[:4096], mode), min(len(data), 4096))
    elif mode == "bytewise" and len(data) <= 256:
        splits = (1,) * max(0, len(data) - 1)
    pause = 0.0
    if len(splits) <= 4:
        pause = _pick(rng, (0.0,) * 8 + (0.001, 0.001, 0.01))
    kind = rng.random()
    if allow_open and kind < 0.02:
        end = "open"
    elif kind < 0.07:
        end = "close"
    elif kind < 0.12:
        end = "reset"
    else:
        end = "half_close"
    return splits, pause, end


_S_SEED = st.integers(0, 2**32 - 1)
_CASE_STRATEGIES: dict[tuple[str, bool], st.SearchStrategy[Case]] = {}


@st.composite
def templates(draw: Any, family: str = "http", count: int = 200, batch: bool = False) -> Template:
    """A ``Template``: a drawn case of ``family``, a seed, ``count`` seeded cases. One in
    eight may have ``open`` endings (and has three times the cases). Shrinks the base case
    as ``cases`` does, then the seed towards 0."""
    allow_open = draw(_S_0_7) == 7
    key = (family, allow_open)
    if key not in _CASE_STRATEGIES:
        _CASE_STRATEGIES[key] = cases(family, allow_open)
    base = draw(_CASE_STRATEGIES[key])
    if batch:
        base = batch_form(base)
    # Cases that stay open wait an idle timeout each (all at once): three times the cases
    # run meanwhile, so that the servers are not idle while they wait.
    return Template(base, draw(_S_SEED), count * 3 if allow_open else count, allow_open, batch)


__all__ = [
    "DATA_VARIANTS",
    "ENDINGS",
    "FAMILIES",
    "HEADER_COUNT_LIMIT",
    "HEADER_LINE_LIMIT",
    "MAX_PACKET_SIZE",
    "REQUEST_LINE_LIMIT",
    "STANDARD_SCHEDULES",
    "Case",
    "HttpRequest",
    "Template",
    "apply_mutation",
    "batch_form",
    "boundaries",
    "case_batches",
    "cases",
    "datagram_batches",
    "datagrams",
    "derive",
    "derive_iter",
    "expand",
    "header_fields",
    "http_payloads",
    "http_requests",
    "limit_request",
    "limit_requests",
    "methods",
    "mutations",
    "request_targets",
    "schedules",
    "seeded_case",
    "stream_payloads",
    "templates",
    "valid_http_requests",
]
