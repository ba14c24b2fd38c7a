"""A name added to a public class, of a name that a dependent's class uses, is flagged.

The reference once gave ``BaseServer`` a private ``_dispatch``; in ``SimpleXMLRPCServer``'s
MRO it won over ``SimpleXMLRPCDispatcher._dispatch`` and broke every xmlrpc call, while the
catalog said ``same`` everywhere. For several names of the xmlrpc mix-ins (not only
``_dispatch``), a stdlib ``socketserver`` copy whose ``BaseServer`` gets a method of that
name must be ``differs`` in the API family (which names the class and the name) and in
the dependents family (which shows what the shadowing breaks).
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from stdlib_copies import stdlib_source, with_method

ROOT = Path(__file__).resolve().parent.parent

#: A name of a class that mixes into a socketserver class, and a dependents scenario that
#: calls it.
SHADOWED = {
    "_dispatch": "dependents/xmlrpc/scalars",  # SimpleXMLRPCDispatcher
    "_marshaled_dispatch": "dependents/xmlrpc/scalars",  # SimpleXMLRPCDispatcher
    "system_listMethods": "dependents/xmlrpc/introspection",  # SimpleXMLRPCDispatcher
    "system_multicall": "dependents/xmlrpc/multicall",  # SimpleXMLRPCDispatcher
    "generate_html_documentation": "dependents/xmlrpc/doc_page",  # XMLRPCDocGenerator
}


def with_base_server_method(source: str, name: str) -> str:
    """``source`` with a method ``name`` first in ``BaseServer``'s body."""
    method = f"    def {name}(self, *args, **kwargs):\n        raise RuntimeError('shadow')\n"
    return with_method(source, "BaseServer", method)


@pytest.mark.slow
def test_a_shadowing_name_on_base_server_is_flagged_by_api_and_dependents(tmp_path):
    source = stdlib_source("socketserver")
    command = [sys.executable, "-m", "harness", "run", "--quiet", "--jobs", "4"]
    command += ["--select", "socketserver/api/baseserver"]
    for name, scenario in SHADOWED.items():
        copy = tmp_path / f"ss_{name.strip('_')}.py"
        copy.write_text(with_base_server_method(source, name))
        command += ["--target", f"name={name.strip('_').replace('_', '-')},socketserver={copy}"]
        command += ["--select", scenario]
    command += ["--report-dir", str(tmp_path / "report")]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    rows = json.loads((tmp_path / "report" / "report.json").read_text())["results"]
    by = {(r["target"], r["scenario"]): r for r in rows}
    for name, scenario in SHADOWED.items():
        target = name.strip("_").replace("_", "-")
        api = by[(target, "socketserver/api/baseserver")]
        assert api["verdict"] == "differs", (name, api["reason"])
        assert f"BaseServer.{name}" in api["diff"], api["diff"][:1500]
        broken = by[(target, scenario)]
        assert broken["verdict"] == "differs", (name, scenario, broken["reason"])
