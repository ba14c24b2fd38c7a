"""JUnit XML (``--junit FILE``, and ``junit.xml`` beside ``report.json``), for CI systems.

The shape CI systems read (Jenkins' JUnit schema, GitLab, GitHub test-report actions):
``<testsuites>`` holding one ``<testsuite>`` per scenario family (``http/headers``), its
targets, baseline and interpreters as ``<properties>``, and one ``<testcase>`` per
(scenario, target[, interpreter]):

- ``same`` and ``explained`` pass (an explanation goes to ``<system-out>``);
- a result expected by ``--expect`` is ``<skipped>`` with the entry's reason;
- ``differs``, ``fails``, ``hang`` and ``flaky`` are a ``<failure type=VERDICT>`` whose text
  is the reason, the diff and the reproducer; ``error`` (the harness's fault) is an
  ``<error>``;
- a result that makes an expectation stale is a ``<failure type="stale-expectation">``.

Attributes are only those that schema allows (``testsuites`` has no ``skipped``); text has
the characters XML 1.0 cannot carry written as ``\\xNN``.
"""

from __future__ import annotations

import re
import socket
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path
from typing import Any

from harness.reports.json_report import is_grid
from harness.reports.row import family_of

# Characters XML 1.0 cannot hold, even escaped.
_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_FAILURES = ("differs", "fails", "hang", "flaky")


def _text(value: Any) -> str:
    return _INVALID.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value))


def _seconds(value: float) -> str:
    return f"{max(0.0, float(value or 0.0)):.3f}"


def _name(row: dict[str, Any], grid: bool) -> str:
    where = f"{row['target']} @ {row['interpreter']}" if grid else row["target"]
    return f"{row['scenario']} [{where}]"


def _body(row: dict[str, Any]) -> str:
    parts = []
    if row.get("reason"):
        parts.append(row["reason"])
    if row.get("notes"):
        parts.append("notes: " + "; ".join(row["notes"]))
    if row.get("diff"):
        parts.append(row["diff"])
    finding = row.get("finding")
    if finding:
        parts.append(f"bytes: {finding['data']}")
        parts.append(f"replay: {finding['replay']}")
    if row.get("reproducer"):
        parts.append(f"reproduce: {row['reproducer']}")
    return "\n\n".join(parts)


def _message(row: dict[str, Any]) -> str:
    what = row.get("reason") or (
        "differs in " + ", ".join(row["differing_keys"]) if row.get("differing_keys") else ""
    )
    first = what.splitlines()[0] if what else ""
    return _text(f"{row['verdict']}: {first}" if first else row["verdict"])[:500]


def _properties(report: dict[str, Any]) -> ET.Element:
    props = ET.Element("properties")

    def add(name: str, value: Any) -> None:
        ET.SubElement(props, "property", name=_text(name), value=_text(value))

    for t in report.get("targets", []):
        modules = ", ".join(f"{k}={v}" for k, v in t.get("modules", {}).items()) or "stdlib"
        label = f"{t.get('role', 'target')}:{t['name']}"
        if t.get("interpreter"):
            label += f"@{t['interpreter']}"
        add(label, f"{modules}; python={t.get('python', '')}")
    for i in report.get("interpreters", []):
        add(f"interpreter:{i['label']}", f"{i.get('python', '')} {i.get('version', '')}".strip())
    if report.get("interrupted"):
        add("interrupted", report["interrupted"])
    if report.get("shard"):
        add("shard", f"{report['shard']['index']}/{report['shard']['count']}")
    return props


def render(report: dict[str, Any]) -> str:
    """The JUnit XML text of a report."""
    rows = report["results"]
    grid = is_grid(report)
    stale = {
        (s["scenario"], s["target"], s["interpreter"]): s
        for s in (report.get("expectations") or {}).get("stale", [])
    }
    families: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        families[family_of(row["scenario"])].append(row)
    root = ET.Element("testsuites", name="socketserver-harness")
    totals = {"tests": 0, "failures": 0, "errors": 0}
    for family in sorted(families):
        members = families[family]
        suite = ET.SubElement(root, "testsuite", name=_text(family))
        suite.append(_properties(report))
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        time = 0.0
        for row in members:
            counts["tests"] += 1
            time += row.get("duration_s") or 0.0
            case = ET.SubElement(
                suite,
                "testcase",
                classname=_text(family.replace("/", ".")),
                name=_text(_name(row, grid)),
                time=_seconds(row.get("duration_s", 0.0)),
            )
            out = []
            if row.get("description"):
                out.append(row["description"])
            stale_entry = stale.get((row["scenario"], row["target"], row.get("interpreter", "")))
            if stale_entry:
                counts["failures"] += 1
                failure = ET.SubElement(
                    case,
                    "failure",
                    type="stale-expectation",
                    message=_text(
                        f"expectation #{stale_entry['entry']} says {stale_entry['expected']}, "
                        f"the result is {row['verdict']}"
                    ),
                )
                failure.text = _text(f"{stale_entry['reason']}\n\n{_body(row)}")
            elif row.get("expected"):
                counts["skipped"] += 1
                skipped = ET.SubElement(
                    case,
                    "skipped",
                    message=_text(f"expected {row['verdict']}: {row['expected']['reason']}")[:500],
                )
                skipped.text = _text(_body(row))
            elif row["verdict"] in _FAILURES:
                counts["failures"] += 1
                failure = ET.SubElement(case, "failure", type=row["verdict"], message=_message(row))
                failure.text = _text(_body(row))
            elif row["verdict"] == "error":
                counts["errors"] += 1
                error = ET.SubElement(case, "error", type="error", message=_message(row))
                error.text = _text(_body(row))
            elif row["verdict"] == "explained":
                out.append(f"explained: {row.get('reason', '')}")
                if row.get("diff"):
                    out.append(row["diff"])
            if row.get("notes"):
                out.append("notes: " + "; ".join(row["notes"]))
            if out:
                ET.SubElement(case, "system-out").text = _text("\n\n".join(out))
        suite.set("tests", str(counts["tests"]))
        suite.set("failures", str(counts["failures"]))
        suite.set("errors", str(counts["errors"]))
        suite.set("skipped", str(counts["skipped"]))
        suite.set("time", _seconds(time))
        suite.set("timestamp", _text(report.get("created", "")[:19]))
        suite.set("hostname", _text(report.get("hostname") or socket.gethostname() or "localhost"))
        for key in totals:
            totals[key] += counts[key]
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", _seconds(report.get("duration_s", 0.0)))
    ET.indent(root, space=" ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write(report: dict[str, Any], path: Path) -> Path:
    """Write the JUnit XML of a report to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(report), encoding="utf-8")
    return path
