"""Root causes first: group the problem results that share one cause.

A target with one defect typically fails dozens of scenarios the same way (CPython 3.13's
``http/server.py`` under 3.11 fails 98 of them because ``mimetypes.guess_file_type`` does
not exist there). Reading them row by row hides that, so every summary starts with the
groups, largest first. Two results share a cause when

1. the target raised the same exception (type and message) where the baseline did not:
   in a server hook (``handle:raised[serve] AttributeError: ...`` in the events diff), in
   its stderr, or in the reason (``target does not start: ImportError: ...``); else
2. the same observation keys differ with the same change (the diff without its header
   lines, which name the targets); else
3. they have the same verdict and reason (hangs, broken invariants without a diff).

Only problem rows are grouped: not ``same``, not ``explained``, not expected by
``--expect``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from typing import Any

from harness.reports.row import Row

# An exception as Python prints it: a dotted name ending like the builtin ones, then its
# message. A bare "Error" (as in an HTTP error page's "Error code: 404") is not one.
_EXCEPTION = re.compile(
    r"(?:^|[\s\[(])(?P<type>(?:[A-Za-z_]\w*\.)*[A-Z]\w*"
    r"(?:Error|Exception|Exit|Warning|Interrupt|Iteration|timeout))"
    r"(?::\s(?P<message>.*))?$"
)
_HOOK = re.compile(r"^(?P<hook>[a-z_]+):raised\b")
_JSON_KEY = re.compile(r'^\s*("(?:[^"\\]|\\.)*")\s*:')
_NUMBERS = re.compile(r"\d+(\.\d+)?")
MAX_MESSAGE = 200


def signature(row: Row) -> tuple[str, str, list[str]]:
    """(kind, what, hooks): the cause of one row, as groupable text.

    ``kind`` is ``exception``, ``change`` or ``verdict``; ``hooks`` names the server hooks
    that raised, when the events say so.
    """
    found = _exception_in(row.reason)
    if found:
        return "exception", found, []
    added, removed = _changed_lines(row.diff)
    hooks: list[str] = []
    exception = ""
    for line in added:
        text = _unwrap(line)
        found = _exception_in(text)
        if found and not exception:
            exception = found
        if found and found == exception:
            hook = _HOOK.match(text)
            if hook and hook["hook"] not in hooks:
                hooks.append(hook["hook"])
    if exception:
        return "exception", exception, hooks
    if added or removed:
        keys = ", ".join(row.differing_keys) or "the observation"
        body = "\n".join(["+" + line for line in added] + ["-" + line for line in removed])
        digest = hashlib.sha1(body.encode()).hexdigest()[:8]
        # The digest tells changes apart; the title (made from what) leaves it out.
        return "change", f"{row.verdict} in {keys}\0{digest}", []
    reason = _NUMBERS.sub("N", row.reason) if row.reason else "(no reason given)"
    return "verdict", f"{row.verdict}: {reason}", []


def _changed_lines(diff: str) -> tuple[list[str], list[str]]:
    added, removed = [], []
    for line in diff.splitlines():
        if line.startswith(("+++", "---", "@@")):
            continue
        if line.startswith("+"):
            added.append(line[1:])
        elif line.startswith("-"):
            removed.append(line[1:])
    return added, removed


def _unwrap(line: str) -> str:
    """The text of a diff line: a JSON object key (an event) decoded, else the line."""
    key = _JSON_KEY.match(line)
    if key:
        try:
            return json.loads(key.group(1))
        except ValueError:
            pass
    return line.strip()


def _exception_in(text: str) -> str:
    for line in text.splitlines():
        match = _EXCEPTION.search(line.strip())
        if match:
            message = (match["message"] or "").strip()
            if len(message) > MAX_MESSAGE:
                message = message[:MAX_MESSAGE] + "..."
            return f"{match['type']}: {message}" if message else match["type"]
    return ""


def group(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """The causes of the problem rows, largest group first; sets each row's ``cause``.

    Each group: ``key`` (stable for the same cause), ``kind``, ``title``, ``count``,
    ``rows`` (indexes into ``rows``), ``example`` (the index of the row with the shortest
    diff that shows the cause), ``verdicts`` ({verdict: n}) and ``targets``.
    """
    groups: dict[str, dict[str, Any]] = {}
    for index, row in enumerate(rows):
        row.cause = ""
        if not row.problem:
            continue
        kind, what, hooks = signature(row)
        key = hashlib.sha1(f"{kind}\0{what}".encode()).hexdigest()[:10]
        row.cause = key
        entry = groups.setdefault(
            key,
            {"key": key, "kind": kind, "what": what, "hooks": [], "rows": [], "verdicts": {}},
        )
        entry["rows"].append(index)
        entry["verdicts"][row.verdict] = entry["verdicts"].get(row.verdict, 0) + 1
        entry["hooks"] += [h for h in hooks if h not in entry["hooks"]]
    out = []
    for entry in groups.values():
        members = [rows[i] for i in entry["rows"]]
        # The example: a diff that shows the cause alone if there is one (the baseline
        # raised nothing of its own there), then the shortest.
        example = min(
            entry["rows"],
            key=lambda i: (not rows[i].diff, _baseline_raised(rows[i]), len(rows[i].diff), i),
        )
        out.append(
            {
                "key": entry["key"],
                "kind": entry["kind"],
                "title": _title(entry["kind"], entry["what"], entry["hooks"]),
                "count": len(members),
                "rows": entry["rows"],
                "example": example,
                "verdicts": entry["verdicts"],
                "targets": sorted({r.target for r in members}),
            }
        )
    out.sort(key=lambda g: (-g["count"], g["rows"][0]))
    return out


def _baseline_raised(row: Row) -> bool:
    """Whether the baseline's side of the diff shows an exception of its own."""
    _, removed = _changed_lines(row.diff)
    return any(_exception_in(_unwrap(line)) for line in removed)


def _title(kind: str, what: str, hooks: list[str]) -> str:
    if kind == "change":
        text = what.split("\0")[0]
        return text if len(text) <= 200 else text[:197] + "..."
    if kind == "exception":
        where = ", ".join(hooks[:4]) + (", ..." if len(hooks) > 4 else "")
        return f"{where} raised {what}" if where else f"the target raised {what}"
    return what
