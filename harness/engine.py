"""Run scenarios against targets, compare with the baseline, decide verdicts.

Each (scenario, target) pair runs in a server process of its own, at most ``jobs`` at once.
Verdicts come from ``harness.compare.decide``. A difference is confirmed by running both
sides again once every first run is over, one scenario at a time, so that the load of the
run cannot make a difference repeat; one that does not repeat is ``flaky``. Invariant
violations are ``fails`` on whichever target broke them, the baseline included.

Blame: what a target does is a verdict about the target. A target that never starts (its
import raises, it exits, it hangs before ``ready``) is ``fails: target does not start:
...``; after a target has failed to start without ever starting, the engine stops trying it
and gives its remaining scenarios the same verdict at once. ``error`` is only for the
harness's or a scenario's own defects. SIGINT and SIGTERM stop a run cleanly: every server
process is ended, and ``run`` returns what finished, with ``interrupted`` set.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import shutil
import signal
import time
import traceback
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import trio

from harness.compare import Decision, Verdict, decide, readable_diff
from harness.errors import AgentGone, HarnessError, TargetDidNotStart
from harness.forkservers import ForkServerPool
from harness.host import AgentProcess, make_workdir
from harness.observation import (
    canonical_spellings,
    normalize_text,
    sorted_lines,
    summarize_events,
)
from harness.scenario import SLOW, Run, Scenario
from harness.targets import Target

START_TIMEOUT = 30.0  # a cold PyPy can take seconds to import the modules


@dataclasses.dataclass
class Observed:
    """What one target did in one scenario run."""

    observation: dict[str, Any]
    violations: list[str]
    status: str  # completed | hang | nostart | error (see harness.compare.Observation)
    duration: float
    python: tuple[int, ...] = ()
    error: str = ""
    #: spellings rewritten to one form (``'latin1' -> 'iso8859-1'``), for a note
    spellings: frozenset[str] = frozenset()


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
    #: remarks that do not change the verdict (a raw text that differed only in spelling)
    notes: list[str] = dataclasses.field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The report row."""
        return dataclasses.asdict(self)


def _normalize_output(text: str, mode: str, replacements: list[tuple[str, str]]) -> Any:
    if mode == "none":
        return None
    text = normalize_text(text, replacements)
    return sorted_lines(text) if mode == "sorted" else text


async def observe(
    scenario: Scenario,
    target: Target,
    pool: ForkServerPool | None = None,
    agent_factory: Callable[..., AgentProcess] = AgentProcess,
) -> Observed:
    """Run ``scenario`` once against ``target`` in a fresh server process (forked by the
    target's fork server in ``pool`` when it can be). ``agent_factory`` makes the server
    process's handle (tests give one without a process)."""
    started = time.monotonic()
    workdir = make_workdir()
    agent = agent_factory(target, scenario.server.to_agent(), workdir, pool=pool)
    status, error, facts, violations = "completed", "", {}, []
    construct = None
    python: tuple[int, ...] = ()
    # The interpreter's path shows where a handler names it (CGI's command line): it is
    # which Python runs, not what the module does.
    interpreters = {target.python}
    try:
        async with trio.open_nursery() as nursery:
            try:
                await agent.start(nursery)
                ready = await agent.wait_ready(START_TIMEOUT)
                if ready["ev"] == "construct:raised":
                    construct = f"{ready.get('type')}: {ready.get('message', '')}"
                else:
                    python = tuple(ready.get("python", ()))
                    interpreters.add(ready.get("executable") or target.python)
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
            except TargetDidNotStart as exc:
                status, error = "nostart", str(exc)
            except HarnessError as exc:
                status, error = "error", f"{type(exc).__name__}: {exc}"
            except Exception:  # a bug in a scenario or in the harness: never the target's
                status, error = "error", traceback.format_exc(limit=8)
            finally:
                with trio.CancelScope(shield=True):
                    await agent.stop()
                nursery.cancel_scope.cancel()
        # What the host saw the target do to its processes (a fork bomb, a killed parent,
        # daemons left) broke an invariant of every scenario.
        violations = [*violations, *getattr(agent, "incidents", ())]
        replacements = [(str(workdir), "<tmp>")]
        replacements += [(path, "<python>") for path in sorted(interpreters, key=len)[::-1]]
        if agent.started:
            replacements.append((f"pid {agent.pid}", "pid <pid>"))
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
        if status in ("hang", "nostart"):
            observation["status"] = status
        observation, spellings = _canonical(observation)
    finally:
        # Off the event loop: on a busy file system the removal of a served tree takes
        # milliseconds, which would hold up every other scenario's clients and events.
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(functools.partial(shutil.rmtree, workdir, True))
    return Observed(
        observation,
        list(violations),
        status,
        time.monotonic() - started,
        python,
        error,
        frozenset(spellings),
    )


def _canonical(observation: Any) -> tuple[Any, set[str]]:
    """The observation with one spelling for each codec and exception name (every string
    in it, keys included, as text: a traceback's last line must start a line)."""
    changed: set[str] = set()

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            text, rewrites = canonical_spellings(value)
            changed.update(rewrites)
            return text
        if isinstance(value, list):
            return [walk(item) for item in value]
        if isinstance(value, dict):
            return {walk(key): walk(item) for key, item in value.items()}
        return value

    return walk(observation), changed


def start_order(scenarios: list[Scenario]) -> list[Scenario]:
    """The order in which a run starts ``scenarios``: those tagged ``slow`` first (they
    wait out timeouts of a second or more; started last, one would be the run's whole
    tail), then the rest, each group in the order given."""
    return sorted(scenarios, key=lambda s: SLOW not in s.tags)


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
    retries: int = 1  # reruns of both sides to confirm a difference (at least 1)
    fork_server: bool = True  # fork agents from a fork server per target (else spawn each)


ProgressCallback = Callable[[Scenario, list[Result]], None]
#: How one side of one scenario is run: ``observe`` by default; tests give a fake.
Observer = Callable[[Scenario, Target, "ForkServerPool | None"], Awaitable[Observed]]

#: The signals that stop a run cleanly (with a report of what finished).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Engine:
    """Runs scenarios against targets and a baseline, with bounded parallelism."""

    def __init__(
        self,
        targets: list[Target],
        baseline: Target,
        settings: Settings | None = None,
        progress: ProgressCallback | None = None,
        observer: Observer | None = None,
    ) -> None:
        self.targets = targets
        self.baseline = baseline
        self.settings = settings or Settings()
        self.progress = progress
        self._observer: Observer = observer or observe
        self._limiter = trio.CapacityLimiter(max(1, self.settings.jobs))
        #: the fork servers of the latest ``run`` (closed when it returns; their start
        #: failures stay readable: ``pool.start_failure(target)``)
        self.pool: ForkServerPool | None = None
        #: the signal that stopped the latest ``run``, or None
        self.interrupted: int | None = None
        #: why a target never started, once the engine has stopped trying it
        self.not_starting: dict[Target, str] = {}
        self._started: set[Target] = set()

    async def _observe(self, scenario: Scenario, target: Target) -> Observed:
        if target in self.not_starting:
            return _not_started(self.not_starting[target])
        async with self._limiter:
            if target in self.not_starting:  # decided while this one waited for a slot
                return _not_started(self.not_starting[target])
            got = await self._observer(scenario, target, self.pool)
        if got.status == "nostart":
            if target not in self._started:
                self.not_starting.setdefault(target, got.error)
        elif got.status != "error":
            self._started.add(target)
        return got

    async def run(self, scenarios: Iterable[Scenario]) -> list[Result]:
        """Every scenario against every target; results in catalog order.

        First every scenario runs once on every side, ``jobs`` processes at a time, in
        ``start_order``; then the differences are rerun to confirm them, one scenario at a
        time. After SIGINT or SIGTERM it returns the results that were complete, and
        ``interrupted`` says which signal stopped it.
        """
        scenarios = list(scenarios)
        results: dict[str, list[Result]] = {}
        pending: list[tuple[Scenario, list[Observed]]] = []
        self.interrupted = None

        async def first(s: Scenario) -> None:
            observed = await self._observe_all(s)
            judged = self._judge_all(s, observed, reruns=None)
            if judged is None:
                pending.append((s, observed))
            else:
                done(s, judged)

        def done(s: Scenario, judged: list[Result]) -> None:
            results[s.id] = judged
            if self.progress:
                self.progress(s, judged)

        async def worker(queue: trio.MemoryReceiveChannel[Scenario]) -> None:
            async with queue:
                async for s in queue:
                    await first(s)

        self.pool = ForkServerPool() if self.settings.fork_server else None
        try:
            async with trio.open_nursery() as outer:
                outer.start_soon(self._stop_on_signal, outer.cancel_scope)
                send, queue = trio.open_memory_channel[Scenario](len(scenarios))
                for s in start_order(scenarios):
                    send.send_nowait(s)
                send.close()
                async with trio.open_nursery() as nursery, queue:
                    # One scenario per worker, its sides sharing the ``jobs`` slots: the
                    # scenarios start in ``start_order`` (trio runs tasks started together
                    # in an order of its own, sometimes the reverse).
                    for _ in range(min(self.settings.jobs, len(scenarios))):
                        nursery.start_soon(worker, queue.clone())
                order = {s.id: i for i, s in enumerate(scenarios)}
                for s, observed in sorted(pending, key=lambda p: order[p[0].id]):
                    reruns = []
                    for _ in range(max(1, self.settings.retries)):
                        reruns.append(await self._observe_all(s))
                    judged = self._judge_all(s, observed, reruns)
                    assert judged is not None
                    done(s, judged)
                outer.cancel_scope.cancel()
        finally:
            if self.pool is not None:
                with trio.CancelScope(shield=True):
                    await self.pool.aclose()
        return [r for s in scenarios if s.id in results for r in results[s.id]]

    async def _stop_on_signal(self, scope: trio.CancelScope) -> None:
        with trio.open_signal_receiver(*STOP_SIGNALS) as signals:
            async for signum in signals:
                self.interrupted = int(signum)
                scope.cancel()
                return

    async def _observe_all(self, scenario: Scenario) -> list[Observed]:
        """The baseline (index 0) and every target, observed concurrently."""
        sides = [self.baseline, *self.targets]
        observed: list[Observed | None] = [None] * len(sides)

        async def grab(index: int, target: Target) -> None:
            observed[index] = await self._observe(scenario, target)

        async with trio.open_nursery() as nursery:
            for index, target in enumerate(sides):
                nursery.start_soon(grab, index, target)
        return [o for o in observed if o is not None]

    def _judge_all(
        self, scenario: Scenario, observed: list[Observed], reruns: list[list[Observed]] | None
    ) -> list[Result] | None:
        """The results of one scenario, or None while a difference waits for its reruns."""
        base = observed[0]
        results = []
        if base.status != "completed" or base.violations:
            results.append(self._baseline_result(scenario, base))
            if base.status in ("nostart", "error"):
                return results  # nothing to compare the targets with
        decisions = []
        for index, target in enumerate(self.targets, start=1):
            again = [(rerun[0], rerun[index]) for rerun in reruns or ()]
            decision = decide(
                (base, observed[index]),
                again,
                known=scenario.known,
                labels=target.labels,
                deadline=scenario.deadline,
            )
            if decision.needs_rerun and reruns is None:
                return None
            decisions.append((target, observed[index], decision))
        for target, got, decision in decisions:
            results.append(self._result(scenario, target, base, got, decision))
        return results

    def _baseline_result(self, scenario: Scenario, base: Observed) -> Result:
        """The baseline's own row, when it could not serve as one (hang, fails, ...)."""
        if base.status == "error":
            verdict, reason = Verdict.ERROR, base.error
        elif base.status == "nostart":
            verdict = Verdict.FAILS
            reason = f"target does not start: {base.error} (the targets were not compared)"
        elif base.status == "hang":
            verdict, reason = Verdict.HANG, f"did not finish within {scenario.deadline:g} s"
        else:
            verdict, reason = Verdict.FAILS, "; ".join(base.violations)
        return Result(
            scenario=scenario.id,
            target=self.baseline.name,
            verdict=verdict.value,
            duration_s=round(base.duration, 3),
            reason=reason,
            violations=base.violations,
            python=list(base.python),
            reproducer=self.reproducer(scenario, self.baseline),
            observation=base.observation,
        )

    def _result(
        self,
        scenario: Scenario,
        target: Target,
        base: Observed,
        got: Observed,
        decision: Decision,
    ) -> Result:
        """The report row of one target from its decision."""
        result = Result(
            scenario=scenario.id,
            target=target.name,
            verdict=decision.verdict.value,
            duration_s=round(got.duration, 3),
            reason=decision.reason,
            differing_keys=list(decision.keys),
            violations=list(got.violations),
            python=list(got.python),
            reproducer=self.reproducer(scenario, target),
        )
        if decision.diff_from is not None:
            first_base, first_got = decision.diff_from
            result.diff = readable_diff(
                first_base.observation, first_got.observation, (self.baseline.name, target.name)
            )
        if decision.verdict not in (Verdict.SAME, Verdict.EXPLAINED):
            result.observation = got.observation
        if got.spellings != base.spellings:
            result.notes.append(
                "the raw text differed only in spelling, read as one: "
                + ", ".join(sorted(got.spellings ^ base.spellings))
            )
        return result

    def reproducer(self, scenario: Scenario, target: Target) -> str:
        """A command line that runs this scenario against this target again."""
        return (
            f"python -m harness run --select '{scenario.id}' "
            f"--target '{target.spec_string()}' --baseline '{self.baseline.spec_string()}'"
        )


def _not_started(reason: str) -> Observed:
    """A side the engine did not run: its target never started earlier in this run."""
    return Observed({"status": "nostart"}, [], "nostart", 0.0, (), reason)
