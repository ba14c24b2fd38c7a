"""The fuzzer end to end: real fuzz runs over real sockets and in batch mode, replay.

The generators are tested in ``test_fuzz_strategies.py``, the judge and the explainers in
``test_fuzz_judge.py``, the wire helpers in ``test_wire.py``.
"""

import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from harness_cli import harness

from harness.fuzz import Case
from harness.fuzz.handler import HandlerFuzzConfig, implied_transport, invalid_http

ROOT = Path(__file__).resolve().parent.parent
STDLIB_HTTP_SERVER = Path(sysconfig.get_paths()["stdlib"]) / "http" / "server.py"


# --- the servers' side ---------------------------------------------------------------------


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


GARBAGE_CHECK = """
import json, sys
from scenarios.handlers.fuzz_handlers import FuzzTCPServer, LineEcho
server = FuzzTCPServer(("127.0.0.1", 0), LineEcho)
name = sys.argv[1]
open(name, "w").close()
records = []
for port, cycle in ((40000, False), (40001, True), (40002, False)):
    record = server.record_open(("127.0.0.1", port))
    server.record_begin(record)
    leaked = open(name)
    if cycle:  # freed by the collector, later, in whatever request it runs in
        leaked.loop = [leaked]
    del leaked  # without a cycle: freed here, and it warns here
    server.record_close(record)
taken = server.take_records([40000, 40001, 40002], timeout=1.0)
server.server_close()
print(json.dumps({k: v["stderr"] for k, v in taken.items()}))
"""


def test_what_the_collector_frees_warns_in_no_request(tmp_path):
    done = subprocess.run(
        [sys.executable, "-W", "always::ResourceWarning", "-c", GARBAGE_CHECK, str(tmp_path / "f")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    stderr = json.loads(done.stdout)
    assert "ResourceWarning: unclosed file" in stderr["40000"]
    assert stderr["40001"] == ""  # its cycle was collected in take_records, quietly
    assert "ResourceWarning: unclosed file" in stderr["40002"]
    assert "ResourceWarning" not in done.stderr


def test_invalid_http_uses_h11():
    request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    good = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"
    assert invalid_http(request, good, closed=True) is None
    bad = b"HTTP/1.0 200 OK\r\nBad Name: 1\r\nContent-Length: 2\r\n\r\nok"
    assert invalid_http(request, bad, closed=True).startswith("h11:")
    assert invalid_http(b"GET /\r\n", b"<html>", closed=True) is None  # HTTP/0.9: not judged


# --- real runs ---------------------------------------------------------------------------


def test_handler_transport_follows_the_server_class_unless_told():
    assert implied_transport("ThreadingUnixStreamServer") == "unix"
    assert implied_transport("socketserver:UnixDatagramServer") == "unix-datagram"
    assert implied_transport("UDPServer") == "udp"
    assert implied_transport("http.server:ThreadingHTTPServer") == "tcp"
    config = HandlerFuzzConfig("m:H", "ThreadingTCPServer", transport="tcp6")
    assert config.spec().server_attrs == {"address_family": 10}
    assert config.spec().env == {"HARNESS_FUZZ_SERVER": "ThreadingTCPServer"}
    assert HandlerFuzzConfig("m:H", "ThreadingUnixStreamServer").spec().family == "unix"


# --- real runs ---------------------------------------------------------------------------


def planted(tmp_path, old, new):
    """A copy of the stdlib's http/server.py with one change."""
    source = STDLIB_HTTP_SERVER.read_text()
    assert source.count(old) == 1
    mutant = tmp_path / "server.py"
    mutant.write_text(source.replace(old, new))
    return mutant


def test_stdlib_against_itself_finds_no_confirmed_difference(tmp_path):
    result = harness(
        "fuzz",
        "--target",
        "name=again,modules=stdlib",
        "--duration",
        "8",
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
    assert report["fuzz"]["family"] == "http"
    assert report["fuzz"]["cases"] > 100
    assert "cases" in result.stderr  # progress lines


def test_max_cases_counts_cases_as_the_progress_line_does(tmp_path):
    result = harness(
        "fuzz",
        "--target",
        "name=again,modules=stdlib",
        "--batch",
        "--family",
        "http-parser",
        "--max-cases",
        "1500",
        "--report-dir",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["fuzz"]["mode"] == "batch"
    # Chunks already under way when the budget is reached still finish.
    assert 1500 <= report["fuzz"]["cases"] < 1500 + 2 * 200
    assert "1500 cases" in result.stderr


@pytest.mark.parametrize(
    ("family", "transport"),
    [("stream", "unix"), ("datagram", "unix-datagram"), ("http-files", "tcp6")],
)
def test_every_transport_runs_the_stdlib_against_itself(tmp_path, family, transport):
    args = ["--family", family, "--transport", transport, "--max-cases", "400"]
    result = harness(
        "fuzz", "--target", "name=again,modules=stdlib", *args, "--report-dir", str(tmp_path)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["fuzz"]["transport"] == transport and report["fuzz"]["cases"] >= 400


def test_planted_request_line_bug_is_found_shrunk_saved_replayed(tmp_path):
    mutant = planted(
        tmp_path, "if len(self.raw_requestline) > 65536:", "if len(self.raw_requestline) > 65535:"
    )
    reports = tmp_path / "reports"
    target = f"name=mutant,http.server={mutant}"
    result = harness(
        "fuzz",
        "--target",
        target,
        "--family",
        "http-parser",
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
    assert row["scenario"].startswith("fuzz/http-parser/")
    files = [Path(p) for p in report["fuzz"]["reproducers"]]
    assert len(files) == 1
    saved = json.loads(files[0].read_text())
    case = Case.from_json(saved["case"])
    first_line = case.data.split(b"\n", 1)[0]
    assert len(first_line) + 1 in (65536, 65535)  # shrunk onto the limit the mutant moved
    assert saved["targets"]["target"] == target
    assert (saved["family"], saved["mode"], saved["transport"]) == ("http-parser", "sockets", "tcp")
    assert harness("replay", str(files[0])).returncode == 1
    assert harness("replay", str(files[0]), "--target", "name=again,modules=stdlib").returncode == 0


def test_planted_head_error_body_is_found_by_a_mixed_http_run(tmp_path):
    # The planted defect: error replies to HEAD carry a body. The parser family
    # alone never calls send_error for HEAD; the mixed run must find it within 60 s.
    mutant = planted(tmp_path, "if self.command != 'HEAD' and body:", "if body:")
    reports = tmp_path / "reports"
    result = harness(
        "fuzz",
        "--target",
        f"name=planted,http.server={mutant}",
        "--family",
        "http",
        "--duration",
        "60",
        "--seed",
        "3",
        "--max-findings",
        "1",
        "--shrink-seconds",
        "10",
        "--report-dir",
        str(reports),
        timeout=200,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads((reports / "report.json").read_text())
    assert [r["verdict"] for r in report["results"]] == ["differs"]
    (path,) = report["fuzz"]["reproducers"]
    saved = json.loads(Path(path).read_text())
    case = Case.from_json(saved["case"])
    assert case.data.upper().startswith(b"HEAD ") and len(case.data) < 200
    assert (
        saved["family"] in ("http-files", "http-errors", "http-cgi") and saved["mode"] == "sockets"
    )
    assert harness("replay", path).returncode == 1


def test_a_batch_finding_replays_in_batch_mode(tmp_path):
    mutant = planted(
        tmp_path, "if len(self.raw_requestline) > 65536:", "if len(self.raw_requestline) > 65535:"
    )
    reports = tmp_path / "reports"
    result = harness(
        "fuzz",
        "--target",
        f"name=mutant,http.server={mutant}",
        "--family",
        "http-parser",
        "--batch",
        "--duration",
        "40",
        "--max-findings",
        "1",
        "--shrink-seconds",
        "5",
        "--report-dir",
        str(reports),
    )
    assert result.returncode == 1, result.stdout + result.stderr
    (path,) = json.loads((reports / "report.json").read_text())["fuzz"]["reproducers"]
    assert json.loads(Path(path).read_text())["mode"] == "batch"
    replayed = harness("replay", path)
    assert replayed.returncode == 1, replayed.stdout + replayed.stderr
    assert "(batch)" in replayed.stdout


def test_handler_fuzzing_over_a_unix_stream_server(tmp_path):
    # This used to crash the harness (an AF_INET connect to a socket path) and exit 1.
    result = harness(
        "fuzz",
        "--handler",
        "scenarios.handlers.fuzz_handlers:LineEcho",
        "--server",
        "ThreadingUnixStreamServer",
        "--max-cases",
        "150",
        "--report-dir",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["fuzz"]["transport"] == "unix"
    assert report["fuzz"]["family"] == "stream" and report["fuzz"]["cases"] >= 150


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
    assert harness("fuzz", "--family", "http", "--transport", "unix").returncode == 2
    assert harness("fuzz", "--family", "datagram", "--transport", "tcp").returncode == 2
    udp_on_tcp = ("--handler", "m:H", "--server", "TCPServer", "--transport", "udp")
    assert harness("fuzz", *udp_on_tcp).returncode == 2
    assert harness("replay", str(tmp_path / "missing.json")).returncode == 2
    shutil.rmtree(tmp_path, ignore_errors=True)
