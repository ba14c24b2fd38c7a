"""Memory of long fuzz campaigns: the harness process's RSS over a run of each fuzzer.

Run by hand: ``python benchmarks/bench_fuzz_memory.py [--minutes M] [--every S]
[--fuzzer differential|handler]... [--family F] [--batch]``. Each fuzzer runs as the command a user
runs (``python -m harness fuzz ...``, reference against the stdlib for the differential
fuzzer, in batch mode with ``--batch``; ``--handler`` over the line echo handler ``LineEcho`` in a
``ThreadingTCPServer`` for the handler fuzzer) for ``--minutes`` (default 10); every
``--every`` seconds (default 30) the RSS of that process and the cases so far (from its
``progress.json``) are sampled. Printed per fuzzer: the curve, one point per sample; the
growth after the first minute; the rate; and, for the handler fuzzer, whether it reaches
``HANDLER_GOAL`` cases per second.

The goals (issue 10): at most ``RSS_LIMIT`` bytes, no growth after the first minute (a
least-squares trend of at most ``FLAT_TREND`` MB per minute over the samples after it). On a
machine others share the rate follows their load; the load average is printed with it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
RSS_LIMIT = 250 << 20
HANDLER_GOAL = 500
#: Growth after the first minute, in MB per minute, that still counts as flat: 0.25 is
#: 2.5 MB over a 10-minute run, 15 MB over an hour.
FLAT_TREND = 0.25
LINE_HANDLER = "scenarios.handlers.fuzz_handlers:LineEcho"


def command(
    fuzzer: str, family: str, seconds: float, report_dir: str, batch: bool = False
) -> list[str]:
    """The ``fuzz`` command line of one fuzzer."""
    base = [sys.executable, "-m", "harness", "fuzz", "--duration", f"{seconds:g}", "--quiet"]
    base += ["--report-dir", report_dir]
    if fuzzer == "handler":
        return [*base, "--handler", LINE_HANDLER, "--server", "ThreadingTCPServer"]
    return [*base, "--family", family, *(["--batch"] if batch else [])]


def _cases(report_dir: str) -> int | None:
    try:
        return int(json.loads((Path(report_dir) / "progress.json").read_text())["cases"])
    except (OSError, ValueError, KeyError):
        return None


def sample_run(
    fuzzer: str, family: str, minutes: float, every: float, batch: bool = False
) -> dict[str, object]:
    """Run one fuzzer for ``minutes``; its curve of ``(seconds, rss, cases)`` and totals."""
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen(
            command(fuzzer, family, minutes * 60, tmp, batch),
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started = time.monotonic()
        watched = psutil.Process(proc.pid)
        curve: list[tuple[float, int, int | None]] = []
        cpu = 0.0
        try:
            while proc.poll() is None:
                try:
                    rss = watched.memory_info().rss
                    times = watched.cpu_times()
                    cpu = times.user + times.system
                except psutil.NoSuchProcess:
                    break
                curve.append((time.monotonic() - started, rss, _cases(tmp)))
                try:
                    proc.wait(timeout=every)
                except subprocess.TimeoutExpired:
                    pass
        finally:
            if proc.poll() is None:
                proc.terminate()
            proc.wait(timeout=60)
        final = json.loads((Path(tmp) / "progress.json").read_text())
        kept = None
        if proc.returncode not in (0, None):
            # Something was found (or went wrong): the report and reproducers are kept.
            kept = tempfile.mkdtemp(prefix="bench-fuzz-memory-")
            shutil.copytree(tmp, kept, dirs_exist_ok=True)
    return {
        "kept": kept,
        "curve": curve,
        "final": final,
        "load": load,
        "status": proc.returncode,
        "cpu": cpu,
        "load_end": os.getloadavg()[0],
    }


def _slope(points: list[tuple[float, int]]) -> float:
    """The least-squares slope of ``(x, y)`` points (0 for fewer than two)."""
    if len(points) < 2:
        return 0.0
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread if spread else 0.0


def report(fuzzer: str, result: dict[str, object]) -> bool:
    """Print one fuzzer's curve and verdicts; whether it met the goals."""
    curve = result["curve"]
    final = result["final"]
    assert isinstance(curve, list) and isinstance(final, dict)
    print(f"\n== {fuzzer} (load average at start {result['load']:.1f}, exit {result['status']})")
    if result["kept"]:
        print(f"(the run's report directory is kept in {result['kept']})")
    print(f"{'seconds':>8} {'RSS MB':>8} {'cases':>10}")
    for seconds, rss, cases in curve:
        print(f"{seconds:8.0f} {rss / 2**20:8.1f} {cases if cases is not None else '-':>10}")
    after = [rss for seconds, rss, _ in curve if seconds >= 60]
    peak = max(int(final["rss_max_bytes"]), *(rss for _, rss, _ in curve))
    growth = (after[-1] - after[0]) / 2**20 if len(after) >= 2 else 0.0
    trend = _slope([(s, rss) for s, rss, _ in curve if s >= 60]) * 60 / 2**20
    rate = float(final["rate"])
    print(
        f"cases {final['cases']} in {final['run_seconds']} s ({rate:.0f}/s); "
        f"RSS peak {peak / 2**20:.1f} MB (limit {RSS_LIMIT >> 20}); "
        f"after the first minute {growth:+.1f} MB"
        + (
            f" (between {min(after) / 2**20:.1f} and {max(after) / 2**20:.1f} MB; "
            f"trend {trend:+.2f} MB per minute)"
            if after
            else ""
        )
    )
    cpu = float(result["cpu"])  # type: ignore[arg-type]
    cases = max(1, int(final["cases"]))
    print(
        f"harness CPU {cpu:.1f} s, {1000 * cpu / cases:.2f} ms per case "
        f"(the rate the harness alone allows: {cases / max(cpu, 1e-9):.0f}/s); "
        f"load average at the end {result['load_end']:.1f}"
    )
    # Flat: no trend (a run's RSS moves in a band as cases of all sizes come and go).
    ok = peak <= RSS_LIMIT and trend <= FLAT_TREND
    if fuzzer == "handler":
        print(f"handler rate goal {HANDLER_GOAL}/s: {'met' if rate >= HANDLER_GOAL else 'NOT met'}")
        ok = ok and rate >= HANDLER_GOAL
    return ok


def main() -> None:
    """Parse the arguments, run each fuzzer, print the curves."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--every", type=float, default=30.0, help="seconds between samples")
    parser.add_argument(
        "--fuzzer", action="append", choices=("differential", "handler"), default=None
    )
    parser.add_argument("--family", default="http", help="the differential fuzzer's family")
    parser.add_argument(
        "--batch", action="store_true", help="the differential fuzzer in batch mode"
    )
    args = parser.parse_args()
    # SIGTERM as Ctrl-C: the run being sampled is stopped (cleanly) on the way out.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))
    ok = True
    for fuzzer in args.fuzzer or ["differential", "handler"]:
        result = sample_run(fuzzer, args.family, args.minutes, args.every, args.batch)
        name = f"{fuzzer} --family {args.family}" + (" --batch" if args.batch else "")
        ok = report(fuzzer if fuzzer == "handler" else name, result) and ok
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
