"""Fuzz a user's own handler: ``python -m harness fuzz --handler MODULE:CLASS --server CLS``.

The handler runs in the chosen server class (stdlib target unless ``--target`` says
otherwise) in one server process, instrumented, serving forever, over the transport the
server class implies (or ``--transport``). Hypothesis draws cases (HTTP requests for
``BaseHTTPRequestHandler`` subclasses, stream bytes or datagrams otherwise) and sends
them one at a time. After each case the fuzzer looks for:

- ``exception``: ``handle_error`` was called (an uncaught exception in the handler);
- ``crash``: the server process died;
- ``unresponsive``: the server did not even take the connection (a synchronous server
  stuck in an earlier request, or a dead serve loop);
- ``hang``: the handler had not finished a second after the client was done;
- ``fd-leak``, ``thread-leak``, ``child-leak``: the process holds more file descriptors,
  threads or live children after the case than before it (psutil samples, after letting
  finished threads and children go);
- ``invalid-http``: for HTTP handlers, a reply to a well-formed HTTP/1.x request that h11
  (a strict HTTP/1.1 parser) rejects.

Speed: a hypothesis example is a drawn case and a seed; the seed makes ``DERIVED`` more
cases from the same grammar without hypothesis (drawing an example costs more than
running a case). An example's cases run together, ``CONCURRENT`` connections at a time
(a new one as soon as one ends: a case that pauses between its sends holds one slot, not
the whole group), and the server is checked once, after all of them; an example that
shows anything at all (an exception, a dead or late server, more fds, threads or
children) is run again one case at a time on a fresh server, so that each finding is one
case's. Invalid HTTP is judged per reply.

Each new kind of finding fails the hypothesis example (``harness.fuzz.driver``), so it is
shrunk to a minimal case, confirmed once more, and saved as a reproducer that ``python -m
harness replay`` runs again (exit 1 while the defect is there). After a crash, hang or
unresponsive server the server process is started afresh, so fuzzing goes on.
"""

from __future__ import annotations

import dataclasses
import os
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import trio

from harness.agent_batch import USER_SERVER
from harness.compare import Verdict, decide
from harness.errors import UsageError
from harness.fuzz import reproducers
from harness.fuzz.campaign import Campaign
from harness.fuzz.case import Case
from harness.fuzz.choice import Seeded
from harness.fuzz.driver import Driver, Failure
from harness.fuzz.judge import CaseRun
from harness.fuzz.servers import FuzzServer
from harness.fuzz.strategies import _case, cases
from harness.fuzz.transports import TRANSPORTS, Transport
from harness.scenario import ServerSpec
from harness.targets import PROJECT_ROOT, Target, parse_target

KINDS = ("exception", "crash", "unresponsive", "hang", "fd-leak", "thread-leak", "child-leak")
KINDS += ("invalid-http",)
_CONNECTION_LOST = {"BrokenPipeError", "ConnectionResetError", "ConnectionAbortedError"}
#: Seeded cases per hypothesis example, besides the drawn one; cases under way at a time;
#: connections the server has not accepted yet, at most (socketserver's listen backlog is
#: 5: a connection past a full queue waits for SYN retries, a second each; and a client
#: that closed at once leaves its connection queued, so this is counted by the server's
#: ``verify_request`` events, not by the clients).
DERIVED = 31
CONCURRENT = 16
UNACCEPTED = 4
_H11_METHODS = {b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH"}


def implied_transport(server: str) -> str:
    """The transport a server class's name implies (``ThreadingUnixStreamServer``:
    ``unix``, ``UDPServer``: ``udp``, ...); ``tcp`` for anything else."""
    name = server.rsplit(":", 1)[-1]
    datagram = "UDP" in name or "Datagram" in name
    if "Unix" in name:
        return "unix-datagram" if datagram else "unix"
    return "udp" if datagram else "tcp"


@dataclasses.dataclass
class HandlerFuzzConfig:
    """What one handler-fuzzing run does."""

    handler: str
    server: str
    target: Target = dataclasses.field(default_factory=lambda: parse_target("stdlib"))
    transport: str | None = None
    duration: float | None = 30.0
    max_examples: int | None = None
    max_cases: int | None = None
    seed: int = 0
    report_dir: Path = PROJECT_ROOT / "reports" / "fuzz"
    #: hypothesis's example database (``--database``): None, a Redis URL or a directory
    database: str | None = None
    idle: float = 0.3
    hang_after: float = 1.0
    shrink_seconds: float = 20.0
    max_findings: int = 8
    #: The command's settings, kept in progress.json for ``--resume``.
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: The progress.json of the campaign this run resumes (``--resume``), or None.
    previous: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        implied = implied_transport(self.server)
        self.transport = self.transport or implied
        if self.transport not in TRANSPORTS:
            raise UsageError(f"--transport={self.transport}: use one of {', '.join(TRANSPORTS)}")
        if TRANSPORTS[self.transport].datagram != TRANSPORTS[implied].datagram:
            kind = "datagram" if TRANSPORTS[implied].datagram else "stream"
            raise UsageError(f"--transport={self.transport}: {self.server} is a {kind} server")

    def spec(self) -> ServerSpec:
        """The server the handler runs in: the user's class with the fuzzer's named
        operations (``harness.agent_batch.UserServer``), bound for the transport."""
        transport = TRANSPORTS[self.transport or "tcp"]
        attrs: dict[str, Any] = {}
        if transport.family != TRANSPORTS[implied_transport(self.server)].family:
            # A TCP class over IPv6 or a Unix socket (or the other way round): the class
            # attribute the server's socket is made from.
            attrs["address_family"] = int(transport.family)
        return ServerSpec(
            "harness.agent_batch:UserServer",
            self.handler,
            family=transport.agent_family,
            server_attrs=attrs,
            instrument=True,
            env={USER_SERVER: self.server},
        )


@dataclasses.dataclass
class HandlerFinding:
    """One defect, with its minimal case and reproducer file."""

    kind: str
    detail: str
    case: Case
    path: Path | None = None
    confirmed: bool = True


@dataclasses.dataclass
class HandlerOutcome:
    """What a handler-fuzzing run did."""

    cases: int = 0
    seconds: float = 0.0
    findings: list[HandlerFinding] = dataclasses.field(default_factory=list)
    resources: dict[str, Any] = dataclasses.field(default_factory=dict)
    family: str = "stream"
    python: list[int] = dataclasses.field(default_factory=list)
    #: ``SIGTERM`` or ``SIGINT`` when a signal ended the run, else None.
    stopped_by: str | None = None
    #: The first hypothesis round of the next run (``--resume``).
    next_round: int = 0
    restarts: int = 0


def invalid_http(request: bytes, reply: bytes, closed: bool) -> str | None:
    """Why h11 rejects ``reply`` as the response to ``request``, or None.

    Only replies to well-formed HTTP/1.0 or HTTP/1.1 requests with an ordinary method are
    judged (anything else may get a bare HTTP/0.9-style reply from the stdlib itself).
    """
    import h11

    words = request.split(b"\n", 1)[0].rstrip(b"\r").split(b" ")
    if len(words) != 3 or words[0] not in _H11_METHODS:
        return None
    if words[2] not in (b"HTTP/1.0", b"HTTP/1.1") or not words[1].startswith(b"/"):
        return None
    if not reply:
        return None
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method=words[0], target="/", headers=[("Host", "fuzz")]))
    try:
        conn.receive_data(reply)
        if closed:
            conn.receive_data(b"")
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return None
            if isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                return None
    except h11.RemoteProtocolError as exc:
        return f"h11: {exc}"


def _children(pid: int) -> list[int] | None:
    """The children of ``pid`` (every thread's), from ``/proc``; None where the kernel
    does not list them."""
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children", "rb") as f:
                out.extend(int(word) for word in f.read().split())
    except FileNotFoundError:
        return [] if not os.path.exists(f"/proc/{pid}") else None
    except (ProcessLookupError, PermissionError):
        return None
    return out


def proc_sample(pid: int) -> dict[str, int] | None:
    """Threads, fds, live and zombie descendants of ``pid``, read straight from
    ``/proc``; None where ``/proc`` cannot tell (then psutil's slower sample is used).

    psutil finds children by reading every process's ``stat`` on the machine, a few
    milliseconds per sample on a busy one: with a sample after each case that alone held
    the handler fuzzer under 100 cases per second.
    """
    try:
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        threads = len(os.listdir(f"/proc/{pid}/task"))
    except FileNotFoundError:
        return {"alive": 0, "threads": 0, "fds": 0, "children": 0, "zombies": 0}
    except PermissionError:
        return None
    live = zombies = 0
    todo = _children(pid)
    if todo is None:
        return None
    while todo:
        child = todo.pop()
        try:
            with open(f"/proc/{child}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if state == b"Z":
            zombies += 1
        else:
            live += 1
            todo.extend(_children(child) or [])
    return {"alive": 1, "threads": threads, "fds": fds, "children": live, "zombies": zombies}


def _signature(kind: str, detail: str) -> str:
    return kind if kind != "exception" else f"{kind}:{detail.split(':', 1)[0]}"


class HandlerFuzzer:
    """Drives one handler with fuzz cases and watches the server process."""

    def __init__(self, config: HandlerFuzzConfig, log: Callable[[str], None] | None = None):
        self.config = config
        self.log = log or (lambda line: None)
        self.outcome = HandlerOutcome()
        self.transport: Transport = TRANSPORTS[config.transport or "tcp"]
        self.server = FuzzServer(
            config.target,
            "stream",
            self.transport,
            config.idle,
            spec=config.spec(),
            concurrency=CONCURRENT,
        )
        self.nursery: trio.Nursery | None = None
        self._base: dict[str, int] = {}
        self._first: dict[str, int] = {}
        self._started = 0.0
        self._last_progress = 0.0
        self._expected = self._seen_done = self._scan_index = 0
        self._connects = self._accepted = 0
        self._family = "stream"
        self.driver: Driver | None = None
        if config.previous:
            self.outcome.cases = int(config.previous.get("cases", 0))

    async def start(self) -> None:
        """Start (or restart) the server process; the resource baseline from there."""
        assert self.nursery is not None
        if self.server.agent is None:
            await self.server.start(self.nursery)
        else:
            await self.server.restart()
        self.outcome.python = self.server.python
        self._expected = self._seen_done = self._scan_index = 0
        self._connects = self._accepted = 0
        self.server.before_connect = self._accept_gate
        self._base = await self._settled(None)
        if not self._first:
            self._first = dict(self._base)

    async def describe(self) -> None:
        """Ask the server what it is (HTTP handler, datagram server), for the strategy."""
        what = await self.server.call("fuzz_describe", timeout=10.0)
        self.outcome.family = (
            "datagram" if what["datagram"] else "http" if what["http"] else "stream"
        )

    async def _settled(self, base: dict[str, int] | None, timeout: float = 0.3) -> dict[str, int]:
        """A sample, taken once threads/fds/children are back to ``base`` or after timeout."""
        end = time.monotonic() + timeout
        while True:
            now = self.sample()
            if base is None or all(
                now[k] <= base.get(k, 0) for k in ("fds", "threads", "children")
            ):
                return now
            if time.monotonic() > end:
                return now
            await trio.sleep(0.005)

    def sample(self) -> dict[str, int]:
        """The server process's threads, fds and children now (``/proc`` when it can)."""
        agent = self.server.agent
        fast = proc_sample(agent.pid) if agent is not None else None
        return fast if fast is not None else self.server.sample()

    def _scan(self) -> None:
        agent = self.server.agent
        if agent is None:
            return
        events = agent.events
        while self._scan_index < len(events):
            name = events[self._scan_index].get("ev")
            if name == "shutdown_request":
                self._seen_done += 1
            elif name == "verify_request":
                self._accepted += 1
            self._scan_index += 1

    async def _accept_gate(self) -> None:
        """Wait (up to ``hang_after``) until fewer than ``UNACCEPTED`` connections wait for
        the server to accept them; then count one more."""
        agent = self.server.agent
        deadline = time.monotonic() + self.config.hang_after
        while agent is not None:
            self._scan()
            left = deadline - time.monotonic()
            if self._connects - self._accepted < UNACCEPTED or left <= 0 or not agent.alive():
                break
            await agent.wait_for(lambda e: True, left, len(agent.events))
        self._connects += 1

    async def _wait_done(self, agent: Any) -> bool:
        deadline = time.monotonic() + self.config.hang_after
        while True:
            self._scan()
            if self._seen_done >= self._expected:
                return True
            left = deadline - time.monotonic()
            if left <= 0 or not agent.alive():
                return False
            await agent.wait_for(lambda e: True, left, len(agent.events))

    async def _prepare(self, cases: list[Case]) -> tuple[Any, int]:
        """Before running ``cases``: the server's agent (started if it is not running), its
        events read so far and trimmed; and where the events of this run will begin."""
        server = self.server
        if server.agent is None or not server.agent.alive():
            await self.start()
        agent = server.agent
        assert agent is not None
        self._scan()
        if len(agent.events) > 5000:
            del agent.events[:]
            self._scan_index = 0
        self._expected += sum(
            len(case.datagrams) if case.family == "datagram" else 1 for case in cases
        )
        return agent, len(agent.events)

    async def detect(self, case: Case) -> tuple[str, str] | None:
        """Run one case; ``(kind, detail)`` of what went wrong, or None."""
        server = self.server
        agent, start = await self._prepare([case])
        result = (await server.run([case]))[0]
        self.outcome.cases += 1
        state = result.get("server", {})
        if server.agent is not agent:  # FuzzServer.run restarted it
            self._base = await self._settled(None)
            if state.get("unresponsive"):
                return ("unresponsive", "the server stopped answering")
            return ("crash", "the server process died")
        # Let the handler finish: one shutdown_request per request (datagram servers too),
        # counted over the whole run, so a late event of the case before cannot count.
        done = await self._wait_done(agent)
        events = agent.events[start:]
        errors = [e for e in events if e.get("ev") == "handle_error"]
        if not agent.alive():
            await self.start()
            return ("crash", "the server process died")
        if case.end in ("close", "reset"):
            # The client left without reading: the stdlib itself reports the lost
            # connection through handle_error (BrokenPipeError, ConnectionResetError).
            errors = [e for e in errors if e.get("type") not in _CONNECTION_LOST]
        if errors:
            return ("exception", f"{errors[0].get('type')}: {errors[0].get('message', '')}")
        if not done:
            accepted = any(e.get("ev") in ("verify_request", "process_request") for e in events)
            await self.start()
            if accepted:
                return ("hang", f"the handler had not finished {self.config.hang_after:g} s later")
            return ("unresponsive", "the server did not take the connection")
        if self.outcome.family == "http" and case.end in ("half_close", "open"):
            reply = result.get("reply", "").encode("latin-1")
            why = invalid_http(case.data, reply, result.get("end") == "eof")
            if why:
                return ("invalid-http", why)
        now = await self._settled(self._base)
        for key, kind in (
            ("fds", "fd-leak"),
            ("threads", "thread-leak"),
            ("children", "child-leak"),
        ):
            if now[key] > self._base.get(key, 0):
                detail = f"{key}: {self._base.get(key, 0)} -> {now[key]} after one case"
                self._base = now
                return (kind, detail)
        return None

    def derive(self, example: tuple[Case, int]) -> list[Case]:
        """The cases of a hypothesis example: the drawn case, then ``DERIVED`` cases
        seeded by its seed (and its bytes, so that one seed drawn again with other bytes
        gives other cases)."""
        case, seed = example
        stream = seed ^ zlib.crc32(case.data + b"".join(case.datagrams)) << 32
        out = [case]
        for index in range(DERIVED):
            derived = _case(Seeded(stream * 64 + index), self._family, False)
            if derived not in out:
                out.append(derived)
        return out

    async def detect_group(self, group: list[Case]) -> tuple[Case, tuple[str, str]] | None:
        """Run ``group`` at once; the first case that shows a defect and what it is, or
        None. Anything but invalid HTTP is found again by running the group's cases one
        at a time (a leak or an exception in a group is nobody's in particular)."""
        if len(group) == 1:
            found = await self.detect(group[0])
            return (group[0], found) if found else None
        server = self.server
        agent, start = await self._prepare(group)
        results = await server.run(group)
        self.outcome.cases += len(group)
        suspect = server.agent is not agent or not await self._wait_done(agent)
        if not suspect:
            events = agent.events[start:]
            # As in ``detect``: a client that left without reading makes the stdlib itself
            # report the lost connection.
            lost = _CONNECTION_LOST if any(c.end in ("close", "reset") for c in group) else ()
            suspect = not agent.alive() or any(
                e.get("ev") == "handle_error" and e.get("type") not in lost for e in events
            )
        if not suspect:
            now = await self._settled(self._base)
            suspect = any(
                now[key] > self._base.get(key, 0) for key in ("fds", "threads", "children")
            )
        if suspect:
            # A fresh server for the cases one by one: what the group left (a hung
            # thread, a leaked fd) must not be blamed on the first case that follows.
            await self.start()
            for case in group:
                found = await self.detect(case)
                if found:
                    return case, found
            return None
        if self.outcome.family == "http":
            for case, result in zip(group, results):
                if case.end not in ("half_close", "open"):
                    continue
                reply = result.get("reply", "").encode("latin-1")
                why = invalid_http(case.data, reply, result.get("end") == "eof")
                if why:
                    return case, ("invalid-http", why)
        return None

    async def check(self, example: tuple[Case, int], failing: Failure | None) -> Failure | None:
        """The hypothesis check: run an example's cases; a failure for a defect. While
        shrinking, the case that failed last runs first, alone, when the example still
        has it."""
        group = self.derive(example)
        # The whole example at once: checking the server after every few cases made
        # waiting for the slowest case of each few (a pause of 10 ms per send) the limit.
        # The cases that pause longest start first, so that none of them is left to run
        # alone at the end.
        groups = [sorted(group, key=lambda case: -case.pause * (len(case.pieces()) - 1))]
        if failing is not None and failing.detail[0] in group:
            groups.insert(0, [failing.detail[0]])
        found = None
        for part in groups:
            found = await self.detect_group(part)
            if found is not None or (self.driver is not None and self.driver.over()):
                break
        now = time.monotonic()
        if now - self._last_progress > 2.0:
            self._last_progress = now
            done = self.outcome.cases - int((self.config.previous or {}).get("cases", 0))
            self.log(
                f"[{now - self._started:6.1f}s] {self.outcome.cases} cases "
                f"({done / max(now - self._started, 1e-9):.0f}/s), "
                f"{len(self.outcome.findings)} finding(s)"
            )
        if found is None:
            return None
        case, what = found
        return Failure(example, _signature(*what), (case, what))

    async def settle(self, failure: Failure, spent: float) -> list[str]:
        """Confirm a finding once more and save it.

        The verdict is ``harness.compare.decide``'s: the defect is a broken invariant of
        the case (there is no baseline: nothing broken is what it is held to), ``fails``
        when the rerun shows the same kind again, else ``flaky``."""
        case, (kind, detail) = failure.detail
        again = await self.detect(case)
        repeated = (f"{again[0]}: {again[1]}",) if again is not None and again[0] == kind else ()
        held_to = CaseRun({})
        decision = decide(
            (held_to, CaseRun({}, violations=(f"{kind}: {detail}",))),
            [(held_to, CaseRun({}, violations=repeated))],
        )
        confirmed = decision.verdict is Verdict.FAILS
        finding = HandlerFinding(kind, detail, case, confirmed=confirmed)
        finding.path = reproducers.save(
            self.config.report_dir,
            case,
            kind="handler",
            seed=self.config.seed,
            mode="sockets",
            transport=self.transport.name,
            targets={"target": self.config.target.spec_string()},
            verdict=decision.verdict.value,
            detail={
                "handler": self.config.handler,
                "server": self.config.server,
                "finding": kind,
                "detail": detail,
            },
        )
        self.outcome.findings.append(finding)
        self.log(f"found {kind}: {detail} ({case.describe()}) -> {finding.path}")
        return []

    def figures(self) -> dict[str, Any]:
        """The run's figures for progress.json."""
        return {
            "kind": "handler-fuzz",
            "family": self.outcome.family,
            "handler": self.config.handler,
            "seed": self.config.seed,
            "cases": self.outcome.cases,
            "examples": self.driver.examples if self.driver else 0,
            "findings": len(self.outcome.findings),
            "reproducers": [str(f.path) for f in self.outcome.findings if f.path],
            "server_restarts": self.server.restarts,
            "next_round": self.driver.round if self.driver else self._first_round,
        }

    @property
    def _first_round(self) -> int:
        return int((self.config.previous or {}).get("next_round", 0))

    def stop(self) -> None:
        """End the run soon (SIGTERM, SIGINT)."""
        self._stop = True
        if self.driver is not None:
            self.driver.stop()

    async def run(self) -> HandlerOutcome:
        """The whole run: start the server, fuzz within the budget (or until a signal),
        stop it; progress.json all along (``harness.fuzz.campaign``)."""
        config = self.config
        self._started = time.monotonic()
        self._stop = False
        campaign = Campaign(
            config.report_dir, config.settings, self.figures, self.stop, config.previous
        )
        async with trio.open_nursery() as nursery:
            self.nursery = nursery
            try:
                nursery.start_soon(campaign.watch)
                await self.start()
                await self.describe()
                family = {"http": "http-valid"}.get(self.outcome.family, self.outcome.family)
                self._family = family
                driver = self.driver = Driver(
                    st.tuples(cases(family, allow_open=False), st.integers(0, 2**32 - 1)),
                    digest=f"harness-handler-{config.handler}-{config.server}",
                    seed=config.seed,
                    report_dir=config.report_dir,
                    shrink_seconds=config.shrink_seconds,
                    max_findings=config.max_findings,
                    max_examples=config.max_examples,
                    exhausted=lambda: (
                        config.max_cases is not None and self.outcome.cases >= config.max_cases
                    ),
                    database=config.database,
                    first_round=self._first_round,
                )
                if self._stop:
                    driver.stop()
                if config.duration is not None:
                    driver.deadline = self._started + config.duration
                await driver.run(self.check, self.settle)
                end = await self._settled(self._first)
                self.outcome.resources = {
                    k: {"start": self._first.get(k), "end": end.get(k)}
                    for k in ("fds", "threads", "children", "zombies")
                }
            finally:
                await self.server.stop()
                nursery.cancel_scope.cancel()
        self.outcome.seconds = time.monotonic() - self._started
        self.outcome.stopped_by = campaign.stopped_by
        self.outcome.restarts = self.server.restarts
        self.outcome.next_round = self.driver.round if self.driver else self._first_round
        campaign.write("stopped" if campaign.stopped_by else "done")
        return self.outcome


def fuzz_handler(
    config: HandlerFuzzConfig, log: Callable[[str], None] | None = None
) -> HandlerOutcome:
    """Fuzz a handler (blocking); see ``HandlerFuzzer``."""
    return trio.run(HandlerFuzzer(config, log).run)
