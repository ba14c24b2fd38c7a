"""The differential fuzzer: the same cases to a target's and a baseline's servers, compared.

How a run goes: each concrete family of the run (``http`` is four of them) gets a pair of
long-lived servers, the baseline's and the target's (``harness.fuzz.servers``). A
hypothesis example is a *template* (a drawn case and a seed, ``harness.fuzz.case``),
which ``derive`` expands into a few hundred distinct cases. The cases go to both servers
in chunks, two chunks in flight, so that the servers already run the next chunk while the
harness compares the last (``judge``: equal raw results, then equal normalized
observations; a key-by-key diff only when they are not). A difference that an active
deviation explains (``explain``) is noted as ``explained`` and fuzzing goes on; one not
seen before (by its signature: the differing keys and both status lines) fails the
example, and hypothesis shrinks the template (``harness.fuzz.driver``; the case that
failed is tried first, so a step that keeps it costs one case). The case it ends with is
run alone, minimized by delta debugging on its bytes (``minimize``) when the difference
shows alone, run alone twice more, and saved as a reproducer. Its verdict is
``harness.compare.decide``'s, as for a scenario: ``differs`` only when every run alone
repeated the difference, else ``flaky`` (or ``hang`` when the server stopped answering).

Resource handling: ``Fuzzer.run`` owns the server processes and stops them (process
groups killed, reaped, directories removed) whatever happens.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import trio

from harness.compare import Decision, Pair, Verdict, decide, readable_diff
from harness.errors import UsageError
from harness.fuzz import reproducers
from harness.fuzz.campaign import Campaign
from harness.fuzz.case import (
    FAMILY_CHOICES,
    Case,
    Template,
    derive,
    derive_iter,
    family_members,
    with_data,
)
from harness.fuzz.driver import Driver, Failure
from harness.fuzz.explain import active_deviations, explain
from harness.fuzz.judge import (
    case_runs,
    judge,
    observation,
    observed_differences,
    signature,
)
from harness.fuzz.servers import FuzzServer
from harness.fuzz.strategies import templates
from harness.fuzz.transports import transport_for
from harness.targets import PROJECT_ROOT, Target, interpreter_version

#: Seeded cases per template, real mode and batch mode: CGI cases fork and exec scripts.
DERIVED = {
    "http-parser": (250, 1000),
    "http-files": (250, 1000),
    "http-errors": (100, 400),
    "http-cgi": (10, 20),
    "stream": (250, 1000),
    "datagram": (250, 1000),
}


@dataclasses.dataclass
class FuzzConfig:
    """What one ``python -m harness fuzz`` run does."""

    target: Target
    baseline: Target
    family: str = "http"
    transport: str | None = None
    duration: float | None = 30.0
    max_examples: int | None = None
    max_cases: int | None = None
    seed: int = 0
    report_dir: Path = PROJECT_ROOT / "reports" / "fuzz"
    #: hypothesis's example database (``--database``): None, a Redis URL or a directory
    database: str | None = None
    batch: bool = False
    idle: float = 0.5
    shrink_seconds: float = 30.0
    max_findings: int = 10
    #: Seeded cases per hypothesis example, per concrete family; None: ``DERIVED``.
    derived: dict[str, int] | None = None
    #: Cases per round trip to the servers; None: by mode.
    chunk: int | None = None
    quiet: bool = False
    #: The command's settings, kept in progress.json for ``--resume``.
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: The progress.json of the campaign this run resumes (``--resume``), or None.
    previous: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.family not in FAMILY_CHOICES:
            raise UsageError(f"--family={self.family}: use one of {', '.join(FAMILY_CHOICES)}")
        for family in family_members(self.family):
            transport_for(family, self.transport)  # raises UsageError for a bad pair
        if self.derived is None:
            self.derived = {f: DERIVED[f][self.batch] for f in family_members(self.family)}
        if self.chunk is None:
            self.chunk = 200 if self.batch else 64
        if self.duration is not None and self.duration <= 0:
            raise UsageError(f"--duration={self.duration}: must be positive")
        for name in ("max_examples", "max_cases"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise UsageError(f"--{name.replace('_', '-')}={value}: must be 1 or more")
        if self.target.name == self.baseline.name:
            raise UsageError(
                f"target and baseline are both named {self.target.name!r}: give name=..."
            )

    @property
    def mode(self) -> str:
        """``batch`` or ``sockets``: how the cases reach the servers."""
        return "batch" if self.batch else "sockets"


@dataclasses.dataclass
class Finding:
    """A difference found, shrunk and confirmed (or not)."""

    case: Case
    verdict: str  # a ``harness.compare.Verdict`` value: differs, flaky, explained, hang...
    keys: list[str]
    diff: str
    baseline_obs: dict[str, Any]
    target_obs: dict[str, Any]
    reason: str = ""
    path: Path | None = None


@dataclasses.dataclass
class FuzzOutcome:
    """What a fuzz run did."""

    cases: int = 0
    examples: int = 0
    seconds: float = 0.0
    findings: list[Finding] = dataclasses.field(default_factory=list)
    explained: dict[str, Finding] = dataclasses.field(default_factory=dict)
    python: list[int] = dataclasses.field(default_factory=list)
    restarts: int = 0
    #: ``SIGTERM`` or ``SIGINT`` when a signal ended the run, else None.
    stopped_by: str | None = None
    #: The first hypothesis round of the next run (``--resume``).
    next_round: int = 0


#: Hypothesis examples per round (``harness.fuzz.driver``): an example here is a few
#: hundred cases, and what hypothesis keeps of a round's examples grew by about 100 KB
#: per example (its tree of choices, each example's data), so a round is kept short.
ROUND_EXAMPLES = 100

#: Cases whose verdicts are remembered (a case drawn again is not run again), and templates
#: known clean. Both tables hold hashes, not cases or templates, and the memo keeps the
#: observations of new differences only (one explained is noted once): a datagram
#: template's base carries up to 256 KiB, a stream case 64 KiB and more, and the
#: observations of explained cases 1 to 2 KB each; holding them grew the harness by 10 to
#: 20 MB over its first minutes. Each table is emptied when it grows past its count (an
#: entry is about 100 bytes).
MEMO_CASES = 20_000
CLEAN_TEMPLATES = 2_000
#: Payload bytes per chunk at most (see ``Fuzzer.find_difference``).
CHUNK_BYTES = 2 << 20
#: Open cases met among a template's cases run this many at a time.
OPEN_GROUP = 64


def _size(case: Case) -> int:
    return len(case.data) + sum(len(d) for d in case.datagrams)


# A memo lookup's "not there" (a memo value may be None: no difference).
_UNSEEN = object()


class Fuzzer:
    """Runs the differential fuzz loop of one ``FuzzConfig``."""

    def __init__(self, config: FuzzConfig, log: Callable[[str], None] | None = None) -> None:
        self.config = config
        self.log = log or (lambda line: None)
        self.outcome = FuzzOutcome()
        self.active = active_deviations(config.target)
        #: The baseline's and the target's Pythons, for the known differences' versions.
        self.versions = (
            interpreter_version(config.baseline.python),
            interpreter_version(config.target.python),
        )
        #: What ``minimize`` saw of each candidate that showed the difference.
        self._shown: dict[Case, tuple[dict[str, Any], dict[str, Any]]] = {}
        self.pairs: dict[str, tuple[FuzzServer, FuzzServer]] = {}
        for family in family_members(config.family):
            transport = transport_for(family, config.transport)
            self.pairs[family] = (
                FuzzServer(config.baseline, family, transport, config.idle),
                FuzzServer(config.target, family, transport, config.idle),
            )
        self.driver = Driver(
            templates(config.family, config.derived or {}, config.batch),
            digest=f"harness-fuzz-{config.family}-{config.mode}",
            seed=config.seed,
            report_dir=config.report_dir,
            shrink_seconds=config.shrink_seconds / 2,
            max_findings=config.max_findings,
            max_examples=config.max_examples,
            exhausted=self._out_of_cases,
            database=config.database,
            first_round=int((config.previous or {}).get("next_round", 0)),
            round_examples=ROUND_EXAMPLES,
        )
        if config.previous:
            self.outcome.cases = int(config.previous.get("cases", 0))
            self.outcome.examples = int(config.previous.get("examples", 0))
        #: A case's verdict by the case's hash (two cases of one hash among the
        #: ``MEMO_CASES`` kept: about one chance in 10**15 per lookup).
        self._memo: dict[int, Any] = {}
        #: Templates whose every case ran and showed no new difference.
        self._clean: set[int] = set()
        self._in_flight = 0
        self._last_progress = 0.0
        self._started = 0.0

    def _out_of_cases(self) -> bool:
        limit = self.config.max_cases
        return limit is not None and self.outcome.cases + self._in_flight >= limit

    # -- running cases --

    async def _run_both(self, cases: list[Case]) -> tuple[list[Any], list[Any]]:
        base_server, target_server = self.pairs[cases[0].family]
        got: dict[str, list[dict[str, Any]]] = {}

        async def side(name: str, server: FuzzServer) -> None:
            got[name] = await server.run(cases, self.config.batch)

        self._in_flight += len(cases)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(side, "base", base_server)
                nursery.start_soon(side, "target", target_server)
        finally:
            self._in_flight -= len(cases)
        self.outcome.cases += len(cases)
        return got["base"], got["target"]

    async def compare_cases(
        self, cases: list[Case]
    ) -> list[tuple[Case, dict[str, Any], dict[str, Any]]]:
        """Run ``cases`` on both servers (always: the memo keeps verdicts, not
        observations); ``(case, baseline obs, target obs)`` each."""
        base_raws, target_raws = await self._run_both(cases)
        return [
            (case, observation(base_raw, case), observation(target_raw, case))
            for case, base_raw, target_raw in zip(cases, base_raws, target_raws)
        ]

    async def find_difference(
        self, cases: Iterable[Case], stop: bool = True, opened: list[Case] | None = None
    ) -> tuple[Case, dict[str, Any], dict[str, Any], list[str]] | None:
        """Run ``cases`` on both servers, in chunks, the next chunk running (and the one
        after it being taken from ``cases``, which may be a generator) while the last one
        is compared; the first new unexplained difference (explained ones are noted), or
        None. With ``stop`` the cases after it are not run.

        ``opened``: cases that stay open (each waits ``idle`` seconds); they run all at
        once, first, beside the chunks (not counted in flight), and are compared last.
        Open cases met in ``cases`` run likewise, ``OPEN_GROUP`` at a time.

        A chunk is also cut at ``CHUNK_BYTES`` of payload, and only the hashes of the
        cases run are kept (to skip one derived twice): a datagram case carries up to
        four 64 KiB datagrams, and a template's thousand of them held 45 MB.
        """
        chunk = self.config.chunk or 64
        seen: set[int] = set()
        source = iter(cases)
        found: list[Any] = []
        # Two chunks are in flight at a time, so that each server already has the next
        # chunk while the harness collects and compares the last one.
        send, receive = trio.open_memory_channel[Any](1)
        in_flight = trio.Semaphore(2)

        async def run_part(
            part: list[Case], done: trio.Event, slot: list[Any], counted: bool = True
        ) -> None:
            try:
                slot.extend(await self._run_both(part))
            finally:
                if counted:
                    in_flight.release()
                done.set()

        opened = [c for c in opened or () if hash(c) not in self._memo]
        seen.update(map(hash, opened))
        open_runs: list[tuple[list[Case], trio.Event, list[Any]]] = []

        def start_open(nursery: trio.Nursery, part: list[Case]) -> None:
            run: tuple[list[Case], trio.Event, list[Any]] = (part, trio.Event(), [])
            nursery.start_soon(run_part, *run, False)
            open_runs.append(run)

        async def produce(nursery: trio.Nursery) -> None:
            # A chunk, once started, runs to its end (a cancelled one would leave records
            # of half-run connections in the servers): stopping means starting no more.
            async with send:
                if opened:
                    start_open(nursery, opened)
                waiting: list[Case] = []  # open cases met in ``cases``, not started yet
                more = True
                while more and not (found and stop) and not self._out_of_cases():
                    part: list[Case] = []
                    size = 0
                    while len(part) < chunk and size < CHUNK_BYTES:
                        case = next(source, None)
                        if case is None:
                            more = False
                            break
                        key = hash(case)
                        if key in seen:
                            continue
                        seen.add(key)
                        known = self._memo.get(key, _UNSEEN)
                        if known is not _UNSEEN:
                            # The result travels with the message: the memo may be
                            # cleared before the consumer gets to it.
                            await send.send(([case], None, [known]))
                        elif case.end == "open":
                            waiting.append(case)
                            if len(waiting) >= OPEN_GROUP:
                                start_open(nursery, waiting)
                                waiting = []
                        else:
                            part.append(case)
                            size += _size(case)
                    if part:
                        await in_flight.acquire()
                        done, slot = trio.Event(), []
                        nursery.start_soon(run_part, part, done, slot)
                        await send.send((part, done, slot))
                if waiting and not (found and stop) and not self._out_of_cases():
                    start_open(nursery, waiting)
                for run in open_runs:
                    await send.send(run)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(produce, nursery)
            async with receive:
                async for part, done, slot in receive:
                    if done is None:
                        results = slot
                    else:
                        await done.wait()
                        if len(slot) != 2:
                            continue  # the run failed; its error ends the nursery
                        results = [judge(*row) for row in zip(part, *slot)]
                    new = [
                        result is not None and self._note(case, *result)
                        for case, result in zip(part, results)
                    ]
                    if done is not None:
                        # Only a new difference's observations are worth keeping: one
                        # explained or known is already noted (and observations of every
                        # explained case held 10 MB and more).
                        self._remember(part, [r if n else None for r, n in zip(results, new)])
                    found.extend((case, *r) for case, r, n in zip(part, results, new) if n)
            self._progress()
        return found[0] if found else None

    def _remember(self, cases: list[Case], results: list[Any]) -> None:
        if len(self._memo) > MEMO_CASES:
            self._memo.clear()
        self._memo.update(zip(map(hash, cases), results))

    def _decide(self, case: Case, first: Pair, reruns: list[Pair] | None = None) -> Decision:
        """The verdict on a case's difference (``harness.compare.decide``): the known
        differences are the deviations active for the target."""
        return decide(
            first,
            reruns or (),
            known=self.active,
            labels=self.config.target.labels,
            subject=case,
            differences=observed_differences,
        )

    def _pair(self, base: dict[str, Any], got: dict[str, Any], alone: bool = True) -> Pair:
        return case_runs(base, got, self.versions, alone)

    def _note(self, case: Case, base: dict[str, Any], got: dict[str, Any], keys: list[str]) -> bool:
        """Whether a difference is new: not explained (those are noted) nor known."""
        decision = self._decide(case, self._pair(base, got, alone=False))
        if decision.verdict is Verdict.EXPLAINED:
            issue = decision.known[0].issue
            if issue not in self.outcome.explained:
                diff = readable_diff(base, got, self._names())
                self.outcome.explained[issue] = Finding(
                    case, "explained", keys, diff, base, got, decision.reason
                )
            return False
        if decision.verdict is Verdict.SAME:
            return False
        return signature(keys, base, got) not in self.driver.known

    def _progress(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_progress < 2.0:
            return
        self._last_progress = now
        elapsed = now - self._started
        done = self.outcome.cases - int((self.config.previous or {}).get("cases", 0))
        rate = done / elapsed if elapsed > 0 else 0.0
        self.log(
            f"[{elapsed:6.1f}s] {self.outcome.cases} cases ({rate:.0f}/s), "
            f"{len(self.outcome.findings)} found, {len(self.outcome.explained)} explained"
        )

    def _names(self) -> tuple[str, str]:
        return (self.config.baseline.name, self.config.target.name)

    # -- the hypothesis check and what follows a failure --

    async def check(self, template: Template, failing: Failure | None) -> Failure | None:
        """Run a template's cases; a failure on a new difference. While shrinking, the
        case that failed last is tried first (a step that keeps it costs one case)."""
        cases: Iterable[Case] = derive_iter(template)
        opened: list[Case] = []
        if failing is not None:
            # Whether the case that failed is one of this template's: all of them listed
            # (while shrinking only; otherwise ``find_difference`` takes them one by one).
            listed = derive(template)
            # Open cases are few, and must start first.
            opened = [c for c in listed if c.end == "open"]
            listed = [c for c in listed if c.end != "open"]
            if failing is not None and failing.detail[0] in listed:
                listed.insert(0, failing.detail[0])
            cases = listed
        self.outcome.examples += 1
        if hash(template) in self._clean:
            return None  # hypothesis drew it again: its cases were all the same
        found = await self.find_difference(cases, True, opened)
        if found is None:
            if len(self._clean) > CLEAN_TEMPLATES:
                self._clean.clear()
            self._clean.add(hash(template))
            return None
        case, base, got, keys = found
        return Failure(template, signature(keys, base, got), (case, keys, base, got))

    def _unexplained(self, case: Case, base: dict[str, Any], got: dict[str, Any]) -> list[str]:
        """The keys that differ, when no active deviation explains the difference; else
        an empty list."""
        keys = observed_differences(base, got)
        if keys and not explain(case, base, got, keys, self.active):
            return keys
        return []

    async def _still_differs(self, candidates: list[Case], wanted: str) -> list[bool]:
        """For each candidate: does it show the unexplained difference ``wanted``?"""
        out = []
        for case, base, got in await self.compare_cases(candidates):
            keys = self._unexplained(case, base, got)
            out.append(bool(keys) and signature(keys, base, got) == wanted)
            if out[-1]:
                self._shown[case] = (base, got)
        return out

    async def minimize(self, case: Case, wanted: str, seconds: float) -> Case:
        """Delta debugging on a found case's bytes (and its schedule): the smallest case
        found within ``seconds`` that still shows the difference of signature ``wanted``.

        First the plainest schedule (one send, half-close) is tried, then ``ddmin``:
        remove each of n chunks of the bytes (n from 2 up to the length), keeping the
        smallest removal that keeps the difference; a round's candidates run together,
        ``chunk`` at a time.
        """
        deadline = time.monotonic() + seconds
        plain = Case(case.family, case.data, datagrams=case.datagrams)
        if plain != case and (await self._still_differs([plain], wanted))[0]:
            case = plain
        if case.family == "datagram":
            return case
        chunk = self.config.chunk or 64
        granularity = 2
        while len(case.data) >= 2 and time.monotonic() < deadline:
            data = case.data
            size = max(1, len(data) // granularity)
            candidates = [
                with_data(case, data[:start] + data[start + size :])
                for start in range(0, len(data), size)
            ]
            smaller = []
            for first in range(0, len(candidates), chunk):
                part = candidates[first : first + chunk]
                verdicts = await self._still_differs(part, wanted)
                smaller = [c for c, ok in zip(part, verdicts) if ok]
                if smaller or time.monotonic() > deadline:
                    break
            if smaller:
                case = min(smaller, key=lambda c: len(c.data))
                granularity = max(granularity - 1, 2)
            elif size == 1:
                break
            else:
                granularity = min(granularity * 2, len(data))
        return case

    async def settle(self, failure: Failure, spent: float) -> list[str]:
        """Run the shrunk case alone, minimize its bytes when the difference shows alone,
        run it alone twice more, save it; the signatures to know from now on.

        The verdict is ``decide``'s: the difference as first seen (among other cases),
        and the runs of the same case alone that confirm it. ``differs`` needs every
        one of them to show a difference no deviation explains; one that shows none, or
        an explained one, makes it ``flaky``; a server that stopped answering on them
        makes it ``hang``. The report's diff is of the difference as first seen."""
        case, keys, base, got = failure.detail
        first = self._pair(base, got, alone=False)
        (_, base, got), *_ = await self.compare_cases([case])
        reruns = [self._pair(base, got)]
        alone_keys = self._unexplained(case, base, got)
        # A server that stopped answering would make every candidate wait its timeout.
        if alone_keys and all(side.status == "completed" for side in reruns[0]):
            wanted = signature(alone_keys, base, got)
            self._shown.clear()
            seconds = max(1.0, self.config.shrink_seconds - spent)
            smaller = await self.minimize(case, wanted, seconds)
            if smaller != case and smaller in self._shown:
                case, first, reruns = smaller, self._pair(*self._shown[smaller], False), []
            self._shown.clear()
        for _ in range(2):
            (_, base, got), *_ = await self.compare_cases([case])
            reruns.append(self._pair(base, got))
        decision = self._decide(case, first, reruns)
        verdict, reason = decision.verdict.value, decision.reason
        base, got = (side.observation for side in decision.diff_from or first)
        keys = list(decision.keys) or observed_differences(base, got) or keys
        diff = readable_diff(base, got, self._names())
        finding = Finding(case, verdict, keys, diff, base, got, reason)
        finding.path = reproducers.save(
            self.config.report_dir,
            case,
            kind="differential",
            seed=self.config.seed,
            mode=self.config.mode,
            transport=self.pairs[case.family][0].transport.name,
            targets={
                "target": self.config.target.spec_string(),
                "baseline": self.config.baseline.spec_string(),
            },
            verdict=verdict,
            detail={
                "differing_keys": keys,
                "reason": reason,
                "diff": diff,
                "baseline": base,
                "target": got,
            },
        )
        self.outcome.findings.append(finding)
        self.log(f"found ({verdict}): {case.describe()} -> {finding.path}")
        return [signature(keys, base, got)]

    def figures(self) -> dict[str, Any]:
        """The run's figures for progress.json."""
        config = self.config
        return {
            "kind": "fuzz",
            "family": config.family,
            "seed": config.seed,
            "mode": config.mode,
            "cases": self.outcome.cases,
            "examples": self.outcome.examples,
            "findings": len(self.outcome.findings),
            "explained": len(self.outcome.explained),
            "reproducers": [str(f.path) for f in self.outcome.findings if f.path],
            "server_restarts": sum(s.restarts for pair in self.pairs.values() for s in pair),
            "next_round": self.driver.round,
        }

    async def run(self) -> FuzzOutcome:
        """The whole run: start the servers, fuzz until the budget is spent (or a signal
        stops it), stop them; progress.json all along (``harness.fuzz.campaign``)."""
        config = self.config
        self._started = time.monotonic()
        if config.duration is not None:
            self.driver.deadline = self._started + config.duration
        servers = [server for pair in self.pairs.values() for server in pair]
        campaign = Campaign(
            config.report_dir, config.settings, self.figures, self.driver.stop, config.previous
        )
        async with trio.open_nursery() as nursery:
            try:
                nursery.start_soon(campaign.watch)
                for server in servers:
                    if self.driver.stopped:
                        break
                    await server.start(nursery, serve=not config.batch)
                self.outcome.python = servers[1].python
                if not self.driver.stopped:
                    await self.driver.run(self.check, self.settle)
            finally:
                for server in servers:
                    await server.stop()
                nursery.cancel_scope.cancel()
        self.outcome.seconds = time.monotonic() - self._started
        self.outcome.restarts = sum(server.restarts for server in servers)
        self.outcome.stopped_by = campaign.stopped_by
        self.outcome.next_round = self.driver.round
        campaign.write("stopped" if campaign.stopped_by else "done")
        self._progress(force=True)
        return self.outcome


def fuzz(config: FuzzConfig, log: Callable[[str], None] | None = None) -> FuzzOutcome:
    """Run a differential fuzz (blocking); see ``Fuzzer``."""
    return trio.run(Fuzzer(config, log).run)
