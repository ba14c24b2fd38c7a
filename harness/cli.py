"""``python -m harness``: list, run, observe, fuzz, replay, report, merge.

Exit status (``ExitCode``): 0 every result ``same`` or ``explained`` (or expected by
``--expect``); 1 anything else differs, fails, hangs or is flaky, or an expectation is
stale; 2 bad usage; 3 the harness itself failed (with the traceback when it crashed);
130 / 143 stopped by SIGINT / SIGTERM (the report has what finished).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import trio

from harness.engine import Engine, Settings
from harness.errors import HarnessError, UsageError
from harness.reports import (
    ExitCode,
    Row,
    default_report_dir,
    finish,
    json_report,
    report_dir_argument,
    shards,
)
from harness.reports.expect import Expectations
from harness.reports.terminal import Progress
from harness.scenario import Scenario
from harness.targets import Target, parse_target

__all__ = ["ExitCode", "build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def _add_report_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the reports go, and what decides the exit status (``run`` and ``merge``)."""
    parser.add_argument(
        "--report-dir",
        type=report_dir_argument,
        default=None,
        metavar="DIR",
        help="where report.json, report.md, report.html and junit.xml go (default: ./reports)",
    )
    parser.add_argument(
        "--junit", type=Path, default=None, metavar="FILE", help="JUnit XML here too"
    )
    parser.add_argument(
        "--html", type=Path, default=None, metavar="FILE", help="the HTML page here too"
    )
    parser.add_argument(
        "--expect",
        type=Path,
        default=None,
        metavar="FILE",
        help="TOML list of expected results (see docs/ci.md); stale entries exit 1",
    )


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
    p_run.add_argument(
        "--jobs",
        type=int,
        # A server process mostly waits for its clients: four per core keep the cores busy
        # (on 2 cores, 12 or 16 at a time took more CPU and longer than 8).
        default=min(8, 4 * (os.cpu_count() or 1)),
        help="server processes at a time (default: 4 per core, at most 8)",
    )
    _add_report_arguments(p_run)
    p_run.add_argument("--retries", type=int, default=1, help="reruns to confirm a difference")
    p_run.add_argument("--quiet", action="store_true", help="no progress lines")
    p_run.add_argument(
        "-v", "--verbose", action="store_true", help="one line per scenario as it finishes"
    )
    p_run.add_argument(
        "--python",
        default=None,
        metavar="LIST",
        help="the interpreter grid: run every target and the baseline under each of these "
        "(3.9,3.10,...,pypy3, paths, or all)",
    )
    p_run.add_argument(
        "--shard",
        default=None,
        metavar="K/N",
        help="run only the K-th of N shares of the selection",
    )
    p_run.add_argument(
        "--durations",
        type=Path,
        default=None,
        metavar="REPORT.json",
        help="with --shard: balance the shards by this earlier report's durations",
    )
    p_run.add_argument(
        "--no-fork-server",
        dest="fork_server",
        action="store_false",
        help="spawn every server process (no fork servers)",
    )
    p_report = sub.add_parser("report", help="render an existing report.json in another format")
    p_report.add_argument("report", type=Path, metavar="REPORT.json")
    p_report.add_argument("--format", choices=("html", "junit", "md", "json"), default="html")
    p_report.add_argument(
        "-o", "--output", type=Path, default=None, metavar="FILE", help="default: stdout"
    )

    p_merge = sub.add_parser("merge", help="join shard reports into one report")
    p_merge.add_argument("reports", nargs="+", type=Path, metavar="REPORT.json")
    _add_report_arguments(p_merge)
    p_merge.add_argument("--quiet", action="store_true", help="no summary")

    p_obs = sub.add_parser("observe", help="run scenarios once on one target, print observations")
    p_obs.add_argument("--target", default="stdlib", metavar="SPEC")
    p_obs.add_argument("--select", action="append", default=[], metavar="GLOB")
    from harness.fuzz.cli import add_fuzz_parser, add_replay_parser

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


def default_baseline(targets: list[Target]) -> Target:
    """The stdlib, under the targets' interpreter when they all share one."""
    pythons = {t.python for t in targets}
    stdlib = parse_target("stdlib")
    return stdlib.with_python(pythons.pop()) if len(pythons) == 1 else stdlib


def _report_dir(args: argparse.Namespace) -> Path:
    """``--report-dir``, or ``./reports`` checked as ``--report-dir`` would be."""
    if args.report_dir is not None:
        return args.report_dir
    default = default_report_dir()
    try:
        return report_dir_argument(str(default))
    except argparse.ArgumentTypeError as exc:
        raise UsageError(f"argument --report-dir (default ./reports): {exc}")


def _expectations(args: argparse.Namespace) -> Expectations | None:
    return Expectations.load(args.expect) if args.expect is not None else None


def _command(argv: list[str] | None) -> list[str]:
    """The command line as a user would type it again."""
    return ["python", "-m", "harness", *(sys.argv[1:] if argv is None else argv)]


def cmd_run(args: argparse.Namespace, argv: list[str] | None = None) -> int:
    """``run``: every selected scenario against every target, compared with the baseline.

    With ``--python`` the targets and the baseline run under each interpreter in turn
    (one engine each), and the report holds the whole grid. With ``--shard K/N`` only that
    share of the selection runs. SIGINT or SIGTERM stops the engine; the report then has
    what finished and the exit status is 130 or 143.
    """
    if args.jobs < 1:
        raise UsageError(f"--jobs={args.jobs}: must be 1 or more")
    if args.retries < 0:
        raise UsageError(f"--retries={args.retries}: must be 0 or more")
    if args.durations is not None and args.shard is None:
        raise UsageError("--durations balances shards: give --shard K/N with it")
    report_dir = _report_dir(args)
    expectations = _expectations(args)
    targets = [parse_target(t) for t in (args.target or ["reference"])]
    baseline = default_baseline(targets) if args.baseline is None else parse_target(args.baseline)
    names = [t.name for t in targets] + [baseline.name]
    if len(set(names)) != len(names):
        raise UsageError(f"target names must differ (got {', '.join(names)}): give name=...")
    grid: list[tuple[str, str | None]] = [("", None)]
    if args.python is not None:
        from harness import grid as grids

        grid = list(grids.resolve(args.python))
    chosen = select_scenarios(args.select)
    shard_info = None
    if args.shard is not None:
        k, n = shards.parse_shard(args.shard)
        durations = None
        if args.durations is not None:
            try:
                durations = shards.durations_of(json_report.load(args.durations))
            except (OSError, ValueError, KeyError) as exc:
                raise UsageError(f"--durations {args.durations}: not a readable report ({exc})")
        selected = shards.select(chosen, [s.id for s in chosen], k, n, durations)
        shard_info = {
            "index": k,
            "count": n,
            "scenarios": len(selected),
            "of": len(chosen),
            "balanced_by": str(args.durations) if args.durations else None,
        }
        chosen = selected
    where = f" under {', '.join(label for label, _ in grid)}" if args.python else ""
    share = f" (shard {args.shard})" if args.shard else ""
    print(
        f"running {len(chosen)} scenarios{share}: {', '.join(t.name for t in targets)} "
        f"against {baseline.name}{where}, {args.jobs} at a time",
        file=sys.stderr,
    )
    started = time.monotonic()
    descriptions = {s.id: s.description for s in chosen}
    progress = Progress(len(chosen) * len(grid), verbose=args.verbose, quiet=args.quiet)
    rows: list[Row] = []
    described: list[dict[str, Any]] = []
    interrupted = None
    for label, python in grid:
        these = [t.with_python(python) for t in targets] if python else targets
        base = baseline.with_python(python) if python else baseline
        described += [dict(t.describe(), role="target", interpreter=label) for t in these]
        described.append(dict(base.describe(), role="baseline", interpreter=label))
        progress.label = label
        engine = Engine(
            these,
            base,
            Settings(jobs=args.jobs, retries=args.retries, fork_server=args.fork_server),
            progress=progress,
        )
        results = trio.run(engine.run, chosen)
        # Outside a grid a column is a target's interpreter version, known even for a
        # result that has none (a server that never started).
        labels = {t.name: label or _version_label(t.python) for t in [*these, base]}
        rows += [
            Row.from_result(r, descriptions.get(r.scenario, ""), labels.get(r.target, label))
            for r in results
        ]
        interrupted = getattr(engine, "interrupted", None)
        if interrupted:
            break
    progress.close()
    for d in described:
        if not d["interpreter"]:
            d.pop("interpreter")
    return finish(
        rows,
        kind="run",
        targets=described,
        report_dir=report_dir,
        duration=time.monotonic() - started,
        command=_command(argv),
        extra={"shard": shard_info} if shard_info else None,
        expectations=expectations,
        interrupted=interrupted,
        junit_path=args.junit,
        html_path=args.html,
    )


def _version_label(python: str) -> str:
    """``3.11.7`` for an interpreter ("" when it cannot say)."""
    from harness.targets import interpreter_version

    try:
        return ".".join(str(part) for part in interpreter_version(python))
    except (OSError, ValueError, subprocess.SubprocessError):
        return ""


def cmd_report(args: argparse.Namespace) -> int:
    """``report``: render an existing ``report.json`` as HTML, JUnit, Markdown (or JSON)."""
    from harness.reports import html_report, junit, markdown

    try:
        report = json_report.load(args.report)
    except (OSError, ValueError) as exc:
        raise UsageError(f"{args.report}: cannot read it as a report ({exc})")
    renderers = {
        "html": html_report.render,
        "junit": junit.render,
        "md": markdown.render,
        "json": lambda r: json.dumps(r, indent=1, ensure_ascii=False) + "\n",
    }
    text = renderers[args.format](report)
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
        print(f"{args.format}: {args.output}", file=sys.stderr)
    return ExitCode.OK


def cmd_merge(args: argparse.Namespace, argv: list[str] | None = None) -> int:
    """``merge``: join shard (or per-interpreter) reports into one, with every format.

    The exit status is the joined report's, as ``run`` would give for the whole: a CI
    merge job fails when any shard found something.
    """
    report_dir = _report_dir(args)
    rows, info = shards.merge(args.reports)
    expectations = _expectations(args) or info["expectations"]
    if info["missing_shards"]:
        print(
            f"merge: warning: shard(s) {', '.join(info['missing_shards'])} not given",
            file=sys.stderr,
        )
    return finish(
        rows,
        kind=info["kind"],
        targets=info["targets"],
        report_dir=report_dir,
        duration=info["duration"],
        command=_command(argv),
        extra={"shards": info["shards"], "missing_shards": info["missing_shards"]},
        expectations=expectations,
        interrupted=info["interrupted"],
        junit_path=args.junit,
        html_path=args.html,
        check_leftovers=False,
        quiet=args.quiet,
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
        if args.command == "list":
            return cmd_list(args)
        if args.command == "run":
            return cmd_run(args, argv)
        if args.command == "report":
            return cmd_report(args)
        if args.command == "merge":
            return cmd_merge(args, argv)
        if args.command == "observe":
            return cmd_observe(args)
        if args.command in ("fuzz", "replay"):
            from harness.fuzz import cli as fuzz_cli

            return fuzz_cli.cmd_fuzz(args) if args.command == "fuzz" else fuzz_cli.cmd_replay(args)
        raise UsageError(f"unknown command {args.command!r}")
    except UsageError as exc:
        print(f"python -m harness: error: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    except HarnessError as exc:
        print(f"python -m harness: harness error: {exc}", file=sys.stderr)
        return ExitCode.INTERNAL
    except KeyboardInterrupt:
        # Ctrl-C outside the engine (which stops itself and reports): no report to write.
        print("interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED_SIGINT
    except Exception:  # a defect of the harness itself, never "differences found"
        traceback.print_exc()
        print(
            "python -m harness: internal error (the traceback above is the harness's own "
            "defect; please report it)",
            file=sys.stderr,
        )
        return ExitCode.INTERNAL
