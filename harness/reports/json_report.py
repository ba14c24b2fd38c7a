"""``report.json``: the source of truth every other format is rendered from.

Schema 1 (documented in ``reports/README.md``)::

    {"schema": 1, "created": ISO-8601 UTC, "command": [...], "duration_s": float,
     "targets": [{"name", "modules", "python", "role": "baseline"|"target"}],
     "counts": {verdict: n},
     "results": [{"scenario", "target", "verdict", "duration_s", "diff", "reason",
                  "differing_keys", "violations", "reproducer", "python", "observation",
                  "description"}]}
"""

from __future__ import annotations

import collections
import datetime
import json
from pathlib import Path
from typing import Any

SCHEMA = 1


def build(
    results: list[dict[str, Any]],
    targets: list[dict[str, Any]],
    command: list[str],
    duration: float,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The report as a JSON-ready dict."""
    report = {
        "schema": SCHEMA,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "duration_s": round(duration, 2),
        "targets": targets,
        "counts": dict(collections.Counter(r["verdict"] for r in results)),
        "results": results,
    }
    if extra:
        report.update(extra)
    return report


def write(report: dict[str, Any], directory: Path) -> Path:
    """Write ``report.json`` into ``directory`` (created if needed); its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "report.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return path


def load(path: Path) -> dict[str, Any]:
    """Read a report, checking its schema number."""
    report = json.loads(path.read_text())
    if report.get("schema") != SCHEMA:
        raise ValueError(f"{path}: schema {report.get('schema')!r}, expected {SCHEMA}")
    return report
