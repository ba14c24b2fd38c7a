"""``report.md``: the report for people, with a diff and a reproducer per difference."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.compare import VERDICTS


def render(report: dict[str, Any]) -> str:
    """The Markdown text of a report."""
    lines = ["# Compatibility report", ""]
    lines.append(f"Created {report['created']}, in {report['duration_s']} s.")
    lines.append("")
    lines.append("| role | target | modules | python |")
    lines.append("|---|---|---|---|")
    for t in report["targets"]:
        modules = ", ".join(f"{k}={v}" for k, v in t["modules"].items()) or "stdlib"
        lines.append(f"| {t.get('role', '')} | {t['name']} | {modules} | {t['python']} |")
    lines.append("")
    lines.append("| verdict | count | meaning |")
    lines.append("|---|---|---|")
    for verdict, (meaning, _ok) in VERDICTS.items():
        if verdict in report["counts"]:
            lines.append(f"| {verdict} | {report['counts'][verdict]} | {meaning} |")
    lines.append("")
    notable = [r for r in report["results"] if r["verdict"] != "same"]
    if not notable:
        lines.append("Every scenario: `same`.")
    for r in notable:
        lines.append(f"## `{r['scenario']}` on {r['target']}: {r['verdict']}")
        lines.append("")
        if r.get("description"):
            lines.append(r["description"])
            lines.append("")
        if r.get("reason"):
            lines.append(f"Reason: {r['reason']}")
            lines.append("")
        if r.get("diff"):
            lines += ["```diff", r["diff"], "```", ""]
        lines += ["Reproduce:", "", "```", r["reproducer"], "```", ""]
    return "\n".join(lines) + "\n"


def write(report: dict[str, Any], directory: Path) -> Path:
    """Write ``report.md`` beside ``report.json``."""
    path = directory / "report.md"
    path.write_text(render(report))
    return path
