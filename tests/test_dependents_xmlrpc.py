"""The ``dependents/xmlrpc`` family: xmlrpc.server on each target's modules.

End to end, in server processes: a stdlib ``socketserver`` copy whose ``BaseServer`` has a
``_dispatch`` of its own (the name that once broke every xmlrpc call) must differ where
functions are called and stay ``same`` where none is; an ``http.server`` copy with a
``_dispatch`` on ``BaseHTTPRequestHandler`` (``do_POST`` uses any ``_dispatch`` of the
handler) must differ even on MultiPathXMLRPCServer, whose dispatchers are not the
server; the stdlib against itself stays ``same``. The pure helpers are checked on their own.
"""

import gzip
import json
import subprocess
import sys
import xmlrpc.client
from pathlib import Path

from stdlib_copies import stdlib_source, with_method

from scenarios.dependents_xmlrpc import gzip_record, typed

ROOT = Path(__file__).resolve().parent.parent
SELECTED = ("scalars", "multicall", "multipath", "wrong_path", "doc_page_instance")


def test_shadowing_dispatch_differs_where_functions_are_called(tmp_path):
    shadow = "    def _dispatch(self, *args):\n        raise RuntimeError('shadow')\n"
    server_copy = tmp_path / "socketserver_shadow.py"
    server_copy.write_text(with_method(stdlib_source("socketserver"), "BaseServer", shadow))
    handler_copy = tmp_path / "http_server_shadow.py"
    handler_copy.write_text(
        with_method(stdlib_source("http.server"), "BaseHTTPRequestHandler", shadow)
    )
    report_dir = tmp_path / "report"
    command = [sys.executable, "-m", "harness", "run", "--quiet", "--jobs", "2"]
    command += ["--target", f"name=server,socketserver={server_copy}"]
    command += ["--target", f"name=handler,http.server={handler_copy}"]
    command += ["--target", "name=copy,modules=stdlib", "--report-dir", str(report_dir)]
    for name in SELECTED:
        command += ["--select", f"dependents/xmlrpc/{name}"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    rows = json.loads((report_dir / "report.json").read_text())["results"]
    verdicts = {(r["target"], r["scenario"].rsplit("/", 1)[1]): r["verdict"] for r in rows}

    assert {verdicts[("copy", name)] for name in SELECTED} == {"same"}, verdicts
    expected = {
        ("server", "scalars"): "differs",
        ("server", "multicall"): "differs",
        # MultiPathXMLRPCServer dispatches through SimpleXMLRPCDispatcher objects, not
        # through the server: a server-side _dispatch cannot reach it
        ("server", "multipath"): "same",
        ("server", "wrong_path"): "same",
        ("server", "doc_page_instance"): "same",
        ("handler", "scalars"): "differs",
        ("handler", "multicall"): "differs",
        ("handler", "multipath"): "differs",
        ("handler", "wrong_path"): "same",
    }
    assert {key: verdicts[key] for key in expected} == expected


def test_typed_keeps_the_types_json_would_merge():
    assert typed(1) != typed(1.0) != typed(True)
    assert typed([1, (2,)]) == ["int:1", {"tuple": ["int:2"]}]
    assert typed(xmlrpc.client.Binary(b"\x00")) == "Binary:00"
    assert typed("x" * 600).startswith("str:<600 chars sha256:")


def test_gzip_record_masks_only_the_time_stamp():
    head = b"HTTP/1.0 200 OK\r\nContent-Encoding: gzip\r\nContent-length: 9\r\n\r\n"
    one = gzip_record(head + gzip.compress(b"payload", mtime=1))
    two = gzip_record(head + gzip.compress(b"payload", mtime=2))
    assert one == two
    assert one["decompressed"] == "payload"
    other = gzip_record(head + gzip.compress(b"payloaD", mtime=1))
    assert other["deflate"] != one["deflate"]
    plain = gzip_record(b"HTTP/1.0 200 OK\r\nContent-length: 2\r\n\r\nok")
    assert plain["body"] == "ok" and "gzip_header" not in plain
