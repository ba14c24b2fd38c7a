"""The dependents scenarios record what the server did, not other modules' texts.

An XML-RPC Fault reply is recorded by its code and exception class (its message only where
a scenario keeps it), and a Content-length that counts the body is recorded as such, so an
exception text of expat, pickle or the interpreter does not make two servers differ.
PyPy's own stdlib against CPython 3.9's runs every ``dependents/*`` scenario ``same``,
with the class names PyPy spells differently (``pyexpat.ExpatError``) read as one and
noted.
"""

import json
import shutil
import subprocess
import sys
import xmlrpc.client
from pathlib import Path

import pytest
from interpreters import find_cpython

from scenarios.dependents_xmlrpc import fault_record

ROOT = Path(__file__).resolve().parent.parent


def fault_reply(fault_string: str, length_delta: int = 0) -> dict:
    """What ``exchange`` records of a 200 reply carrying ``Fault(1, fault_string)``."""
    body = xmlrpc.client.dumps(xmlrpc.client.Fault(1, fault_string), methodresponse=True)
    length = len(body.encode("utf-8")) + length_delta
    head = f"HTTP/1.0 200 OK\r\nContent-type: text/xml\r\nContent-length: {length}\r\n\r\n"
    return {"reply": head + body, "end": "eof", "sent": "ok"}


def test_a_fault_is_recorded_by_code_and_class_whatever_the_message_says():
    cpython = fault_reply("<class 'TypeError'>:string indices must be integers")
    pypy = fault_reply("<class 'TypeError'>:string index indices must be integers or slices")
    assert cpython["reply"] != pypy["reply"]  # the Content-length too
    recorded = fault_record(cpython, keep_message=False)
    assert recorded == fault_record(pypy, keep_message=False)
    assert recorded["fault"] == {"code": 1, "class": "<class 'TypeError'>"}
    assert recorded["head"].endswith("Content-length: <the body's length>\r\n\r\n")
    assert (recorded["end"], recorded["sent"]) == ("eof", "ok")


def test_a_kept_message_still_differs_and_a_wrong_content_length_shows():
    one = fault_record(fault_reply("<class 'ValueError'>:line 6"), keep_message=True)
    other = fault_record(fault_reply("<class 'ValueError'>:line 7"), keep_message=True)
    assert one["fault"]["message"] == "line 6" and one != other
    # A Content-length that does not count the body is the server's doing: kept as is.
    short = fault_record(fault_reply("<class 'ValueError'>:line 6", -1), keep_message=True)
    assert "Content-length: <the body's length>" not in short["head"]
    assert short["head"] != one["head"] and short["fault"] == one["fault"]


def test_a_reply_that_is_not_a_fault_is_kept_whole():
    body = xmlrpc.client.dumps((5,), methodresponse=True)
    record = {"reply": f"HTTP/1.0 200 OK\r\nContent-length: {len(body)}\r\n\r\n{body}"}
    assert fault_record(dict(record), keep_message=False) == record
    page = {"reply": "HTTP/1.0 404 Not Found\r\n\r\n<html>no such page</html>", "end": "eof"}
    assert fault_record(dict(page), keep_message=False) == page


@pytest.mark.slow
def test_pypy_stdlib_against_cpython_39_runs_every_dependent_the_same(tmp_path):
    pypy, cpython39 = shutil.which("pypy3"), find_cpython("3.9")
    if pypy is None or cpython39 is None:
        pytest.skip("needs pypy3 and CPython 3.9 on this machine")
    command = [sys.executable, "-m", "harness", "run", "--quiet", "--select", "dependents/*"]
    command += ["--target", f"name=pypy-stdlib,modules=stdlib,python={pypy}"]
    command += ["--baseline", f"name=cpython39,modules=stdlib,python={cpython39}"]
    command += ["--report-dir", str(tmp_path)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    report = json.loads((tmp_path / "report.json").read_text())
    rows = {row["scenario"]: row for row in report["results"]}
    assert len(rows) > 60 and report["counts"] == {"same": len(rows)}, result.stdout[-3000:]
    assert result.returncode == 0
    # PyPy names expat's exception class by its C module: the same class, noted.
    for scenario in ("dependents/xmlrpc/malformed_xml", "dependents/xmlrpc/content_length_short"):
        assert any("pyexpat.ExpatError" in note for note in rows[scenario]["notes"]), scenario
