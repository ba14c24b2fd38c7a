"""Targets: which implementation of the modules a server process runs, under which Python.

A target is a module substitution. ``stdlib`` substitutes nothing; ``reference`` substitutes
this project's ``implementation`` package; a user names anything else with a spec string::

    name=NAME,socketserver=PATH_OR_MODULE,http.server=PATH_OR_MODULE,python=INTERPRETER

Every key but ``name`` is optional. A module given as a path ending in ``.py`` is loaded
under the stdlib name; anything else is imported by module name in the server process. A
module the spec does not name is the stdlib's. A spec that names no module at all runs the
project's reference (``name=py313,python=python3.13`` is the reference under 3.13), unless
it says ``modules=stdlib`` (the stdlib under another name or interpreter).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

from harness.errors import UsageError

PROJECT_ROOT = Path(__file__).resolve().parent.parent

_KEYS = ("name", "socketserver", "http.server", "python", "modules")


@dataclasses.dataclass(frozen=True)
class Target:
    """One implementation under test: its name, module substitutions and interpreter."""

    name: str
    modules: tuple[tuple[str, str], ...] = ()
    python: str = sys.executable

    @property
    def module_map(self) -> dict[str, str]:
        """The substitutions as a dict, stdlib name to module name or file path."""
        return dict(self.modules)

    @property
    def labels(self) -> frozenset[str]:
        """Its name, plus ``reference``/``stdlib`` when it runs those modules."""
        found = {self.name}
        found.update(n for n, t in BUILTIN.items() if t.modules == self.modules)
        return frozenset(found)

    def describe(self) -> dict[str, object]:
        """A JSON-friendly description, as written into reports."""
        return {"name": self.name, "modules": self.module_map, "python": self.python}

    def spec_string(self) -> str:
        """The spec string that names this target again (for reproducers)."""
        if self.name in BUILTIN and BUILTIN[self.name] == self:
            return self.name
        parts = [f"name={self.name}"]
        if not self.modules:
            parts.append("modules=stdlib")
        elif self.modules == BUILTIN["reference"].modules:
            parts.append("modules=reference")
        else:
            parts += [f"{k}={v}" for k, v in self.modules]
        if self.python != sys.executable:
            parts.append(f"python={self.python}")
        return ",".join(parts)

    def with_python(self, python: str) -> Target:
        """The same substitutions under another interpreter."""
        return dataclasses.replace(self, python=python)


BUILTIN: dict[str, Target] = {
    "stdlib": Target("stdlib"),
    "reference": Target(
        "reference",
        (
            ("socketserver", "implementation.socketserver"),
            ("http.server", "implementation.http.server"),
        ),
    ),
}


def parse_target(spec: str) -> Target:
    """Parse a target spec string; raises UsageError naming the offending part.

    ``stdlib`` and ``reference`` are names of built-in targets. A spec naming no module
    runs the built-in of that name, or the reference, unless ``modules=`` says which.
    """
    spec = spec.strip()
    if not spec:
        raise UsageError("empty target spec")
    if "=" not in spec:
        if spec in BUILTIN:
            return BUILTIN[spec]
        raise UsageError(
            f"unknown target {spec!r}: use stdlib, reference, or "
            "name=NAME,socketserver=PATH_OR_MODULE,http.server=PATH_OR_MODULE,python=INTERPRETER"
        )
    fields: dict[str, str] = {}
    for part in spec.split(","):
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or key not in _KEYS:
            raise UsageError(
                f"bad target spec part {part!r} in {spec!r}: keys are {', '.join(_KEYS)}"
            )
        if not value:
            raise UsageError(f"target spec key {key!r} has an empty value in {spec!r}")
        if key in fields:
            raise UsageError(f"target spec key {key!r} given twice in {spec!r}")
        fields[key] = value
    if "name" not in fields:
        raise UsageError(f"target spec {spec!r} has no name=")
    name = fields["name"]
    modules = []
    for stdname in ("socketserver", "http.server"):
        if stdname in fields:
            modules.append((stdname, _check_module(stdname, fields[stdname])))
    python = _check_python(fields["python"]) if "python" in fields else sys.executable
    base = fields.get("modules")
    if base is not None:
        if base not in BUILTIN:
            raise UsageError(f"modules={base}: use stdlib or reference")
        if modules:
            raise UsageError(f"modules={base} and a module key together in {spec!r}: use one")
        return Target(name, BUILTIN[base].modules, python)
    if not modules:
        return Target(name, (BUILTIN.get(name) or BUILTIN["reference"]).modules, python)
    return Target(name, tuple(modules), python)


def _check_module(stdname: str, value: str) -> str:
    if value.endswith(".py"):
        path = Path(value).expanduser()
        if not path.is_file():
            raise UsageError(f"{stdname}={value}: no such file")
        return str(path.resolve())
    if "/" in value or not all(p.isidentifier() for p in value.split(".")):
        raise UsageError(f"{stdname}={value}: not a module name or a path to a .py file")
    return value


#: The oldest Python the server-side code (``harness.agent``, ``implementation``) runs on.
MIN_PYTHON = (3, 9)

# Written so that any Python, 2.x included, can print its own version.
_VERSION_PROBE = "import sys; sys.stdout.write('%d %d %d' % tuple(sys.version_info[:3]))"


def _check_python(value: str) -> str:
    found = shutil.which(value) if os.sep not in value else value
    if not found or not os.access(found, os.X_OK):
        raise UsageError(f"python={value}: no such interpreter on PATH")
    if found == sys.executable:
        return found
    try:
        probe = subprocess.run(
            [found, "-c", _VERSION_PROBE], capture_output=True, text=True, timeout=30
        )
        version = tuple(int(part) for part in probe.stdout.split())
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        raise UsageError(
            f"python={value}: needs Python {_dotted(MIN_PYTHON)} or later; {found} did not "
            f"run as one ({type(exc).__name__}: {exc})"
        ) from None
    if probe.returncode != 0 or len(version) != 3:
        raise UsageError(
            f"python={value}: needs Python {_dotted(MIN_PYTHON)} or later; {found} did not "
            f"say its version (exit status {probe.returncode}"
            + (f": {_first_line(probe.stderr)})" if probe.stderr.strip() else ")")
        )
    if version[:2] < MIN_PYTHON:
        raise UsageError(
            f"python={value}: needs Python {_dotted(MIN_PYTHON)} or later; "
            f"{found} is {_dotted(version)}"
        )
    return found


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0][:200] if lines else ""


def _dotted(version: tuple[int, ...]) -> str:
    return ".".join(str(part) for part in version)


def interpreter_version(python: str) -> tuple[int, int, int]:
    """The version of an interpreter, asked of the interpreter itself."""
    if python == sys.executable:
        return tuple(sys.version_info[:3])  # type: ignore[return-value]
    out = subprocess.run(
        [python, "-c", "import sys; print(*sys.version_info[:3])"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.split()
    return tuple(int(x) for x in out)  # type: ignore[return-value]
