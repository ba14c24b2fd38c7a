"""The api families (socketserver/api, http/api) and their CPython version table.

The end-to-end test runs the families in server processes: a stdlib copy with one extra
private method on ``BaseServer`` (the ``_dispatch`` that once broke xmlrpc) must differ
and name the class and the method, in ``BaseServer`` and in what inherits it, while the
stdlib against itself stays ``same``. The others check the version ``Known`` logic on a
small table, and the shipped table against the probe under this interpreter.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from stdlib_copies import stdlib_source

from harness.compare import explain
from scenarios import _api_common

ROOT = Path(__file__).resolve().parent.parent


def with_dispatch(source: str) -> str:
    """The source with ``BaseServer._dispatch`` added (before its ``server_activate``)."""
    anchor = "    def server_activate(self):"
    at = source.index(anchor)
    assert source.index("class BaseServer") < at < source.index("class TCPServer")
    method = "    def _dispatch(self, request):\n        pass\n\n"
    return source[:at] + method + source[at:]


def test_a_shadowing_method_differs_by_class_and_name_and_stdlib_is_same(tmp_path):
    shadow = tmp_path / "socketserver_shadow.py"
    shadow.write_text(with_dispatch(stdlib_source("socketserver")))
    report_dir = tmp_path / "report"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            "run",
            "--target",
            f"name=shadow,socketserver={shadow}",
            "--target",
            "name=copy,modules=stdlib",
            "--select",
            "socketserver/api/*",
            "--select",
            "http/api/httpserver",
            "--report-dir",
            str(report_dir),
            "--quiet",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    rows = json.loads((report_dir / "report.json").read_text())["results"]
    verdicts = {(r["target"], r["scenario"]): r for r in rows}

    copy = {s: r["verdict"] for (t, s), r in verdicts.items() if t == "copy"}
    assert len(copy) == 20 and set(copy.values()) == {"same"}, copy

    base = verdicts[("shadow", "socketserver/api/baseserver")]
    assert base["verdict"] == "differs"
    assert base["differing_keys"] == ["facts.BaseServer._dispatch"]
    assert "+++ shadow: facts.BaseServer._dispatch" in base["diff"]
    assert "-<absent>" in base["diff"] and "+defined here: function" in base["diff"]
    # What inherits it (HTTPServer included, through http.server's import) shows where from.
    for scenario, name in [
        ("socketserver/api/tcpserver", "TCPServer"),
        ("socketserver/api/threadingudpserver", "ThreadingUDPServer"),
        ("http/api/httpserver", "HTTPServer"),
    ]:
        row = verdicts[("shadow", scenario)]
        assert row["verdict"] == "differs", scenario
        assert row["differing_keys"] == [f"facts.{name}._dispatch"]
        assert "+inherited from socketserver.BaseServer" in row["diff"]
    # Classes that do not derive from BaseServer are untouched.
    for scenario in ("socketserver/api/module", "socketserver/api/streamrequesthandler"):
        assert verdicts[("shadow", scenario)]["verdict"] == "same", scenario


TABLE = {
    "pythons": {"3.9": "3.9.18", "3.11": "3.11.7", "3.12": "3.12.1"},
    "classes": {"socketserver": ["TCPServer"]},
    "changes": {
        "socketserver": {
            "TCPServer": {
                "TCPServer.allow_reuse_port": {
                    "3.9": None,
                    "3.11": "defined here: False",
                    "3.12": "defined here: False",
                },
                "TCPServer.__getstate__": {
                    "3.9": None,
                    "3.11": "inherited from builtins.object",
                    "3.12": "inherited from builtins.object",
                },
                "TCPServer.fileno": {
                    "3.9": "defined here: function (self)",
                    "3.11": "defined here: function (self)",
                    "3.12": "defined here: function (self, fd)",
                },
            }
        }
    },
}


def test_version_knowns_explain_a_change_only_across_it():
    knowns = _api_common.version_knowns(TABLE, "socketserver", "TCPServer")
    # The two names added in 3.11 share one Known; the 3.12 change has its own.
    assert len(knowns) == 2
    added = "facts.TCPServer.allow_reuse_port"
    changed = "facts.TCPServer.fileno"
    assert explain([added], knowns, "mine", (3, 12, 1), (3, 9, 18))
    assert explain([added], knowns, "stdlib", (3, 9, 18), (3, 11, 7))
    assert explain([added, changed], knowns, "mine", (3, 12, 1), (3, 9, 18))
    # The same name missing on one interpreter stays a difference; so does a change
    # between two versions on the same side of it, or a version the table lacks.
    assert explain([added], knowns, "mine", (3, 11, 7), (3, 11, 7)) is None
    assert explain([added], knowns, "mine", (3, 12, 1), (3, 11, 7)) is None
    assert explain([changed], knowns, "mine", (3, 11, 7), (3, 9, 18)) is None
    assert explain([added], knowns, "mine", (3, 14, 0), (3, 9, 18)) is None
    assert explain(["facts.TCPServer._dispatch"], knowns, "mine", (3, 12, 1), (3, 9, 18)) is None
    reasons = sorted(k.reason for k in knowns)
    assert reasons == [
        "CPython 3.11 added: TCPServer.__getstate__, TCPServer.allow_reuse_port",
        "CPython 3.12 changed: TCPServer.fileno",
    ]


def test_shipped_table_matches_this_interpreters_stdlib():
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    table = _api_common.TABLE
    if version not in table["pythons"]:
        pytest.skip(f"the table has no column for {version}")
    probed = json.loads(
        subprocess.run(
            [sys.executable, "-m", "scenarios.handlers.api_probe"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
    )["modules"]
    for module, classes in table["classes"].items():
        assert set(probed[module]["classes"]) <= set(classes), module
        for unit, changes in table["changes"].get(module, {}).items():
            facts = probed[module]["module" if unit == "module" else "classes"]
            facts = facts if unit == "module" else facts.get(unit, {})
            for key, values in changes.items():
                assert facts.get(key) == values[version], (module, key)
