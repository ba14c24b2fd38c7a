"""The engine's verdict paths, end to end through ``observe``, without a process.

A fake agent stands in for the server process: commands go to a fake server over a trio
memory channel, and its events come back over another, as they would over the agent's
pipes. Each fake server is a small async function of the target's name and the number of
times it has been started, so a test can make a target answer differently, hang, break an
invariant, fail to start, or fail only on a rerun, for the baseline as well.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

from harness.engine import Engine, Settings, observe
from harness.errors import TargetDidNotStart
from harness.scenario import SLOW, Known, Scenario, ServerSpec
from harness.targets import Target

BASE = Target("stdlib")
MINE = Target("mine", (("socketserver", "mine.py"),))

Reply = Callable[[str, int], Awaitable[Any]]


class FakeAgent:
    """The parts of ``harness.host.AgentProcess`` that the engine and ``Run`` use."""

    replies: dict[str, Reply] = {}
    starts: dict[str, int] = {}

    def __init__(self, target: Target, spec: dict, workdir: Path, pool=None) -> None:
        self.target = target
        self.workdir = workdir
        self.events: list[dict] = []
        self._changed = trio.Event()
        self._ids = itertools.count(1)
        self.pid = 0
        self.started = False
        self._inbox: trio.MemorySendChannel | None = None

    async def start(self, nursery: trio.Nursery) -> None:
        name = self.target.name
        self.starts[name] = self.starts.get(name, 0) + 1
        nth = self.starts[name]
        commands_in, commands_out = trio.open_memory_channel(10)
        events_in, events_out = trio.open_memory_channel(10)
        self._inbox = commands_in
        self.started = True
        nursery.start_soon(self._serve, commands_out, events_in, nth)
        nursery.start_soon(self._collect, events_out)

    async def _serve(self, commands, events, nth: int) -> None:
        reply = self.replies[self.target.name]
        async with events:
            try:
                await events.send({"ev": "ready", "python": [3, 11, 7]})
            except TargetDidNotStart:
                return
            async for command in commands:
                value = await reply(command.get("method", ""), nth)
                await events.send({"ev": "command:returned", "id": command["id"], "value": value})

    async def _collect(self, events) -> None:
        async for event in events:
            self.events.append(event)
            self._changed.set()
            self._changed = trio.Event()

    async def wait_ready(self, timeout: float) -> dict:
        probe = await self.replies[self.target.name]("<start>", self.starts[self.target.name])
        if probe == "nostart":
            raise TargetDidNotStart("RuntimeError: boom at import")
        event = await self.wait_for(lambda e: e["ev"] == "ready", timeout)
        assert event is not None
        return event

    async def wait_for(self, predicate, timeout: float, start: int = 0):
        with trio.move_on_after(timeout):
            while True:
                for event in self.events[start:]:
                    if predicate(event):
                        return event
                await self._changed.wait()
        return None

    async def wait_command(self, cid: int, timeout: float):
        return await self.wait_for(lambda e: e.get("id") == cid, timeout)

    def command(self, op: str, *, thread: bool = False, **fields: Any) -> int:
        cid = next(self._ids)
        assert self._inbox is not None
        self._inbox.send_nowait({"op": op, "id": cid, **fields})
        return cid

    def sample(self, tree: bool = True) -> dict[str, int]:
        return {"alive": 1, "threads": 1, "fds": 4, "children": 0, "zombies": 0}

    def alive(self) -> bool:
        return True

    async def stop(self) -> None:
        if self._inbox is not None:
            await self._inbox.aclose()

    def read_stdout(self) -> str:
        return ""

    def read_stderr(self) -> str:
        return ""


async def ask_ping(run) -> None:
    """Ask the server once; record its answer; the answer must not be 'broken'."""
    outcome = await run.call("ping", timeout=10)
    answer = outcome.get("returned")
    run.record("answer", answer)
    run.expect(answer != "broken", "the server must not answer 'broken'")


def a_scenario(**kwargs: Any) -> Scenario:
    return Scenario(
        id="fake/engine/ping",
        function=ask_ping,
        server=ServerSpec(),
        description="asks the fake server once",
        deadline=kwargs.pop("deadline", 5.0),
        **kwargs,
    )


def answers(*per_start: Any) -> Reply:
    """A fake server that answers ``per_start[n-1]`` when started for the n-th time (the
    last one from then on); ``"hang"`` never answers, ``"nostart"`` never gets ready."""

    async def reply(method: str, nth: int) -> Any:
        value = per_start[min(nth, len(per_start)) - 1]
        if method == "<start>":
            return value
        if value == "hang":
            await trio.sleep_forever()
        return value

    return reply


def run_engine(base: Reply, mine: Reply, *, retries: int = 1, **scenario_kwargs: Any):
    FakeAgent.replies = {"stdlib": base, "mine": mine}
    FakeAgent.starts = {}
    engine = Engine(
        [MINE],
        BASE,
        Settings(jobs=2, retries=retries, fork_server=False),
        observer=functools.partial(observe, agent_factory=FakeAgent),
    )
    results = trio.run(engine.run, [a_scenario(**scenario_kwargs)])
    return {r.target: r for r in results}, engine


def test_same():
    results, _ = run_engine(answers("pong"), answers("pong"))
    assert results["mine"].verdict == "same"
    assert FakeAgent.starts == {"stdlib": 1, "mine": 1}  # nothing rerun


def test_a_difference_that_repeats_is_differs_after_a_rerun():
    results, _ = run_engine(answers("pong"), answers("PONG"))
    mine = results["mine"]
    assert mine.verdict == "differs" and mine.differing_keys == ["facts.answer"]
    assert "\n-pong\n+PONG" in mine.diff
    assert FakeAgent.starts == {"stdlib": 2, "mine": 2}


def test_a_difference_that_does_not_repeat_is_flaky():
    results, _ = run_engine(answers("pong"), answers("PONG", "pong"))
    assert results["mine"].verdict == "flaky"


def test_a_difference_whose_rerun_hangs_is_hang_not_differs():
    results, _ = run_engine(answers("pong"), answers("PONG", "hang"), deadline=0.5)
    assert results["mine"].verdict == "hang"
    assert "could not be confirmed" in results["mine"].reason


def test_an_explained_difference_is_not_rerun():
    known = (Known(("facts.answer",), "answers in capitals", targets=("mine",)),)
    results, _ = run_engine(answers("pong"), answers("PONG"), known=known)
    assert results["mine"].verdict == "explained"
    assert results["mine"].reason == "answers in capitals"
    assert FakeAgent.starts == {"stdlib": 1, "mine": 1}


def test_a_target_that_hangs_is_hang():
    results, _ = run_engine(answers("pong"), answers("hang"), deadline=0.5)
    assert results["mine"].verdict == "hang"
    assert "0.5 s" in results["mine"].reason


def test_a_broken_invariant_is_fails_on_the_target():
    results, _ = run_engine(answers("pong"), answers("broken"))
    assert results["mine"].verdict == "fails"
    assert "must not answer 'broken'" in results["mine"].reason


def test_a_target_that_does_not_start_fails_and_is_not_tried_again():
    FakeAgent.replies = {"stdlib": answers("pong"), "mine": answers("nostart")}
    FakeAgent.starts = {}
    engine = Engine(
        [MINE],
        BASE,
        Settings(jobs=1, fork_server=False),
        observer=functools.partial(observe, agent_factory=FakeAgent),
    )
    scenarios = [
        Scenario(f"fake/engine/ping{n}", ask_ping, ServerSpec(), "asks once") for n in range(5)
    ]
    results = trio.run(engine.run, scenarios)
    mine = [r for r in results if r.target == "mine"]
    assert [r.verdict for r in mine] == ["fails"] * 5
    assert {r.reason for r in mine} == {"target does not start: RuntimeError: boom at import"}
    assert FakeAgent.starts["mine"] == 1  # jobs=1: the first failed start was the last
    assert engine.not_starting == {MINE: "RuntimeError: boom at import"}


def test_the_baselines_failures_are_the_baselines_rows():
    results, _ = run_engine(answers("broken"), answers("broken"))
    assert results["stdlib"].verdict == "fails"
    assert results["mine"].verdict == "fails"
    results, _ = run_engine(answers("hang"), answers("pong"), deadline=0.5)
    assert results["stdlib"].verdict == "hang"
    # the target finished where the baseline hung, on both runs: that is a difference
    assert results["mine"].verdict == "differs"
    assert "baseline did not finish" in results["mine"].reason


def test_a_baseline_that_does_not_start_leaves_nothing_to_compare():
    results, _ = run_engine(answers("nostart"), answers("pong"))
    assert results["stdlib"].verdict == "fails"
    assert "does not start" in results["stdlib"].reason
    assert "mine" not in results  # not compared, not blamed


def test_a_scenario_that_raises_is_error_the_harnesss_own():
    async def broken(run):
        raise KeyError("a scenario bug")

    FakeAgent.replies = {"stdlib": answers("pong"), "mine": answers("pong")}
    FakeAgent.starts = {}
    engine = Engine(
        [MINE],
        BASE,
        Settings(jobs=2, fork_server=False),
        observer=functools.partial(observe, agent_factory=FakeAgent),
    )
    scenario = Scenario("fake/engine/broken", broken, ServerSpec(), "raises")
    results = {r.target: r for r in trio.run(engine.run, [scenario])}
    assert results["stdlib"].verdict == "error"
    assert "KeyError" in results["stdlib"].reason


def test_scenarios_start_slow_ones_first_then_in_catalog_order_within_jobs():
    started: list[str] = []
    running = 0
    most = 0

    async def recording(scenario, target, pool):
        nonlocal running, most
        if target is BASE:
            started.append(scenario.id)
        running += 1
        most = max(most, running)
        await trio.sleep(0.01)
        running -= 1
        return await observe(scenario, target, pool, agent_factory=FakeAgent)

    FakeAgent.replies = {"stdlib": answers("pong"), "mine": answers("pong")}
    FakeAgent.starts = {}
    engine = Engine([MINE], BASE, Settings(jobs=3, fork_server=False), observer=recording)
    scenarios = [
        Scenario(f"fake/engine/ping{n}", ask_ping, ServerSpec(), "asks once", tags=tags)
        for n, tags in enumerate([(), (), (SLOW,), (), (), (SLOW,), ()] * 3)
    ]
    ids = [s.id for s in scenarios]
    slow = [s.id for s in scenarios if SLOW in s.tags]
    for _ in range(3):  # trio sometimes runs tasks started together in reverse
        started.clear()
        results = trio.run(engine.run, scenarios)
        assert [r.scenario for r in results if r.target == "mine"] == ids  # catalog order
        # Three workers take scenarios from one queue: each starts at most two places
        # away from its place in the start order.
        expected = slow + [i for i in ids if i not in slow]
        assert sorted(started) == sorted(expected)
        assert all(abs(started.index(i) - expected.index(i)) <= 2 for i in ids)
        assert set(started[: len(slow)]) <= set(expected[: len(slow) + 2])
        assert most <= 3
