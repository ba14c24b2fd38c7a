"""The reference modules' public classes have exactly the stdlib's attribute names.

Users subclass and mix in the public classes of ``socketserver`` and ``http.server``: a
name the reference adds (say ``BaseServer._dispatch``) shadows a mix-in's own method of
that name in the MRO (``xmlrpc.server.SimpleXMLRPCServer`` breaks), and a name it lacks
breaks code that uses it. So, under every CPython 3.9-3.13 found (and always the running
one), ``tests/namespace_probe.py`` compares, class by class, ``dir()`` of the reference's
public classes and ``vars()`` of their instances (servers after construction, after a
request, after ``serve_forever()`` and ``shutdown()``, after ``server_close()``; handlers
while and after handling a request) with the stdlib's of the same interpreter. Only
name-mangled names of the reference's own classes (``_BaseServer__loops``) may be extra.
The modules' public classes, ``__all__`` and public module-level names must match too.
"""

import functools
import glob
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROBE = ROOT / "tests" / "namespace_probe.py"
PYENV_VERSIONS = Path.home() / ".pyenv" / "versions"
VERSIONS = ["3.9", "3.10", "3.11", "3.12", "3.13"]
RUNNING = "%d.%d" % sys.version_info[:2]
if RUNNING not in VERSIONS:
    VERSIONS.append(RUNNING)
MODULES = ["socketserver", "http.server"]
# The probe takes well under a second; forks and threads on a loaded machine take longer.
PROBE_TIMEOUT = 120


def micro_of(path):
    """The micro version in a pyenv path (``.../3.9.18/bin/python3.9`` -> 18), for sorting."""
    match = re.search(r"/\d+\.\d+\.(\d+)/bin/", path)
    return int(match.group(1)) if match else -1


def find_python(version):
    """The interpreter to probe for ``version`` (``"3.9"``), or None if there is none.

    The running interpreter for its own version; otherwise the newest pyenv build, then
    ``python3.X`` on the PATH.
    """
    if version == RUNNING:
        return sys.executable
    pattern = str(PYENV_VERSIONS / (version + ".*") / "bin" / ("python" + version))
    candidates = sorted(glob.glob(pattern), key=micro_of)
    if candidates:
        return candidates[-1]
    return shutil.which("python" + version)


@functools.cache
def run_probe(version):
    """Run the probe under ``version`` once: ``("ok", findings)``, ``("skip", why)`` or
    ``("fail", why)`` (cached, so that a failing probe is not rerun by every test)."""
    python = find_python(version)
    if python is None:
        return (
            "skip",
            f"no CPython {version}: not under {PYENV_VERSIONS}, no python{version} on PATH",
        )
    proc = subprocess.run(
        [python, str(PROBE)],
        cwd=str(ROOT),
        capture_output=True,
        text=True,
        timeout=PROBE_TIMEOUT,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    if proc.returncode != 0:
        return "fail", f"the probe failed under {python}:\n{proc.stderr[-4000:]}"
    found = json.loads(proc.stdout)
    if not found["python"].startswith(version + "."):
        return "fail", f"{python} is Python {found['python']}, not {version}"
    return "ok", found


def module_findings(version, module):
    """``(python version, findings for module)`` under ``version``; skips when that
    interpreter is missing."""
    outcome, found = run_probe(version)
    if outcome == "skip":
        pytest.skip(found)
    assert outcome == "ok", found
    assert module in found["modules"], "\n".join(
        [f"{module} was not probed under Python {found['python']}", *found["errors"]]
    )
    return found["python"], found["modules"][module]


def describe(python, module, by_class):
    """One line per class and comparison: what the reference has or lacks."""
    lines = [f"Python {python}, {module}:"]
    for cls, comparisons in sorted(by_class.items()):
        for what, names in sorted(comparisons.items()):
            lines.append(f"  {cls} [{what}]: {', '.join(names)}")
    return "\n".join(lines)


@pytest.mark.parametrize("module", MODULES)
@pytest.mark.parametrize("version", VERSIONS)
def test_public_classes_and_all_are_the_stdlib_ones(version, module):
    python, found = module_findings(version, module)
    assert found["classes only in reference"] == [], (python, module)
    assert found["classes only in stdlib"] == [], (python, module)
    assert set(found["__all__ of reference"]) == set(found["__all__ of stdlib"]), (python, module)
    assert len(found["__all__ of reference"]) == len(found["__all__ of stdlib"]), (python, module)


@pytest.mark.parametrize("module", MODULES)
@pytest.mark.parametrize("version", VERSIONS)
def test_module_level_public_names_are_the_stdlib_ones(version, module):
    # Imports and data too: `from socketserver import *` aside, code looks names up on
    # the module (and the api scenarios compare them).
    python, found = module_findings(version, module)
    extra, missing = found["names only in reference"], found["names only in stdlib"]
    assert not extra and not missing, (
        f"Python {python}, {module}: only the reference has {extra}; only the stdlib has {missing}"
    )


@pytest.mark.parametrize("module", MODULES)
@pytest.mark.parametrize("version", VERSIONS)
def test_reference_classes_add_no_names(version, module):
    python, found = module_findings(version, module)
    assert not found["errors"], "\n".join(found["errors"])
    assert not found["extra"], "names the stdlib classes lack:\n" + describe(
        python, module, found["extra"]
    )


@pytest.mark.parametrize("module", MODULES)
@pytest.mark.parametrize("version", VERSIONS)
def test_reference_classes_lack_no_names(version, module):
    python, found = module_findings(version, module)
    assert not found["missing"], "names only the stdlib classes have:\n" + describe(
        python, module, found["missing"]
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_the_probe_compared_instances_not_only_classes(version):
    # Guards against a probe that silently compares nothing: every public class was
    # compared, and the servers and handlers were really exercised.
    python, found = module_findings(version, "socketserver")
    checked = found["checked"]
    assert set(checked) == set(found["__all__ of stdlib"]), python
    phases = [
        "instance after construction",
        "instance after handle_request()",
        "instance after serve_forever() and shutdown()",
        "instance after server_close()",
    ]
    servers = ["TCPServer", "UDPServer", "ThreadingTCPServer"]
    if "ForkingTCPServer" in checked:
        servers += ["ForkingTCPServer", "ForkingUDPServer"]
    for server in servers:
        assert set(phases) <= set(checked[server]), (python, server, checked[server])
    for handler in ("BaseRequestHandler", "StreamRequestHandler", "DatagramRequestHandler"):
        assert {"instance in handle()", "instance after finish()"} <= set(checked[handler])

    python, found = module_findings(version, "http.server")
    checked = found["checked"]
    for server in ("HTTPServer", "ThreadingHTTPServer"):
        assert "instance after handle_request()" in checked[server], (python, server)
    for handler in ("BaseHTTPRequestHandler", "SimpleHTTPRequestHandler"):
        assert "instance after finish()" in checked[handler], (python, handler)
