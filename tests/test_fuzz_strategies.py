"""The fuzzer's generators: strategies, seeded cases, the site grammars (no processes)."""

import email.utils
import http.server
import json
import re
import socket
import threading

import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from harness import fuzz
from harness.fuzz import grammar, site, tree
from harness.fuzz.case import Case, generate_case
from harness.fuzz.choice import Chooser, Seeded
from harness.fuzz.cli import FAMILIES as CLI_FAMILIES
from harness.fuzz.cli import TRANSPORTS as CLI_TRANSPORTS
from harness.fuzz.transports import FAMILY_TRANSPORTS, TRANSPORTS

FAST = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


class First(Chooser):
    """Always the simplest choice: what hypothesis shrinks every draw towards."""

    def pick(self, items):
        return items[0]

    def between(self, low, high):
        return 0 if low <= 0 <= high else low

    def weighted(self, weights):
        return 0

    def chance(self, percent):
        return False

    def binary(self, low, high):
        return bytes(low)


# --- one grammar, two sources of choices -------------------------------------------------


# A limit request's repr is 64 KiB long, which hypothesis warns about.
@pytest.mark.filterwarnings("ignore:Generating overly large repr")
@pytest.mark.parametrize(
    ("strategy", "generate"),
    [
        (fuzz.http_requests(), grammar.http_request),
        (fuzz.stream_payloads(), grammar.stream_payload),
        (fuzz.limit_requests(), grammar.any_limit_request),
        (fuzz.site_requests("http-files"), site.files_request),
        (fuzz.site_requests("http-cgi"), site.cgi_request),
        (fuzz.site_requests("http-errors"), site.error_request),
    ],
)
def test_strategies_shrink_to_the_tables_first_entries(strategy, generate):
    # The strategy and the seeded generator run the same function: the example hypothesis
    # shrinks to is the one made of every table's first entry.
    smallest = find(strategy, lambda example: True, settings=settings(database=None))
    assert smallest == generate(First())


def test_the_simplest_request_is_a_plain_get():
    assert grammar.http_request(First()).render() == b"GET / HTTP/1.0\r\n\r\n"
    assert grammar.http_payload(First()) == b"GET / HTTP/1.0\r\n\r\n"


def test_seeded_choices_repeat_with_their_seed():
    one, two = Seeded(42), Seeded(42)
    made = [site.files_request(one) for _ in range(50)]
    assert made == [site.files_request(two) for _ in range(50)]
    assert made != [site.files_request(Seeded(43)) for _ in range(50)]


def test_seeded_weights_are_honoured():
    chooser = Seeded(7)
    counts = [0, 0, 0]
    for _ in range(30000):
        counts[chooser.weighted((70, 20, 10))] += 1
    assert [round(c / 3000) for c in counts] == [7, 2, 1]
    assert 2700 < sum(chooser.chance(10) for _ in range(30000)) < 3300


# --- the HTTP grammar --------------------------------------------------------------------


@FAST
@given(fuzz.limit_requests())
def test_limit_requests_sit_on_a_limit(data):
    lines = data.split(b"\r\n")
    request_line = len(lines[0]) + 2
    headers = [line for line in lines[1:] if line]
    longest = max((len(h) + 2 for h in headers), default=0)
    on_line = abs(request_line - fuzz.REQUEST_LINE_LIMIT) <= 2
    on_count = abs(len(headers) - fuzz.HEADER_COUNT_LIMIT) <= 2
    on_header = abs(longest - fuzz.HEADER_LINE_LIMIT) <= 2
    assert on_line or on_count or on_header


@FAST
@given(fuzz.http_requests())
def test_http_requests_render_line_headers_blank_line_body(request):
    data = request.render()
    words = [request.method, request.target] + ([request.version] if request.version else [])
    head = request.prefix + request.word_sep.join(words) + request.line_end
    fields = b"".join(name + sep + value + request.line_end for name, sep, value in request.headers)
    assert data.startswith(head)
    assert data[len(head) : len(head) + len(fields)] == fields
    assert data[len(head) + len(fields) :] == request.line_end + request.body


def _single_edits(data):
    args = set(grammar.INTERESTING_BYTES) | {bytes([b]) for b in range(256)}
    return {
        grammar.apply_mutation(data, op, position, arg)
        for op in grammar.MUTATION_OPS
        for position in range(len(data))
        for arg in args
    }


@settings(max_examples=30, deadline=None)
@given(st.binary(min_size=1, max_size=12), st.integers(0, 2**32))
def test_one_seeded_edit_is_one_of_the_edit_operations(data, seed):
    assert grammar.mutate(Seeded(seed), data, 1) in _single_edits(data)


@pytest.mark.parametrize("data", [b"G", b"GET / HTTP/1.0\r\n\r\n", bytes(range(20))])
def test_mutations_shrink_to_no_edit_then_to_one_edit(data):
    quiet = settings(database=None)
    assert find(fuzz.mutations(data), lambda m: True, settings=quiet) == data
    edited = find(fuzz.mutations(data), lambda m: m != data, settings=quiet)
    assert edited in _single_edits(data)


def test_apply_mutation_each_op():
    data = b"GET / HTTP/1.0"
    assert fuzz.apply_mutation(data, "insert", 3, b"\r") == b"GET\r / HTTP/1.0"
    assert fuzz.apply_mutation(data, "delete", 0, b"") == b"ET / HTTP/1.0"
    assert fuzz.apply_mutation(data, "swapcase", 0, b"") == b"gET / HTTP/1.0"
    assert fuzz.apply_mutation(data, "percent", 4, b"") == b"GET %2F HTTP/1.0"
    assert fuzz.apply_mutation(data, "truncate", 5, b"") == b"GET /"
    assert fuzz.apply_mutation(data, "replace", 3, b"\t") == b"GET\t/ HTTP/1.0"
    assert fuzz.apply_mutation(data, "duplicate", 0, b"GE") == b"GEGET / HTTP/1.0"


@FAST
@given(fuzz.http_payloads().flatmap(lambda d: st.tuples(st.just(d), fuzz.schedules(d))))
def test_schedules_cut_the_data_whole(pair):
    data, (splits, pause, end) = pair
    case = Case("http-parser", data, splits, pause, end)
    assert b"".join(case.pieces()) == data
    assert end in fuzz.ENDINGS
    assert pause in (0.0, 0.001, 0.01)


@FAST
@given(fuzz.datagrams())
def test_datagrams_sit_around_a_size(data):
    anchors = (0, 1, fuzz.MAX_PACKET_SIZE, 2 * fuzz.MAX_PACKET_SIZE, 65507)
    assert min(abs(len(data) - a) for a in anchors) <= 2


@FAST
@given(fuzz.valid_http_requests(edits=False))
def test_valid_requests_have_a_good_request_line(data):
    words = data.split(b"\r\n", 1)[0].split(b" ")
    assert words[0] in fuzz.METHODS[:7]
    assert words[-1] in (b"HTTP/1.0", b"HTTP/1.1")


# --- cases and templates -----------------------------------------------------------------


@FAST
@given(fuzz.cases("http"))
def test_case_json_round_trip_and_expand(case):
    assert case.family in fuzz.HTTP_FAMILIES
    assert Case.from_json(json.loads(json.dumps(case.to_json()))) == case
    variants = fuzz.expand(case)
    assert variants[0] == case
    assert all(b"".join(v.pieces()) == v.data for v in variants)
    assert len({(v.data, v.splits, v.pause, v.end) for v in variants}) == len(variants)


def test_old_reproducers_name_the_parser_family():
    old = Case("http-parser", b"GET / HTTP/1.0\r\n\r\n").to_json()
    assert Case.from_json({**old, "family": "http"}).family == "http-parser"


@FAST
@given(fuzz.templates("http", count=40))
def test_templates_derive_the_same_distinct_cases_of_one_family(template):
    cases = fuzz.derive(template)
    assert cases == fuzz.derive(template)
    assert len(set(cases)) == len(cases)
    assert cases[0] == template.base
    assert {c.family for c in cases} == {template.base.family}
    assert all(b"".join(c.pieces()) == c.data for c in cases)
    assert fuzz.seeded_case(template, 7) == fuzz.seeded_case(template, 7)


@FAST
@given(fuzz.templates("http", count=40, batch=True))
def test_batch_templates_derive_what_a_socketpair_can_tell_apart(template):
    for case in fuzz.derive(template):
        assert case.splits == () and case.pause == 0.0 and case.end != "reset"


def test_seeded_cases_cover_limits_pipelines_and_endings():
    template = fuzz.Template(Case("http-parser", b"GET / HTTP/1.0\r\n\r\n"), seed=3, count=2000)
    cases = fuzz.derive(template)
    assert {c.end for c in cases} == {"half_close", "close", "reset"}
    assert any(len(c.data) >= fuzz.REQUEST_LINE_LIMIT - 2 for c in cases)
    assert any(c.data.count(b"HTTP/1.1") >= 2 for c in cases)
    assert any(len(c.pieces()) > 1 for c in cases) and any(c.pause for c in cases)
    opened = fuzz.derive(fuzz.Template(template.base, 3, 2000, allow_open=True))
    assert any(c.end == "open" for c in opened)


def test_every_family_generates_cases_of_its_own():
    for family in fuzz.FAMILIES:
        chooser = Seeded(11)
        made = [generate_case(chooser, family, allow_open=False) for _ in range(50)]
        assert {c.family for c in made} == {family}
        if family == "datagram":
            assert all(c.datagrams and not c.data for c in made)
        elif family != "stream":  # a stream case may send nothing; an edit may truncate
            assert sum(bool(c.data) for c in made) > 45


def test_cgi_bodies_go_in_one_piece_and_heads_in_many():
    template = fuzz.Template(Case("http-cgi", b"POST /htbin/echo.sh HTTP/1.0\r\n\r\nab"), 1, 3000)
    cases = fuzz.derive(template)
    split_heads = 0
    for case in cases:
        head_end = min(
            (case.data.find(sep) + len(sep) for sep in (b"\r\n\r\n", b"\n\n") if sep in case.data),
            default=len(case.data),
        )
        *first, last = case.pieces()
        assert sum(map(len, first)) < head_end or not first  # every cut is in the head
        assert case.data[head_end:] in last
        split_heads += bool(first)
    assert split_heads > 100
    # Byte by byte up to the end of the head, then the rest.
    assert fuzz.expand(template.base)[-1].pieces()[-2:] == [b"\r", b"\nab"]


def test_the_cli_lists_every_family_and_transport():
    assert set(CLI_FAMILIES) == set(fuzz.FAMILY_CHOICES)
    assert set(CLI_TRANSPORTS) == set(TRANSPORTS)
    assert set(FAMILY_TRANSPORTS) == set(fuzz.FAMILIES)


# --- the site grammars -------------------------------------------------------------------


@pytest.mark.parametrize(
    "form", ["imf", "rfc850", "asctime", "zoneless", "lower", "two-digit-year"]
)
def test_valid_date_forms_name_their_instant(form):
    for instant in (site.MTIME, site.MTIME + 86400 * 400):
        parsed = email.utils.parsedate_to_datetime(site.http_date(instant, form).decode())
        assert parsed.timestamp() == instant


def test_files_requests_ask_for_the_tree_in_every_form():
    chooser = Seeded(5)
    made = [site.files_request(chooser) for _ in range(3000)]
    lines = [m.split(b"\r\n", 1)[0] for m in made]
    methods = {m for _, m in site.SITE_METHODS}
    # Most keep their method; one in five has byte-level edits somewhere.
    assert sum(line.split(b" ")[0] in methods for line in lines) > 0.75 * len(lines)
    joined = b"\n".join(made)
    for fragment in (b"%2f", b"%2F", b"//", b"\\", b"/..", b"?", b"#", b"http://h.example/"):
        assert fragment in joined, fragment
    for header in (b"If-Modified-Since: ", b"If-None-Match: ", b"Range: "):
        assert header in joined, header
    assert any(b"If-Modified-Since" in m and b"If-None-Match" in m for m in made)
    assert any(len(line) > 4096 for line in lines) and any(len(line) > 65536 for line in lines)
    named = {path for path in tree.PATHS if any(b" " + path + b" " in line for line in lines)}
    assert len(named) > len(tree.PATHS) // 2


def test_cgi_requests_reach_both_paths_with_every_variation():
    chooser = Seeded(9)
    joined = b"\n".join(site.cgi_request(chooser) for _ in range(2000))
    for fragment in (b"/cgi-bin/", b"/htbin/", b"/extra", b"?a=b", b"?noequals"):
        assert fragment in joined, fragment
    for fragment in (b"Authorization: Basic", b"Content-Length: abc", b"\x00", b"\x1b[31m"):
        assert fragment in joined, fragment


#: What each error trigger must get from the stdlib's CGIHTTPRequestHandler (3.11 and up).
TRIGGER_STATUS = {
    "missing": b"404",
    "file-slash": b"404",
    "locked-dir": b"404",
    "locked-file": b"404",
    "dir-redirect": b"301",
    "bad-version": b"400",
    "http2": b"505",
    "word-count": b"400",
    "http09-method": b"400",
    "long-line": b"414",
    "header-count": b"431",
    "header-line": b"431",
    "unknown-method": b"501",
    "post-file": b"501",
    "cgi-noexec": b"403",
    "cgi-dir": b"403",
    "cgi-missing": b"404",
}


def _serve_errors(directory):
    from scenarios.handlers.fuzz_site import Errors

    class Quiet(Errors):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(directory / "www"), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server


def _ask(address, data):
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    return reply


def _status(reply):
    """The status of a reply: its status line's, or a bare error page's (old stdlib)."""
    if reply.startswith(b"HTTP/"):
        return reply.split(b" ", 2)[1]
    found = re.search(rb"Error code: (\d+)", reply)
    return found.group(1) if found else b"<none>"


def test_error_requests_reach_every_error_path(tmp_path):
    tree.build(tmp_path)
    server = _serve_errors(tmp_path)
    try:
        seen = {}
        for seed in range(600):
            trigger = Seeded(seed).pick(site.TRIGGERS)
            reply = _ask(server.server_address, site.error_request(Seeded(seed)))
            seen.setdefault(trigger, set()).add(_status(reply))
        for trigger, status in TRIGGER_STATUS.items():
            assert status in seen[trigger], (trigger, seen[trigger])
    finally:
        server.shutdown()
        server.server_close()
        tree.remove(tmp_path)
