"""``python -m harness fuzz`` and ``python -m harness replay``: arguments, reports, exit codes.

Exit status as for ``run``: 0 nothing found (or only explained differences), 1 a
difference or a handler defect was found (or a replayed case still shows one), 2 bad usage,
3 the harness failed (or left processes behind).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from harness.errors import UsageError
from harness.host import leftovers
from harness.reports import json_report, markdown, report_dir_argument
from harness.targets import PROJECT_ROOT, Target, parse_target

DEFAULT_REPORT_DIR = PROJECT_ROOT / "reports" / "fuzz"
FAMILIES = ("http", "stream", "datagram")  # as harness.fuzz.FAMILIES, without importing it


def add_fuzz_parser(sub: Any) -> None:
    """The ``fuzz`` subcommand's arguments."""
    p = sub.add_parser("fuzz", help="differential fuzzing (or fuzz your own handler)")
    p.add_argument("--target", default="reference", metavar="SPEC")
    p.add_argument("--baseline", default="stdlib", metavar="SPEC")
    p.add_argument("--family", default="http", choices=FAMILIES)
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--duration", type=float, default=None, metavar="S")
    budget.add_argument("--max-examples", type=int, default=None, metavar="N")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--report-dir", type=report_dir_argument, default=DEFAULT_REPORT_DIR)
    p.add_argument("--batch", action="store_true", help="feed cases in-process over socketpairs")
    p.add_argument("--idle", type=float, default=0.5, help="seconds of silence that end a read")
    p.add_argument("--shrink-seconds", type=float, default=30.0)
    p.add_argument("--max-findings", type=int, default=8, help="stop after this many")
    p.add_argument("--handler", metavar="MODULE:CLASS", help="fuzz this handler instead")
    p.add_argument("--server", default=None, metavar="SERVERCLASS", help="with --handler")
    p.add_argument("--quiet", action="store_true", help="no progress lines")


def add_replay_parser(sub: Any) -> None:
    """The ``replay`` subcommand's arguments."""
    p = sub.add_parser("replay", help="run a saved fuzz reproducer again")
    p.add_argument("file", type=Path)
    p.add_argument("--target", action="append", default=[], metavar="SPEC")
    p.add_argument("--baseline", default=None, metavar="SPEC")


def _log(quiet: bool) -> Any:
    def log(line: str) -> None:
        if not quiet:
            print(line, file=sys.stderr, flush=True)

    return log


def _exit_for_leftovers() -> int | None:
    left = leftovers()
    if left["live"] or left["zombies"]:
        print(f"harness error: processes left behind: {left}", file=sys.stderr)
        return 3
    return None


def cmd_fuzz(args: argparse.Namespace) -> int:
    """``fuzz``: differential fuzzing of a target against a baseline, or of a handler."""
    if args.handler:
        return _cmd_fuzz_handler(args)
    if args.server:
        raise UsageError("--server is only used with --handler MODULE:CLASS")
    from harness.fuzz_run import FuzzConfig, fuzz, nothing_found_row

    duration = args.duration
    if duration is None and args.max_examples is None:
        duration = 30.0
    config = FuzzConfig(
        target=parse_target(args.target),
        baseline=parse_target(args.baseline),
        family=args.family,
        duration=duration,
        max_examples=args.max_examples,
        seed=args.seed,
        report_dir=args.report_dir,
        batch=args.batch,
        idle=args.idle,
        shrink_seconds=args.shrink_seconds,
        max_findings=args.max_findings,
        quiet=args.quiet,
    )
    log = _log(args.quiet)
    mode = "batch (in-process socketpairs)" if config.batch else "real loopback sockets"
    budget = f"{duration:g} s" if duration is not None else f"{args.max_examples} examples"
    log(
        f"fuzzing {config.family}: {config.target.name} against {config.baseline.name}, "
        f"{budget}, seed {config.seed}, {mode}"
    )
    started = time.monotonic()
    outcome = fuzz(config, log)
    rows = []
    for finding in outcome.findings + list(outcome.explained.values()):
        rows.append(_row(config.family, finding, config.target.name, outcome.python))
    if not rows:
        rows.append(
            nothing_found_row(
                f"fuzz/{config.family}/all",
                f"{outcome.cases} fuzzed cases, no difference",
                config.target.name,
                outcome.seconds,
                outcome.python,
            )
        )
    targets = [
        dict(config.target.describe(), role="target"),
        dict(config.baseline.describe(), role="baseline"),
    ]
    extra = {
        "fuzz": {
            "family": config.family,
            "seed": config.seed,
            "mode": "batch" if config.batch else "real",
            "cases": outcome.cases,
            "examples": outcome.examples,
            "cases_per_s": round(outcome.cases / outcome.seconds, 1) if outcome.seconds else 0,
            "server_restarts": outcome.restarts,
            "reproducers": [str(f.path) for f in outcome.findings if f.path],
        }
    }
    report = json_report.build(rows, targets, sys.argv, time.monotonic() - started, extra)
    path = json_report.write(report, config.report_dir)
    markdown.write(report, config.report_dir)
    _print_summary(outcome, path, config.family)
    left = _exit_for_leftovers()
    if left is not None:
        return left
    return 1 if outcome.findings else 0


def _row(family: str, finding: Any, target: str, python: list[int]) -> dict[str, Any]:
    replay = f"python -m harness replay {finding.path}" if finding.path else ""
    return {
        "scenario": f"fuzz/{family}/{finding.case.key()}",
        "description": f"fuzzed case: {finding.case.describe()}",
        "target": target,
        "verdict": finding.verdict,
        "duration_s": 0.0,
        "diff": finding.diff,
        "reason": finding.reason,
        "differing_keys": finding.keys,
        "violations": [],
        "reproducer": replay,
        "python": python,
        "observation": finding.target_obs,
    }


def _print_summary(outcome: Any, path: Path, family: str) -> None:
    for finding in outcome.findings:
        print(f"\n== fuzz/{family}/{finding.case.key()}: {finding.verdict}")
        print(f"   case: {finding.case.describe()}")
        if finding.reason:
            print(f"   {finding.reason}")
        diff = finding.diff.splitlines()
        print("\n".join("   " + line for line in diff[:30]))
        if len(diff) > 30:
            print(f"   ... ({len(diff) - 30} more lines in the report)")
        print(f"   reproduce: python -m harness replay {finding.path}")
    for issue, finding in outcome.explained.items():
        print(f"\n== explained ({issue}): {finding.reason}")
        print(f"   e.g. {finding.case.describe()}")
    rate = outcome.cases / outcome.seconds if outcome.seconds else 0.0
    print(
        f"\n{outcome.cases} cases in {outcome.seconds:.1f} s ({rate:.0f}/s): "
        f"{len(outcome.findings)} found, {len(outcome.explained)} explained"
    )
    print(f"report: {path}")


def _cmd_fuzz_handler(args: argparse.Namespace) -> int:
    from harness.fuzz_handler import HandlerFuzzConfig, fuzz_handler, write_report

    if args.server is None:
        raise UsageError("--handler needs --server SERVERCLASS (e.g. ThreadingTCPServer)")
    if ":" not in args.handler:
        raise UsageError(f"--handler={args.handler}: expected MODULE:CLASS")
    duration = args.duration if args.duration is not None else 30.0
    config = HandlerFuzzConfig(
        handler=args.handler,
        server=args.server,
        target=parse_target(args.target if args.target != "reference" else "stdlib"),
        duration=duration,
        max_examples=args.max_examples,
        seed=args.seed,
        report_dir=args.report_dir,
        idle=args.idle,
        shrink_seconds=args.shrink_seconds,
        max_findings=args.max_findings,
    )
    started = time.monotonic()
    outcome = fuzz_handler(config, _log(args.quiet))
    path = write_report(config, outcome, time.monotonic() - started)
    for finding in outcome.findings:
        print(f"\n== {finding.kind}: {finding.detail}")
        print(f"   case: {finding.case.describe()}")
        print(f"   reproduce: python -m harness replay {finding.path}")
    print(
        f"\n{outcome.cases} cases in {outcome.seconds:.1f} s: "
        f"{len(outcome.findings)} finding(s); resources {outcome.resources}"
    )
    print(f"report: {path}")
    left = _exit_for_leftovers()
    if left is not None:
        return left
    return 1 if outcome.findings else 0


def cmd_replay(args: argparse.Namespace) -> int:
    """``replay``: run a saved reproducer again; 1 when the difference (or defect) is there."""
    from harness.fuzz_run import load_reproducer, replay_differential

    data = load_reproducer(args.file)
    targets: list[Target] = [parse_target(t) for t in args.target]
    baseline = parse_target(args.baseline) if args.baseline else None
    if data.get("kind") == "handler":
        from harness.fuzz_handler import replay_handler

        found = replay_handler(data, targets[0] if targets else None)
    else:
        found = replay_differential(data, targets or None, baseline)
    left = _exit_for_leftovers()
    if left is not None:
        return left
    print("still there" if found else "gone")
    return 1 if found else 0
