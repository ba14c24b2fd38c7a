"""What a person sees in the terminal: the progress of a run, and the summary at its end.

Progress: on a terminal, one line rewritten in place (count, rate, ETA, verdicts so far);
elsewhere (CI logs) a plain line now and then; with ``-v`` one line per scenario, as the
first versions printed; with ``--quiet`` nothing.

Summary: the causes first (largest group first: its count, one example diff and its
reproducer), then a table of every result that is not ``same`` with its reason and
reproducer, then the stale expectations, the counts and where the reports are.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any, TextIO

from harness.compare import Verdict
from harness.reports.json_report import is_grid

#: ANSI colours of the verdicts on a terminal
_COLOURS = {
    "same": "32",
    "explained": "36",
    "differs": "31",
    "fails": "31;1",
    "hang": "35",
    "flaky": "33",
    "error": "41;97",
}
DIFF_LINES = 30
LINE_WIDTH = 240


def _fmt_seconds(seconds: float) -> str:
    seconds = round(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


class Progress:
    """The engine's progress callback: ``Engine(..., progress=Progress(total))``.

    ``label`` (an interpreter of a grid run) prefixes the per-scenario lines of ``-v``.
    """

    def __init__(
        self,
        total: int,
        *,
        stream: TextIO | None = None,
        verbose: bool = False,
        quiet: bool = False,
        tty: bool | None = None,
        every: float = 30.0,
    ) -> None:
        self.total = max(1, total)
        self.stream = stream or sys.stderr
        self.verbose = verbose
        self.quiet = quiet
        self.tty = self.stream.isatty() if tty is None else tty
        self.every = every
        self.label = ""
        self.done = 0
        self.verdicts: Counter[str] = Counter()
        self.started = time.monotonic()
        self._last_draw = 0.0
        self._last_plain = self.started
        self._next_fraction = 0.1
        self._drawn = False

    def __call__(self, scenario: Any, results: Sequence[Any]) -> None:
        """One scenario finished with these results."""
        self.done += 1
        for r in results:
            self.verdicts[str(getattr(r.verdict, "value", r.verdict))] += 1
        if self.quiet:
            return
        now = time.monotonic()
        if self.verbose:
            self._clear()
            verdicts = " ".join(
                f"{r.target}={getattr(r.verdict, 'value', r.verdict)}" for r in results
            )
            label = f"[{self.label}] " if self.label else ""
            print(
                f"[{self.done:>3}/{self.total}] {now - self.started:6.1f}s  "
                f"{label}{scenario.id}  {verdicts}",
                file=self.stream,
                flush=True,
            )
        elif self.tty:
            if now - self._last_draw >= 0.1 or self.done == self.total:
                self._last_draw = now
                self.stream.write("\r\x1b[K" + self.line(now))
                self.stream.flush()
                self._drawn = True
        elif (
            now - self._last_plain >= self.every
            or self.done / self.total >= self._next_fraction
            or self.done == self.total
        ):
            self._last_plain = now
            while self._next_fraction <= self.done / self.total:
                self._next_fraction += 0.1
            print(self.line(now), file=self.stream, flush=True)

    def line(self, now: float | None = None) -> str:
        """``[ 120/443] 27% 4.1/s ETA 1m12s  same 100, differs 2``."""
        now = time.monotonic() if now is None else now
        elapsed = max(now - self.started, 1e-6)
        rate = self.done / elapsed
        left = (self.total - self.done) / rate if rate else 0.0
        counts = ", ".join(f"{n} {v.value}" for v in Verdict if (n := self.verdicts.get(v.value)))
        return (
            f"[{self.done:>{len(str(self.total))}}/{self.total}] "
            f"{100 * self.done // self.total:>3}% {rate:5.1f}/s "
            f"ETA {_fmt_seconds(left) if self.done < self.total else '0s'}  {counts}"
        )

    def _clear(self) -> None:
        if self.tty and self._drawn:
            self.stream.write("\r\x1b[K")
            self._drawn = False

    def close(self) -> None:
        """End the live line (the summary is printed below it)."""
        if self.tty and self._drawn and not self.quiet:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


def _paint(text: str, verdict: str, colour: bool) -> str:
    return f"\x1b[{_COLOURS.get(verdict, '0')}m{text}\x1b[0m" if colour else text


def _where(row: dict[str, Any], grid: bool) -> str:
    return f"{row['target']}@{row['interpreter']}" if grid else row["target"]


def _clip_line(line: str, width: int = LINE_WIDTH) -> str:
    """A diff line cut to ``width`` characters, saying how much is left out."""
    if len(line) <= width:
        return line
    return f"{line[:width]}... (+{len(line) - width} characters)"


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def summary(
    report: dict[str, Any],
    outputs: dict[str, Any],
    stream: TextIO | None = None,
    colour: bool | None = None,
) -> None:
    """Print the end-of-run summary of a report (``outputs``: format -> path written)."""
    out = stream or sys.stdout
    colour = out.isatty() if colour is None else colour
    rows = report["results"]
    grid = is_grid(report)
    for group in report.get("causes", []):
        example = rows[group["example"]]
        verdicts = ", ".join(f"{n} {v}" for v, n in group["verdicts"].items())
        print(
            f"\n== {group['count']} result{'s' if group['count'] != 1 else ''} "
            f"({verdicts}; {', '.join(group['targets'])}): {group['title']}",
            file=out,
        )
        print(f"   e.g. {example['scenario']} [{_where(example, grid)}]", file=out)
        diff = example.get("diff", "").splitlines()
        for line in diff[:DIFF_LINES]:
            print("   " + _clip_line(line), file=out)
        if len(diff) > DIFF_LINES:
            print(f"   ... ({len(diff) - DIFF_LINES} more lines in the report)", file=out)
        print(f"   reproduce: {example['reproducer']}", file=out)
    notable = [r for r in rows if r["verdict"] != "same"]
    if notable:
        print("\nEvery result that is not `same`:", file=out)
        width = min(60, max(len(r["scenario"]) for r in notable))
        wide = max(len(_where(r, grid)) for r in notable)
        for r in sorted(notable, key=lambda r: (not _is_problem(r), r["verdict"], r["scenario"])):
            label = r["verdict"] + ("*" if r.get("expected") else "")
            reason = r.get("reason", "") or (
                f"differs in {', '.join(r.get('differing_keys', []))}"
                if r.get("differing_keys")
                else ""
            )
            if r.get("expected"):
                reason = f"expected: {r['expected']['reason']}"
            print(
                f"  {_paint(f'{label:<10}', r['verdict'], colour)} {r['scenario']:<{width}}  "
                f"{_where(r, grid):<{wide}}  {_clip(reason, 90)}",
                file=out,
            )
            if r.get("reproducer"):  # an explained fuzz case has none saved
                print(f"  {'':<10} $ {r['reproducer']}", file=out)
        if any(r.get("expected") for r in notable):
            print("  (* expected by --expect)", file=out)
    expectations = report.get("expectations") or {}
    for s in expectations.get("stale", []):
        where = f"{s['target']}@{s['interpreter']}" if grid else s["target"]
        print(
            f"\nstale expectation #{s['entry']} ({expectations.get('source', '')}): "
            f"{s['scenario']} on {where} is now {s['verdict']}, expected {s['expected']} "
            f"({s['reason']})",
            file=out,
        )
    for f in expectations.get("flaky", []):
        print(
            f"known-flaky entry #{f['entry']}: {f['same']} same, {f['other']} not",
            file=out,
        )
    if expectations.get("unused"):
        unused = ", ".join(f"#{i}" for i in expectations["unused"])
        print(f"expectation entries that matched no result: {unused}", file=out)
    counts = ", ".join(
        _paint(f"{report['counts'][v.value]} {v.value}", v.value, colour)
        for v in Verdict
        if report["counts"].get(v.value)
    )
    scenarios = len({r["scenario"] for r in rows})
    extra = f", {report['expected']} expected" if report.get("expected") else ""
    print(
        f"\n{scenarios} scenarios in {report['duration_s']} s: {counts or 'no results'}{extra}",
        file=out,
    )
    if report.get("interrupted"):
        print(f"interrupted by {report['interrupted']}: the report has what finished", file=out)
    if outputs:
        paths = list(outputs.values())
        others = ", ".join(str(p) for p in paths[1:])
        print(f"report: {paths[0]}" + (f" (and {others})" if others else ""), file=out)


def _is_problem(row: dict[str, Any]) -> bool:
    return row["verdict"] not in ("same", "explained") and not row.get("expected")
