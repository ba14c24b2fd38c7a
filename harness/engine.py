"""Run scenarios against targets, compare with the baseline, decide verdicts.

Each (scenario, target) pair runs in a server process of its own, at most ``jobs`` at once.
A difference is confirmed by running both sides again; one that does not repeat is
``flaky``. Invariant violations are ``fails`` on whichever target broke them, the baseline
included.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
import traceback
from collections.abc import Callable, Iterable
from typing import Any

import trio

from harness.compare import differing_keys, explain, readable_diff
from harness.errors import AgentGone, HarnessError
from harness.forkservers import ForkServerPool
from harness.host import AgentProcess, make_workdir
from harness.observation import normalize_text, sorted_lines, summarize_events
from harness.scenario import Run, Scenario
from harness.targets import Target

START_TIMEOUT = 30.0  # a cold PyPy can take seconds to import the modules


@dataclasses.dataclass
class Observed:
    """What one target did in one scenario run."""

    observation: dict[str, Any]
    violations: list[str]
    status: str  # completed | hang | error
    duration: float
    python: tuple[int, ...] = ()
    error: str = ""


@dataclasses.dataclass
class Result:
    """The verdict for one (scenario, target) pair, as written into the report."""

    scenario: str
    target: str
    verdict: str
    duration_s: float
    diff: str = ""
    reason: str = ""
    differing_keys: list[str] = dataclasses.field(default_factory=list)
    violations: list[str] = dataclasses.field(default_factory=list)
    reproducer: str = ""
    python: list[int] = dataclasses.field(default_factory=list)
    observation: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The report row."""
        return dataclasses.asdict(self)


def _normalize_output(text: str, mode: str, replacements: list[tuple[str, str]]) -> Any:
    if mode == "none":
        return None
    text = normalize_text(text, replacements)
    return sorted_lines(text) if mode == "sorted" else text


async def observe(
    scenario: Scenario, target: Target, pool: ForkServerPool | None = None
) -> Observed:
    """Run ``scenario`` once against ``target`` in a fresh server process (forked by the
    target's fork server in ``pool`` when it can be)."""
    started = time.monotonic()
    workdir = make_workdir()
    agent = AgentProcess(target, scenario.server.to_agent(), workdir, pool=pool)
    status, error, facts, violations = "completed", "", {}, []
    construct = None
    python: tuple[int, ...] = ()
    try:
        async with trio.open_nursery() as nursery:
            try:
                await agent.start(nursery)
                ready = await agent.wait_ready(START_TIMEOUT)
                if ready["ev"] == "construct:raised":
                    construct = f"{ready.get('type')}: {ready.get('message', '')}"
                else:
                    python = tuple(ready.get("python", ()))
                    run = Run(agent, ready, scenario.server)
                    run.mark_base()
                    with trio.move_on_after(scenario.deadline) as scope:
                        try:
                            await scenario.function(run)
                        except AgentGone as exc:
                            run.facts["<server process>"] = f"gone: {exc}"
                        except (OSError, trio.TooSlowError, trio.BrokenResourceError) as exc:
                            # A client operation failed: that is what the target did
                            # (refused, reset, timed out), so it is an observation.
                            run.facts["<client raised>"] = _client_error(exc)
                    if scope.cancelled_caught:
                        status = "hang"
                    facts = run.facts
                    violations = run.violations
            except HarnessError as exc:
                status, error = "error", f"{type(exc).__name__}: {exc}"
            except Exception:  # a bug in a scenario or in the harness: never the target's
                status, error = "error", traceback.format_exc(limit=8)
            finally:
                with trio.CancelScope(shield=True):
                    await agent.stop()
                nursery.cancel_scope.cancel()
        replacements = [(str(workdir), "<tmp>"), (f"pid {agent.pid}", "pid <pid>")]
        observation: dict[str, Any] = {}
        if construct is not None:
            observation["construct"] = construct
        observation["facts"] = _replace_in(facts, replacements)
        observation["events"] = summarize_events(agent.events, scenario.events, replacements)
        observation["stdout"] = _normalize_output(
            agent.read_stdout(), scenario.stdout, replacements
        )
        observation["stderr"] = _normalize_output(
            agent.read_stderr(), scenario.stderr, replacements
        )
        if status == "hang":
            observation["status"] = "hang"
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return Observed(
        observation, list(violations), status, time.monotonic() - started, python, error
    )


def _client_error(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"{type(exc).__name__} (errno {exc.errno})"
    return type(exc).__name__


def _replace_in(value: Any, replacements: list[tuple[str, str]]) -> Any:
    """Apply literal replacements to every string inside a JSON-like value."""
    text = json.dumps(value)
    for old, new in replacements:
        text = text.replace(json.dumps(old)[1:-1], json.dumps(new)[1:-1])
    return json.loads(text)


@dataclasses.dataclass
class Settings:
    """How a run is carried out."""

    jobs: int = 4
    retries: int = 1
    fork_server: bool = True  # fork agents from a fork server per target (else spawn each)


ProgressCallback = Callable[[Scenario, list[Result]], None]


class Engine:
    """Runs scenarios against targets and a baseline, with bounded parallelism."""

    def __init__(
        self,
        targets: list[Target],
        baseline: Target,
        settings: Settings | None = None,
        progress: ProgressCallback | None = None,
    ) -> None:
        self.targets = targets
        self.baseline = baseline
        self.settings = settings or Settings()
        self.progress = progress
        self._limiter = trio.CapacityLimiter(max(1, self.settings.jobs))
        #: the fork servers of the latest ``run`` (closed when it returns; their start
        #: failures stay readable: ``pool.start_failure(target)``)
        self.pool: ForkServerPool | None = None

    async def _observe(self, scenario: Scenario, target: Target) -> Observed:
        async with self._limiter:
            return await observe(scenario, target, self.pool)

    async def run(self, scenarios: Iterable[Scenario]) -> list[Result]:
        """Every scenario against every target; results in catalog order."""
        scenarios = list(scenarios)
        results: dict[str, list[Result]] = {}

        async def one(s: Scenario) -> None:
            results[s.id] = await self.run_scenario(s)
            if self.progress:
                self.progress(s, results[s.id])

        self.pool = ForkServerPool() if self.settings.fork_server else None
        try:
            async with trio.open_nursery() as nursery:
                for s in scenarios:
                    nursery.start_soon(one, s)
        finally:
            if self.pool is not None:
                with trio.CancelScope(shield=True):
                    await self.pool.aclose()
        return [r for s in scenarios for r in results[s.id]]

    async def run_scenario(self, scenario: Scenario) -> list[Result]:
        """One scenario: baseline and targets observed concurrently, then compared."""
        observed: dict[int, Observed] = {}

        async def grab(index: int, target: Target) -> None:
            observed[index] = await self._observe(scenario, target)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(grab, -1, self.baseline)
            for index, target in enumerate(self.targets):
                nursery.start_soon(grab, index, target)
        base = observed[-1]
        results = []
        if base.status != "completed" or base.violations:
            results.append(self._baseline_result(scenario, base))
        for index, target in enumerate(self.targets):
            results.append(await self._judge(scenario, target, base, observed[index]))
        return results

    def _baseline_result(self, scenario: Scenario, base: Observed) -> Result:
        verdict = {"hang": "hang", "error": "error"}.get(base.status, "fails")
        return Result(
            scenario=scenario.id,
            target=self.baseline.name,
            verdict=verdict,
            duration_s=round(base.duration, 3),
            reason=base.error or "; ".join(base.violations),
            violations=base.violations,
            python=list(base.python),
            reproducer=self.reproducer(scenario, self.baseline),
            observation=base.observation,
        )

    async def _judge(
        self, scenario: Scenario, target: Target, base: Observed, got: Observed
    ) -> Result:
        result = Result(
            scenario=scenario.id,
            target=target.name,
            verdict="same",
            duration_s=round(got.duration, 3),
            python=list(got.python),
            reproducer=self.reproducer(scenario, target),
        )
        if base.status == "error" or got.status == "error":
            result.verdict = "error"
            result.reason = got.error or f"baseline: {base.error}"
            return result
        if got.status == "hang":
            result.verdict = "hang"
            result.reason = f"did not finish within {scenario.deadline:g} s"
            result.observation = got.observation
            return result
        if base.status == "hang":
            result.verdict = "error"
            result.reason = "the baseline hangs in this scenario, so there is nothing to compare"
            return result
        if got.violations:
            result.verdict = "fails"
            result.violations = got.violations
            result.reason = "; ".join(got.violations)
            result.observation = got.observation
            result.diff = readable_diff(
                base.observation, got.observation, (self.baseline.name, target.name)
            )
            return result
        keys = _differing(base, got)
        if not keys:
            return result
        known = explain(
            keys, scenario.known, target.labels, got.python or base.python, base.python or None
        )
        if known is not None:
            result.verdict = "explained"
            result.reason = "; ".join(k.describe() for k in known)
            result.differing_keys = keys
            result.diff = readable_diff(
                base.observation, got.observation, (self.baseline.name, target.name)
            )
            return result
        # Confirm: a difference must repeat, on fresh processes for both sides.
        for _ in range(self.settings.retries):
            again_base = await self._observe(scenario, self.baseline)
            again = await self._observe(scenario, target)
            if again.status != "completed" or again_base.status != "completed":
                continue
            if not _differing(again_base, again):
                result.verdict = "flaky"
                result.reason = "the difference did not repeat on rerun"
                result.differing_keys = keys
                result.diff = readable_diff(
                    base.observation, got.observation, (self.baseline.name, target.name)
                )
                return result
        result.verdict = "differs"
        result.differing_keys = keys
        result.diff = readable_diff(
            base.observation, got.observation, (self.baseline.name, target.name)
        )
        result.observation = got.observation
        return result

    def reproducer(self, scenario: Scenario, target: Target) -> str:
        """A command line that runs this scenario against this target again."""
        return (
            f"python -m harness run --select '{scenario.id}' "
            f"--target '{target.spec_string()}' --baseline '{self.baseline.spec_string()}'"
        )


def _differing(base: Observed, got: Observed) -> list[str]:
    return differing_keys(base.observation, got.observation)
