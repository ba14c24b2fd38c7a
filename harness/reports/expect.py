"""Strict expectations (``--expect FILE``): known differences of *your* implementation.

The file is TOML, a list of ``[[expect]]`` tables::

    [[expect]]
    scenario = "http/headers/folding*"   # a glob over scenario ids
    target = "mine"                      # a glob over target names
    verdict = "differs"                  # differs | fails | hang | flaky | explained
    reason = "we reject obsolete line folding (our issue #12)"
    # interpreter = "3.9"                # optional: a glob over interpreter columns

    [[expect]]
    scenario = "socketserver/threading/daemon_*"
    target = "mine"
    flaky = true                          # either outcome: same, or the verdict if given
    reason = "thread start order under load"

A result matched by an entry with its verdict is *expected*: it no longer makes the run
exit 1. A result an entry matches with any other verdict (now ``same``, or another
verdict) makes the entry *stale* for that scenario, and a stale entry makes the run exit 1,
so the list never silently outlives what it describes. A flaky entry accepts ``same`` or
its verdict (any verdict but ``error`` when it names none) and counts both. An entry that
matches no result at all (its scenarios were not selected, or ran in another shard) is
reported as unused, without changing the exit status. The first matching entry wins.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import tomllib

from harness.compare import Verdict
from harness.errors import UsageError
from harness.reports.row import Row

#: the verdicts an entry may expect (``same`` needs no entry; ``error`` is the harness's)
EXPECTABLE = tuple(v.value for v in Verdict if v not in (Verdict.SAME, Verdict.ERROR))
_KEYS = {"scenario", "target", "verdict", "reason", "interpreter", "flaky"}


@dataclasses.dataclass(frozen=True)
class Entry:
    """One ``[[expect]]`` table."""

    index: int  # 1-based position in the file, as people count
    scenario: str
    target: str
    verdict: str  # "" for a flaky entry that accepts any verdict
    reason: str
    interpreter: str = "*"
    flaky: bool = False

    def matches(self, row: Row) -> bool:
        """Whether this entry is about ``row`` (whatever its verdict)."""
        return (
            fnmatch.fnmatchcase(row.scenario, self.scenario)
            and fnmatch.fnmatchcase(row.target, self.target)
            and fnmatch.fnmatchcase(row.interpreter or "", self.interpreter)
        )

    def accepts(self, verdict: str) -> bool:
        """Whether a matched result with ``verdict`` is what the entry says."""
        if self.flaky:
            if verdict == Verdict.SAME.value:
                return True
            return verdict == self.verdict if self.verdict else verdict != Verdict.ERROR.value
        return verdict == self.verdict

    def describe(self) -> str:
        """``#3 http/x/* on mine: differs`` for messages."""
        what = (
            "flaky" + (f" ({self.verdict})" if self.verdict else "") if self.flaky else self.verdict
        )
        where = "" if self.interpreter == "*" else f" under {self.interpreter}"
        return f"#{self.index} {self.scenario} on {self.target}{where}: {what}"

    def to_json(self) -> dict[str, Any]:
        """As stored in the report, so that ``merge`` can apply the entries again."""
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Expectations:
    """The entries of one file."""

    source: str
    entries: list[Entry]

    @classmethod
    def load(cls, path: Path) -> Expectations:
        """Read and check a TOML file; ``UsageError`` naming the entry that is wrong."""
        try:
            data = tomllib.loads(path.read_text())
        except OSError as exc:
            raise UsageError(f"--expect {path}: cannot read it ({exc.strerror or exc})")
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"--expect {path}: not valid TOML ({exc})")
        extra = set(data) - {"expect"}
        if extra:
            raise UsageError(f"--expect {path}: unknown table(s) {', '.join(sorted(extra))}")
        tables = data.get("expect", [])
        if not isinstance(tables, list):
            raise UsageError(f"--expect {path}: write each entry as an [[expect]] table")
        return cls(str(path), [_entry(path, i, t) for i, t in enumerate(tables, 1)])

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Expectations:
        """The expectations stored in a report (``report["expectations"]``)."""
        return cls(data.get("source", ""), [Entry(**e) for e in data.get("entries", [])])

    def apply(self, rows: Iterable[Row]) -> dict[str, Any]:
        """Mark the expected rows (``row.expected``); what became of each entry.

        Returns the report's ``expectations`` section: the source and entries, the
        ``stale`` (entry, scenario, target, interpreter, verdict now) pairs, per flaky
        entry how often it came out ``same`` or not, and the entries that matched nothing.
        """
        stale: list[dict[str, Any]] = []
        flaky: dict[int, dict[str, int]] = {}
        used: set[int] = set()
        for row in rows:
            row.expected = None
            entry = next((e for e in self.entries if e.matches(row)), None)
            if entry is None:
                continue
            used.add(entry.index)
            if entry.flaky:
                tally = flaky.setdefault(entry.index, {"same": 0, "other": 0})
                tally["same" if row.verdict == Verdict.SAME.value else "other"] += 1
            if not entry.accepts(row.verdict):
                stale.append(
                    {
                        "entry": entry.index,
                        "expected": entry.verdict or "flaky",
                        "scenario": row.scenario,
                        "target": row.target,
                        "interpreter": row.interpreter,
                        "verdict": row.verdict,
                        "reason": entry.reason,
                    }
                )
            elif row.verdict != Verdict.SAME.value:
                row.expected = {
                    "entry": entry.index,
                    "verdict": entry.verdict or "flaky",
                    "reason": entry.reason,
                    "flaky": entry.flaky,
                }
        return {
            "source": self.source,
            "entries": [e.to_json() for e in self.entries],
            "stale": stale,
            "flaky": [{"entry": index, **tally} for index, tally in sorted(flaky.items())],
            "unused": [e.index for e in self.entries if e.index not in used],
        }


def _entry(path: Path, index: int, table: Any) -> Entry:
    where = f"--expect {path}: entry #{index}"
    if not isinstance(table, dict):
        raise UsageError(f"{where}: not a table")
    unknown = set(table) - _KEYS
    if unknown:
        raise UsageError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    for key in ("scenario", "target", "reason"):
        if not isinstance(table.get(key), str) or not table[key].strip():
            raise UsageError(f'{where}: needs {key} = "..."')
    flaky = table.get("flaky", False)
    if not isinstance(flaky, bool):
        raise UsageError(f"{where}: flaky is true or false")
    verdict = table.get("verdict", "")
    if not isinstance(verdict, str):
        raise UsageError(f"{where}: verdict is a string")
    if verdict and verdict not in EXPECTABLE:
        raise UsageError(f"{where}: verdict {verdict!r} is not one of {', '.join(EXPECTABLE)}")
    if not verdict and not flaky:
        raise UsageError(f"{where}: needs verdict = one of {', '.join(EXPECTABLE)}")
    interpreter = table.get("interpreter", "*")
    if not isinstance(interpreter, str) or not interpreter:
        raise UsageError(f"{where}: interpreter is a non-empty string (a glob)")
    return Entry(
        index=index,
        scenario=table["scenario"],
        target=table["target"],
        verdict=verdict,
        reason=table["reason"],
        interpreter=interpreter,
        flaky=flaky,
    )
