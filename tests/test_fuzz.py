"""The fuzzer: strategies (fast, no processes), then real fuzz runs over real sockets."""

import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import fuzz
from harness.fuzz import Case
from harness.fuzz.handler import invalid_http

ROOT = Path(__file__).resolve().parent.parent
FAST = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


def harness(*args, timeout=150):
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# --- strategies ------------------------------------------------------------------------


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
def test_http_requests_render_the_grammar(request):
    data = request.render()
    assert data.startswith(request.prefix + request.method)
    assert request.line_end + request.line_end in data or request.headers
    assert data.endswith(request.body)


@FAST
@given(st.binary(min_size=1, max_size=40), st.data())
def test_mutations_edit_bytes(data, draw):
    mutated = draw.draw(fuzz.mutations(data))
    assert isinstance(mutated, bytes)


def test_apply_mutation_each_op():
    data = b"GET / HTTP/1.0"
    assert fuzz.apply_mutation(data, "insert", 3, b"\r") == b"GET\r / HTTP/1.0"
    assert fuzz.apply_mutation(data, "delete", 0, b"") == b"ET / HTTP/1.0"
    assert fuzz.apply_mutation(data, "swapcase", 0, b"") == b"gET / HTTP/1.0"
    assert fuzz.apply_mutation(data, "percent", 4, b"") == b"GET %2F HTTP/1.0"
    assert fuzz.apply_mutation(data, "truncate", 5, b"") == b"GET /"
    assert fuzz.apply_mutation(data, "replace", 3, b"\t") == b"GET\t/ HTTP/1.0"


@FAST
@given(fuzz.http_payloads().flatmap(lambda d: st.tuples(st.just(d), fuzz.schedules(d))))
def test_schedules_cut_the_data_whole(pair):
    data, (splits, pause, end) = pair
    case = Case("http", data, splits, pause, end)
    assert b"".join(case.pieces()) == data
    assert end in fuzz.ENDINGS
    assert pause in (0.0, 0.001, 0.01)


@FAST
@given(fuzz.datagrams())
def test_datagrams_sit_around_a_size(data):
    anchors = (0, 1, fuzz.MAX_PACKET_SIZE, 2 * fuzz.MAX_PACKET_SIZE, 65507)
    assert min(abs(len(data) - a) for a in anchors) <= 2


@FAST
@given(fuzz.cases("http"))
def test_case_json_round_trip_and_expand(case):
    assert Case.from_json(json.loads(json.dumps(case.to_json()))) == case
    variants = fuzz.expand(case)
    assert variants[0] == case
    assert all(b"".join(v.pieces()) == v.data for v in variants)
    assert len({(v.data, v.splits, v.pause, v.end) for v in variants}) == len(variants)


@FAST
@given(fuzz.templates("http", count=40))
def test_templates_derive_the_same_distinct_cases(template):
    cases = fuzz.derive(template)
    assert cases == fuzz.derive(template)  # the same template, the same cases
    assert len(set(cases)) == len(cases)
    assert cases[0] == template.base
    assert all(b"".join(c.pieces()) == c.data for c in cases)
    assert fuzz.seeded_case(template, 7) == fuzz.seeded_case(template, 7)


@FAST
@given(fuzz.templates("http", count=40, batch=True))
def test_batch_templates_derive_what_a_socketpair_can_tell_apart(template):
    for case in fuzz.derive(template):
        assert case.splits == () and case.pause == 0.0 and case.end != "reset"


def test_seeded_cases_cover_limits_pipelines_and_endings():
    template = fuzz.Template(Case("http", b"GET / HTTP/1.0\r\n\r\n"), seed=3, count=2000)
    cases = fuzz.derive(template)
    assert {c.end for c in cases} == {"half_close", "close", "reset"}
    assert any(len(c.data) >= fuzz.REQUEST_LINE_LIMIT - 2 for c in cases)
    assert any(c.data.count(b"HTTP/1.1") >= 2 for c in cases)
    assert any(len(c.pieces()) > 1 for c in cases) and any(c.pause for c in cases)
    opened = fuzz.derive(fuzz.Template(template.base, 3, 2000, allow_open=True))
    assert any(c.end == "open" for c in opened)


def test_long_error_replies_are_explained_by_their_digest():
    from harness.fuzz.explain import DEVIATIONS
    from harness.fuzz.judge import observation

    page = "<!DOCTYPE HTML>\n" + "x" * 20000
    head = "HTTP/1.1 400 Bad request syntax ('aaa')\r\nConnection: close\r\n\r\n"
    case = Case("http", b"a" * 9000)
    base = observation({"reply": page, "end": "eof"}, case)
    got = observation({"reply": head + page, "end": "eof"}, case)
    explainer = DEVIATIONS[1].matches
    assert explainer(case, base, got, ["reply"])
    other = observation({"reply": head + page + "!", "end": "eof"}, case)
    assert not explainer(case, base, other, ["reply"])


def test_reset_cut_error_replies_are_explained_by_their_first_line():
    # A reset (the server closed with request bytes unread) may cut the longer reply
    # short: the explanation then rests on the first line left after the error heads.
    from harness.fuzz.explain import DEVIATIONS
    from harness.fuzz.judge import observation

    page = "<!DOCTYPE HTML>\n" + "x" * 20000
    head = "HTTP/1.1 400 Bad request syntax ('aaa')\r\nConnection: close\r\n\r\n"
    case = Case("http", b"a" * 9000)
    base = observation({"reply": page, "end": "eof"}, case)
    cut = observation({"reply": head + page[:17000], "end": "reset"}, case)
    explainer = DEVIATIONS[1].matches
    assert explainer(case, base, cut, ["reply", "end"])
    # Without the reset the same cut reply is not explained ...
    whole_end = observation({"reply": head + page[:17000], "end": "eof"}, case)
    assert not explainer(case, base, whole_end, ["reply"])
    # ... and with it, a different page is not either.
    other = observation({"reply": head + "<p>other</p>" + page, "end": "reset"}, case)
    assert not explainer(case, base, other, ["reply", "end"])


def test_pipelined_http09_echoes_are_explained_only_when_just_headers_differ():
    from harness.fuzz.explain import DEVIATIONS

    head = "HTTP/1.1 200 OK\r\nContent-Length: 98\r\n\r\n"

    def echo(headers, path="/", version="HTTP/0.9"):
        fields = {"body": "", "close": True, "command": "GET", "headers": headers}
        return head + json.dumps({**fields, "path": path, "version": version})

    case = Case("http", b"HEAD e HTTP/1.1\n\xc2\xa9\n\nGET\t/\nX:")
    explainer = DEVIATIONS[0].matches  # gh-70765
    assert DEVIATIONS[0].issue == "gh-70765"
    base = {"reply": echo([["X", ""]])}
    assert explainer(case, base, {"reply": echo([])}, ["reply"])
    # The target read headers after all, or echoed another path or version: not this.
    assert not explainer(case, base, {"reply": echo([["Y", ""]])}, ["reply"])
    assert not explainer(case, base, {"reply": echo([], path="/x")}, ["reply"])
    http10 = {"reply": echo([["X", ""]], version="HTTP/1.0")}
    assert not explainer(case, http10, {"reply": echo([], version="HTTP/1.0")}, ["reply"])


RECORD_QUEUE_CHECK = """
import json
from scenarios.handlers.fuzz_handlers import FuzzTCPServer, LineEcho
server = FuzzTCPServer(("127.0.0.1", 0), LineEcho)
address = ("127.0.0.1", 40000)
first, second = server.record_open(address), server.record_open(address)
for record, text in ((first, "one"), (second, "two")):
    server.record_begin(record)
    record["stderr"] = text
    server.record_close(record)
both = server.take_records([40000, 40000], timeout=1.0)
third = server.record_open(address)
server.record_close(third)
fourth = server.record_open(address)
oldest = server.take_records([40000], timeout=0.0)
left = server.take_records([40000, 40001], timeout=0.0)
server.server_close()
print(json.dumps([both, oldest, left]))
"""


def test_records_of_a_reused_port_are_taken_oldest_first():
    # The kernel hands a client port to the next connection as soon as the last one on it
    # has closed, even within one chunk of fuzz cases: the records must not overwrite or
    # steal each other.
    done = subprocess.run(
        [sys.executable, "-c", RECORD_QUEUE_CHECK],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    both, oldest, left = json.loads(done.stdout)
    assert [r["stderr"] for r in both["40000"]] == ["one", "two"]
    assert oldest["40000"]["done"] is True
    assert left["40000"]["done"] is False
    assert left["40001"] == {"missing": True}


@FAST
@given(fuzz.valid_http_requests(edits=False))
def test_valid_requests_have_a_good_request_line(data):
    words = data.split(b"\r\n", 1)[0].split(b" ")
    assert words[0] in fuzz.METHODS[:7]
    assert words[-1] in (b"HTTP/1.0", b"HTTP/1.1")


def test_invalid_http_uses_h11():
    request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    good = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"
    assert invalid_http(request, good, closed=True) is None
    bad = b"HTTP/1.0 200 OK\r\nBad Name: 1\r\nContent-Length: 2\r\n\r\nok"
    assert invalid_http(request, bad, closed=True).startswith("h11:")
    assert invalid_http(b"GET /\r\n", b"<html>", closed=True) is None  # HTTP/0.9: not judged


# --- real runs ---------------------------------------------------------------------------


def test_stdlib_against_itself_finds_no_confirmed_difference(tmp_path):
    result = harness(
        "fuzz",
        "--target",
        "name=again,modules=stdlib",
        "--duration",
        "6",
        "--report-dir",
        str(tmp_path),
    )
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["schema"] == 2
    # The stdlib cannot differ from itself: anything found must be labelled flaky (it did
    # not repeat on rerun), never differs; on a saturated 2-core machine a timing race
    # between a connection's end and its server-side record can show once.
    assert set(report["counts"]) <= {"same", "flaky"}, result.stdout + result.stderr
    if report["counts"] == {"same": 1}:
        assert result.returncode == 0
        assert report["results"][0]["scenario"] == "fuzz/http/all"
    else:
        assert result.returncode == 1
    assert report["fuzz"]["cases"] > 100
    assert "cases" in result.stderr  # progress lines


def test_batch_mode_against_itself_finds_nothing(tmp_path):
    result = harness(
        "fuzz",
        "--target",
        "name=again,modules=stdlib",
        "--batch",
        "--max-examples",
        "20",
        "--report-dir",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads((tmp_path / "report.json").read_text())["fuzz"]["mode"] == "batch"


def test_planted_request_line_bug_is_found_shrunk_saved_replayed(tmp_path):
    stdlib = Path(sysconfig.get_paths()["stdlib"]) / "http" / "server.py"
    mutant = tmp_path / "server.py"
    source = stdlib.read_text()
    assert "if len(self.raw_requestline) > 65536:" in source
    mutant.write_text(source.replace("> 65536:", "> 65535:", 1))
    reports = tmp_path / "reports"
    target = f"name=mutant,http.server={mutant}"
    result = harness(
        "fuzz",
        "--target",
        target,
        "--duration",
        "60",
        "--max-findings",
        "1",
        "--shrink-seconds",
        "15",
        "--report-dir",
        str(reports),
    )
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads((reports / "report.json").read_text())
    row = report["results"][0]
    assert row["verdict"] == "differs"
    assert row["scenario"].startswith("fuzz/http/")
    files = [Path(p) for p in report["fuzz"]["reproducers"]]
    assert len(files) == 1
    saved = json.loads(files[0].read_text())
    case = Case.from_json(saved["case"])
    first_line = case.data.split(b"\n", 1)[0]
    assert len(first_line) + 1 in (65536, 65535)  # shrunk onto the limit the mutant moved
    assert saved["targets"]["target"] == target
    assert harness("replay", str(files[0])).returncode == 1
    assert harness("replay", str(files[0]), "--target", "name=again,modules=stdlib").returncode == 0


EXAMPLES = {
    "bug_exception": "exception",
    "bug_hang": "hang",
    "bug_fd_leak": "fd-leak",
    "bug_thread_leak": "thread-leak",
    "bug_invalid_response": "invalid-http",
    "bug_crash": "crash",
}


@pytest.mark.parametrize("module", sorted(EXAMPLES))
def test_handler_fuzzer_finds_planted_bug(module, tmp_path):
    result = harness(
        "fuzz",
        "--handler",
        f"examples.{module}:Handler",
        "--server",
        "http.server:ThreadingHTTPServer",
        "--duration",
        "40",
        "--max-findings",
        "1",
        "--shrink-seconds",
        "3",
        "--report-dir",
        str(tmp_path),
    )
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    kinds = [f["kind"] for f in report["fuzz"]["findings"]]
    assert kinds == [EXAMPLES[module]], result.stdout
    if module in ("bug_exception", "bug_invalid_response"):
        replayed = harness("replay", report["fuzz"]["findings"][0]["reproducer"])
        assert replayed.returncode == 1, replayed.stdout + replayed.stderr


def test_bad_usage_exits_2(tmp_path):
    assert harness("fuzz", "--family", "nope").returncode == 2
    assert harness("fuzz", "--handler", "nocolon", "--server", "TCPServer").returncode == 2
    assert harness("replay", str(tmp_path / "missing.json")).returncode == 2
    shutil.rmtree(tmp_path, ignore_errors=True)
