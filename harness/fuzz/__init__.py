"""The fuzzer: differential fuzzing of a target against a baseline, and of a user's handler.

One module per job, from the bottom up:

- ``choice``: where a generator's choices come from (hypothesis draws, or a seeded
  ``random.Random``);
- ``grammar``, ``site``, ``tree``: the tables and generators of client behaviour (HTTP
  requests, edits, limits, streams, datagrams, schedules; the requests of the file, CGI
  and error families, and the file tree they are served from);
- ``case``: ``Case``, ``Template`` and the cases a template derives; ``strategies``: the
  hypothesis strategies, the same generators drawn;
- ``transports`` (how clients reach each family's server) and ``servers``: the server
  side (long-lived server processes, sockets and batch mode);
- ``judge`` (observations and differences) and ``explain`` (the reference's intended
  differences, as data);
- ``driver``: the hypothesis loop both fuzzers use; ``differential`` and ``handler``:
  the two fuzzers; ``reproducers``: saved findings and replay; ``cli``: the commands.

The case model and the strategies are re-exported here (``harness.fuzz.Case``,
``harness.fuzz.http_requests()``, ...), imported on first use so that ``harness.fuzz.cli``
stays cheap to import.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "case": (
        "FAMILIES",
        "FAMILY_CHOICES",
        "HTTP_FAMILIES",
        "STANDARD_SCHEDULES",
        "DATA_VARIANTS",
        "Case",
        "Template",
        "batch_form",
        "derive",
        "derive_iter",
        "expand",
        "seeded_case",
    ),
    "grammar": (
        "ENDINGS",
        "HEADER_COUNT_LIMIT",
        "HEADER_LINE_LIMIT",
        "MAX_PACKET_SIZE",
        "METHODS",
        "REQUEST_LINE_LIMIT",
        "HttpRequest",
        "apply_mutation",
        "boundaries",
        "limit_request",
    ),
    "strategies": (
        "cases",
        "datagram_batches",
        "datagrams",
        "header_fields",
        "http_payloads",
        "http_requests",
        "limit_requests",
        "methods",
        "mutations",
        "request_targets",
        "schedules",
        "site_requests",
        "stream_payloads",
        "templates",
        "valid_http_requests",
    ),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
