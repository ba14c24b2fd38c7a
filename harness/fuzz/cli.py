"""``python -m harness fuzz`` and ``python -m harness replay``: arguments, reports, exit codes.

Exit status as for ``run``: 0 nothing found (or only explained differences), 1 a
difference or a handler defect was found (or a replayed case still shows one), 2 bad usage,
3 the harness failed (or left processes behind). A campaign stopped by SIGTERM or SIGINT
ends cleanly (``harness.fuzz.campaign``) and exits 0 or 1 by what it found, like one whose
budget ran out; ``fuzz --resume REPORT_DIR`` goes on from it.

This module imports the fuzzer only when a command runs, so that building the parser
costs nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from harness.errors import UsageError
from harness.host import leftovers
from harness.reports import Finding, Row, default_report_dir, finish, report_dir_argument
from harness.targets import Target, parse_target

#: ``harness.fuzz.case.FAMILY_CHOICES`` and ``harness.fuzz.transports.TRANSPORTS`` (a test
#: checks that they agree), spelled out so that the parser imports neither.
FAMILIES = ("http", "http-parser", "http-files", "http-errors", "http-cgi", "stream", "datagram")
TRANSPORTS = ("tcp", "tcp6", "udp", "unix", "unix-datagram")


def add_fuzz_parser(sub: Any) -> None:
    """The ``fuzz`` subcommand's arguments."""
    p = sub.add_parser("fuzz", help="differential fuzzing (or fuzz your own handler)")
    p.add_argument("--target", default="reference", metavar="SPEC")
    p.add_argument(
        "--baseline",
        default=None,
        metavar="SPEC",
        help="default: the stdlib, under the target's interpreter",
    )
    p.add_argument(
        "--family",
        default="http",
        choices=FAMILIES,
        help="what to fuzz; http is every http-* family, mixed (default)",
    )
    p.add_argument(
        "--transport",
        choices=TRANSPORTS,
        default=None,
        help="how clients connect (default: tcp, udp for datagrams; with --handler, what "
        "the server class implies); http families: tcp or tcp6",
    )
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--duration", type=float, default=None, metavar="S", help="default 30")
    budget.add_argument(
        "--max-cases",
        type=int,
        default=None,
        metavar="N",
        help="stop after about N cases, counted as the progress line counts them (a "
        "finding's minimizing and confirming runs a few more)",
    )
    budget.add_argument(
        "--max-examples",
        type=int,
        default=None,
        metavar="N",
        help="stop after N hypothesis examples; in differential fuzzing an example is one "
        "drawn case plus the cases derived from it (about 250 in socket mode, 1000 in "
        "batch mode, fewer for http-cgi), in handler fuzzing a drawn case and 31 seeded ones",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--report-dir", type=report_dir_argument, default=None, help="default: ./reports/fuzz"
    )
    p.add_argument(
        "--database",
        default=None,
        metavar="redis://HOST:PORT/N | DIR",
        help="hypothesis's example database: shared in Redis by several machines' campaigns, "
        "or a directory (default: hypothesis/ in the report directory)",
    )
    p.add_argument("--batch", action="store_true", help="feed cases in-process over socketpairs")
    p.add_argument("--idle", type=float, default=0.5, help="seconds of silence that end a read")
    p.add_argument("--shrink-seconds", type=float, default=30.0)
    p.add_argument("--max-findings", type=int, default=8, help="stop after this many")
    p.add_argument("--handler", metavar="MODULE:CLASS", help="fuzz this handler instead")
    p.add_argument("--server", default=None, metavar="SERVERCLASS", help="with --handler")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument(
        "--resume",
        type=Path,
        default=None,
        metavar="REPORT_DIR",
        help="go on with the campaign of REPORT_DIR (its progress.json): the same targets "
        "and settings, the next seeds, its example database replayed first; the reports "
        "go to REPORT_DIR; a budget given here replaces the old one (--max-cases counts "
        "the whole campaign)",
    )


#: The ``fuzz`` arguments a campaign keeps in progress.json, for ``--resume``.
SETTINGS = (
    "target",
    "baseline",
    "family",
    "transport",
    "duration",
    "max_cases",
    "max_examples",
    "seed",
    "database",
    "batch",
    "idle",
    "shrink_seconds",
    "max_findings",
    "handler",
    "server",
)
_BUDGETS = ("duration", "max_cases", "max_examples")


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    return {name: getattr(args, name) for name in SETTINGS}


def _resume(args: argparse.Namespace) -> dict[str, Any] | None:
    """With ``--resume``: ``args`` set as the campaign's were (a budget given now wins;
    the report directory is the campaign's); its progress. Else None."""
    if args.resume is None:
        return None
    from harness.fuzz.campaign import load_progress

    previous = load_progress(args.resume)
    budget_given = any(getattr(args, name) is not None for name in _BUDGETS)
    for name, value in previous["settings"].items():
        if name in SETTINGS and not (budget_given and name in _BUDGETS):
            setattr(args, name, value)
    if args.report_dir is not None and args.report_dir.resolve() != args.resume.resolve():
        raise UsageError("--resume REPORT_DIR writes its reports there: drop --report-dir")
    args.report_dir = args.resume
    if previous.get("state") == "running":
        pid = previous.get("pid")
        if isinstance(pid, int) and _alive(pid):
            raise UsageError(f"--resume {args.resume}: its campaign is still running (pid {pid})")
    return previous


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def add_replay_parser(sub: Any) -> None:
    """The ``replay`` subcommand's arguments."""
    p = sub.add_parser("replay", help="run a saved fuzz reproducer again (in its mode)")
    p.add_argument("file", type=Path)
    p.add_argument("--target", action="append", default=[], metavar="SPEC")
    p.add_argument("--baseline", default=None, metavar="SPEC")


def _log(quiet: bool) -> Any:
    def log(line: str) -> None:
        if not quiet:
            print(line, file=sys.stderr, flush=True)

    return log


def _exit_status(found: bool) -> int:
    left = leftovers()
    if left["live"] or left["zombies"]:
        print(f"harness error: processes left behind: {left}", file=sys.stderr)
        return 3
    return 1 if found else 0


def _report_dir(args: argparse.Namespace) -> Path:
    """``--report-dir``, or ``./reports/fuzz`` checked the same way."""
    if args.report_dir is not None:
        return args.report_dir
    try:
        return report_dir_argument(str(default_report_dir("fuzz")))
    except argparse.ArgumentTypeError as exc:
        raise UsageError(f"argument --report-dir (default ./reports/fuzz): {exc}")


def _database(args: argparse.Namespace) -> str | None:
    """``--database``, checked (reachable, the client installed) before any work."""
    if args.database is None:
        return None
    from harness.fuzz.database import open_database

    open_database(args.database, Path("."))
    return args.database


def _readable(case: Any) -> str:
    """The bytes of a case as Python writes them, cut at 8 KiB."""
    chunks = [case.data] if case.data or not case.datagrams else list(case.datagrams)
    text = " | ".join(repr(c)[2:-1] for c in chunks)
    total = sum(len(c) for c in chunks)
    return text if len(text) <= 8192 else f"{text[:8192]}... ({total} bytes in all)"


def _finish(
    rows: list[Row],
    targets: list[Target],
    started: float,
    extra: dict[str, Any],
    report_dir: Path,
    kind: str,
) -> int:
    described = [dict(t.describe(), role=role) for t, role in zip(targets, ("target", "baseline"))]
    return finish(
        rows,
        kind=kind,
        targets=described,
        report_dir=report_dir,
        duration=time.monotonic() - started,
        extra=extra,
    )


def _baseline(spec: str | None, target: Target) -> Target:
    """``--baseline``, or the stdlib under the target's interpreter (as ``run`` does)."""
    if spec is not None:
        return parse_target(spec)
    from harness.cli import default_baseline

    return default_baseline([target])


def cmd_fuzz(args: argparse.Namespace) -> int:
    """``fuzz``: differential fuzzing of a target against a baseline, or of a handler."""
    previous = _resume(args)
    if args.handler:
        return _cmd_fuzz_handler(args, previous)
    if args.server:
        raise UsageError("--server is only used with --handler MODULE:CLASS")
    from harness.fuzz.differential import FuzzConfig, fuzz

    duration = args.duration
    if duration is None and args.max_examples is None and args.max_cases is None:
        duration = 30.0
    report_dir = _report_dir(args)
    database = _database(args)
    target = parse_target(args.target)
    config = FuzzConfig(
        target=target,
        baseline=_baseline(args.baseline, target),
        family=args.family,
        transport=args.transport,
        duration=duration,
        max_examples=args.max_examples,
        max_cases=args.max_cases,
        seed=args.seed,
        report_dir=report_dir,
        database=database,
        batch=args.batch,
        idle=args.idle,
        shrink_seconds=args.shrink_seconds,
        max_findings=args.max_findings,
        quiet=args.quiet,
        settings=_settings(args),
        previous=previous,
    )
    log = _log(args.quiet)
    if duration is not None:
        budget = f"{duration:g} s"
    elif args.max_cases is not None:
        budget = f"{args.max_cases} cases"
    else:
        budget = f"{args.max_examples} examples"
    log(
        f"fuzzing {config.family}: {config.target.name} against {config.baseline.name}, "
        f"{budget}, seed {config.seed}, {config.mode}"
        + (f" over {config.transport}" if config.transport else "")
        + (f", resumed at {previous.get('cases', 0)} cases" if previous else "")
    )
    started = time.monotonic()
    outcome = fuzz(config, log)
    rows = [
        _row(f, config.target.name, outcome.python)
        for f in outcome.findings + list(outcome.explained.values())
    ]
    if not rows:
        rows.append(
            Row(
                f"fuzz/{config.family}/all",
                config.target.name,
                "same",
                description=f"{outcome.cases} fuzzed cases, no difference",
                duration_s=round(outcome.seconds, 3),
                python=list(outcome.python or []),
            )
        )
    extra = {
        "fuzz": {
            "family": config.family,
            "transport": config.transport,
            "seed": config.seed,
            "mode": config.mode,
            "cases": outcome.cases,
            "examples": outcome.examples,
            "cases_per_s": _rate(outcome.cases, previous, outcome.seconds),
            "server_restarts": outcome.restarts,
            "reproducers": [str(f.path) for f in outcome.findings if f.path],
            **_campaign_fields(outcome, previous),
        }
    }
    _print_summary(outcome, previous)
    return _finish(rows, [config.target, config.baseline], started, extra, report_dir, "fuzz")


def _rate(cases: int, previous: dict[str, Any] | None, seconds: float) -> float:
    """This run's cases per second (a resumed campaign's earlier cases not counted)."""
    done = cases - int((previous or {}).get("cases", 0))
    return round(done / seconds, 1) if seconds else 0.0


def _campaign_fields(outcome: Any, previous: dict[str, Any] | None) -> dict[str, Any]:
    """The report's campaign keys: the signal that stopped it, resumption."""
    return {
        "stopped_by": outcome.stopped_by,
        "next_round": outcome.next_round,
        "resumed_from_cases": int(previous.get("cases", 0)) if previous else None,
    }


def _row(finding: Any, target: str, python: list[int]) -> Row:
    replay = f"python -m harness replay {finding.path}" if finding.path else ""
    return Row(
        scenario=f"fuzz/{finding.case.family}/{finding.case.key()}",
        target=target,
        verdict=finding.verdict,
        description=f"fuzzed case: {finding.case.describe()}",
        diff=finding.diff,
        reason=finding.reason,
        differing_keys=list(finding.keys),
        reproducer=replay,
        python=list(python or []),
        observation=finding.target_obs,
        finding=Finding(
            data=_readable(finding.case),
            replay=replay,
            schedule=finding.case.describe(),
            file=str(finding.path or ""),
        ),
    )


def _print_summary(outcome: Any, previous: dict[str, Any] | None = None) -> None:
    """What only a fuzz run has to say (the findings are in ``finish``'s summary)."""
    for issue, finding in outcome.explained.items():
        print(f"\n== explained ({issue}): {finding.reason}")
        print(f"   e.g. {finding.case.describe()}")
    rate = _rate(outcome.cases, previous, outcome.seconds)
    stopped = f", stopped by {outcome.stopped_by}" if outcome.stopped_by else ""
    print(
        f"\n{outcome.cases} cases in {outcome.seconds:.1f} s ({rate:.0f}/s){stopped}: "
        f"{len(outcome.findings)} found, {len(outcome.explained)} explained"
    )


def _cmd_fuzz_handler(args: argparse.Namespace, previous: dict[str, Any] | None = None) -> int:
    from harness.fuzz.handler import HandlerFuzzConfig, fuzz_handler

    if args.server is None:
        raise UsageError("--handler needs --server SERVERCLASS (e.g. ThreadingTCPServer)")
    if ":" not in args.handler:
        raise UsageError(f"--handler={args.handler}: expected MODULE:CLASS")
    report_dir = _report_dir(args)
    database = _database(args)
    config = HandlerFuzzConfig(
        handler=args.handler,
        server=args.server,
        target=parse_target(args.target if args.target != "reference" else "stdlib"),
        transport=args.transport,
        duration=args.duration if args.duration is not None else 30.0,
        max_examples=args.max_examples,
        max_cases=args.max_cases,
        seed=args.seed,
        report_dir=report_dir,
        database=database,
        idle=args.idle,
        shrink_seconds=args.shrink_seconds,
        max_findings=args.max_findings,
        settings=_settings(args),
        previous=previous,
    )
    started = time.monotonic()
    outcome = fuzz_handler(config, _log(args.quiet))
    rows = [
        Row(
            scenario=f"fuzz/handler/{finding.case.key()}",
            target=config.target.name,
            verdict="fails" if finding.confirmed else "flaky",
            description=f"{finding.kind}: {finding.case.describe()}",
            reason=f"{finding.kind}: {finding.detail}",
            violations=[f"{finding.kind}: {finding.detail}"],
            reproducer=f"python -m harness replay {finding.path}",
            python=list(outcome.python or []),
            finding=Finding(
                data=_readable(finding.case),
                replay=f"python -m harness replay {finding.path}",
                schedule=finding.case.describe(),
                kind=finding.kind,
                file=str(finding.path or ""),
            ),
        )
        for finding in outcome.findings
    ]
    if not rows:
        rows.append(
            Row(
                "fuzz/handler/all",
                config.target.name,
                "same",
                description=f"{outcome.cases} fuzzed cases against {config.handler}",
                duration_s=round(outcome.seconds, 3),
                python=list(outcome.python or []),
            )
        )
    extra = {
        "fuzz": {
            "handler": config.handler,
            "server": config.server,
            "transport": config.transport,
            "family": outcome.family,
            "cases": outcome.cases,
            "cases_per_s": _rate(outcome.cases, previous, outcome.seconds),
            "seed": config.seed,
            "server_restarts": outcome.restarts,
            "resources": outcome.resources,
            "findings": [
                {"kind": f.kind, "detail": f.detail, "reproducer": str(f.path)}
                for f in outcome.findings
            ],
            **_campaign_fields(outcome, previous),
        }
    }
    stopped = f", stopped by {outcome.stopped_by}" if outcome.stopped_by else ""
    print(
        f"\n{outcome.cases} cases in {outcome.seconds:.1f} s over {config.transport}{stopped}: "
        f"{len(outcome.findings)} finding(s); resources {outcome.resources}"
    )
    return _finish(rows, [config.target], started, extra, report_dir, "handler-fuzz")


def cmd_replay(args: argparse.Namespace) -> int:
    """``replay``: run a saved reproducer again, in the mode it was found in; 1 when the
    difference (or defect) is still there."""
    from harness.fuzz import reproducers

    data = reproducers.load(args.file)
    targets: list[Target] = [parse_target(t) for t in args.target]
    baseline = parse_target(args.baseline) if args.baseline else None
    if data.get("kind") == "handler":
        found = reproducers.replay_handler(data, targets[0] if targets else None)
    else:
        found = reproducers.replay_differential(data, targets or None, baseline)
    print("still there" if found else "gone")
    return _exit_status(found)
