"""Fuzz a user's own handler: ``python -m harness fuzz --handler MODULE:CLASS --server CLS``.

The handler runs in the chosen server class (stdlib target unless ``--target`` says
otherwise) in one server process, instrumented, serving forever. Hypothesis draws cases
(HTTP requests for ``BaseHTTPRequestHandler`` subclasses, stream bytes or datagrams
otherwise) and sends them one at a time. After each case the fuzzer looks for:

- ``exception``: ``handle_error`` was called (an uncaught exception in the handler);
- ``crash``: the server process died;
- ``unresponsive``: the server did not even accept the connection (a synchronous server
  stuck in an earlier request, or a dead serve loop);
- ``hang``: the handler had not finished a second after the client was done;
- ``fd-leak``, ``thread-leak``, ``child-leak``: the process holds more file descriptors,
  threads or live children after the case than before it (psutil samples via
  ``AgentProcess.sample``, after letting finished threads and children go);
- ``invalid-http``: for HTTP handlers, a reply to a well-formed HTTP/1.x request that h11
  (a strict HTTP/1.1 parser) rejects.

Each new kind of finding fails the hypothesis example, so it is shrunk to a minimal case,
confirmed once more, and saved as a reproducer that ``python -m harness replay`` runs again
(exit 1 while the defect is there). After a crash, hang or unresponsive server the server
process is started afresh, so fuzzing goes on.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

from harness.errors import HarnessError
from harness.fuzz import Case, cases
from harness.fuzz_run import FuzzServer, TimeUp, nothing_found_row, run_hypothesis, save_reproducer
from harness.reports import json_report, markdown
from harness.scenario import ServerSpec
from harness.targets import PROJECT_ROOT, Target, parse_target

KINDS = (
    "exception",
    "crash",
    "unresponsive",
    "hang",
    "fd-leak",
    "thread-leak",
    "child-leak",
    "invalid-http",
)
_CONNECTION_LOST = {"BrokenPipeError", "ConnectionResetError", "ConnectionAbortedError"}
_H11_METHODS = {b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH"}


@dataclasses.dataclass
class HandlerFuzzConfig:
    """What one handler-fuzzing run does."""

    handler: str
    server: str
    target: Target = dataclasses.field(default_factory=lambda: parse_target("stdlib"))
    duration: float | None = 30.0
    max_examples: int | None = None
    seed: int = 0
    report_dir: Path = PROJECT_ROOT / "reports" / "fuzz"
    idle: float = 0.3
    hang_after: float = 1.0
    shrink_seconds: float = 20.0
    max_findings: int = 8

    def spec(self) -> ServerSpec:
        """The server the handler runs in."""
        return ServerSpec(self.server, self.handler, instrument=True)


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


def invalid_http(request: bytes, reply: bytes, closed: bool) -> str | None:
    """Why h11 rejects ``reply`` as the response to ``request``, or None.

    Only replies to well-formed HTTP/1.0 or HTTP/1.1 requests with an ordinary method are
    judged (anything else may get a bare HTTP/0.9-style reply from the stdlib itself).
    """
    import h11

    line = request.split(b"\n", 1)[0].rstrip(b"\r")
    words = line.split(b" ")
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


class _Found(AssertionError):
    pass


class HandlerFuzzer:
    """Drives one handler with fuzz cases and watches the server process."""

    def __init__(self, config: HandlerFuzzConfig, log: Callable[[str], None] | None = None):
        self.config = config
        self.log = log or (lambda line: None)
        self.outcome = HandlerOutcome()
        self.server = FuzzServer(config.target, "stream", config.idle, spec=config.spec())
        self._base: dict[str, int] = {}
        self._first: dict[str, int] = {}
        self._known: set[str] = set()
        self._last: tuple[Case, str, str] | None = None
        self._shrink_started: float | None = None
        self._deadline = float("inf")
        self._started = 0.0
        self._last_progress = 0.0
        self._expected = self._seen_done = self._scan_index = 0

    async def _start(self, nursery: trio.Nursery) -> None:
        if self.server.agent is None:
            await self.server.start(nursery)
        else:
            await self.server.restart()
        self.outcome.python = self.server.python
        self._expected = self._seen_done = self._scan_index = 0
        self._base = await self._settled(None)
        if not self._first:
            self._first = dict(self._base)

    async def _settled(self, base: dict[str, int] | None, timeout: float = 0.3) -> dict[str, int]:
        """A sample, taken once threads/fds/children are back to ``base`` or after timeout."""
        end = time.monotonic() + timeout
        while True:
            now = self.server.sample()
            if base is None or all(
                now[k] <= base.get(k, 0) for k in ("fds", "threads", "children")
            ):
                return now
            if time.monotonic() > end:
                return now
            await trio.sleep(0.005)

    def _scan(self) -> None:
        agent = self.server.agent
        if agent is None:
            return
        events = agent.events
        while self._scan_index < len(events):
            if events[self._scan_index].get("ev") == "shutdown_request":
                self._seen_done += 1
            self._scan_index += 1

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

    async def detect(self, case: Case) -> tuple[str, str] | None:
        """Run one case; ``(kind, detail)`` of what went wrong, or None."""
        server = self.server
        if server.agent is None or not server.agent.alive():
            await self._start(self._nursery)
        agent = server.agent
        assert agent is not None
        self._scan()
        if len(agent.events) > 5000:
            del agent.events[:]
            self._scan_index = 0
        start = len(agent.events)
        self._expected += len(case.datagrams) if case.family == "datagram" else 1
        results = await server.run([case])
        self.outcome.cases += 1
        result = results[0]
        state = result.get("server", {})
        if server.agent is not agent:  # FuzzServer.run restarted it
            self._base = await self._settled(None)
            if state.get("unresponsive"):
                return ("unresponsive", "the server stopped answering")
            return ("crash", "the server process died")
        if not agent.alive():
            await self._start(self._nursery)
            return ("crash", "the server process died")
        # Let the handler finish: one shutdown_request per request (datagram servers too),
        # counted over the whole run, so a late event of the case before cannot count.
        done = await self._wait_done(agent)
        events = agent.events[start:]
        errors = [e for e in events if e.get("ev") == "handle_error"]
        if not agent.alive():
            await self._start(self._nursery)
            return ("crash", "the server process died")
        if case.end in ("close", "reset"):
            # The client left without reading: the stdlib itself reports the lost
            # connection through handle_error (BrokenPipeError, ConnectionResetError).
            errors = [e for e in errors if e.get("type") not in _CONNECTION_LOST]
        if errors:
            first = errors[0]
            return ("exception", f"{first.get('type')}: {first.get('message', '')}")
        if not done:
            accepted = any(e.get("ev") in ("verify_request", "process_request") for e in events)
            await self._start(self._nursery)
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

    def _check(self, case: Case) -> None:
        now = time.monotonic()
        if self._shrink_started is not None:
            if now - self._shrink_started > self.config.shrink_seconds and self._last:
                if case == self._last[0]:
                    raise _Found(self._last[1])
                return
        elif now > self._deadline:
            raise TimeUp()
        found = trio.from_thread.run(self.detect, case)
        if now - self._last_progress > 2.0:
            self._last_progress = now
            elapsed = now - self._started
            self.log(
                f"[{elapsed:6.1f}s] {self.outcome.cases} cases, "
                f"{len(self.outcome.findings)} finding(s)"
            )
        if found is None:
            return
        kind, detail = found
        sig = kind if kind != "exception" else f"{kind}:{detail.split(':', 1)[0]}"
        if sig in self._known:
            return
        if self._shrink_started is None:
            self._shrink_started = time.monotonic()
        self._last = (case, kind, detail)
        raise _Found(kind)

    def _hypothesis_run(self, examples: int, run_seed: int, reuse: bool) -> None:
        family = "http-valid" if self.outcome.family == "http" else self.outcome.family
        run_hypothesis(
            cases(family, allow_open=False),
            self._check,
            examples=examples,
            run_seed=run_seed,
            reuse=reuse,
            report_dir=self.config.report_dir,
            digest=f"harness-handler-{self.config.handler}-{self.config.server}",
        )

    async def _settle_finding(self) -> None:
        assert self._last is not None
        case, kind, detail = self._last
        self._last = None
        self._shrink_started = None
        sig = kind if kind != "exception" else f"{kind}:{detail.split(':', 1)[0]}"
        self._known.add(sig)
        again = await self.detect(case)
        confirmed = again is not None and again[0] == kind
        finding = HandlerFinding(kind, detail, case, confirmed=confirmed)
        finding.path = save_reproducer(
            self.config.report_dir,
            case,
            kind="handler",
            seed=self.config.seed,
            targets={"target": self.config.target.spec_string()},
            verdict="fails" if confirmed else "flaky",
            detail={
                "handler": self.config.handler,
                "server": self.config.server,
                "finding": kind,
                "detail": detail,
            },
        )
        self.outcome.findings.append(finding)
        self.log(f"found {kind}: {detail} ({case.describe()}) -> {finding.path}")

    async def run(self) -> HandlerOutcome:
        """The whole run: start the server, fuzz within the budget, stop it."""
        config = self.config
        self._started = time.monotonic()
        if config.duration is not None:
            self._deadline = self._started + config.duration
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                await self._start(nursery)
                await self._detect_family()
                chunk, left = 0, config.max_examples
                while len(self.outcome.findings) < config.max_findings:
                    if time.monotonic() > self._deadline or (left is not None and left <= 0):
                        break
                    size = 100_000 if left is None else left
                    before = self.outcome.cases
                    try:
                        await trio.to_thread.run_sync(
                            self._hypothesis_run, size, config.seed * 100_003 + chunk, chunk == 0
                        )
                    except _Found:
                        pass
                    except TimeUp:
                        break
                    except Exception as exc:
                        if self._last is None:
                            raise HarnessError(f"hypothesis failed: {exc!r}") from exc
                    if self._last is not None:
                        await self._settle_finding()
                    chunk += 1
                    if left is not None:
                        left -= max(1, self.outcome.cases - before)
                end = await self._settled(self._first)
                self.outcome.resources = {
                    k: {"start": self._first.get(k), "end": end.get(k)}
                    for k in ("fds", "threads", "children", "zombies")
                }
            finally:
                await self.server.stop()
                nursery.cancel_scope.cancel()
        self.outcome.seconds = time.monotonic() - self._started
        return self.outcome

    async def _detect_family(self) -> None:
        if self.config.spec().datagram:
            self.outcome.family = "datagram"
            return
        value = await self.server._exec(
            "import http.server\n"
            "result = issubclass(server.RequestHandlerClass, http.server.BaseHTTPRequestHandler)",
            10.0,
        )
        self.outcome.family = "http" if value else "stream"


def fuzz_handler(
    config: HandlerFuzzConfig, log: Callable[[str], None] | None = None
) -> HandlerOutcome:
    """Fuzz a handler (blocking); see ``HandlerFuzzer``."""
    return trio.run(HandlerFuzzer(config, log).run)


def write_report(config: HandlerFuzzConfig, outcome: HandlerOutcome, duration: float) -> Path:
    """``report.json`` (schema 1) and ``report.md`` for a handler-fuzzing run."""
    rows = []
    for finding in outcome.findings:
        rows.append(
            {
                "scenario": f"fuzz/handler/{finding.case.key()}",
                "description": f"{finding.kind}: {finding.case.describe()}",
                "target": config.target.name,
                "verdict": "fails" if finding.confirmed else "flaky",
                "duration_s": 0.0,
                "diff": "",
                "reason": f"{finding.kind}: {finding.detail}",
                "differing_keys": [],
                "violations": [f"{finding.kind}: {finding.detail}"],
                "reproducer": f"python -m harness replay {finding.path}",
                "python": outcome.python,
                "observation": None,
            }
        )
    if not rows:
        rows.append(
            nothing_found_row(
                "fuzz/handler/all",
                f"{outcome.cases} fuzzed cases against {config.handler}",
                config.target.name,
                outcome.seconds,
                outcome.python,
            )
        )
    targets = [dict(config.target.describe(), role="target")]
    extra = {
        "fuzz": {
            "handler": config.handler,
            "server": config.server,
            "family": outcome.family,
            "cases": outcome.cases,
            "seed": config.seed,
            "resources": outcome.resources,
            "findings": [
                {"kind": f.kind, "detail": f.detail, "reproducer": str(f.path)}
                for f in outcome.findings
            ],
        }
    }
    report = json_report.build(rows, targets, sys.argv, duration, extra)
    path = json_report.write(report, config.report_dir)
    markdown.write(report, config.report_dir)
    return path


def replay_handler(data: dict[str, Any], target: Target | None = None) -> bool:
    """Run a saved handler case again; True when the same kind of defect shows."""
    config = HandlerFuzzConfig(
        handler=data["handler"],
        server=data["server"],
        target=target or parse_target(data.get("targets", {}).get("target", "stdlib")),
        duration=None,
    )
    fuzzer = HandlerFuzzer(config)
    case: Case = data["case_object"]

    async def main() -> tuple[str, str] | None:
        async with trio.open_nursery() as nursery:
            fuzzer._nursery = nursery
            try:
                await fuzzer._start(nursery)
                await fuzzer._detect_family()
                return await fuzzer.detect(case)
            finally:
                await fuzzer.server.stop()
                nursery.cancel_scope.cancel()
        return None

    found = trio.run(main)
    if found is None:
        print("no defect")
        return False
    print(f"{found[0]}: {found[1]}")
    print(json.dumps({"expected": data.get("finding")}))
    return found[0] == data.get("finding")
