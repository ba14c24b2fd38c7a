"""Judging a fuzz case: the normalized observation of a raw result, and whether two differ.

A raw result (``harness.fuzz.servers``) is what the client saw (``reply``, ``end``, or
``replies`` for datagrams) and what the server recorded for the connection (``server``:
``errors`` seen by ``handle_error``, ``stderr``, ``done``). ``observation`` normalizes it;
``judge`` says whether the baseline's and the target's differ, and where; whether an
intended deviation explains a difference is ``harness.fuzz.explain``'s job. The verdict
on a difference found is ``harness.compare.decide``'s, as for a scenario: ``CaseRun`` is
one side's run of a case as it reads it, ``case_runs`` a pair of them.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from harness.clients import render_bytes
from harness.compare import differing_keys
from harness.fuzz.case import Case
from harness.observation import normalize_http, normalize_text

#: Exceptions that only say the client went away.
CONNECTION_LOST = ("BrokenPipeError", "ConnectionResetError", "ConnectionAbortedError")
#: Replies longer than this are kept as a length, a digest and a head.
LONG_REPLY = 16384


def observation(raw: dict[str, Any], case: Case | None = None) -> dict[str, Any]:
    """A raw case result, normalized for comparison (dates, ports, tracebacks).

    When the client closed or reset without reading (``close``, ``reset``), how far the
    server got before it noticed is a matter of timing, so only what does not depend on it
    is kept: the server's state, and after a ``close`` the exceptions that are not a lost
    connection (the server reads every byte sent, then EOF: only its writes fail). An RST
    throws away what the server had not read yet, at a moment timing decides, so after a
    ``reset`` which checks the server reached is not kept either.
    """
    server = raw.get("server") or {}
    out: dict[str, Any] = {}
    if case is not None and case.end in ("close", "reset"):
        out["end"] = "closed"
        _server_state(out, server)
        if case.end == "close":
            errors = server.get("errors", [])
            out["errors"] = [e for e in errors if not e.startswith(CONNECTION_LOST)]
        return out
    if "replies" in raw:
        out["replies"] = raw["replies"]
    else:
        reply = raw.get("reply", "")
        out["reply"] = long_reply(reply) if len(reply) > LONG_REPLY else normalize_http(reply)
        out["end"] = raw.get("end")
    _server_state(out, server)
    out["errors"] = server.get("errors", [])
    stderr = normalize_text(server.get("stderr", ""))
    out["stderr"] = _LOST_CONTEXT.sub("", stderr) if "<chained>" in stderr else stderr
    return out


#: What a server was handling when a write met a client that had left: an exception it
#: was answering (a 404 sent from ``except OSError``, say) is printed as the context of
#: the lost connection. The client leaves when it has waited long enough, which on a busy
#: machine is a matter of timing: the context says where the server was by then.
_LOST_CONTEXT = re.compile(
    r"Traceback \(most recent call last\):\n  <frames>\n[^\n]*\n\n<chained>\n"
    r"(?=Traceback \(most recent call last\):\n  <frames>\n"
    r"(?:BrokenPipeError|ConnectionResetError|ConnectionAbortedError))"
)


#: A status line and header block written before an error page (gh-54930's fix).
ERROR_HEAD = re.compile(
    r"HTTP/1\.[01] (?:400|505) [^\r\n]*\r\n(?:[^\r\n]+\r\n)*\r\n(?=<!DOCTYPE HTML)"
)


def long_reply(reply: str) -> Any:
    """A reply too long to keep whole: its length, digest and head, after normalizing
    (a string when normalizing made it short enough); and, when status lines and headers
    precede error pages in it, the same of what is left without them (for the gh-54930
    explainer, which cannot see the whole reply)."""
    text = normalize_http(reply)
    out = render_bytes(text.encode("latin-1"), LONG_REPLY)
    if isinstance(out, dict):
        stripped = ERROR_HEAD.sub("", text)
        if stripped != text:
            out["without_error_heads"] = render_bytes(stripped.encode("latin-1"), LONG_REPLY)
    return out


def _server_state(out: dict[str, Any], server: dict[str, Any]) -> None:
    if server.get("died"):
        out["server"] = "died"
    elif server.get("unresponsive"):
        out["server"] = "unresponsive"
    elif server.get("missing"):
        out["server"] = "never saw the connection"
    elif server and not server.get("done", True):
        out["server"] = "handler still running (hang)"


def first_line(reply: Any) -> str:
    """The first line of a reply (of its head, when it was too long to keep)."""
    if isinstance(reply, dict):
        reply = reply.get("head", "")
    return str(reply).split("\n", 1)[0]


def status_line(obs: dict[str, Any]) -> str:
    """The status line of an observation's reply (or a short tag), for signatures."""
    reply = obs.get("reply")
    if isinstance(reply, str):
        line = reply.split("\r\n", 1)[0].split("\n", 1)[0]
        return line[:40] if line.startswith("HTTP/") else ("<body only>" if line else "<none>")
    return "<long>" if reply is not None else "<datagrams>"


def signature(keys: list[str], base: dict[str, Any], got: dict[str, Any]) -> str:
    """What makes two differences the same finding: keys and both status lines."""
    return f"{','.join(keys)}|{status_line(base)}|{status_line(got)}"


def observed_differences(base: dict[str, Any], got: dict[str, Any]) -> list[str]:
    """The differing keys of two case observations, allowing for a reset's truncation.

    A server that closes with request bytes still unread makes the kernel send RST, and an
    RST discards what the client had not read yet: the same reply may then arrive whole
    (``eof``) or cut short (``reset``), depending on timing alone. When one side ended with
    a reset, the replies are compared by their first lines only.
    """
    if (
        "reset" in (base.get("end"), got.get("end"))
        and "reply" in base
        and "reply" in got
        and first_line(base["reply"]) == first_line(got["reply"])
    ):
        base = {**base, "reply": first_line(base["reply"]), "end": "closed"}
        got = {**got, "reply": first_line(got["reply"]), "end": "closed"}
    return differing_keys(base, got)


def judge(case: Case, base_raw: dict[str, Any], target_raw: dict[str, Any]) -> Any:
    """None when both sides observed the same, else ``(baseline obs, target obs, keys)``.

    Cheap when they are the same (equal raw results, then equal observations); a
    key-by-key diff only when they are not.
    """
    if base_raw == target_raw:
        return None
    base, got = observation(base_raw, case), observation(target_raw, case)
    if base == got:
        return None
    keys = observed_differences(base, got)
    return (base, got, keys) if keys else None


@dataclasses.dataclass(frozen=True)
class CaseRun:
    """One side's run of a fuzz case, as ``harness.compare.decide`` reads it (its
    ``Observation``): the normalized observation, and whether the case finished."""

    observation: dict[str, Any]
    #: ``completed``, or ``hang``: the server stopped answering while it ran the case alone
    status: str = "completed"
    violations: tuple[str, ...] = ()
    error: str = ""
    python: tuple[int, ...] = ()


def case_run(obs: dict[str, Any], python: Any = (), alone: bool = True) -> CaseRun:
    """A side's run of a case, from its observation.

    A server that stopped answering the harness (``server: unresponsive``) while it ran
    the case alone did not finish it: ``hang``. Among cases run together, which one made
    it stop is not known: that stays part of the observation, a difference to confirm by
    running the case alone.
    """
    hung = alone and obs.get("server") == "unresponsive"
    return CaseRun(obs, "hang" if hung else "completed", python=tuple(python or ()))


def case_runs(
    base: dict[str, Any],
    got: dict[str, Any],
    versions: tuple[Any, Any] = ((), ()),
    alone: bool = True,
) -> tuple[CaseRun, CaseRun]:
    """A (baseline, target) pair for ``decide``; ``versions`` are their Pythons."""
    return case_run(base, versions[0], alone), case_run(got, versions[1], alone)
