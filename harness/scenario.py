"""Scenarios: what a catalog entry declares, and the ``Run`` a scenario drives.

A scenario is an async function registered with ``@scenario(id, server=ServerSpec(...))``.
It receives a ``Run``: the server process of one target, bound to that scenario. It drives
the server with commands (``serve_forever``, ``call``), real clients (``connect``,
``datagram``), waits on events (never sleeps to synchronise), and records facts::

    @scenario("socketserver/tcp/echo", server=ServerSpec("TCPServer", handler=ECHO))
    async def echo(run):
        await run.serve_forever()
        async with await run.connect() as client:
            await client.send(b"hi\\n")
            run.record("reply", (await client.recv_until_eof()).summary())

What a target did is the recorded facts plus the server's events, stdout and stderr,
normalized. The engine compares that with the baseline's; ``run.expect`` states an
invariant that must hold on every target.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import re
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import trio

from harness.clients import DatagramClient, StreamClient, connect_stream, open_datagram
from harness.errors import ScenarioError
from harness.host import AgentProcess

_ID = re.compile(r"^[a-z0-9_.-]+(/[a-z0-9_.-]+){2,}$")
_FAMILIES = ("inet", "inet6", "unix", "unix-abstract")


@dataclasses.dataclass(frozen=True)
class ServerSpec:
    """The server a scenario runs: class, handler, address family and overrides.

    ``server`` is a class name in the target's ``socketserver`` (``ThreadingTCPServer``) or
    ``module:Class`` (``http.server:HTTPServer``, ``scenarios.handlers.x:MyServer``);
    ``handler`` is always ``module:Class``. ``family`` defaults from the class name
    (``Unix*`` is ``unix``, everything else ``inet``).
    """

    server: str = "TCPServer"
    handler: str = "scenarios.handlers.stream:Echo"
    family: str | None = None
    server_attrs: dict[str, Any] = dataclasses.field(default_factory=dict)
    handler_attrs: dict[str, Any] = dataclasses.field(default_factory=dict)
    server_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    bind_and_activate: bool = True
    instrument: bool = True
    env: dict[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.family is not None and self.family not in _FAMILIES:
            raise ScenarioError(f"family={self.family!r}: use one of {', '.join(_FAMILIES)}")
        if ":" not in self.handler:
            raise ScenarioError(f"handler={self.handler!r}: expected MODULE:CLASS")

    @property
    def address_family(self) -> str:
        """The family the server binds, explicit or derived from the class name."""
        if self.family:
            return self.family
        name = self.server.rsplit(":", 1)[-1]
        return "unix" if "Unix" in name else "inet"

    @property
    def datagram(self) -> bool:
        """Whether the server is a datagram server (UDP or Unix datagram)."""
        name = self.server.rsplit(":", 1)[-1]
        return "UDP" in name or "Datagram" in name

    def to_agent(self) -> dict[str, Any]:
        """The spec as the agent reads it."""
        data = dataclasses.asdict(self)
        data["family"] = self.address_family
        return data


@dataclasses.dataclass(frozen=True)
class Known:
    """A known, intended difference: which observation keys it covers and why.

    ``keys`` are glob patterns over the dotted keys of an observation (``facts.zombies``,
    ``stderr``). ``applies`` gets the Python version of the server process and the target
    name; a difference is explained only when every differing key matches a ``Known``
    that applies.

    ``between``, when given, also has to hold: it gets the target's and the baseline's
    Python versions, for differences between CPython releases (a name added in 3.11 is
    expected when a 3.12 target is compared with a 3.9 baseline, never on one version).
    Without the baseline's version a ``Known`` with ``between`` explains nothing.

    ``matches``, when given, recognises the difference by its shape, where a glob over
    keys cannot say it (what a fuzz case shows): it gets what was run (the fuzz case),
    the baseline's and the target's observations and the differing keys, and says
    whether this ``Known`` accounts for the whole difference. Without them it explains
    nothing.
    """

    keys: tuple[str, ...]
    reason: str
    issue: str = ""
    targets: tuple[str, ...] = ("reference",)
    applies: Callable[[tuple[int, ...]], bool] = lambda version: True
    between: Callable[[tuple[int, ...], tuple[int, ...]], bool] | None = None
    matches: Callable[[Any, dict[str, Any], dict[str, Any], list[str]], bool] | None = None

    def applies_to(
        self,
        target: str | Iterable[str],
        version: tuple[int, ...],
        baseline: tuple[int, ...] | None = None,
    ) -> bool:
        """Whether this may explain differences of ``target`` on ``version`` at all.

        ``target`` is a target name or the set of its labels (``Target.labels``: its name,
        and ``reference`` when it runs the reference's modules under any name);
        ``baseline`` is the baseline's Python version, which only ``between`` looks at.
        """
        labels = {target} if isinstance(target, str) else set(target)
        return (
            (not self.targets or bool(labels & set(self.targets)))
            and self.applies(version)
            and (self.between is None or (bool(baseline) and self.between(version, baseline)))
        )

    def covers_key(self, key: str) -> bool:
        """Whether ``key`` is one of the observation keys this may explain."""
        return any(fnmatch.fnmatchcase(key, pattern) for pattern in self.keys)

    def recognises(
        self,
        subject: Any,
        observations: tuple[dict[str, Any], dict[str, Any]] | None,
        keys: list[str],
    ) -> bool:
        """Whether ``matches`` (when there is one) says the difference is this one.

        A recogniser that trips over an odd observation recognises nothing: the
        difference is then reported, which is the safe side.
        """
        if self.matches is None:
            return True
        if observations is None:
            return False
        try:
            return bool(self.matches(subject, observations[0], observations[1], keys))
        except Exception:
            return False

    def covers(
        self,
        key: str,
        target: str | Iterable[str],
        version: tuple[int, ...],
        baseline: tuple[int, ...] | None = None,
    ) -> bool:
        """Whether this explains a difference at ``key`` for ``target`` on ``version``
        (see ``applies_to``); a ``Known`` with ``matches`` also needs the difference's
        observations (``harness.compare.explain``)."""
        return (
            self.matches is None
            and self.applies_to(target, version, baseline)
            and self.covers_key(key)
        )

    def describe(self) -> str:
        """The reason, with its issue number."""
        return f"{self.reason} ({self.issue})" if self.issue else self.reason


ScenarioFunction = Callable[["Run"], Awaitable[None]]


@dataclasses.dataclass(frozen=True)
class Scenario:
    """A registered catalog entry."""

    id: str
    function: ScenarioFunction
    server: ServerSpec
    description: str
    events: str = "counts"
    stderr: str = "text"
    stdout: str = "text"
    deadline: float = 20.0
    known: tuple[Known, ...] = ()
    tags: tuple[str, ...] = ()

    @property
    def family(self) -> str:
        """The catalog family: ``socketserver/tcp/echo`` is in ``socketserver/tcp``."""
        return self.id.rsplit("/", 1)[0]


REGISTRY: dict[str, Scenario] = {}

#: The tag of a scenario that takes a second or more by design (it waits out a timeout):
#: a run starts these first (``harness.engine.start_order``).
SLOW = "slow"


def scenario(
    id: str,
    *,
    server: ServerSpec | None = None,
    events: str = "counts",
    stderr: str = "text",
    stdout: str = "text",
    deadline: float = 20.0,
    known: Iterable[Known] = (),
    tags: Iterable[str] = (),
    description: str | None = None,
) -> Callable[[ScenarioFunction], ScenarioFunction]:
    """Register a scenario under ``id`` (``<area>/<family>/<name>``, lower case)."""
    if not _ID.match(id):
        raise ScenarioError(f"scenario id {id!r}: expected <area>/<family>/<name>, lower case")
    for name, value, allowed in (
        ("events", events, ("counts", "sequence", "none")),
        ("stderr", stderr, ("text", "sorted", "none")),
        ("stdout", stdout, ("text", "sorted", "none")),
    ):
        if value not in allowed:
            raise ScenarioError(f"{id}: {name}={value!r}: use one of {', '.join(allowed)}")

    def register(function: ScenarioFunction) -> ScenarioFunction:
        if id in REGISTRY:
            raise ScenarioError(f"scenario id {id!r} registered twice")
        doc = description or (function.__doc__ or "").strip()
        if not doc:
            raise ScenarioError(f"{id}: a scenario needs a description (docstring)")
        REGISTRY[id] = Scenario(
            id=id,
            function=function,
            server=server or ServerSpec(),
            description=doc,
            events=events,
            stderr=stderr,
            stdout=stdout,
            deadline=deadline,
            known=tuple(known),
            tags=tuple(tags),
        )
        return function

    return register


class Outcome(dict):
    """What a command did: ``{"returned": value}``, ``{"raised": "Type: msg"}`` or
    ``{"pending": True}`` when it had not finished within the wait."""

    @property
    def returned(self) -> bool:
        """Whether the command returned normally."""
        return "returned" in self

    @property
    def pending(self) -> bool:
        """Whether the command was still running when the wait ended."""
        return "pending" in self


class Run:
    """One target's server process, as a scenario sees it."""

    def __init__(self, agent: AgentProcess, ready: dict[str, Any], spec: ServerSpec) -> None:
        self.agent = agent
        self.spec = spec
        self.ready_event = ready
        self.address = ready.get("address")
        self.python: tuple[int, ...] = tuple(ready.get("python", ()))
        self.implementation: str = ready.get("implementation", "")
        self.facts: dict[str, Any] = {}
        self.violations: list[str] = []
        self.workdir: Path = agent.workdir
        self._base_sample: dict[str, int] | None = None

    # -- recording --

    def record(self, key: str, value: Any) -> None:
        """Record a fact under ``key``; facts are compared across targets."""
        if key in self.facts:
            raise ScenarioError(f"fact {key!r} recorded twice")
        try:
            json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise ScenarioError(f"fact {key!r} is not a JSON value: {exc}") from None
        self.facts[key] = value

    def expect(self, condition: bool, message: str) -> bool:
        """State an invariant; when it is false the result is ``fails`` on this target."""
        if not condition:
            self.violations.append(message)
        return condition

    # -- commands --

    async def call(
        self, method: str, *args: Any, timeout: float = 5.0, thread: bool = False, **kwargs: Any
    ) -> Outcome:
        """Call ``server.<method>(*args)`` in the agent and wait up to ``timeout``.

        With ``thread=True`` it runs in a thread of its own (for calls that block, such as
        ``shutdown``); a call still running after ``timeout`` gives ``Outcome(pending=True)``.
        """
        cid = self.agent.command(
            "call", method=method, args=list(args), kwargs=kwargs, thread=thread
        )
        return await self.outcome(cid, timeout)

    def start(self, method: str, *args: Any, **kwargs: Any) -> int:
        """Start ``server.<method>(*args)`` in a thread and return at once (a command id)."""
        return self.agent.command(
            "call", method=method, args=list(args), kwargs=kwargs, thread=True
        )

    def start_exec(self, code: str) -> int:
        """Start ``code`` in a thread of the agent and return at once (a command id)."""
        return self.agent.command("exec", code=code, thread=True)

    async def outcome(self, cid: int, timeout: float = 5.0) -> Outcome:
        """Wait for a started command to finish; ``pending`` if it does not in time."""
        event = await self.agent.wait_command(cid, timeout)
        if event is None:
            if not self.agent.alive():
                return Outcome(raised="server process died")
            return Outcome(pending=True)
        if event["ev"] == "command:returned":
            if "value_file" in event:
                with open(event["value_file"]) as handle:
                    return Outcome(returned=json.load(handle))
            return Outcome(returned=event.get("value"))
        return Outcome(raised=f"{event.get('type')}: {event.get('message', '')}".rstrip(": "))

    async def exec(self, code: str, timeout: float = 5.0) -> Outcome:
        """Run Python ``code`` in the agent (``server`` is bound; set ``result``)."""
        cid = self.agent.command("exec", code=code)
        return await self.outcome(cid, timeout)

    async def value(self, expression: str, timeout: float = 5.0) -> Any:
        """Evaluate an expression in the agent and return its value (or the outcome)."""
        outcome = await self.exec(f"result = {expression}", timeout)
        return outcome["returned"] if outcome.returned else dict(outcome)

    def serve_forever(self, poll_interval: float | None = None) -> int:
        """Start ``serve_forever`` in a thread of the agent; returns its command id."""
        args = [] if poll_interval is None else [poll_interval]
        return self.start("serve_forever", *args)

    async def shutdown(self, timeout: float = 5.0) -> Outcome:
        """``server.shutdown()`` from another thread, waited for up to ``timeout``."""
        return await self.call("shutdown", thread=True, timeout=timeout)

    async def server_close(self, timeout: float = 5.0) -> Outcome:
        """``server.server_close()`` from another thread, waited for up to ``timeout``."""
        return await self.call("server_close", thread=True, timeout=timeout)

    async def stop_serving(self, serve_id: int, timeout: float = 5.0) -> dict[str, Any]:
        """Shut down a ``serve_forever`` started with ``serve_forever()`` and close."""
        shutdown = await self.shutdown(timeout)
        served = await self.outcome(serve_id, timeout)
        closed = await self.server_close(timeout)
        return {"shutdown": dict(shutdown), "serve_forever": dict(served), "close": dict(closed)}

    # -- events --

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        """Events so far, optionally only those called ``name``."""
        return [e for e in self.agent.events if name is None or e.get("ev") == name]

    async def wait_event(self, name: str, count: int = 1, timeout: float = 5.0) -> bool:
        """Wait until ``count`` events called ``name`` have arrived; False on timeout."""
        seen = 0

        def match(event: dict[str, Any]) -> bool:
            nonlocal seen
            if event.get("ev") == name:
                seen += 1
            return seen >= count

        return await self.agent.wait_for(match, timeout) is not None

    # -- clients --

    async def connect(self, timeout: float = 5.0) -> StreamClient:
        """A new stream connection to the server (use as ``async with``)."""
        return await connect_stream(self.spec.address_family, self.address, timeout)

    async def try_connect(self, timeout: float = 2.0) -> StreamClient | str:
        """A connection, or the name of the error that refused it."""
        try:
            return await self.connect(timeout)
        except trio.TooSlowError:
            return "timeout"
        except OSError as exc:
            return type(exc).__name__

    async def connect_result(self, timeout: float = 2.0) -> str:
        """What a new connection gets: ``accepted`` (closed again at once) or the name of
        the error that refused it."""
        got = await self.try_connect(timeout)
        if isinstance(got, str):
            return got
        got.close()
        return "accepted"

    async def datagram(self) -> DatagramClient:
        """A new datagram client aimed at the server (use as ``async with``)."""
        return await open_datagram(self.spec.address_family, self.address, self.workdir)

    # -- watching --

    async def sample(self) -> dict[str, int]:
        """Threads, fds, children and zombies now; threads and fds relative to ``ready``.

        The harness's own finished command threads are joined first, and the thread and
        fd counts are the least of three quick readings, so that a thread or fd that is
        just going away is not counted while one that stays always is.
        """
        if self._base_sample is None:
            raise ScenarioError("sample() before the run started")
        if self.agent.alive():
            await self.outcome(self.agent.command("quiesce"), timeout=5.0)
        readings = []
        for last in (False, False, True):
            # Children and zombies are taken from the last reading only.
            readings.append(self.agent.sample(tree=last))
            await trio.sleep(0.003)
        now = dict(readings[-1])
        now["threads"] = min(r["threads"] for r in readings)
        now["fds"] = min(r["fds"] for r in readings)
        return {
            "alive": now["alive"],
            "threads": now["threads"] - self._base_sample["threads"],
            "fds": now["fds"] - self._base_sample["fds"],
            "children": now["children"],
            "zombies": now["zombies"],
        }

    async def settle(
        self, check: Callable[[dict[str, int]], bool], timeout: float = 3.0
    ) -> dict[str, int]:
        """Sample until ``check(sample)`` holds or ``timeout`` passes; the last sample.

        For states the server reaches asynchronously (a thread ending, a child reaped):
        waiting on the condition is not a sleep, it ends as soon as the state is reached.
        """
        with trio.move_on_after(timeout):
            while True:
                current = await self.sample()
                if check(current):
                    return current
                await trio.sleep(0.01)
        return await self.sample()

    def mark_base(self) -> None:
        """Take the reference sample that later samples are relative to."""
        self._base_sample = self.agent.sample(tree=False)  # threads and fds are relative

    def alive(self) -> bool:
        """Whether the server process still runs."""
        return self.agent.alive()
