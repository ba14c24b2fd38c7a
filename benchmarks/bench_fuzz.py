"""Differential fuzzing speed: cases per second, real loopback sockets and batch mode.

Run by hand: ``python benchmarks/bench_fuzz.py [--duration S] [--family http]``. Fuzzes the
stdlib against itself (so nothing is found and every case runs to the end) for each mode
and prints cases per second. A case is one client behaviour (bytes, schedule, ending) run
against both servers and compared; cases are counted once (a case derived twice, or one
that batch mode cannot tell from another, runs and counts once).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.fuzz.differential import FuzzConfig, fuzz
from harness.targets import parse_target


def main() -> None:
    """Measure and print cases per second in both modes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--family", default="http")
    args = parser.parse_args()
    for batch in (False, True):
        with tempfile.TemporaryDirectory() as tmp:
            config = FuzzConfig(
                target=parse_target("name=again,modules=stdlib"),
                baseline=parse_target("stdlib"),
                family=args.family,
                duration=args.duration,
                report_dir=Path(tmp),
                batch=batch,
            )
            outcome = fuzz(config)
        mode = "batch (socketpairs in-process)" if batch else "real loopback sockets"
        rate = outcome.cases / outcome.seconds
        print(
            f"{args.family} {mode}: {outcome.cases} differential cases in "
            f"{outcome.seconds:.1f} s = {rate:.0f} cases/s "
            f"({outcome.examples} hypothesis examples)"
        )


if __name__ == "__main__":
    main()
