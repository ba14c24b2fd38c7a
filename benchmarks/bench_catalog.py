"""Catalog run time with fork servers and without, measured in one run.

Run by hand: ``python benchmarks/bench_catalog.py [--select GLOB]... [--jobs N] [--starts N]``.
Runs the selected catalog (all of it by default), the reference against the stdlib, as a
user does: ``python -m harness run``, timed from the command to its report (its exit), once
with fork servers and once with ``--no-fork-server`` (every server process spawned); prints
both times, the CPU the machine spent during each, their ratio, whether
the verdicts agree and whether the fork-server run meets ``CATALOG_GOAL`` (issue 12), and
the scenarios whose ``slow`` tag disagrees with their time (a run starts the tagged ones
first: ``harness.engine.start_order``); then the cost of starting one agent (start to
``ready``, one at a time) each way. On a machine
shared with other work only the ratios mean something (and the CPU figures nothing): the
load average is printed.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.forkservers import ForkServerPool
from harness.host import AgentProcess, leftovers, make_workdir
from harness.scenario import SLOW, ServerSpec
from harness.targets import BUILTIN
from scenarios import load_catalog

ROOT = Path(__file__).resolve().parent.parent
#: Seconds the whole catalog may take, command to report, on a 2-core machine (issue 12).
CATALOG_GOAL = 20.0
#: Seconds a scenario takes from which it should be tagged ``slow``, and below which a
#: tagged one no longer needs it (the reference's time: a report has the time of each
#: target, and of a baseline only when it failed).
SLOW_FROM = 1.0
UNTAG_BELOW = 0.5

Times = dict[str, float]  # scenario -> seconds of its slowest row in the report


def run_catalog(
    patterns: list[str], jobs: int | None, fork_server: bool
) -> tuple[float, float, dict[tuple[str, str], str], Times]:
    """One ``python -m harness run``; its wall time, its CPU seconds (with everything it
    started), its verdicts by (scenario, target) and each scenario's time."""
    report_dir = Path(tempfile.mkdtemp(prefix="bench-catalog-"))
    command = [sys.executable, "-m", "harness", "run", "--quiet", "--report-dir", str(report_dir)]
    command += [arg for pattern in patterns for arg in ("--select", pattern)]
    command += ["--jobs", str(jobs)] if jobs else []
    command += [] if fork_server else ["--no-fork-server"]
    try:
        before = machine_cpu()
        started = time.monotonic()
        done = subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, check=False)
        elapsed = time.monotonic() - started
        cpu = machine_cpu() - before
        if done.returncode not in (0, 1):
            raise SystemExit(f"{' '.join(command)} exited {done.returncode}")
        rows = json.loads((report_dir / "report.json").read_text())["results"]
    finally:
        shutil.rmtree(report_dir, ignore_errors=True)
    times: Times = {}
    for r in rows:
        times[r["scenario"]] = max(times.get(r["scenario"], 0.0), float(r["duration_s"] or 0))
    return elapsed, cpu, {(r["scenario"], r["target"]): r["verdict"] for r in rows}, times


def mistagged(times: Times) -> tuple[list[str], list[str]]:
    """The scenarios to tag ``slow`` (untagged, ``SLOW_FROM`` s or more) and those whose
    tag is stale (tagged, under ``UNTAG_BELOW`` s), with their times."""
    catalog = load_catalog()
    to_tag, stale = [], []
    for sid, seconds in sorted(times.items(), key=lambda item: -item[1]):
        tagged = SLOW in catalog[sid].tags
        if not tagged and seconds >= SLOW_FROM:
            to_tag.append(f"{sid} ({seconds:.2f} s)")
        elif tagged and seconds < UNTAG_BELOW:
            stale.append(f"{sid} ({seconds:.2f} s)")
    return to_tag, stale


def machine_cpu() -> float:
    """CPU seconds the whole machine has spent busy since it started (``/proc/stat``).

    Not the command's own rusage: a fork server's agents are reaped by the kernel (the
    server ignores SIGCHLD), and the CPU of a process nobody waits for is not added to
    anyone's. So the figure is the machine's, and holds only on a machine left quiet.
    """
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    busy = sum(fields[:8]) - fields[3] - fields[4]  # all but idle and iowait
    return busy / os.sysconf("SC_CLK_TCK")


async def start_costs(count: int, forked: bool) -> list[float]:
    """Seconds from asking for an agent to its ``ready``, ``count`` times in a row."""
    spec = ServerSpec("TCPServer", handler="scenarios.handlers.stream:Echo").to_agent()
    costs = []
    async with ForkServerPool() as pool:
        if forked:  # the fork server's own start is paid once per run, not per agent
            await start_one(pool, spec)
        for _ in range(count):
            costs.append(await start_one(pool if forked else None, spec))
    return costs


async def start_one(pool: ForkServerPool | None, spec: dict) -> float:
    """Start one reference agent, wait for ``ready``, stop it; the seconds to ``ready``."""
    workdir = make_workdir()
    agent = AgentProcess(BUILTIN["reference"], spec, workdir, pool=pool)
    try:
        async with trio.open_nursery() as nursery:
            started = time.monotonic()
            try:
                await agent.start(nursery)
                await agent.wait_ready(60.0)
                elapsed = time.monotonic() - started
            finally:
                with trio.CancelScope(shield=True):
                    await agent.stop()
                nursery.cancel_scope.cancel()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if pool is not None and not agent.forked:
        raise SystemExit(f"the agent was not forked: {pool.not_forking(BUILTIN['reference'])}")
    return elapsed


def main() -> None:
    """Measure and print both catalog times, their ratio and the start costs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--select", action="append", default=[], metavar="GLOB")
    parser.add_argument("--jobs", type=int, default=None, help="default: the command's own")
    parser.add_argument("--starts", type=int, default=20, help="agents per start-cost sample")
    args = parser.parse_args()

    load = os.getloadavg()[0]
    forked_time, forked_cpu, forked_verdicts, times = run_catalog(args.select, args.jobs, True)
    spawned_time, spawned_cpu, spawned_verdicts, _ = run_catalog(args.select, args.jobs, False)
    scenarios = len({scenario for scenario, _ in forked_verdicts})
    jobs = args.jobs or "the default number of"
    print(f"{scenarios} scenarios, reference against stdlib, {jobs} server processes at a time")
    print(f"(load average at the start {load:.1f}, {os.cpu_count()} cores), command to report")
    print("(CPU: the machine's, busy, during each run):")
    print(f"  with fork servers:    {forked_time:6.1f} s  (CPU {forked_cpu:6.1f} s)")
    print(f"  without (spawn all):  {spawned_time:6.1f} s  (CPU {spawned_cpu:6.1f} s)")
    print(f"  ratio: {spawned_time / forked_time:.2f}x faster with fork servers")
    if not args.select:  # the goal is the whole catalog's
        goal = "met" if forked_time <= CATALOG_GOAL else "NOT met"
        print(f"  goal: the whole catalog in at most {CATALOG_GOAL:g} s: {goal}")
    differ = sorted(k for k in forked_verdicts if forked_verdicts[k] != spawned_verdicts.get(k))
    counts = collections.Counter(forked_verdicts.values())
    print(f"  verdicts: {dict(counts)}; differing between the two runs: {differ or 'none'}")
    to_tag, stale = mistagged(times)
    print(f"  to tag slow (the reference: {SLOW_FROM:g} s or more): {', '.join(to_tag) or 'none'}")
    print(f"  tagged slow, the reference under {UNTAG_BELOW:g} s: {', '.join(stale) or 'none'}")

    forked_costs = trio.run(start_costs, args.starts, True)
    spawned_costs = trio.run(start_costs, args.starts, False)
    forked_median = statistics.median(forked_costs)
    spawned_median = statistics.median(spawned_costs)
    print(f"start to ready, one agent at a time (median of {args.starts}):")
    print(f"  forked:  {forked_median * 1000:7.1f} ms")
    print(f"  spawned: {spawned_median * 1000:7.1f} ms")
    print(f"  ratio: {spawned_median / forked_median:.1f}x")
    left = leftovers()
    if left["live"] or left["zombies"]:
        raise SystemExit(f"processes left behind: {left}")


if __name__ == "__main__":
    main()
