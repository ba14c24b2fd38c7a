"""The hypothesis driver: one outer loop, for the differential and the handler fuzzer.

A fuzzer gives the driver a strategy, an async ``check(example, failing)`` that runs an
example and returns a ``Failure`` (or None), and an async ``settle(failure, spent)`` that
minimizes, confirms and saves what was found. The driver runs hypothesis in a worker
thread in rounds (each round a fresh seed derived from the run's seed; the first reuses
the example database in the report directory, so a later run tries earlier findings
first) and calls back into the trio loop for every example.

A failure whose signature is new fails the example, and hypothesis shrinks it; after
``shrink_seconds`` of shrinking only the example that failed last fails again, so the
shrink ends there. Then ``settle`` runs, the signature is known from then on (it will not
fail an example again), and the next round starts, until the budget is spent: a duration,
a number of cases (the fuzzer counts them) or of examples, or ``max_findings``, or a
``stop()`` (SIGTERM or SIGINT: the example running ends, a shrink stops where it is).

Memory: a round is at most ``ROUND_EXAMPLES`` examples. Hypothesis keeps a record of every
example of a run (its tree of choices, its per-example data), so one endless round grows
without bound; a fresh round starts from nothing. Rounds are numbered, and round ``n``
uses the seed ``seed * 100_003 + n``: a resumed campaign (``first_round``) goes on with
the next seeds.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import trio
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hypothesis_seed

from harness.errors import HarnessError
from harness.fuzz.database import open_database


@dataclasses.dataclass
class Failure:
    """What one example showed: its ``signature`` (what makes two failures the same
    finding) and the fuzzer's own ``detail``."""

    example: Any
    signature: str
    detail: Any = None


class _Found(AssertionError):
    """Raised inside the hypothesis test to make it shrink a new failure."""


class TimeUp(BaseException):
    """Raised inside a hypothesis test when the budget is spent: hypothesis lets a
    BaseException through at once, without shrinking."""


def run_hypothesis(
    strategy: Any,
    check: Callable[[Any], None],
    *,
    examples: int,
    run_seed: int,
    reuse: bool,
    report_dir: Path,
    digest: str,
    database: str | None = None,
) -> None:
    """Run ``check`` on examples of ``strategy`` with hypothesis, quietly.

    The example database lives in ``report_dir/hypothesis`` and is keyed by ``digest``
    (one per fuzzed family or handler), so a later run with ``reuse`` tries the cases an
    earlier run found first. ``check`` raises to report a failure, which hypothesis then
    shrinks. ``database`` names another example database (``fuzz --database``: Redis or
    a directory; see ``harness.fuzz.database``).
    """
    examples_db = open_database(database, report_dir)
    phases = [Phase.explicit, Phase.generate, Phase.shrink]
    if reuse:
        phases.insert(1, Phase.reuse)

    # @settings outside @seed: @seed alone turns the example database off, so with the
    # settings inside it no finding would ever be saved (or replayed by a later run).
    @settings(
        max_examples=examples,
        database=examples_db,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=phases,
        report_multiple_bugs=False,
        print_blob=False,
        verbosity=Verbosity.quiet,
    )
    @hypothesis_seed(run_seed)
    @given(strategy)
    def fuzz_one(example: Any) -> None:
        check(example)

    fuzz_one.hypothesis.inner_test._hypothesis_internal_add_digest = digest.encode()  # type: ignore[attr-defined]
    fuzz_one()


Check = Callable[[Any, "Failure | None"], Awaitable["Failure | None"]]
Settle = Callable[[Failure, float], Awaitable[Iterable[str]]]


#: Examples per hypothesis round: what hypothesis remembers of a round is dropped with it.
ROUND_EXAMPLES = 1000


class Driver:
    """Runs hypothesis rounds over ``strategy`` until the budget is spent.

    ``exhausted`` tells whether the fuzzer's own budget (cases) is spent; ``deadline`` is
    a ``time.monotonic()`` value.
    """

    def __init__(
        self,
        strategy: Any,
        *,
        digest: str,
        seed: int,
        report_dir: Path,
        shrink_seconds: float,
        max_findings: int,
        max_examples: int | None = None,
        deadline: float = float("inf"),
        exhausted: Callable[[], bool] = lambda: False,
        database: str | None = None,
        first_round: int = 0,
        round_examples: int = ROUND_EXAMPLES,
    ) -> None:
        self.strategy = strategy
        self.round = first_round
        self.round_examples = round_examples
        self.stopped = False
        self.database = database
        self.digest = digest
        self.seed = seed
        self.report_dir = report_dir
        self.shrink_seconds = shrink_seconds
        self.max_findings = max_findings
        self.max_examples = max_examples
        self.deadline = deadline
        self.exhausted = exhausted
        self.examples = 0
        self.findings = 0
        #: Signatures already settled: they no longer fail an example.
        self.known: set[str] = set()
        #: The failure being shrunk (the last example that failed).
        self.failing: Failure | None = None
        self._shrink_started: float | None = None
        self._check: Check | None = None

    def stop(self) -> None:
        """End the campaign soon (a signal): no new example starts, a shrink ends with
        the failure it has (callable from any thread)."""
        self.stopped = True

    def over(self) -> bool:
        """Whether the budget is spent (time, cases or examples) or the run was stopped."""
        if self.stopped or time.monotonic() > self.deadline or self.exhausted():
            return True
        return self.max_examples is not None and self.examples >= self.max_examples

    def _test(self, example: Any) -> None:
        """The body of the hypothesis test (in hypothesis's worker thread)."""
        if self._shrink_started is not None:
            spent = time.monotonic() - self._shrink_started
            if (spent > self.shrink_seconds or self.stopped) and self.failing is not None:
                if example == self.failing.example:
                    raise _Found("failure (shrink budget spent)")
                return
        elif self.over():
            raise TimeUp()
        self.examples += 1
        assert self._check is not None
        failure = trio.from_thread.run(self._check, example, self.failing)
        if failure is None or failure.signature in self.known:
            return
        if self._shrink_started is None:
            self._shrink_started = time.monotonic()
        self.failing = failure
        raise _Found(failure.signature)

    async def run(self, check: Check, settle: Settle) -> None:
        """Fuzz until the budget is spent; ``settle`` each failure found."""
        self._check = check
        first = self.round
        while self.findings < self.max_findings and not self.over():
            left = self.round_examples
            if self.max_examples is not None:
                left = min(left, self.max_examples - self.examples)
            run_seed = self.seed * 100_003 + self.round
            try:
                # The first round of a run (a resumed one too) replays the database.
                reuse = self.round == first
                await trio.to_thread.run_sync(self._round, left, run_seed, reuse)
            except _Found:
                pass
            except TimeUp:
                self.round += 1  # cut short: a resumed campaign takes the next seed
                break
            except Exception as exc:  # hypothesis's Flaky and friends: the failure counts
                if self.failing is None:
                    raise HarnessError(f"hypothesis failed: {type(exc).__name__}: {exc}") from exc
            if self.failing is not None:
                failure, self.failing = self.failing, None
                started, self._shrink_started = self._shrink_started, None
                self.known.add(failure.signature)
                spent = time.monotonic() - (started or time.monotonic())
                self.known.update(await settle(failure, spent))
                self.findings += 1
            self.round += 1

    def _round(self, examples: int, run_seed: int, reuse: bool) -> None:
        run_hypothesis(
            self.strategy,
            self._test,
            examples=max(1, examples),
            run_seed=run_seed,
            reuse=reuse,
            report_dir=self.report_dir,
            digest=self.digest,
            database=self.database,
        )
