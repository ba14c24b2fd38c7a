"""Differential fuzzing speed: cases per second, over sockets and in batch mode, by family.

Run by hand: ``python benchmarks/bench_fuzz.py [--duration S] [--family F]... [--mode M]...``.
Fuzzes the stdlib against itself (so nothing is found and every case runs to the end) and
prints, per family and mode: cases per second of wall time, and the CPU each case cost
the harness process and the two server processes. A case is one client behaviour (bytes,
schedule, ending) run against both servers and compared; it is counted once (a case
derived twice, or one that batch mode cannot tell from another, runs and counts once).

On a machine others share, wall-clock rates follow their load; the CPU per case does not,
so it is the figure to compare between two versions of the fuzzer. The load average at the
start of each measurement is printed with it.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.fuzz.differential import FuzzConfig, fuzz
from harness.targets import parse_target

#: The figures the issue asks for (cases per second), by (family, mode).
GOALS = {
    ("http-parser", "sockets"): 1500,
    ("http-parser", "batch"): 10000,
    ("http-files", "sockets"): 800,
}


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def measure(family: str, batch: bool, duration: float) -> dict[str, float]:
    """One run of ``duration`` seconds; its figures."""
    load = os.getloadavg()[0]
    own, servers = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN)
    with tempfile.TemporaryDirectory() as tmp:
        config = FuzzConfig(
            target=parse_target("name=again,modules=stdlib"),
            baseline=parse_target("stdlib"),
            family=family,
            duration=duration,
            report_dir=Path(tmp),
            batch=batch,
        )
        outcome = fuzz(config)
    cases = max(1, outcome.cases)
    return {
        "cases": outcome.cases,
        "seconds": outcome.seconds,
        "rate": outcome.cases / outcome.seconds,
        "harness_ms": 1000 * (_cpu(resource.RUSAGE_SELF) - own) / cases,
        "servers_ms": 1000 * (_cpu(resource.RUSAGE_CHILDREN) - servers) / cases,
        "load": load,
        "examples": outcome.examples,
    }


def main() -> None:
    """Measure and print each family in each mode."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument(
        "--family", action="append", default=[], help="default: http-parser, http-files"
    )
    parser.add_argument("--mode", action="append", default=[], choices=("sockets", "batch"))
    args = parser.parse_args()
    for family in args.family or ["http-parser", "http-files"]:
        for mode in args.mode or ["sockets", "batch"]:
            got = measure(family, mode == "batch", args.duration)
            goal = GOALS.get((family, mode))
            print(
                f"{family:<12} {mode:<8} {got['cases']:>7} cases in {got['seconds']:5.1f} s = "
                f"{got['rate']:6.0f} cases/s"
                + (f" (goal {goal})" if goal else "")
                + f"; CPU per case: harness {got['harness_ms']:.3f} ms, servers "
                f"{got['servers_ms']:.3f} ms; load {got['load']:.1f}; {got['examples']} examples",
                flush=True,
            )


if __name__ == "__main__":
    main()
