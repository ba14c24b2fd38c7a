"""Build ``scenarios/_api_versions.json``: how CPython's socketserver/http.server API changed.

Run by hand when a CPython version is added (needs the interpreters, not the network)::

    .venv/bin/python tools/api_versions.py                 # pyenv's 3.9 to 3.13, rewrite the table
    .venv/bin/python tools/api_versions.py --check         # exit 1 if the table is stale
    .venv/bin/python tools/api_versions.py --python /usr/bin/python3.12 --python ...

It runs the api probe (``scenarios/handlers/api_probe.py``) under each interpreter's own
stdlib, one minor version each, and keeps the facts whose value is not the same on all of
them. The table holds:

``pythons``
    ``{"3.11": "3.11.7"}``: the release each column was taken from.
``classes``
    ``{module: [class, ...]}``: the public classes of the module in any of those versions
    (the api families have one scenario per class).
``changes``
    ``{module: {unit: {fact key: {"3.9": value or null (absent), ...}}}}`` where ``unit``
    is the class name, or ``"module"`` for the module's own facts.

It prints what appeared, disappeared or changed in which version.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scenarios._api_common import MODULE, TABLE_PATH, changes, minor  # noqa: E402

PYENV = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"


def default_pythons() -> list[str]:
    """The newest pyenv CPython of each minor version from 3.9 to 3.13 found here."""
    found = []
    for version in ("3.9", "3.10", "3.11", "3.12", "3.13"):
        candidates = sorted(glob.glob(str(PYENV / f"{version}.*" / "bin" / f"python{version}")))
        if candidates:
            found.append(candidates[-1])
    return found


def probe(python: str) -> dict[str, Any]:
    """The probe's report under ``python``: ``{"python": [3, 11, 7], "modules": {...}}``."""
    out = subprocess.run(
        [python, "-m", "scenarios.handlers.api_probe"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout)


def build(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """The table from one probe report per minor version."""
    by_version = {minor(r["python"]): r for r in reports}
    if len(by_version) != len(reports):
        raise SystemExit("give one interpreter per minor version")
    pythons = {v: ".".join(map(str, r["python"])) for v, r in by_version.items()}
    modules = sorted({m for r in reports for m in r["modules"]})
    classes: dict[str, list[str]] = {}
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for module in modules:
        names = sorted({c for r in reports for c in r["modules"][module]["classes"]})
        classes[module] = names
        for unit in [*names, MODULE]:
            facts = {}
            for version, report in by_version.items():
                probed = report["modules"][module]
                facts[version] = (
                    probed["module"] if unit == MODULE else probed["classes"].get(unit, {})
                )
            keys = sorted({k for f in facts.values() for k in f})
            for key in keys:
                values = {v: f.get(key) for v, f in facts.items()}
                if len({json.dumps(x, sort_keys=True) for x in values.values()}) > 1:
                    table.setdefault(module, {}).setdefault(unit, {})[key] = values
    return {"pythons": pythons, "classes": classes, "changes": table}


def summary(table: dict[str, Any]) -> list[str]:
    """One line per changed fact: ``socketserver TCPServer.allow_reuse_port: 3.11 added``."""
    lines = []
    for module, units in sorted(table["changes"].items()):
        for _unit, facts in sorted(units.items()):
            for key, values in sorted(facts.items()):
                lines.append(f"{module} {key}: {', '.join(changes(values))}")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Entry point: probe, build, print the summary, write (or ``--check``) the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", action="append", default=[], help="an interpreter")
    parser.add_argument("--output", default=str(TABLE_PATH), help="where the table goes")
    parser.add_argument("--check", action="store_true", help="compare with the file, write nothing")
    args = parser.parse_args(argv)
    pythons = args.python or default_pythons()
    if len(pythons) < 2:
        parser.error("need at least two interpreters (found: %s)" % (pythons or "none"))
    table = build([probe(p) for p in pythons])
    print("\n".join(summary(table)))
    text = json.dumps(table, indent=1, sort_keys=True) + "\n"
    if args.check:
        current = Path(args.output).read_text() if Path(args.output).exists() else ""
        if current != text:
            print(f"{args.output} is stale: run tools/api_versions.py", file=sys.stderr)
            return 1
        return 0
    Path(args.output).write_text(text)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
