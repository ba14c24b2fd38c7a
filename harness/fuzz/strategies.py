"""Hypothesis strategies for fuzzing servers: the grammar's generators, drawn.

Each strategy runs a generator of ``harness.fuzz.grammar`` / ``harness.fuzz.site`` /
``harness.fuzz.case`` on hypothesis draws (``harness.fuzz.choice.Drawn``); the seeded
cases of a template run the same generators on ``random.Random``. What each generates,
and its shrink direction:

- ``http_requests()``: requests from the HTTP/1.x grammar; shrinks towards
  ``GET / HTTP/1.0`` with no headers, CRLF line ends and single spaces.
- ``mutations(data)``: up to four byte-level edits of ``data``; shrinks towards no edit,
  then earlier positions.
- ``limit_requests()``: requests at, just under or just over CPython's limits (65536-byte
  request line, 100 headers, 65536-byte header line); shrinks towards exactly the limit.
- ``http_payloads()``: the bytes of one HTTP connection; shrinks towards one plain
  grammar request.
- ``site_requests(family)``: requests of ``http-files``, ``http-cgi`` or ``http-errors``;
  shrinks towards the first path, method and header choice of each table.
- ``stream_payloads()``: lines and binary runs for a line-echo handler; shrinks towards
  ``b""``.
- ``schedules(data)``: how to cut ``data`` into sends, a pause, and the ending; shrinks
  towards one send, no pause, half-close.
- ``datagrams()``, ``datagram_batches()``: datagrams around ``max_packet_size`` (8192)
  and the UDP maximum; shrink towards one empty datagram.
- ``cases(family)``: a whole ``Case`` (``http`` mixes the HTTP families; ``http-valid``
  is an ``http-parser`` case a handler dispatches); shrinks as its parts do.
- ``templates(family, count)``: what the differential fuzzer draws per example: a case and
  a seed (``harness.fuzz.case.Template``); shrinks the case, then the seed towards 0.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from harness.fuzz import grammar, site
from harness.fuzz.case import (
    FAMILY_CHOICES,
    Case,
    Template,
    batch_form,
    family_members,
    generate_case,
)
from harness.fuzz.choice import Chooser, strategy


def methods() -> st.SearchStrategy[bytes]:
    """Method tokens: common ones, their lower-case forms, random tokens; towards GET."""
    return strategy(grammar.method)


def request_targets() -> st.SearchStrategy[bytes]:
    """Request targets (paths of interesting segments, special forms); towards ``/``."""
    return strategy(grammar.request_target)


def header_fields() -> st.SearchStrategy[tuple[bytes, bytes, bytes]]:
    """``(name, separator, value)`` header fields; towards ``Host: h.example``."""
    return strategy(grammar.header_field)


def http_requests() -> st.SearchStrategy[grammar.HttpRequest]:
    """Requests from the grammar (``grammar.HttpRequest``); towards ``GET / HTTP/1.0``."""
    return strategy(grammar.http_request)


def valid_http_requests(edits: bool = True) -> st.SearchStrategy[bytes]:
    """Requests a ``BaseHTTPRequestHandler`` dispatches (one in eight edited with
    ``edits``); towards ``GET / HTTP/1.0`` unedited."""
    return strategy(grammar.valid_http_request, edits)


def _mutations(c: Chooser, data: bytes) -> bytes:
    return grammar.mutate(c, data, c.between(0, 4))


def mutations(data: bytes) -> st.SearchStrategy[bytes]:
    """``data`` with up to four byte-level edits; towards no edit, then earlier positions."""
    return strategy(_mutations, data)


def limit_requests() -> st.SearchStrategy[bytes]:
    """Requests sized around a documented limit; towards exactly the request-line limit."""
    return strategy(grammar.any_limit_request)


def http_payloads() -> st.SearchStrategy[bytes]:
    """The bytes of one HTTP connection; towards one plain grammar request."""
    return strategy(grammar.http_payload)


_SITE_GENERATORS = {
    "http-files": site.files_request,
    "http-cgi": site.cgi_request,
    "http-errors": site.error_request,
}


def site_requests(family: str) -> st.SearchStrategy[bytes]:
    """Requests of the ``http-files``, ``http-cgi`` or ``http-errors`` grammar."""
    return strategy(_SITE_GENERATORS[family])


def stream_payloads() -> st.SearchStrategy[bytes]:
    """Bytes for a line-echo stream handler; towards ``b""``."""
    return strategy(grammar.stream_payload)


def schedules(data: bytes, allow_open: bool = True) -> st.SearchStrategy[Any]:
    """``(splits, pause, end)`` for ``data``; towards one send, no pause, half-close."""
    return strategy(grammar.schedule, data, allow_open)


def datagrams() -> st.SearchStrategy[bytes]:
    """One datagram around a size that matters; towards an empty datagram."""
    return strategy(grammar.datagram)


def datagram_batches() -> st.SearchStrategy[tuple[bytes, ...]]:
    """One to four datagrams from one client socket; towards one empty datagram."""
    return strategy(grammar.datagram_batch)


def _case(c: Chooser, family: str, allow_open: bool) -> Case:
    if family == "http-valid":
        data = grammar.valid_http_request(c)
        splits, pause, end = grammar.schedule(c, data, allow_open)
        return Case("http-parser", data, splits, pause, end)
    members = family_members(family)
    concrete = members[0] if len(members) == 1 else c.pick(members)
    return generate_case(c, concrete, allow_open)


_CASES: dict[tuple[str, bool], st.SearchStrategy[Case]] = {}


def cases(family: str = "http", allow_open: bool = True) -> st.SearchStrategy[Case]:
    """A whole ``Case`` of ``family`` (a concrete family, ``http`` for any HTTP family,
    or ``http-valid``); shrinks as its payload and schedule do."""
    if family not in FAMILY_CHOICES and family != "http-valid":
        raise ValueError(f"family={family!r}: use one of {', '.join(FAMILY_CHOICES)}")
    key = (family, allow_open)
    if key not in _CASES:
        _CASES[key] = strategy(_case, family, allow_open)
    return _CASES[key]


def _template(c: Chooser, family: str, counts: dict[str, int], batch: bool) -> Template:
    # One template in eight may stay open; those wait an idle timeout each, all at once,
    # so three times the cases run meanwhile and the servers are not idle.
    allow_open = c.chance(12.5)
    members = family_members(family)
    concrete = members[0] if len(members) == 1 else c.pick(members)
    # Datagram cases never stay open: three times the cases would only hold more memory.
    allow_open = allow_open and concrete != "datagram"
    base = generate_case(c, concrete, allow_open)
    if batch:
        base = batch_form(base)
    count = counts.get(concrete, 200) * (3 if allow_open else 1)
    return Template(base, c.between(0, 2**32 - 1), count, allow_open, batch)


def templates(
    family: str = "http", count: int | dict[str, int] = 200, batch: bool = False
) -> st.SearchStrategy[Template]:
    """A ``Template``: a drawn case of ``family``, a seed, and ``count`` seeded cases (an
    int, or a count per concrete family); shrinks the case, then the seed towards 0."""
    counts = count if isinstance(count, dict) else dict.fromkeys(family_members(family), count)
    return strategy(_template, family, counts, batch)
