"""Normalizers: take out of an observation what must vary between runs, keep the rest.

Pure functions on text and JSON-like values. What they remove: port numbers, temporary
paths, process ids, timestamps, traceback frames (which name files and lines of one
implementation), HTTP Date and Server values (checked for format first: a malformed one
is kept so that it shows as a difference).
"""

from __future__ import annotations

import codecs
import collections
import functools
import importlib
import re
import sys
from collections.abc import Callable, Iterable
from typing import Any

_IP_PORT = re.compile(r"""(['"](?:127\.0\.0\.1|::1|0\.0\.0\.0|::)['"],\s*)\d+""")
_TRACEBACK = re.compile(
    r"^Traceback \(most recent call last\):\n(?:(?:[ \t].*|)\n)*?(?=\S)", re.MULTILINE
)
_CHAINED = re.compile(
    r"^\nDuring handling of the above exception, another exception occurred:\n\n", re.MULTILINE
)
# "file:line: XWarning: message" and the source line Python prints under it: both name
# the code of one implementation.
_WARNING_AT = re.compile(r"^\S+:\d+: (\w*Warning): (.*)\n(?:  .*\n)?", re.MULTILINE)
_FD_NUMBER = re.compile(r"\bfd=\d+")
# "<_io.StringIO object at 0x7f3a...>": where an object lives varies from run to run
_OBJECT_ADDRESS = re.compile(r"\b(object|at) 0x[0-9a-fA-F]+\b")
_LOG_TIME = re.compile(r"\[\d{2}/[A-Z][a-z]{2}/\d{4} \d{2}:\d{2}:\d{2}\]")
_HTTP_DATE = re.compile(
    r"^(Date|Last-Modified): (Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT\r?$",
    re.MULTILINE | re.IGNORECASE,
)
_SERVER = re.compile(
    r"^(Server): ([A-Za-z]+)(?:/\d+(?:\.\d+)*)? (?:C?Python|PyPy)/\d+\.\d+\.\d+\S*\r?$",
    re.MULTILINE | re.IGNORECASE,
)


def normalize_text(text: str, replacements: Iterable[tuple[str, str]] = ()) -> str:
    """Normalize captured output: literal replacements first, then ports and tracebacks."""
    for old, new in replacements:
        if old:
            text = text.replace(old, new)
    return _substitute(_NORMALIZERS, text)


#: One normalizing rule: see ``_NORMALIZERS``.
Rule = tuple[Callable[[str], bool], "re.Pattern[str]", Any]

#: (whether the pattern can match the text at all, the pattern, its replacement), in order.
#: The first looks for the pattern's fixed part: a run normalizes a quarter of a million
#: strings, few of which hold any of these.
_NORMALIZERS: tuple[Rule, ...] = (
    (lambda t: "127.0.0.1" in t or "::" in t or "0.0.0.0" in t, _IP_PORT, r"\1PORT"),
    (lambda t: "During handling" in t, _CHAINED, "\n<chained>\n"),
    (
        lambda t: "Traceback (most recent call last):" in t,
        _TRACEBACK,
        "Traceback (most recent call last):\n  <frames>\n",
    ),
    (lambda t: "[" in t, _LOG_TIME, "[<time>]"),
    (lambda t: "Warning: " in t, _WARNING_AT, r"<where>: \1: \2\n"),
    (lambda t: "fd=" in t, _FD_NUMBER, "fd=<n>"),
    (lambda t: " 0x" in t, _OBJECT_ADDRESS, r"\1 0x<addr>"),
)


def _substitute(rules: Iterable[Rule], text: str, look_first: bool = True) -> str:
    """Apply each rule's pattern to ``text`` (with ``look_first``, only if it can match)."""
    for can_match, pattern, replacement in rules:
        if not look_first or can_match(text):
            text = pattern.sub(replacement, text)
    return text


# "'latin-1' codec can't encode ...", "encoding='UTF-8'" (the name as the caller spelled it)
_CODEC_NAME = re.compile(r"'([A-Za-z0-9_.-]+)'(?= codec\b)|(?<=encoding=)'([A-Za-z0-9_.-]+)'")
# "socket.timeout: timed out", "_socket.timeout: ..." (a dotted exception name before ':'),
# or the repr of a class: "<class 'pyexpat.ExpatError'>"
_DOTTED_EXCEPTION = re.compile(
    r"(?<![\w.])((?:[A-Za-z_]\w*\.)+[A-Za-z_]\w*)(?=:)"
    r"|(?:(?<=<class ')|(?<=&lt;class '))((?:[A-Za-z_]\w*\.)+\w+)(?=')"
)
#: Stdlib modules whose exceptions implementations name differently, imported to resolve
#: the name (none has side effects at import).
_RESOLVABLE = frozenset(
    {"socket", "_socket", "pyexpat", "xml.parsers.expat", "_pickle", "pickle", "json.decoder"}
)


def canonical_spellings(text: str) -> tuple[str, set[str]]:
    """Write one thing spelled two ways the same way; returns the text and what changed.

    Implementations name the same codec and the same exception class differently
    (``'latin-1'``/``'latin1'``; ``socket.timeout``/``_socket.timeout``, which are one
    class). A codec becomes the name ``codecs.lookup`` gives it, a dotted exception name
    of a stdlib module the name of the class it resolves to. The set says what was
    rewritten (``"'latin1' -> 'iso8859-1'"``), so a report can still note that the raw
    text differed.
    """
    changed: set[str] = set()
    return _substitute(_spelling_rules(changed), text), changed


def _spelling_rules(changed: set[str]) -> tuple[Rule, ...]:
    """``canonical_spellings``'s rules; each rewrite is noted in ``changed``."""

    def codec(match: re.Match[str]) -> str:
        spelled = match.group(1) or match.group(2)
        name = _codec_name(spelled)
        if name is None or name == spelled:
            return match.group(0)
        changed.add(f"'{spelled}' -> '{name}'")
        return f"'{name}'"

    def exception(match: re.Match[str]) -> str:
        dotted = match.group(1) or match.group(2)
        name = _exception_name(dotted)
        if name is None or name == dotted:
            return match.group(0)
        changed.add(f"{dotted} -> {name}")
        return name

    return (
        (lambda t: "codec" in t or "encoding=" in t, _CODEC_NAME, codec),
        (lambda t: "." in t and (":" in t or "class '" in t), _DOTTED_EXCEPTION, exception),
    )


@functools.lru_cache(maxsize=256)
def _codec_name(name: str) -> str | None:
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


@functools.lru_cache(maxsize=256)
def _exception_name(dotted: str) -> str | None:
    """The canonical name of the exception class ``dotted`` names, if a stdlib one."""
    module_name, _, attr = dotted.rpartition(".")
    # Only modules this process has already imported, or a few known to be harmless:
    # resolving a name must never run a target's, a user's or a side-effecting import.
    module = sys.modules.get(module_name)
    if module is None and module_name in _RESOLVABLE:
        module = importlib.import_module(module_name)
    if module is None or module_name.split(".")[0] not in sys.stdlib_module_names:
        return None
    found = getattr(module, attr, None)
    if not (isinstance(found, type) and issubclass(found, BaseException)):
        return None
    owner = found.__module__
    return found.__qualname__ if owner == "builtins" else f"{owner}.{found.__qualname__}"


def normalize_http(text: str) -> str:
    """Normalize an HTTP reply rendered as text: Date/Last-Modified and Server values.

    Only well-formed values are replaced, so a broken Date still shows as a difference.
    Last-Modified is kept when the scenario pins file times (it then matches exactly);
    the caller passes what it wants normalized.
    """
    text = _HTTP_DATE.sub(
        lambda m: f"{m.group(1)}: <http-date>" + ("\r" if m.group(0).endswith("\r") else ""), text
    )
    text = _SERVER.sub(
        lambda m: (
            f"{m.group(1)}: {m.group(2)}<version> <python>"
            + ("\r" if m.group(0).endswith("\r") else "")
        ),
        text,
    )
    return text


def sorted_lines(text: str) -> list[str]:
    """Lines in sorted order, for output whose interleaving depends on thread timing."""
    return sorted(line for line in text.splitlines() if line.strip())


#: Event fields that describe what happened; the rest (time, ids) vary by run.
EVENT_FIELDS = ("ev", "ctx", "type", "message", "client", "value", "note")

#: Events that the harness itself causes; scenarios record what they need of them.
HARNESS_EVENTS = frozenset({"ready", "command:started", "command:returned", "command:raised"})


def event_key(event: dict[str, Any], replacements: Iterable[tuple[str, str]] = ()) -> str:
    """One event as a short comparable string, e.g. ``handle_error[thread] ValueError: x``."""
    text = f"{event.get('ev')}[{event.get('ctx')}]"
    for name in ("client", "value", "note"):
        if name in event:
            text += f" {name}={event[name]}"
    if "type" in event:
        text += f" {event['type']}: {event.get('message', '')}"
    return normalize_text(text, replacements)


def summarize_events(
    events: Iterable[dict[str, Any]], mode: str, replacements: Iterable[tuple[str, str]] = ()
) -> Any:
    """Events for comparison: ``counts`` (a multiset), ``sequence``, or ``none``."""
    keys = [event_key(e, replacements) for e in events if e.get("ev") not in HARNESS_EVENTS]
    if mode == "none":
        return None
    if mode == "sequence":
        return keys
    if mode == "counts":
        return dict(sorted(collections.Counter(keys).items()))
    raise ValueError(f"events={mode!r}: use counts, sequence or none")
