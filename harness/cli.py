"""``python -m harness``: list, run (and later fuzz, replay) from the command line.

Exit status (``ExitCode``): 0 every result ``same`` or ``explained``; 1 anything differs,
fails, hangs or is flaky; 2 bad usage; 3 the harness itself failed.
"""

from __future__ import annotations

import argparse
import enum
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import trio

from harness.compare import VERDICTS
from harness.engine import Engine, Result, Settings
from harness.errors import HarnessError, UsageError
from harness.host import leftovers
from harness.reports import json_report, markdown, report_dir_argument
from harness.scenario import Scenario
from harness.targets import PROJECT_ROOT, Target, parse_target


class ExitCode(enum.IntEnum):
    """What the exit status of ``python -m harness`` means."""

    #: every result was ``same`` or ``explained``
    OK = 0
    #: something differs, fails, hangs, or is flaky
    FOUND = 1
    #: the command line was wrong (the message says what)
    USAGE = 2
    #: the harness itself failed (an ``error`` result, or a crash)
    INTERNAL = 3


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m harness``."""
    parser = _Parser(prog="python -m harness", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p_list = sub.add_parser("list", help="list scenarios")
    p_list.add_argument("--select", action="append", default=[], metavar="GLOB")
    p_list.add_argument("--json", action="store_true", help="machine-readable output")

    p_run = sub.add_parser("run", help="run scenarios against targets and compare")
    p_run.add_argument("--target", action="append", default=[], metavar="SPEC")
    p_run.add_argument(
        "--baseline",
        default=None,
        metavar="SPEC",
        help="default: the stdlib, under the targets' interpreter when they share one",
    )
    p_run.add_argument("--select", action="append", default=[], metavar="GLOB")
    p_run.add_argument("--jobs", type=int, default=min(8, 2 * (os.cpu_count() or 2)))
    p_run.add_argument("--report-dir", type=report_dir_argument, default=PROJECT_ROOT / "reports")
    p_run.add_argument("--retries", type=int, default=1, help="reruns to confirm a difference")
    p_run.add_argument("--quiet", action="store_true", help="no progress lines")
    p_run.add_argument(
        "--no-fork-server",
        dest="fork_server",
        action="store_false",
        help="spawn every server process (no fork servers)",
    )
    p_obs = sub.add_parser("observe", help="run scenarios once on one target, print observations")
    p_obs.add_argument("--target", default="stdlib", metavar="SPEC")
    p_obs.add_argument("--select", action="append", default=[], metavar="GLOB")
    from harness.fuzz_cli import add_fuzz_parser, add_replay_parser

    add_fuzz_parser(sub)
    add_replay_parser(sub)
    return parser


def cmd_observe(args: argparse.Namespace) -> int:
    """``observe``: what one target does in each scenario, as normalized JSON."""
    from harness.engine import observe

    target = parse_target(args.target)
    for s in select_scenarios(args.select):
        got = trio.run(observe, s, target)
        print(
            json.dumps(
                {
                    "scenario": s.id,
                    "status": got.status,
                    "error": got.error,
                    "violations": got.violations,
                    "observation": got.observation,
                },
                indent=1,
                ensure_ascii=False,
            )
        )
    return ExitCode.OK


def select_scenarios(patterns: list[str]) -> list[Scenario]:
    """The catalog entries matching the globs; UsageError when none does."""
    from scenarios import select

    chosen = select(patterns)
    if not chosen:
        raise UsageError(f"no scenario matches {' '.join(patterns) or '(all)'}")
    return chosen


def cmd_list(args: argparse.Namespace) -> int:
    """``list``: one line per scenario, or JSON."""
    chosen = select_scenarios(args.select)
    if args.json:
        rows = [
            {
                "id": s.id,
                "family": s.family,
                "server": s.server.server,
                "description": s.description,
            }
            for s in chosen
        ]
        print(json.dumps(rows, indent=1))
    else:
        width = max(len(s.id) for s in chosen)
        for s in chosen:
            print(f"{s.id:<{width}}  {s.description.splitlines()[0]}")
        print(f"{len(chosen)} scenarios", file=sys.stderr)
    return ExitCode.OK


def _progress_printer(total: int, quiet: bool) -> Any:
    done = 0
    started = time.monotonic()

    def show(scenario: Scenario, results: list[Result]) -> None:
        nonlocal done
        done += 1
        if quiet:
            return
        verdicts = " ".join(f"{r.target}={r.verdict}" for r in results)
        elapsed = time.monotonic() - started
        print(
            f"[{done:>3}/{total}] {elapsed:6.1f}s  {scenario.id}  {verdicts}",
            file=sys.stderr,
            flush=True,
        )

    return show


def default_baseline(targets: list[Target]) -> Target:
    """The stdlib, under the targets' interpreter when they all share one."""
    pythons = {t.python for t in targets}
    stdlib = parse_target("stdlib")
    return stdlib.with_python(pythons.pop()) if len(pythons) == 1 else stdlib


def cmd_run(args: argparse.Namespace) -> int:
    """``run``: every selected scenario against every target, compared with the baseline."""
    if args.jobs < 1:
        raise UsageError(f"--jobs={args.jobs}: must be 1 or more")
    if args.retries < 0:
        raise UsageError(f"--retries={args.retries}: must be 0 or more")
    targets = [parse_target(t) for t in (args.target or ["reference"])]
    baseline = default_baseline(targets) if args.baseline is None else parse_target(args.baseline)
    names = [t.name for t in targets] + [baseline.name]
    if len(set(names)) != len(names):
        raise UsageError(f"target names must differ (got {', '.join(names)}): give name=...")
    chosen = select_scenarios(args.select)
    print(
        f"running {len(chosen)} scenarios: {', '.join(t.name for t in targets)} "
        f"against {baseline.name}, {args.jobs} at a time",
        file=sys.stderr,
    )
    started = time.monotonic()
    engine = Engine(
        targets,
        baseline,
        Settings(jobs=args.jobs, retries=args.retries, fork_server=args.fork_server),
        progress=_progress_printer(len(chosen), args.quiet),
    )
    results = trio.run(engine.run, chosen)
    return finish_run(results, chosen, targets, baseline, args.report_dir, started)


def finish_run(
    results: list[Result],
    chosen: list[Scenario],
    targets: list[Target],
    baseline: Target,
    report_dir: Path,
    started: float,
) -> int:
    """Write the reports, print the summary, return the exit status."""
    descriptions = {s.id: s.description for s in chosen}
    rows = []
    for r in results:
        row = r.to_json()
        row["description"] = descriptions.get(r.scenario, "")
        rows.append(row)
    target_rows = [dict(t.describe(), role="target") for t in targets]
    target_rows.append(dict(baseline.describe(), role="baseline"))
    report = json_report.build(rows, target_rows, sys.argv, time.monotonic() - started)
    path = json_report.write(report, report_dir)
    markdown.write(report, report_dir)
    left = leftovers()
    print_summary(report, path)
    if left["live"] or left["zombies"]:
        print(f"harness error: processes left behind: {left}", file=sys.stderr)
        return ExitCode.INTERNAL
    counts = report["counts"]
    if counts.get("error"):
        return ExitCode.INTERNAL
    if any(not VERDICTS[v][1] for v in counts):
        return ExitCode.FOUND
    return ExitCode.OK


def print_summary(report: dict[str, Any], path: Path) -> None:
    """The end-of-run summary: the differences with their diffs, then the counts."""
    for r in report["results"]:
        if r["verdict"] in ("same", "explained"):
            continue
        print(f"\n== {r['scenario']} [{r['target']}]: {r['verdict']}")
        if r.get("reason"):
            print(f"   {r['reason']}")
        if r.get("diff"):
            diff = r["diff"].splitlines()
            print("\n".join("   " + line for line in diff[:40]))
            if len(diff) > 40:
                print(f"   ... ({len(diff) - 40} more lines in the report)")
        print(f"   reproduce: {r['reproducer']}")
    counts = ", ".join(f"{n} {v}" for v, n in sorted(report["counts"].items()))
    scenarios = len({r["scenario"] for r in report["results"]})
    print(f"\n{scenarios} scenarios in {report['duration_s']} s: {counts}")
    print(f"report: {path}")


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
        if args.command == "list":
            return cmd_list(args)
        if args.command == "run":
            return cmd_run(args)
        if args.command == "observe":
            return cmd_observe(args)
        if args.command in ("fuzz", "replay"):
            from harness import fuzz_cli

            return fuzz_cli.cmd_fuzz(args) if args.command == "fuzz" else fuzz_cli.cmd_replay(args)
        raise UsageError(f"unknown command {args.command!r}")
    except UsageError as exc:
        print(f"python -m harness: error: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    except HarnessError as exc:
        print(f"python -m harness: harness error: {exc}", file=sys.stderr)
        return ExitCode.INTERNAL
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return ExitCode.INTERNAL
    except Exception:  # a defect of the harness itself, never "differences found"
        traceback.print_exc()
        print(
            "python -m harness: internal error (the traceback above is the harness's own "
            "defect; please report it)",
            file=sys.stderr,
        )
        return ExitCode.INTERNAL
