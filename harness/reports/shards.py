"""Shards (``run --shard K/N``) and joining their reports (``python -m harness merge``).

A shard is a deterministic share of the selection: the same selection and ``K/N`` give
the same scenarios on every machine. Without an earlier report the scenarios are dealt
out in id order (the first to shard 1, the second to shard 2, ...). With one
(``--shard-durations REPORT.json``) they are balanced by its durations: longest first,
each to the shard with the least time so far (ties to the lowest shard); a scenario the
earlier report does not have counts as the median of those it has.

``merge`` joins shard reports (and the reports of a grid split over jobs) into one: the
rows of all, each (scenario, target, interpreter) once; targets and interpreters united;
expectations applied again to the whole; causes grouped again; the duration is the
longest shard's (they ran side by side).
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from harness.errors import UsageError
from harness.reports import json_report
from harness.reports.expect import Expectations
from harness.reports.row import Row

T = TypeVar("T")
_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def parse_shard(value: str) -> tuple[int, int]:
    """``"2/4"`` -> ``(2, 4)``; ``UsageError`` unless 1 <= K <= N."""
    match = _SHARD.match(value)
    if not match:
        raise UsageError(f"--shard {value}: expected K/N, as in 2/4")
    k, n = int(match[1]), int(match[2])
    if n < 1 or not 1 <= k <= n:
        raise UsageError(f"--shard {value}: K must be 1 to N, and N at least 1")
    return k, n


def durations_of(report: dict[str, Any]) -> dict[str, float]:
    """Seconds per scenario in an earlier report (its targets' times added up)."""
    seconds: dict[str, float] = {}
    for row in report.get("results", []):
        seconds[row["scenario"]] = seconds.get(row["scenario"], 0.0) + float(
            row.get("duration_s") or 0.0
        )
    return seconds


def assign(ids: Sequence[str], count: int, durations: dict[str, float] | None = None) -> list[int]:
    """The shard (0-based) of each id, in the order given."""
    if not durations:
        order = sorted(range(len(ids)), key=lambda i: ids[i])
        shard_of = [0] * len(ids)
        for position, i in enumerate(order):
            shard_of[i] = position % count
        return shard_of
    known = [durations[i] for i in ids if i in durations]
    default = statistics.median(known) if known else 1.0
    cost = [durations.get(i, default) for i in ids]
    load = [0.0] * count
    shard_of = [0] * len(ids)
    for i in sorted(range(len(ids)), key=lambda i: (-cost[i], ids[i])):
        shard = min(range(count), key=lambda s: (load[s], s))
        shard_of[i] = shard
        load[shard] += cost[i]
    return shard_of


def select(
    items: Sequence[T], ids: Sequence[str], k: int, n: int, durations: dict[str, float] | None
) -> list[T]:
    """The items of shard ``k`` of ``n`` (1-based ``k``), in their given order."""
    shard_of = assign(ids, n, durations)
    return [item for item, shard in zip(items, shard_of) if shard == k - 1]


def merge(paths: Sequence[Path]) -> tuple[list[Row], dict[str, Any]]:
    """The rows of several reports joined, and what the merged report says about them.

    Returns ``(rows, info)`` where ``info`` has ``targets``, ``duration``, ``shards``,
    ``expectations`` (an ``Expectations`` or None), ``interrupted`` and ``kind``.
    ``UsageError`` when a report cannot be read, or two reports have the same result.
    """
    if not paths:
        raise UsageError("merge: give the reports to join")
    rows: list[Row] = []
    seen: dict[tuple[str, str, str], Path] = {}
    targets: list[dict[str, Any]] = []
    shards: list[dict[str, Any]] = []
    expectations: Expectations | None = None
    interrupted = None
    kinds = set()
    duration = 0.0
    for path in paths:
        try:
            report = json_report.load(Path(path))
        except (OSError, ValueError, KeyError) as exc:
            raise UsageError(f"merge: {path}: cannot read it as a report ({exc})")
        kinds.add(report.get("kind", "run"))
        duration = max(duration, float(report.get("duration_s") or 0.0))
        interrupted = interrupted or report.get("interrupted")
        for t in report.get("targets", []):
            if t not in targets:
                targets.append(t)
        shard = report.get("shard")
        shards.append(
            {
                "report": str(path),
                "shard": f"{shard['index']}/{shard['count']}" if shard else None,
                "duration_s": report.get("duration_s"),
                "results": len(report.get("results", [])),
            }
        )
        if report.get("expectations") and expectations is None:
            expectations = Expectations.from_json(report["expectations"])
        for row in json_report.rows_of(report):
            if row.key in seen:
                raise UsageError(
                    f"merge: {row.scenario} on {row.target} ({row.interpreter}) is in both "
                    f"{seen[row.key]} and {path}: merge each shard once"
                )
            seen[row.key] = Path(path)
            rows.append(row)
    declared = {s["shard"] for s in shards if s["shard"]}
    counts = {int(s.split("/")[1]) for s in declared}
    missing: list[str] = []
    for n in counts:
        missing += [f"{k}/{n}" for k in range(1, n + 1) if f"{k}/{n}" not in declared]
    order = {t["name"]: i for i, t in enumerate(targets)}
    interpreters = {label: i for i, label in enumerate(dict.fromkeys(r.interpreter for r in rows))}
    rows.sort(
        key=lambda r: (r.scenario, order.get(r.target, len(order)), interpreters[r.interpreter])
    )
    info = {
        "targets": targets,
        "duration": duration,
        "shards": shards,
        "missing_shards": sorted(missing),
        "expectations": expectations,
        "interrupted": interrupted,
        "kind": kinds.pop() if len(kinds) == 1 else "merge",
    }
    return rows, info
