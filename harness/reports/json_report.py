"""``report.json``: the source of truth every other format is rendered from.

Schema 2 is documented in ``reports/README.md``. In short::

    {"schema": 2, "kind": "run"|"fuzz"|"handler-fuzz"|"merge", "created", "command",
     "duration_s", "interrupted": null|"SIGINT"|"SIGTERM",
     "targets": [{"name", "modules", "python", "role", "interpreter"}],
     "interpreters": [{"label", "python", "version"}],
     "counts": {verdict: n}, "problems": n, "expected": n,
     "expectations": null|{"source", "entries", "stale", "flaky", "unused"},
     "causes": [{"key", "kind", "title", "count", "rows", "example", "verdicts", "targets"}],
     "shard": null|{"index", "count", "scenarios", "balanced_by"}, "shards": [...],
     "results": [Row.to_json(), ...], ...extra (e.g. "fuzz")}

``load`` also reads schema 1 reports, upgrading them (rows gain the newer keys, causes
are computed).
"""

from __future__ import annotations

import collections
import datetime
import json
import socket
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.reports import causes
from harness.reports.row import Row

SCHEMA = 2
READABLE = (1, 2)


def build(
    results: Iterable[Row | dict[str, Any]],
    targets: list[dict[str, Any]],
    command: list[str],
    duration: float,
    extra: dict[str, Any] | None = None,
    *,
    kind: str = "run",
    expectations: dict[str, Any] | None = None,
    interrupted: str | None = None,
) -> dict[str, Any]:
    """The report as a JSON-ready dict (groups the causes; counts the verdicts).

    ``results`` are ``Row`` objects (dicts, as older callers built them, are read as rows).
    ``expectations`` is what ``Expectations.apply`` returned for these rows.
    """
    rows = [r if isinstance(r, Row) else Row.from_json(r) for r in results]
    groups = causes.group(rows)
    report: dict[str, Any] = {
        "schema": SCHEMA,
        "kind": kind,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": list(command),
        "hostname": socket.gethostname(),
        "duration_s": round(duration, 2),
        "interrupted": interrupted,
        "targets": targets,
        "interpreters": interpreters_of(rows, targets),
        "counts": dict(collections.Counter(r.verdict for r in rows)),
        "problems": sum(1 for r in rows if r.problem),
        "expected": sum(1 for r in rows if r.expected),
        "expectations": expectations,
        "causes": groups,
        "shard": None,
        "results": [r.to_json() for r in rows],
    }
    if extra:
        report.update(extra)
    return report


def interpreters_of(rows: list[Row], targets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The interpreter columns of a report, in the order they first appear."""
    seen: dict[str, dict[str, Any]] = {}
    for t in targets:
        label = t.get("interpreter")
        if label and label not in seen:
            seen[label] = {"label": label, "python": t.get("python", ""), "version": ""}
    for r in rows:
        label = r.interpreter
        if label not in seen:
            seen[label] = {"label": label, "python": "", "version": ""}
        if r.python and not seen[label]["version"]:
            seen[label]["version"] = ".".join(str(p) for p in r.python)
    return list(seen.values())


def is_grid(report: dict[str, Any]) -> bool:
    """Whether the report compares interpreters (its results name more than one)."""
    return len({i["label"] for i in report.get("interpreters", []) if i.get("label")}) > 1


def write(report: dict[str, Any], directory: Path) -> Path:
    """Write ``report.json`` into ``directory`` (created if needed); its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "report.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return path


def load(path: Path) -> dict[str, Any]:
    """Read a report (schema 1 or 2); a schema 1 report is upgraded to schema 2."""
    report = json.loads(Path(path).read_text())
    if not isinstance(report, dict) or report.get("schema") not in READABLE:
        schema = report.get("schema") if isinstance(report, dict) else None
        raise ValueError(f"{path}: schema {schema!r}, expected one of {READABLE}")
    if report["schema"] == 1:
        upgraded = build(
            report["results"],
            report.get("targets", []),
            report.get("command", []),
            report.get("duration_s", 0.0),
            kind="fuzz" if "fuzz" in report else "run",
        )
        upgraded["created"] = report.get("created", upgraded["created"])
        if "fuzz" in report:
            upgraded["fuzz"] = report["fuzz"]
        return upgraded
    return report


def rows_of(report: dict[str, Any]) -> list[Row]:
    """The report's results as ``Row`` objects."""
    return [Row.from_json(r) for r in report["results"]]
