"""The reference's intended differences, as a fuzz case shows them: recognisers.

``DEVIATIONS`` lists, for each deviation of ``implementation.deviations`` that a fuzz case
can show, a ``Known`` (the one model of known differences, ``harness.scenario.Known``,
made by ``harness.known.deviation``: issue, versions and targets come from the
reference's own list) with a recogniser: given the case and the two normalized
observations (baseline, target) and the keys where they differ, does this deviation
account for the whole difference? ``harness.compare.decide`` consults them for the
fuzzers' verdicts; ``explain`` is the same question asked alone (minimizing, replay). A
run uses the deviations that apply to its target (``active_deviations``: the
reference's, on the target's interpreter).
"""

from __future__ import annotations

import json
import operator
import re
import urllib.parse
from collections.abc import Callable
from typing import Any

from harness.clients import render_bytes
from harness.compare import covering
from harness.fuzz.case import Case
from harness.fuzz.judge import CONNECTION_LOST, ERROR_HEAD, LONG_REPLY, first_line
from harness.known import deviation
from harness.scenario import Known
from harness.targets import Target, interpreter_version

Observation = dict[str, Any]


def _request_line_words(case: Case) -> list[bytes]:
    return case.data.split(b"\n", 1)[0].rstrip(b"\r").split()


_ERROR_CODE = re.compile(r"<p>Error code: (\d+)</p>")


#: The status a request's log line gives (``"GET / HTTP/1.0" 404 -``).
_LOGGED_STATUS = re.compile(r'" (\d{3}) \S+$', re.MULTILINE)


def _status(obs: Observation) -> str:
    """The status of a reply: its status line's; for a reply without one (HTTP/0.9, the
    old stdlib's bare errors) an error page's code, else ``200`` if anything came; for no
    reply at all (HEAD under HTTP/0.9) the one its log line gives."""
    reply = obs.get("reply", "")
    words = first_line(reply).split(" ")
    if len(words) > 1 and words[0].startswith("HTTP/"):
        return words[1]
    if not isinstance(reply, str):
        return "200"
    if not reply:
        logged = _LOGGED_STATUS.findall(str(obs.get("stderr", "")))
        return logged[-1] if len(logged) == 1 else ""
    code = _ERROR_CODE.search(reply)
    return code.group(1) if code else "200"


# --- gh-70765: a two-word HTTP/0.9 request is answered at once -------------------------


def _http09_no_wait(case: Case, base: Observation, got: Observation, keys: list[str]) -> bool:
    """The fix reads no header block after a two-word request: what the stdlib made of
    those lines (a hang until the client gives up, a header's value, an exception from
    it) is not there."""
    if not set(keys) <= {"reply", "end", "stderr", "server", "errors"}:
        return False
    if any(e not in base.get("errors", []) for e in got.get("errors", [])):
        return False
    if len(_request_line_words(case)) == 2:
        return not str(got.get("reply", "")).startswith("HTTP/")
    return "errors" not in keys and _pipelined_http09_echo(base.get("reply"), got.get("reply"))


def _pipelined_http09_echo(base_reply: Any, got_reply: Any) -> bool:
    """Whether two replies are the same up to a last, HTTP/0.9 request of a pipeline, and
    the parser family's echoes of that request (body-only JSON, as HTTP/0.9 replies are)
    differ only in what the header block gave: the headers, which the target did not read
    (so none), and a body read by their Content-Length."""
    if not (isinstance(base_reply, str) and isinstance(got_reply, str)):
        return False
    parted = next(
        (i for i, (a, b) in enumerate(zip(base_reply, got_reply)) if a != b),
        min(len(base_reply), len(got_reply)),
    )
    # The echo where the replies part: a JSON object (sorted keys, so it opens with
    # "body"), right after the reply before it (an HTTP/0.9 reply has no head).
    start = base_reply.rfind('{"body"', 0, parted + 1)
    if start < 0 or got_reply[:start] != base_reply[:start]:
        return False
    try:
        base_echo, got_echo = json.loads(base_reply[start:]), json.loads(got_reply[start:])
    except ValueError:
        return False
    if not (isinstance(base_echo, dict) and isinstance(got_echo, dict)):
        return False
    same = ("command", "path", "version", "close")
    return (
        base_echo.get("version") == "HTTP/0.9"
        and got_echo.get("headers") == []
        and all(base_echo.get(k) == got_echo.get(k) for k in same)
    )


# --- gh-54930: an error reply to a malformed request line has a status line ------------


def _same_first_line(a: Any, b: Any) -> bool:
    return first_line(a) == first_line(b)


def _bare_error_gets_status_line(
    case: Case, base: Observation, got: Observation, keys: list[str]
) -> bool:
    base_reply, got_reply = base.get("reply", ""), got.get("reply", "")
    if set(keys) - {"reply", "stderr", "end"} or "reply" not in keys:
        return False
    # A reset may cut either reply short (see ``judge.observed_differences``): then only
    # what is left of the first line can be compared.
    same: Callable[[Any, Any], bool] = operator.eq
    if "reset" in (base.get("end"), got.get("end")):
        same = _same_first_line
    if isinstance(got_reply, dict):  # long: compare digests
        stripped = got_reply.get("without_error_heads")
        if isinstance(base_reply, str):
            base_reply = render_bytes(base_reply.encode("latin-1"), LONG_REPLY)
        return stripped is not None and same(stripped, base_reply)
    if not isinstance(base_reply, str):
        return False
    # Take out every status line + header block that precedes an error page; what is left
    # must be the baseline's reply (pipelined replies before it included).
    stripped = ERROR_HEAD.sub("", got_reply)
    return stripped != got_reply and same(stripped, base_reply)


_LOST_CONNECTION_REPORT = re.compile(
    r"-{40}\nException occurred during processing of request from [^\n]*\n"
    r"Traceback \(most recent call last\):\n(?:  [^\n]*\n)*"
    r"(?:BrokenPipeError|ConnectionResetError|ConnectionAbortedError)[^\n]*\n-{40}\n"
)


def _error_head_meets_gone_client(
    case: Case, base: Observation, got: Observation, keys: list[str]
) -> bool:
    """gh-54930 when the client has stopped reading and gone: the status line and
    headers go out in a write of their own before the error page, and that second write
    meets the closed connection (a lost-connection error the stdlib's single write of a
    bare page does not get). Nothing else may differ."""
    if case.end != "open" or set(keys) - {"errors", "stderr"}:
        return False
    base_stderr = base.get("stderr", "")
    if "code 400, message" not in base_stderr and "code 505" not in base_stderr:
        return False
    extra = list(got.get("errors", []))
    for error in base.get("errors", []):
        if error not in extra:
            return False
        extra.remove(error)
    if not extra or not all(e.startswith(CONNECTION_LOST) for e in extra):
        return False
    stderr = _LOST_CONNECTION_REPORT.sub("", got.get("stderr", ""), count=len(extra))
    return stderr == base_stderr


# --- gh-134098: a trailing slash is judged after percent-decoding ------------------------


def slash_judged_differently(target: bytes) -> bool:
    """Whether the path of a request target ends with ``/`` once percent-decoded but not
    as sent (``/dir%2f``), or the other way round: where gh-134098 changed the answer."""
    path = target.decode("latin-1").split("?", 1)[0].split("#", 1)[0]
    decoded = urllib.parse.unquote(path, errors="replace")
    return path.rstrip().endswith("/") != decoded.rstrip().endswith("/")


def _trailing_slash_decoded(
    case: Case, base: Observation, got: Observation, keys: list[str]
) -> bool:
    words = _request_line_words(case)
    if len(words) < 2 or not slash_judged_differently(words[1]):
        return False
    if set(keys) - {"reply", "stderr", "end", "errors"}:
        return False
    if "errors" in keys:
        # A NUL in the name: the old stdlib opens it and fails (ValueError, no reply);
        # the fix refuses a name ending with a slash before opening anything.
        nul = all(e.startswith("ValueError: embedded null") for e in base.get("errors", []))
        if not nul or got.get("errors") or _status(base):
            return False
        if "reply" not in got and "reply" not in base:
            # The client closed first, so only the errors were kept (a million-case
            # soak found 'HEAD \0%2F HTTP/1.1' sent without its end this way).
            return True
    # The old stdlib redirects a directory (301) or serves a file (200, 304); the fix
    # lists the directory or serves its index (200, 304) and refuses a file (404).
    return _status(base) in ("", "200", "301", "304") and _status(got) in ("200", "304", "404")


# --- gh-119452: the subprocess path reads the body before it starts the script -----------


def _body_read_before_script(
    case: Case, base: Observation, got: Observation, keys: list[str]
) -> bool:
    """On the subprocess path (``/htbin`` in the fuzz tree), the old stdlib starts the
    script, then reads the body; the fix reads the body first, in chunks. A client that
    closes before sending the whole body then stops the fix before it starts anything,
    while the old stdlib's start fails on a value the environment cannot hold (a NUL).
    Seen when the client closed (only the errors are kept then)."""
    words = _request_line_words(case)
    if case.end != "close" or keys != ["errors"] or len(words) < 2:
        return False
    if words[0].upper() != b"POST" or b"/htbin/" not in words[1]:
        return False
    extra = list(base.get("errors", []))
    for error in got.get("errors", []):
        if error not in extra:
            return False
        extra.remove(error)
    return bool(extra) and all(e.startswith("ValueError: embedded null") for e in extra)


def _whole_body_awaited(case: Case, base: Observation, got: Observation, keys: list[str]) -> bool:
    """On the subprocess path the old stdlib reads the body with one read, which returns
    what has arrived and runs the script on it; the fix reads up to Content-Length. A
    client that sent less and stays silent then gets the script's output from the old
    stdlib, and from the fix only what preceded it, until the client gives up."""
    words = _request_line_words(case)
    if case.end != "open" or len(words) < 2 or words[0].upper() != b"POST":
        return False
    if b"/htbin/" not in words[1] or set(keys) - {"reply", "end", "stderr", "errors"}:
        return False
    if not all(e.startswith(CONNECTION_LOST) for e in got.get("errors", [])):
        return False
    base_reply, got_reply = base.get("reply"), got.get("reply")
    if not (isinstance(base_reply, str) and isinstance(got_reply, str)):
        return False
    return got.get("end") in ("idle", "timeout") and base_reply.startswith(got_reply)


#: Every deviation the fuzzer can recognise; a run uses those that apply to its target.
DEVIATIONS: tuple[Known, ...] = (
    deviation(
        "gh-70765",
        reason="a two-word HTTP/0.9 request is answered at once, without waiting for a "
        "header block",
        matches=_http09_no_wait,
    ),
    deviation(
        "gh-54930",
        reason="an error reply to a malformed request line carries a status line and headers",
        matches=_bare_error_gets_status_line,
    ),
    deviation(
        "gh-54930",
        reason="an error reply to a malformed request line carries a status line and headers "
        "(written before the page: a client that has gone makes that second write fail)",
        matches=_error_head_meets_gone_client,
    ),
    deviation(
        "gh-134098",
        reason="a trailing slash is judged after percent-decoding ('/dir%2f' lists the "
        "directory, '/file%2f' is not found)",
        matches=_trailing_slash_decoded,
    ),
    deviation(
        "gh-119452",
        reason="CGI without fork reads the body before it starts the script (a client that "
        "leaves during the body stops it before the script's environment is built)",
        matches=_body_read_before_script,
    ),
    deviation(
        "gh-119452",
        reason="CGI without fork reads the body up to its Content-Length (the old stdlib's "
        "one read takes what has arrived: a client that sent less and waits gets the "
        "script's output from it, and nothing more from the fix)",
        matches=_whole_body_awaited,
    ),
)


def active_deviations(target: Target) -> list[Known]:
    """The deviations that explain differences of ``target``: for a target running the
    reference's modules, those ``implementation.deviations`` lists as active on the
    target's interpreter (the stdlib there still has the old behaviour)."""
    if "reference" not in target.labels:
        return []
    version = interpreter_version(target.python)
    return [k for k in DEVIATIONS if k.applies_to(target.labels, version)]


def explain(
    case: Case, base: Observation, got: Observation, keys: list[str], active: list[Known]
) -> list[Known]:
    """The active deviations that explain this whole difference (empty: none does).

    The question ``harness.compare.decide`` asks of a fuzz case's difference, asked
    alone: ``active`` are the deviations that apply to the target already.
    """
    return covering(keys, active, case, (base, got)) or []
