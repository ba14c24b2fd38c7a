"""``report.md``: the report for people, sized for ``$GITHUB_STEP_SUMMARY``.

The causes come first (each with one example diff and its reproducer), then a table of
every result that is not ``same``, then the fuzz findings. GitHub takes at most 1 MiB of
step summary, so the text is kept under ``LIMIT`` bytes: past it, diffs are dropped and the
table is cut, saying how many rows are left out (``report.json`` has them all).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from harness.compare import VERDICTS, Verdict
from harness.reports.json_report import is_grid

LIMIT = 900_000
DIFF_LINES = 40
LINE_WIDTH = 400
MAX_MEMBERS = 30
_ICONS = {
    "same": "🟢",
    "explained": "🔵",
    "differs": "🔴",
    "fails": "🟥",
    "hang": "🟣",
    "flaky": "🟡",
    "error": "⚫",
}


def _cell(text: str, width: int = 160) -> str:
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= width else text[: width - 1] + "…"


def _fence(text: str, lang: str = "") -> list[str]:
    # A fence longer than any run of backticks inside, so no diff can close it early.
    longest = max((len(run) for run in re.findall("`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return [f"{ticks}{lang}", text, ticks]


def _clip_diff(diff: str) -> str:
    lines = [
        line if len(line) <= LINE_WIDTH else f"{line[:LINE_WIDTH]}... (+{len(line) - LINE_WIDTH})"
        for line in diff.splitlines()
    ]
    if len(lines) > DIFF_LINES:
        lines = [*lines[:DIFF_LINES], f"... ({len(lines) - DIFF_LINES} more lines)"]
    return "\n".join(lines)


def _where(row: dict[str, Any], grid: bool) -> str:
    return f"{row['target']} @ {row['interpreter']}" if grid else row["target"]


def render(report: dict[str, Any], limit: int = LIMIT) -> str:
    """The Markdown text of a report, at most ``limit`` bytes (about)."""
    rows = report["results"]
    grid = is_grid(report)
    problems = report.get("problems", 0)
    stale = (report.get("expectations") or {}).get("stale", [])
    ok = not problems and not stale and not report.get("interrupted")
    head = ["# Compatibility report", ""]
    status = "✅ no unexpected difference" if ok else f"❌ {problems} unexpected result(s)"
    if stale:
        status += f", {len(stale)} stale expectation(s)"
    head.append(
        f"**{status}** · {len({r['scenario'] for r in rows})} scenarios · "
        f"{report['duration_s']} s · {report['created']}"
    )
    head.append("")
    if report.get("interrupted"):
        head += [f"> ⚠️ Interrupted by {report['interrupted']}: only finished results are here.", ""]
    head += ["| role | target | modules | python |", "|---|---|---|---|"]
    for t in report["targets"]:
        modules = ", ".join(f"{k}={v}" for k, v in t.get("modules", {}).items()) or "stdlib"
        python = t.get("interpreter") or t.get("python", "")
        head.append(f"| {t.get('role', '')} | {t['name']} | {_cell(modules)} | {_cell(python)} |")
    head += ["", "| verdict | count | meaning |", "|---|---|---|"]
    for v in Verdict:
        if v.value in report["counts"]:
            meaning = VERDICTS[v.value][0]
            head.append(
                f"| {_ICONS[v.value]} {v.value} | {report['counts'][v.value]} | {meaning} |"
            )
    if report.get("expected"):
        head.append(f"| expected | {report['expected']} | covered by `--expect` entries |")
    head.append("")
    if stale:
        head += ["## Stale expectations", ""]
        for s in stale:
            head.append(
                f"- entry #{s['entry']}: `{s['scenario']}` on {_where(s, grid)} is now "
                f"**{s['verdict']}**, expected {s['expected']} ({_cell(s['reason'])})"
            )
        head.append("")
    sections = [head]
    for with_diffs in (True, False):
        body = _causes(report, grid, with_diffs)
        if _size([*sections, body]) < limit:
            sections.append(body)
            break
    else:
        sections.append(["## Causes", "", "(left out: too large for a step summary)", ""])
    table = _table(rows, grid, limit - _size(sections))
    sections.append(table)
    fuzz = _fuzz(report)
    if _size([*sections, fuzz]) < limit:
        sections.append(fuzz)
    return "\n".join(line for section in sections for line in section) + "\n"


def _size(sections: list[list[str]]) -> int:
    return sum(len(line.encode()) + 1 for section in sections for line in section)


def _causes(report: dict[str, Any], grid: bool, with_diffs: bool) -> list[str]:
    rows = report["results"]
    lines: list[str] = []
    groups = report.get("causes", [])
    if not groups:
        return lines
    lines += ["## Causes, largest first", ""]
    for group in groups:
        example = rows[group["example"]]
        verdicts = ", ".join(f"{n} {v}" for v, n in group["verdicts"].items())
        lines.append(f"### {group['count']} results: {_cell(group['title'], 300)}")
        lines.append("")
        lines.append(f"{verdicts}; on {', '.join(group['targets'])}.")
        lines.append("")
        members = [rows[i] for i in group["rows"]]
        shown = ", ".join(f"`{r['scenario']}`" for r in members[:MAX_MEMBERS])
        more = f" and {len(members) - MAX_MEMBERS} more" if len(members) > MAX_MEMBERS else ""
        lines += [f"Results: {shown}{more}.", ""]
        lines.append(
            f"<details><summary>Example: <code>{example['scenario']}</code> on "
            f"{_where(example, grid)}</summary>"
        )
        lines.append("")
        if with_diffs and example.get("diff"):
            lines += _fence(_clip_diff(example["diff"]), "diff")
            lines.append("")
        lines += _fence(example["reproducer"], "sh")
        lines += ["", "</details>", ""]
    return lines


def _table(rows: list[dict[str, Any]], grid: bool, budget: int) -> list[str]:
    notable = [r for r in rows if r["verdict"] != "same"]
    if not notable:
        return ["Every result: `same`.", ""]
    lines = [
        "## Every result that is not `same`",
        "",
        "| verdict | scenario | target | reason | reproduce |",
        "|---|---|---|---|---|",
    ]
    used = _size([lines])
    order = sorted(
        notable, key=lambda r: (r["verdict"] in ("same", "explained"), r["verdict"], r["scenario"])
    )
    for index, r in enumerate(order):
        reason = r.get("reason", "")
        if r.get("expected"):
            reason = f"expected (entry #{r['expected']['entry']}): {r['expected']['reason']}"
        elif not reason and r.get("differing_keys"):
            reason = "differs in " + ", ".join(r["differing_keys"])
        line = (
            f"| {_ICONS.get(r['verdict'], '')} {r['verdict']} | `{r['scenario']}` | "
            f"{_where(r, grid)} | {_cell(reason)} | `{_cell(r['reproducer'], 400)}` |"
        )
        if used + len(line.encode()) + 200 > budget:
            lines.append("")
            lines.append(f"… {len(order) - index} more rows in `report.json`.")
            break
        used += len(line.encode()) + 1
        lines.append(line)
    lines.append("")
    return lines


def _fuzz(report: dict[str, Any]) -> list[str]:
    found = [r for r in report["results"] if r.get("finding")]
    if not found:
        return []
    lines = ["## Fuzz findings", ""]
    for r in found:
        f = r["finding"]
        kind = f" ({f['kind']})" if f.get("kind") else ""
        lines.append(f"### `{r['scenario']}`: {r['verdict']}{kind}")
        lines.append("")
        if f.get("schedule"):
            lines += [f"Sent: {_cell(f['schedule'], 300)}", ""]
        lines += _fence(f["data"][:4000])
        lines.append("")
        lines += _fence(f["replay"], "sh")
        lines.append("")
    return lines


def write(report: dict[str, Any], directory: Path) -> Path:
    """Write ``report.md`` beside ``report.json``."""
    path = Path(directory) / "report.md"
    path.write_text(render(report))
    return path
