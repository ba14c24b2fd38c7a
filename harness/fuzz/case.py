"""Fuzz cases: one client behaviour (``Case``), and the many a hypothesis example stands for.

A ``Case`` is the bytes a client sends on one connection (or the datagrams it sends from
one socket), how the bytes are cut into sends, the pause after each send, and how the
client ends its side (half-close, close, reset, or stay open).

A hypothesis draw costs about as much as running tens of cases, so an example is a
``Template``: a drawn case and a seed. ``derive`` turns it into the drawn case's
*standard expansion* (its bytes sent whole, byte by byte, at every line end and separator,
with each ending; bare LF line ends, a lower-case request line, everything upper case, a
blank line first: h11's and AFL's habits), then ``count`` *seeded* cases: case ``i``
comes from ``Seeded((seed ^ crc32(drawn bytes) << 32) * 2**20 + i)`` running the family's
generator of
``harness.fuzz.grammar`` / ``harness.fuzz.site`` (the same functions hypothesis draws
from), so it depends on the template alone, and the same template gives the same cases.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import zlib
from collections.abc import Callable, Iterator
from typing import Any

from harness import wire
from harness.fuzz import grammar, site
from harness.fuzz.choice import Chooser, Seeded

#: The families of HTTP cases; ``http`` (``FAMILY_GROUPS``) is all of them, mixed.
HTTP_FAMILIES = ("http-parser", "http-files", "http-errors", "http-cgi")
#: Every concrete family: what a case is, and which server runs it.
FAMILIES = (*HTTP_FAMILIES, "stream", "datagram")
FAMILY_GROUPS = {"http": HTTP_FAMILIES}
#: What ``--family`` accepts.
FAMILY_CHOICES = ("http", *FAMILIES)
#: Names of families in old reproducer files.
_RENAMED = {"http": "http-parser"}


def family_members(family: str) -> tuple[str, ...]:
    """The concrete families a ``--family`` value stands for."""
    return FAMILY_GROUPS.get(family, (family,))


#: The bytes of one connection of each stream family, given a chooser and the template's
#: drawn bytes (which only the parser family edits and splices).
PAYLOADS: dict[str, Callable[[Chooser, bytes], bytes]] = {
    "http-parser": grammar.http_payload,
    "http-files": lambda c, base: site.files_request(c),
    "http-cgi": lambda c, base: site.cgi_request(c),
    "http-errors": lambda c, base: site.error_request(c),
    "stream": lambda c, base: grammar.stream_payload(c),
}


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
        return wire.pieces(self.data, self.splits)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form (bytes as base64, plus a readable Latin-1 preview)."""
        return {
            "family": self.family,
            "data_b64": base64.b64encode(self.data).decode(),
            "preview": preview(self.data),
            "length": len(self.data),
            "splits": list(self.splits),
            "pause": self.pause,
            "end": self.end,
            "datagrams_b64": [base64.b64encode(d).decode() for d in self.datagrams],
            "datagram_sizes": [len(d) for d in self.datagrams],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Case:
        """The case back from ``to_json`` output (old family names are renamed)."""
        return cls(
            family=_RENAMED.get(data["family"], data["family"]),
            data=base64.b64decode(data.get("data_b64", "")),
            splits=tuple(data.get("splits", ())),
            pause=float(data.get("pause", 0.0)),
            end=data.get("end", "half_close"),
            datagrams=tuple(base64.b64decode(d) for d in data.get("datagrams_b64", ())),
        )

    def wire(self) -> dict[str, Any]:
        """The compact form the batch agent reads (bytes as Latin-1 text)."""
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
        pause = f", pause {self.pause:g}s" if self.pause else ""
        return (
            f"{self.family}: {len(self.data)} bytes {preview(self.data, 80)!r} in "
            f"{len(self.pieces())} send(s){pause}, then {self.end}"
        )


def preview(data: bytes, limit: int = 300) -> str:
    """The head of ``data`` as Latin-1 text, with its length when cut."""
    text = data[:limit].decode("latin-1")
    return text + (f"... ({len(data)} bytes)" if len(data) > limit else "")


def _cut_before(splits: tuple[int, ...], end: int) -> tuple[int, ...]:
    """The piece sizes of ``splits`` whose cuts fall before offset ``end``."""
    kept, total = [], 0
    for size in splits:
        if total + size >= end:
            break
        kept.append(size)
        total += size
    return tuple(kept)


def fit_splits(family: str, data: bytes, splits: tuple[int, ...]) -> tuple[int, ...]:
    """``splits`` cut to fit ``data``; for ``http-cgi``, only cuts within the head.

    CGIHTTPRequestHandler reads its socket unbuffered, and the subprocess path reads the
    body with one ``read(length)``: one recv, which gets what has arrived by then. A body
    sent in pieces is then read in part or whole as timing decides, the same server one
    way one time and the other way the next. The head may still come in pieces.
    """
    end = len(data)
    if family == "http-cgi":
        ends = [i + len(sep) for sep in (b"\r\n\r\n", b"\n\n") if (i := data.find(sep)) >= 0]
        end = min(ends, default=end)
    return _cut_before(splits, end)


def with_data(case: Case, data: bytes) -> Case:
    """``case`` with other bytes (its splits cut to fit them)."""
    return dataclasses.replace(case, data=data, splits=fit_splits(case.family, data, case.splits))


def batch_form(case: Case) -> Case:
    """``case`` as batch mode can run it: one send (the handler reads only after the
    client has sent everything, so where the sends were cut cannot be seen), no pause,
    and ``reset`` is ``close``."""
    if not case.splits and case.pause == 0.0 and case.end != "reset":
        return case
    end = "close" if case.end == "reset" else case.end
    return dataclasses.replace(case, splits=(), pause=0.0, end=end)


# --- the standard expansion -----------------------------------------------------------------

#: The schedules every drawn stream case is also fed in, each with the ending that lets
#: the server finish at once.
STANDARD_SCHEDULES = (
    ("whole", "half_close"),
    ("whole", "close"),
    ("whole", "reset"),
    ("lines", "half_close"),
    ("tokens", "half_close"),
    ("bytewise", "half_close"),
)

#: Deterministic byte-level variants of every drawn payload: bare LF line ends, a
#: lower-case request line, everything upper case, a blank line before the request.
DATA_VARIANTS: tuple[Callable[[bytes], bytes], ...] = (
    lambda data: data.replace(b"\r\n", b"\n"),
    lambda data: data.partition(b"\n")[0].lower() + b"".join(data.partition(b"\n")[1:]),
    bytes.upper,
    lambda data: b"\r\n" + data,
)


def expand(case: Case) -> list[Case]:
    """``case``, then each of ``DATA_VARIANTS`` of its data sent whole, then its data in
    each of ``STANDARD_SCHEDULES`` (no duplicates; variants only up to 4 KiB)."""
    if case.family == "datagram":
        return [case]
    out = [case]
    if len(case.data) <= 4096:
        datas = {case.data}
        for variant in DATA_VARIANTS:
            data = variant(case.data)
            if data not in datas:
                datas.add(data)
                out.append(Case(case.family, data))
    seen = {(case.splits, case.pause, case.end)}
    for mode, end in STANDARD_SCHEDULES:
        if mode == "bytewise" and len(case.data) > 256:
            continue
        splits = fit_splits(case.family, case.data, grammar.splits_for(case.data, mode))
        if (splits, 0.0, end) not in seen:
            seen.add((splits, 0.0, end))
            out.append(dataclasses.replace(case, splits=splits, pause=0.0, end=end))
    return out


# --- templates --------------------------------------------------------------------------

#: Seeded cases per template at most (case ``i``'s seed ends in ``i``).
MAX_DERIVED = 1 << 20


@dataclasses.dataclass(frozen=True)
class Template:
    """One hypothesis example: ``base`` (a drawn case) and the seed of the derived cases.

    ``count`` seeded cases follow the base's expansion; ``allow_open`` lets a few of them
    stay open (each costs an idle timeout); ``batch`` derives for batch mode
    (``batch_form``), so that no case is derived twice under two names.
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


def generate_case(
    c: Chooser, family: str, allow_open: bool, base: bytes = b"", cut: bool = True
) -> Case:
    """A whole case of ``family``, from the grammar, with a schedule."""
    if family == "datagram":
        return Case("datagram", datagrams=grammar.datagram_batch(c))
    data = PAYLOADS[family](c, base)
    splits, pause, end = grammar.schedule(c, data, allow_open, cut)
    return Case(family, data, fit_splits(family, data, splits), pause, end)


def _stream(template: Template) -> int:
    """The number the seeds of a template's cases start from: its seed and its drawn case
    (hypothesis draws the same seed again and again, for other cases: mixing the drawn
    bytes in keeps their seeded cases apart)."""
    base = template.base
    return template.seed ^ (zlib.crc32(base.data + b"".join(base.datagrams)) << 32)


def _seeded(template: Template, stream: int, index: int) -> Case:
    chooser = Seeded(stream * MAX_DERIVED + index)
    base = template.base
    case = generate_case(chooser, base.family, template.allow_open, base.data, not template.batch)
    return batch_form(case) if template.batch else case


def seeded_case(template: Template, index: int) -> Case:
    """Seeded case ``index`` of ``template`` (deterministic; see the module docstring)."""
    return _seeded(template, _stream(template), index)


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
    # Hashes, not cases: a template's thousand datagram cases would hold 45 MB.
    seen: set[int] = set()
    for case in out:
        if hash(case) not in seen:
            seen.add(hash(case))
            yield case
    stream = _stream(template)
    for index in range(min(template.count, MAX_DERIVED)):
        case = _seeded(template, stream, index)
        if hash(case) not in seen:
            seen.add(hash(case))
            yield case
