"""The fuzzer's judge and explainers: observations, differences, intended deviations."""

import json

import pytest

from harness.fuzz.case import Case
from harness.fuzz.explain import DEVIATIONS, active_deviations, explain, slash_judged_differently
from harness.fuzz.judge import judge, observation, observed_differences, signature, status_line
from harness.targets import parse_target

OK = "HTTP/1.0 200 OK\r\nServer: SimpleHTTP/0.6 Python/3.11.7\r\nDate: Tue, 14 Nov 2023 22:13:20 GMT\r\n\r\nhi"
NOT_FOUND = "HTTP/1.0 404 File not found\r\nConnection: close\r\n\r\n<!DOCTYPE HTML>..."
MOVED = "HTTP/1.0 301 Moved Permanently\r\nLocation: /dir%2f/\r\n\r\n"


def deviation(issue, recogniser=None):
    """The deviation of ``issue`` (the one whose recogniser is named so, if given)."""
    skip = ("_error_head_meets_gone_client", "_whole_body_awaited")
    (found,) = [
        d
        for d in DEVIATIONS
        if d.issue == issue
        and (d.matches.__name__ == recogniser if recogniser else d.matches.__name__ not in skip)
    ]
    return found


# --- observations ------------------------------------------------------------------------


def test_observation_normalizes_dates_versions_and_tracebacks():
    raw = {
        "reply": OK,
        "end": "eof",
        "server": {
            "errors": [],
            "stderr": "Traceback (most recent call last):\n  File x\nValueError: v\n",
        },
    }
    obs = observation(raw, Case("http-files", b"GET / HTTP/1.0\r\n\r\n"))
    assert obs["reply"].startswith(
        "HTTP/1.0 200 OK\r\nServer: SimpleHTTP<version> <python>\r\nDate: <http-date>"
    )
    assert obs["stderr"] == "Traceback (most recent call last):\n  <frames>\nValueError: v\n"


def test_after_a_close_only_the_server_state_and_its_own_exceptions_are_kept():
    server = {
        "errors": ["BrokenPipeError: x", "ValueError: embedded null byte"],
        "stderr": "log",
        "done": True,
    }
    raw = {"reply": "", "end": "closed", "server": server}
    closed = observation(raw, Case("http-cgi", b"x", end="close"))
    assert closed == {"end": "closed", "errors": ["ValueError: embedded null byte"]}
    reset = observation(raw, Case("http-cgi", b"x", end="reset"))
    assert reset == {"end": "closed"}
    hung = observation(
        {**raw, "server": {**server, "done": False}}, Case("http-cgi", b"x", end="reset")
    )
    assert hung == {"end": "closed", "server": "handler still running (hang)"}


def test_what_the_server_handled_when_the_client_left_is_not_kept():
    lost = (
        "log\nTraceback (most recent call last):\n  File x\nFileNotFoundError: [Errno 2] x\n"
        "\nDuring handling of the above exception, another exception occurred:\n\n"
        "Traceback (most recent call last):\n  File y\nBrokenPipeError: [Errno 32] Broken pipe\n"
    )
    plain = "log\nTraceback (most recent call last):\n  File y\nBrokenPipeError: [Errno 32] Broken pipe\n"
    case = Case("http-files", b"GET 2%2f HTTP/1.1", end="open")
    obs = [
        observation({"reply": "", "end": "idle", "server": {"stderr": t}}, case)
        for t in (lost, plain)
    ]
    assert obs[0] == obs[1]
    # A context that ends in another exception is kept.
    other = lost.replace("BrokenPipeError: [Errno 32] Broken pipe", "KeyError: 'x'")
    kept = observation({"reply": "", "end": "idle", "server": {"stderr": other}}, case)
    assert "FileNotFoundError" in kept["stderr"]


def test_long_replies_keep_a_digest_and_what_is_left_without_error_heads():
    page = "<!DOCTYPE HTML>\n" + "x" * 20000
    head = "HTTP/1.1 400 Bad request syntax ('aaa')\r\nConnection: close\r\n\r\n"
    obs = observation({"reply": head + page, "end": "eof"}, Case("http-parser", b"a"))
    assert obs["reply"]["len"] == len(head + page)
    assert obs["reply"]["without_error_heads"]["len"] == len(page)


def test_judge_is_none_for_the_same_and_names_the_keys_that_differ():
    case = Case("http-files", b"GET / HTTP/1.0\r\n\r\n")
    raw = {"reply": OK, "end": "eof", "server": {"errors": [], "stderr": ""}}
    assert judge(case, raw, dict(raw)) is None
    # Different dates only: the same once normalized.
    other = {**raw, "reply": OK.replace("22:13:20", "22:13:21")}
    assert judge(case, raw, other) is None
    base, got, keys = judge(case, raw, {**raw, "reply": NOT_FOUND})
    assert keys == ["reply"] and status_line(got) == "HTTP/1.0 404 File not found"
    assert signature(keys, base, got) == "reply|HTTP/1.0 200 OK|HTTP/1.0 404 File not found"


def test_a_reset_compares_replies_by_their_first_line():
    base = {"reply": NOT_FOUND, "end": "eof"}
    cut = {"reply": NOT_FOUND[:40], "end": "reset"}
    assert observed_differences(base, cut) == []
    assert observed_differences(base, {"reply": MOVED, "end": "reset"}) == ["end", "reply"]


# --- explainers --------------------------------------------------------------------------


def test_only_the_reference_has_deviations_and_only_those_active_on_its_python():
    assert active_deviations(parse_target("stdlib")) == []
    active = {d.issue for d in active_deviations(parse_target("reference"))}
    assert {"gh-70765", "gh-54930", "gh-134098"} <= active


@pytest.mark.parametrize(
    ("target", "differently"),
    [
        (b"/dir%2f", True),
        (b"/dir%2F?x=/", True),
        (b"/dir/", False),
        (b"/dir", False),
        (b"/dir%2f/", False),
        (b"/a%2fb", False),
        (b"/dir?q=%2f", False),
    ],
)
def test_slash_judged_differently(target, differently):
    assert slash_judged_differently(target) is differently


def test_gh134098_explains_a_decoded_trailing_slash_and_nothing_else():
    matches = deviation("gh-134098").matches
    case = Case("http-files", b"GET /dir%2f HTTP/1.0\r\n\r\n")
    listing = "HTTP/1.0 200 OK\r\n\r\n<html>listing</html>"
    assert matches(case, {"reply": MOVED}, {"reply": listing}, ["reply"])
    assert matches(case, {"reply": OK}, {"reply": NOT_FOUND}, ["reply", "stderr"])
    # A plain trailing slash is judged the same way by both: not this deviation.
    plain = Case("http-files", b"GET /dir/ HTTP/1.0\r\n\r\n")
    assert not matches(plain, {"reply": MOVED}, {"reply": listing}, ["reply"])
    # The reference failing where the old stdlib answered is not it either.
    assert not matches(case, {"reply": OK}, {"reply": ""}, ["reply"])
    # HTTP/0.9: no status lines, the file's bytes against the 404 page.
    http09 = Case("http-files", b"GET /file.pdf%2f HTTP/0.9")
    page = "<html><p>Error code: 404</p></html>"
    assert matches(http09, {"reply": "content\n"}, {"reply": page}, ["reply", "stderr"])
    assert not matches(
        http09, {"reply": "content\n"}, {"reply": page.replace("404", "500")}, ["reply"]
    )
    # HEAD under HTTP/0.9: nothing comes back; the log line has the status.
    head09 = Case("http-files", b"HEAD /file.pdf%2f HTTP/0.9")
    logged = {"reply": "", "stderr": '127.0.0.1 - - [<time>] "HEAD /file.pdf%2f HTTP/0.9" 200 -\n'}
    refused = {"reply": "", "stderr": logged["stderr"].replace(" 200 -", " 404 -")}
    assert matches(head09, logged, refused, ["stderr"])
    assert not matches(head09, refused, logged, ["stderr"])
    # A NUL in the name: the old stdlib fails to open it, the fix refuses at once.
    nul = Case("http-files", b"GET %00%2f HTTP/1.0")
    failed = {"reply": "", "errors": ["ValueError: embedded null byte"]}
    assert matches(nul, failed, {"reply": NOT_FOUND, "errors": []}, ["errors", "reply"])
    assert not matches(
        nul, failed, {"reply": NOT_FOUND, "errors": ["KeyError: x"]}, ["errors", "reply"]
    )
    # The same when the client closed first, so that only the errors were kept (found by
    # the million-case soak: 'HEAD \0%2F HTTP/1.1' without its end).
    closed = Case("http-files", b"HEAD \x00%2F HTTP/1.1", end="close")
    gone = {"end": "closed", "errors": ["ValueError: embedded null byte"]}
    assert matches(closed, gone, {"end": "closed", "errors": []}, ["errors"])
    assert not matches(closed, gone, {"end": "closed", "errors": ["KeyError: x"]}, ["errors"])
    plain_nul = Case("http-files", b"HEAD \x00/ HTTP/1.1", end="close")
    assert not matches(plain_nul, gone, {"end": "closed", "errors": []}, ["errors"])


def test_gh119452_explains_a_body_read_before_the_script_starts():
    matches = deviation("gh-119452").matches
    head = b"POST /htbin/env.sh HTTP/1.0\r\nCookie: \x00\r\nContent-Length: 5\r\n\r\nab"
    case = Case("http-cgi", head, end="close")
    base = {"end": "closed", "errors": ["ValueError: embedded null byte"]}
    got = {"end": "closed", "errors": []}
    assert matches(case, base, got, ["errors"])
    assert not matches(case, got, base, ["errors"])  # the other way round
    assert not matches(
        Case("http-cgi", head.replace(b"htbin", b"cgi-bin"), end="close"), base, got, ["errors"]
    )
    assert not matches(Case("http-cgi", head, end="half_close"), base, got, ["errors"])


def test_gh119452_explains_a_short_body_awaited_up_to_its_length():
    matches = deviation("gh-119452", "_whole_body_awaited").matches
    head = b"POST /htbin/env.sh HTTP/1.0\r\nContent-Length: 1000\r\n\r\nhel"
    case = Case("http-cgi", head, end="open")
    status = "HTTP/1.0 200 Script output follows\r\nServer: x\r\n"
    base = {"reply": status + "Content-Type: text/plain\r\n\r\nCONTENT_LENGTH=[1000]", "end": "eof"}
    got = {"reply": status, "end": "idle", "errors": ["BrokenPipeError: [Errno 32] Broken pipe"]}
    assert matches(case, base, got, ["end", "errors", "reply"])
    assert not matches(case, base, {**got, "reply": status + "other"}, ["end", "errors", "reply"])
    assert not matches(
        Case("http-cgi", head, end="half_close"), base, got, ["end", "errors", "reply"]
    )
    fork = Case("http-cgi", head.replace(b"htbin", b"cgi-bin"), end="open")
    assert not matches(fork, base, got, ["end", "errors", "reply"])


def test_gh70765_explains_what_an_unread_header_block_gave():
    matches = deviation("gh-70765").matches
    case = Case("http-cgi", b"GET /htbin/env.sh\r\nCookie: \x00\r\n\r\n")
    base = {"reply": "", "errors": ["ValueError: embedded null byte"], "stderr": "trace"}
    got = {"reply": "Content-Type: text/plain\r\n\r\nHTTP_COOKIE=[]", "errors": [], "stderr": "log"}
    assert matches(case, base, got, ["errors", "reply", "stderr"])
    assert not matches(case, got, base, ["errors", "reply", "stderr"])  # new exceptions
    three_words = Case("http-cgi", b"GET /htbin/env.sh HTTP/1.0\r\nCookie: \x00\r\n\r\n")
    assert not matches(three_words, base, got, ["errors", "reply", "stderr"])


def test_long_error_replies_are_explained_by_their_digest():
    page = "<!DOCTYPE HTML>\n" + "x" * 20000
    head = "HTTP/1.1 400 Bad request syntax ('aaa')\r\nConnection: close\r\n\r\n"
    case = Case("http-parser", b"a" * 9000)
    base = observation({"reply": page, "end": "eof"}, case)
    got = observation({"reply": head + page, "end": "eof"}, case)
    matches = deviation("gh-54930").matches
    assert matches(case, base, got, ["reply"])
    other = observation({"reply": head + page + "!", "end": "eof"}, case)
    assert not matches(case, base, other, ["reply"])


def test_reset_cut_error_replies_are_explained_by_their_first_line():
    # A reset (the server closed with request bytes unread) may cut the longer reply
    # short: the explanation then rests on the first line left after the error heads.
    page = "<!DOCTYPE HTML>\n" + "x" * 20000
    head = "HTTP/1.1 400 Bad request syntax ('aaa')\r\nConnection: close\r\n\r\n"
    case = Case("http-parser", b"a" * 9000)
    base = observation({"reply": page, "end": "eof"}, case)
    cut = observation({"reply": head + page[:17000], "end": "reset"}, case)
    matches = deviation("gh-54930").matches
    assert matches(case, base, cut, ["reply", "end"])
    whole_end = observation({"reply": head + page[:17000], "end": "eof"}, case)
    assert not matches(case, base, whole_end, ["reply"])
    other = observation({"reply": head + "<p>other</p>" + page, "end": "reset"}, case)
    assert not matches(case, base, other, ["reply", "end"])


def test_pipelined_http09_echoes_are_explained_only_when_just_headers_differ():
    head = "HTTP/1.1 200 OK\r\nContent-Length: 98\r\n\r\n"

    def echo(headers, path="/", version="HTTP/0.9"):
        fields = {"body": "", "close": True, "command": "GET", "headers": headers}
        return head + json.dumps({**fields, "path": path, "version": version})

    case = Case("http-parser", b"HEAD e HTTP/1.1\n\xc2\xa9\n\nGET\t/\nX:")
    matches = deviation("gh-70765").matches
    base = {"reply": echo([["X", ""]])}
    assert matches(case, base, {"reply": echo([])}, ["reply"])
    # An HTTP/0.9 reply has no head: its echo follows the one before on the same line.
    first = head + json.dumps({"body": "", "command": "DELETE", "headers": [], "path": "?"})
    after = json.loads(echo([["e", ""]])[len(head) :])
    glued = {"reply": first + json.dumps(after)}
    unread = {"reply": first + json.dumps({**after, "headers": []})}
    assert matches(case, glued, unread, ["reply"])
    assert not matches(
        case, glued, {"reply": first + json.dumps({**after, "path": "/x"})}, ["reply"]
    )
    assert not matches(case, base, {"reply": echo([["Y", ""]])}, ["reply"])
    assert not matches(case, base, {"reply": echo([], path="/x")}, ["reply"])
    http10 = {"reply": echo([["X", ""]], version="HTTP/1.0")}
    assert not matches(case, http10, {"reply": echo([], version="HTTP/1.0")}, ["reply"])


def test_explain_is_the_one_seam_and_returns_the_explaining_deviations():
    case = Case("http-files", b"GET /dir%2f HTTP/1.0\r\n\r\n")
    base, got = {"reply": MOVED}, {"reply": "HTTP/1.0 200 OK\r\n\r\nlisting"}
    active = active_deviations(parse_target("reference"))
    assert [d.issue for d in explain(case, base, got, ["reply"], active)] == ["gh-134098"]
    assert explain(case, base, got, ["reply"], []) == []
    assert explain(case, base, {"reply": NOT_FOUND}, ["reply", "server"], active) == []
