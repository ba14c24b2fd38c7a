"""Catalog run time with fork servers and without, measured in one run.

Run by hand: ``python benchmarks/bench_catalog.py [--select GLOB]... [--jobs N] [--starts N]``.
Runs the selected catalog (all of it by default), the reference against the stdlib as
``python -m harness run`` does, once with fork servers and once spawning every server
process, and prints both times, their ratio and whether the verdicts agree; then the cost of
starting one agent (start to ``ready``, one at a time) each way. On a machine shared with
other work only the ratios mean something.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.engine import Engine, Settings
from harness.forkservers import ForkServerPool
from harness.host import AgentProcess, leftovers, make_workdir
from harness.scenario import ServerSpec
from harness.targets import BUILTIN
from scenarios import select


def run_catalog(patterns: list[str], jobs: int, fork_server: bool) -> tuple[float, dict, Engine]:
    """One catalog run; its wall time, verdicts by (scenario, target) and engine."""
    engine = Engine(
        [BUILTIN["reference"]], BUILTIN["stdlib"], Settings(jobs=jobs, fork_server=fork_server)
    )
    chosen = select(patterns)
    started = time.monotonic()
    results = trio.run(engine.run, chosen)
    elapsed = time.monotonic() - started
    return elapsed, {(r.scenario, r.target): r.verdict for r in results}, engine


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
    parser.add_argument("--jobs", type=int, default=min(8, 2 * (os.cpu_count() or 2)))
    parser.add_argument("--starts", type=int, default=20, help="agents per start-cost sample")
    args = parser.parse_args()

    forked_time, forked_verdicts, engine = run_catalog(args.select, args.jobs, True)
    pool = engine.pool
    assert pool is not None
    spawned_time, spawned_verdicts, _ = run_catalog(args.select, args.jobs, False)
    scenarios = len({scenario for scenario, _ in forked_verdicts})
    print(f"{scenarios} scenarios, reference against stdlib, {args.jobs} at a time:")
    print(
        f"  with fork servers:    {forked_time:6.1f} s "
        f"({pool.forked} agents forked, {pool.declined} spawned)"
    )
    print(f"  without (spawn all):  {spawned_time:6.1f} s")
    print(f"  ratio: {spawned_time / forked_time:.2f}x faster with fork servers")
    differ = sorted(k for k in forked_verdicts if forked_verdicts[k] != spawned_verdicts.get(k))
    counts = collections.Counter(forked_verdicts.values())
    print(f"  verdicts: {dict(counts)}; differing between the two runs: {differ or 'none'}")

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
