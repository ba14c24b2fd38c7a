"""Normalizers: what varies between runs goes, everything else stays."""

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.observation import (
    _NORMALIZERS,
    _spelling_rules,
    _substitute,
    canonical_spellings,
    event_key,
    normalize_http,
    normalize_text,
    sorted_lines,
    summarize_events,
)

HANDLE_ERROR = """----------------------------------------
Exception occurred during processing of request from ('127.0.0.1', 54321)
Traceback (most recent call last):
  File "/usr/lib/python3.11/socketserver.py", line 317, in _handle_request_noblock
    self.process_request(request, client_address)
  File "/tmp/x.py", line 3, in handle
    raise ValueError("boom")
ValueError: boom
----------------------------------------
"""


def test_normalize_text_removes_ports_and_frames_but_keeps_the_exception():
    text = normalize_text(HANDLE_ERROR)
    assert "54321" not in text
    assert "('127.0.0.1', PORT)" in text
    assert "socketserver.py" not in text
    assert "ValueError: boom" in text
    assert text.count("-" * 40) == 2


def test_normalize_text_keeps_a_different_exception_different():
    other = HANDLE_ERROR.replace("ValueError: boom", "KeyError: 'boom'")
    assert normalize_text(other) != normalize_text(HANDLE_ERROR)


def test_normalize_text_replacements_and_log_times():
    text = normalize_text(
        '/tmp/ssh-abc/sock 127.0.0.1 - - [23/Nov/2026 05:55:02] "GET /"',
        [("/tmp/ssh-abc", "<tmp>")],
    )
    assert text == '<tmp>/sock 127.0.0.1 - - [<time>] "GET /"'


def test_normalize_http_only_replaces_well_formed_values():
    reply = (
        "HTTP/1.0 200 OK\r\nServer: SimpleHTTP/0.6 Python/3.11.7\r\n"
        "Date: Mon, 23 Nov 2026 05:51:27 GMT\r\nX: 1\r\n\r\n"
    )
    normal = normalize_http(reply)
    assert "Date: <http-date>\r\n" in normal
    assert "Server: SimpleHTTP<version> <python>\r\n" in normal
    broken = reply.replace("Mon, 23 Nov", "Mon 23 Nov")
    assert "Mon 23 Nov 2026" in normalize_http(broken)


def test_summarize_events_counts_and_sequence():
    events = [
        {"ev": "ready", "ctx": "main"},
        {"ev": "handle", "ctx": "thread", "client": "ip:127.0.0.1", "t": 1.0},
        {"ev": "handle", "ctx": "thread", "client": "ip:127.0.0.1", "t": 2.0},
        {"ev": "handle_error", "ctx": "thread", "type": "ValueError", "message": "x"},
    ]
    counts = summarize_events(events, "counts")
    assert counts == {
        "handle[thread] client=ip:127.0.0.1": 2,
        "handle_error[thread] ValueError: x": 1,
    }
    assert summarize_events(events, "sequence")[0] == "handle[thread] client=ip:127.0.0.1"
    assert summarize_events(events, "none") is None


def test_event_key_and_sorted_lines():
    assert event_key({"ev": "verify_request:returned", "ctx": "serve", "value": False}) == (
        "verify_request:returned[serve] value=False"
    )
    assert sorted_lines("b\n\na\n") == ["a", "b"]


def test_normalize_text_keeps_warnings_but_not_where_or_fd_numbers():
    text = (
        "/usr/lib/python3.11/socketserver.py:470: ResourceWarning: unclosed "
        "<socket.socket fd=7, family=2, type=1, proto=0, laddr=('127.0.0.1', 4242)>\n"
        "  self.close_request(request)\n"
    )
    assert normalize_text(text) == (
        "<where>: ResourceWarning: unclosed <socket.socket fd=<n>, family=2, type=1, "
        "proto=0, laddr=('127.0.0.1', PORT)>\n"
    )


def test_one_codec_or_exception_spelled_two_ways_reads_the_same():
    from harness.observation import canonical_spellings

    a, a_changed = canonical_spellings("UnicodeEncodeError: 'latin-1' codec can't encode")
    b, b_changed = canonical_spellings("UnicodeEncodeError: 'latin1' codec can't encode")
    assert a == b and a_changed != b_changed
    assert a_changed == {"'latin-1' -> 'iso8859-1'"}
    c, _ = canonical_spellings("socket.timeout: timed out")
    d, d_changed = canonical_spellings("_socket.timeout: timed out")
    assert c == d == "TimeoutError: timed out"
    assert d_changed == {"_socket.timeout -> TimeoutError"}


def test_canonical_spellings_leave_everything_else_alone():
    from harness.observation import canonical_spellings

    for text in (
        "TimeoutError: timed out",
        "'utf-8' is not a codec here",
        "server.sock: No such file",  # not an exception
        "mymodule.Error: x",  # not a stdlib module: never imported
        "socket.gaierror: [Errno -2]",  # already canonical
        "'no-such-codec' codec",
    ):
        assert canonical_spellings(text) == (text, set())


def test_object_addresses_in_reprs_are_masked():
    from harness.observation import normalize_text

    a = normalize_text("bad config in <_io.StringIO object at 0x7f3a12bc9d30>")
    b = normalize_text("bad config in <_io.StringIO object at 0x7f0011223344>")
    assert a == b == "bad config in <_io.StringIO object at 0x<addr>>"


def test_class_reprs_and_encodings_spelled_two_ways_read_the_same():
    from harness.observation import canonical_spellings

    cpython, _ = canonical_spellings("&lt;class 'xml.parsers.expat.ExpatError'&gt;:no element")
    pypy, changed = canonical_spellings("&lt;class 'pyexpat.ExpatError'&gt;:no element")
    assert cpython == pypy and changed == {"pyexpat.ExpatError -> xml.parsers.expat.ExpatError"}
    upper, _ = canonical_spellings("<_io.TextIOWrapper encoding='UTF-8'>")
    lower, _ = canonical_spellings("<_io.TextIOWrapper encoding='utf-8'>")
    assert upper == lower


def test_a_server_header_of_any_software_loses_only_its_versions():
    from harness.observation import normalize_http

    for header in ("WSGIServer/0.2 CPython/3.9.18", "WSGIServer/0.2 PyPy/3.9.16"):
        assert normalize_http(f"Server: {header}\r\n") == "Server: WSGIServer<version> <python>\r\n"
    assert normalize_http("Server: odd\r\n") == "Server: odd\r\n"


# --- the quick checks before each pattern change nothing --------------------------------

_FRAGMENTS = [
    "('127.0.0.1', 8080)",
    '("::1", 443)',
    "'0.0.0.0', 1",
    'Traceback (most recent call last):\n  File "x.py", line 3, in f\n    g()\n',
    "\nDuring handling of the above exception, another exception occurred:\n\n",
    "[23/Nov/2026 05:55:02]",
    "/x/y.py:12: ResourceWarning: unclosed <socket>\n  sock = f()\n",
    "fd=12",
    "<_io.StringIO object at 0x7f3a12>",
    "'latin1' codec can't encode",
    "encoding='UTF8'",
    "socket.timeout: timed out",
    "<class 'pyexpat.ExpatError'>",
    "ValueError: x\n",
    " ",
    "\n",
    "plain",
]


def _every_pattern(text: str) -> tuple[str, set[str]]:
    """What normalize_text and canonical_spellings did before they looked first: every
    pattern applied to every text."""
    changed: set[str] = set()
    text = _substitute(_NORMALIZERS, text, look_first=False)
    return _substitute(_spelling_rules(changed), text, look_first=False), changed


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_FRAGMENTS) | st.text(max_size=8), max_size=8))
def test_looking_first_changes_nothing(parts):
    text = "".join(parts)
    normalized = normalize_text(text)
    assert canonical_spellings(normalized) == _every_pattern(text)
