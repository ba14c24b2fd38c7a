"""The differential fuzzer: long-lived servers, the hypothesis loop, reproducers, replay.

How a run goes: each target (and the baseline) gets one server process for the whole run
(``FuzzServer``: a threading server from ``scenarios/handlers/fuzz_handlers.py``, serving
forever). A hypothesis example is a *template* (``harness.fuzz.templates``: a grammar case
and a seed); ``harness.fuzz.derive`` expands it into a few hundred distinct cases (the base
case's standard schedules, then seeded cases), cheaply and always the same way. The cases
go to both servers in chunks, two chunks in flight, so that the servers already run the
next chunk while the harness compares the last: on a new connection each (real mode) or
through ``harness.agent_batch`` over socketpairs inside the server process (``batch``
mode). Comparing is cheap when nothing differs (equal raw results, then equal normalized
observations); a key-by-key diff is made only when they are not. A difference not seen
before (by its *signature*: the differing keys and the two status lines) fails the
example, and hypothesis shrinks the template (the case that failed is tried first, so a
step that keeps it costs one case); the case it ends with is then minimized by delta
debugging on its bytes (``Fuzzer.minimize``), run twice more on its own (a difference that
repeats is ``differs``, else ``flaky``) and saved as a reproducer JSON file with its exact
bytes. A difference that an active known deviation fully explains is counted as
``explained`` and fuzzing goes on.

Resource handling: ``Fuzzer.run`` owns the server processes and stops them (process group
killed, reaped) whatever happens; the hypothesis engine runs in a worker thread and calls
back into the trio loop for every example.

Error handling: a server process that dies is an observation (``server: died``), and is
started again (once, by the first chunk that notices) for the next chunk; the harness's own
failures raise ``HarnessError``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import operator
import os
import re
import shutil
import socket
import struct
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import trio
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.database import DirectoryBasedExampleDatabase

from harness.clients import render_bytes, wire_address
from harness.compare import differing_keys, readable_diff
from harness.errors import AgentGone, HarnessError, UsageError
from harness.fuzz import FAMILIES, Case, Template, derive, derive_iter, templates
from harness.host import AgentProcess, make_workdir
from harness.observation import normalize_http, normalize_text
from harness.scenario import ServerSpec
from harness.targets import PROJECT_ROOT, Target, interpreter_version, parse_target

HANDLERS = "scenarios.handlers.fuzz_handlers"

#: The server each family fuzzes (a class in ``fuzz_handlers``, written against the stdlib
#: names, so that it runs on whichever modules the target substitutes).
SERVERS: dict[str, ServerSpec] = {
    "http": ServerSpec(f"{HANDLERS}:FuzzHTTPServer", f"{HANDLERS}:ParsedEcho", instrument=False),
    "stream": ServerSpec(f"{HANDLERS}:FuzzTCPServer", f"{HANDLERS}:LineEcho", instrument=False),
    "datagram": ServerSpec(
        f"{HANDLERS}:FuzzUDPServer", f"{HANDLERS}:DatagramEcho", instrument=False
    ),
}

START_TIMEOUT = 30.0


@dataclasses.dataclass
class FuzzConfig:
    """What one ``python -m harness fuzz`` run does."""

    target: Target
    baseline: Target
    family: str = "http"
    duration: float | None = 30.0
    max_examples: int | None = None
    seed: int = 0
    report_dir: Path = PROJECT_ROOT / "reports" / "fuzz"
    batch: bool = False
    idle: float = 0.5
    shrink_seconds: float = 30.0
    max_findings: int = 10
    #: Seeded cases per hypothesis example (``harness.fuzz.Template``); None: by mode.
    derived: int | None = None
    #: Cases per round trip to the servers; None: by mode.
    chunk: int | None = None
    quiet: bool = False

    def __post_init__(self) -> None:
        if self.derived is None:
            self.derived = 1000 if self.batch else 250
        if self.chunk is None:
            self.chunk = 200 if self.batch else 64
        if self.family not in FAMILIES:
            raise UsageError(f"--family={self.family}: use one of {', '.join(FAMILIES)}")
        if self.duration is not None and self.duration <= 0:
            raise UsageError(f"--duration={self.duration}: must be positive")
        if self.max_examples is not None and self.max_examples < 1:
            raise UsageError(f"--max-examples={self.max_examples}: must be 1 or more")
        if self.target.name == self.baseline.name:
            raise UsageError(
                f"target and baseline are both named {self.target.name!r}: give name=..."
            )


# --- one long-lived server ----------------------------------------------------------------


#: Datagram payload bytes in flight to one server at a time. The server's socket queues
#: what it has not read yet in a receive buffer of about 208 KiB (``rmem_default``),
#: charged at up to twice a datagram's size on loopback: concurrent clients sending
#: 64 KiB datagrams would overflow it, and the kernel would drop datagrams (a loss that
#: says nothing about the server).
DATAGRAM_BYTES_IN_FLIGHT = 64 * 1024


class ByteBudget:
    """A limit on the bytes in flight: ``hold(n)`` waits until ``n`` more fit (one
    holder may exceed the limit alone, so that no size waits forever)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._held = 0
        self._released = trio.Event()

    @contextlib.asynccontextmanager
    async def hold(self, size: int) -> Any:
        """Hold ``size`` bytes of the budget for the body of the ``async with``."""
        while self._held and self._held + size > self.limit:
            await self._released.wait()
        self._held += size
        try:
            yield
        finally:
            # Synchronous, so a cancelled holder still gives its bytes back.
            self._held -= size
            self._released.set()
            self._released = trio.Event()


class FuzzServer:
    """One target's server process, serving fuzz cases for a whole run."""

    def __init__(
        self,
        target: Target,
        family: str,
        idle: float = 0.5,
        batch: bool = False,
        spec: ServerSpec | None = None,
    ) -> None:
        self.target = target
        self.batch = batch
        self.family = family
        self.spec = spec or SERVERS[family]
        #: Whether the server keeps per-connection records (the fuzz servers do).
        self.records = spec is None
        self.idle = idle
        self.agent: AgentProcess | None = None
        self.address: Any = None
        self.python: list[int] = []
        self.restarts = 0
        self._nursery: trio.Nursery | None = None
        self._calls = 0
        self._limiter = trio.CapacityLimiter(32)
        self._datagram_bytes = ByteBudget(DATAGRAM_BYTES_IN_FLIGHT)
        self._pending = 0
        self._generation = 0
        self._restart_lock = trio.Lock()
        self._take_lock = trio.Lock()
        self._tokens = itertools.count()
        self._unfetched: dict[str, list[int]] = {}
        self._fetched: dict[int, Any] = {}

    async def start(self, nursery: trio.Nursery) -> None:
        """Start the server process and ``serve_forever`` in it."""
        self._nursery = nursery
        workdir = make_workdir()
        self.agent = AgentProcess(self.target, self.spec.to_agent(), workdir)
        await self.agent.start(nursery)
        ready = await self.agent.wait_ready(START_TIMEOUT)
        if ready["ev"] == "construct:raised":
            raise HarnessError(
                f"{self.target.name}: the fuzz server did not start: "
                f"{ready.get('type')}: {ready.get('message')}"
            )
        self.address = wire_address(ready["address"])
        self.python = list(ready.get("python", []))
        # A new process has no records yet.
        self._unfetched.clear()
        self._fetched.clear()
        if not (self.batch and self.family == "datagram"):
            # Batch mode drives a datagram server's socket itself (_handle_request_noblock).
            cid = self.agent.command("call", method="serve_forever", args=[0.05], thread=True)
            # Wait until its thread exists, so that thread counts start from it.
            await self.agent.wait_for(
                lambda e: e.get("id") == cid and e["ev"].startswith("command:"), 5.0
            )

    async def stop(self) -> None:
        """Stop the server process and remove its private directory."""
        if self.agent is not None:
            with trio.CancelScope(shield=True):
                await self.agent.stop()
            shutil.rmtree(self.agent.workdir, ignore_errors=True)
            self.agent = None

    async def restart(self) -> None:
        """A fresh server process (after the old one died or stopped answering)."""
        assert self._nursery is not None
        await self.stop()
        self.restarts += 1
        self._generation += 1
        await self.start(self._nursery)

    async def _exec(self, code: str, timeout: float, thread: bool = False) -> Any:
        if self.agent is None:
            raise AgentGone("the server process is being restarted")
        agent = self.agent
        cid = agent.command("exec", code=code, thread=thread)
        self._pending += 1
        try:
            event = await agent.wait_command(cid, timeout)
        finally:
            self._pending -= 1
        # Commands' events are all we collect (the server is not instrumented): drop the
        # old ones, once no command waits on them.
        if len(agent.events) > 1000 and not self._pending:
            del agent.events[:]
        if event is None:
            raise AgentGone("the server process did not answer a command")
        if event["ev"] != "command:returned":
            raise HarnessError(f"agent command failed: {event.get('type')}: {event.get('message')}")
        return event.get("value")

    def _path(self, name: str) -> str:
        assert self.agent is not None
        self._calls += 1
        return str(self.agent.workdir / f"{name}-{self._calls}.json")

    async def run(self, cases: list[Case], batch: bool = False) -> list[dict[str, Any]]:
        """Every case against this server; one raw result per case, in order.

        Several runs may be under way at once (the fuzzer keeps two chunks in flight);
        a server that fails is restarted once, by the first run that notices.
        """
        if self.agent is None or not self.agent.alive():
            async with self._restart_lock:
                if self.agent is None or not self.agent.alive():
                    await self.restart()
        generation = self._generation
        try:
            if batch:
                return await self._run_batch(cases)
            return await self._run_real(cases)
        except (AgentGone, OSError, trio.TooSlowError) as exc:
            died = {"server": {"died": True}, "error": str(exc)[:200]}
            alive = self.agent is not None and self.agent.alive()
            if alive:
                died = {"server": {"unresponsive": True}}
            async with self._restart_lock:
                if generation == self._generation:
                    await self.restart()
            return [dict(died) for _ in cases]

    async def _run_batch(self, cases: list[Case]) -> list[dict[str, Any]]:
        """The cases through ``harness.agent_batch`` in the server process: those that stay
        open (each waits ``idle`` seconds) in a command thread of their own, so that the
        others do not wait for them."""
        opened = [i for i, c in enumerate(cases) if c.end == "open"]
        if not opened or len(opened) == len(cases):
            return await self._batch_exec(cases, thread=bool(opened))
        rest = [i for i, c in enumerate(cases) if c.end != "open"]
        parts: dict[bool, list[dict[str, Any]]] = {}

        async def part(indexes: list[int], thread: bool) -> None:
            parts[thread] = await self._batch_exec([cases[i] for i in indexes], thread)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(part, opened, True)
            nursery.start_soon(part, rest, False)
        results: list[dict[str, Any]] = [{} for _ in cases]
        for indexes, thread in ((opened, True), (rest, False)):
            for index, result in zip(indexes, parts[thread]):
                results[index] = result
        return results

    async def _batch_exec(self, cases: list[Case], thread: bool) -> list[dict[str, Any]]:
        in_path, out_path = self._path("in"), self._path("out")
        Path(in_path).write_text(json.dumps([c.wire() for c in cases]))
        code = (
            "from harness.agent_batch import run_batch_files\n"
            f"result = run_batch_files(server, {in_path!r}, {out_path!r}, {self.idle!r})\n"
        )
        timeout = 10.0 + len(cases) * (self.idle + 0.1)
        await self._exec(code, timeout, thread)
        results = json.loads(Path(out_path).read_text())
        os.unlink(in_path)
        os.unlink(out_path)
        return results

    async def _run_real(self, cases: list[Case]) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = [{} for _ in cases]
        # (port, case index, token) of the cases that reached the server.
        ended: list[tuple[str, int, int]] = []
        # Datagram clients stay bound until their records are taken: the server keys a
        # record by the client's port, and a closed client's port may go to the next.
        bound: list[trio.socket.SocketType] = []

        async def one(index: int, case: Case) -> None:
            if case.family == "datagram":
                async with self._limiter:
                    results[index] = await self._datagram(case, bound)
            elif case.end == "open":  # mostly waits: not counted against the limit
                results[index] = await self._stream(case)
            else:
                async with self._limiter:
                    results[index] = await self._stream(case)
            port = results[index].pop("port", None)
            # None: nothing reached the server, no record to wait for.
            if port is not None and self.records:
                token = next(self._tokens)
                self._unfetched.setdefault(str(port), []).append(token)
                ended.append((str(port), index, token))

        try:
            async with trio.open_nursery() as nursery:
                for index, case in enumerate(cases):
                    nursery.start_soon(one, index, case)
            if not self.records:
                return results
            async with self._take_lock:
                await self._fetch_records({token for _port, _index, token in ended})
        finally:
            for sock in bound:
                sock.close()
        for result in results:
            result["server"] = {}
        for _port, index, token in ended:
            results[index]["server"] = self._fetched.pop(token, {})
        return results

    async def _fetch_records(self, tokens: set[int]) -> None:
        """Take the server's records of the cases ``tokens`` into ``_fetched``.

        The server keeps, per client port, a queue of records in connection order, and the
        kernel may reuse a port as soon as the last connection on it has closed: within
        one run, or across the runs in flight. ``_unfetched`` holds, per port, the tokens
        of the cases whose records are still queued in the server, in the order the cases
        ended, which for one port is the connection order. Taking a port's queue up to
        the last of our cases keeps both in step; records of other runs' cases taken on
        the way wait in ``_fetched`` for their run.
        """
        plan: list[tuple[str, list[int]]] = []
        for port, queue in self._unfetched.items():
            ours = [i for i, token in enumerate(queue) if token in tokens]
            if ours:
                plan.append((port, queue[: ours[-1] + 1]))
        if not plan:
            return
        keys = [port for port, head in plan for _ in head]
        path = self._path("records")
        await self._exec(f"result = server.take_records_to({keys!r}, {path!r}, 5.0)", 20.0)
        records = json.loads(Path(path).read_text())
        os.unlink(path)
        for port, head in plan:
            got = records.get(port, {})
            self._fetched.update(zip(head, got if len(head) > 1 else [got]))
            rest = self._unfetched[port][len(head) :]
            if rest:
                self._unfetched[port] = rest
            else:
                del self._unfetched[port]

    async def _stream(self, case: Case) -> dict[str, Any]:
        """One stream case on a new connection.

        A plain non-blocking socket with trio's low-level waits (a call that would block
        waits for readiness; one that would not goes straight through): the same client
        behaviour as ``harness.clients.StreamClient`` (``send`` with splits and pauses,
        ``recv_until_eof`` with an idle limit), at a fraction of its cost per call.
        """
        family = socket.AF_INET6 if ":" in str(self.address[0]) else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            try:
                sock.connect(self.address)
            except BlockingIOError:
                with trio.fail_after(5.0):
                    await trio.lowlevel.wait_writable(sock)
                error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if error:
                    raise OSError(error, os.strerror(error)) from None
            port = sock.getsockname()[1]
            sent = await _send_pieces(sock, case.pieces(), case.pause)
            data, end = b"", "closed"
            if case.end == "reset":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif case.end != "close":
                if case.end == "half_close":
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_WR)
                data, end = await _recv_until_eof(sock, 5.0, self.idle)
        finally:
            trio.lowlevel.notify_closing(sock)
            sock.close()
        return {"port": port, "sent": sent, "reply": data.decode("latin-1"), "end": end}

    async def _datagram(self, case: Case, bound: list[trio.socket.SocketType]) -> dict[str, Any]:
        """One datagram case from a new client socket, which goes into ``bound`` for the
        caller to close."""
        sock = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        bound.append(sock)
        replies: list[Any] = []
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        for data in case.datagrams:
            reply = None
            async with self._datagram_bytes.hold(len(data)):
                try:
                    await sock.sendto(data, self.address)
                except OSError as exc:
                    replies.append({"send": type(exc).__name__})
                    continue
                with trio.move_on_after(self.idle):
                    reply, _ = await sock.recvfrom(65536)
            replies.append({"reply": reply.decode("latin-1")} if reply is not None else None)
        if all(reply and "send" in reply for reply in replies):
            port = None  # every send failed (EMSGSIZE, say): the server has no record
        return {"port": port, "sent": "ok", "replies": replies}

    def sample(self) -> dict[str, int]:
        """Threads, fds, children and zombies of the server process now."""
        assert self.agent is not None
        return self.agent.sample()


async def _send_pieces(sock: socket.socket, pieces: list[bytes], pause: float) -> str:
    """Send each piece whole, ``pause`` seconds after each but the last: ``ok``, or how
    sending failed (``reset``, ``broken``), as ``StreamClient.send`` reports it."""
    last = len(pieces) - 1
    try:
        for index, piece in enumerate(pieces):
            view = memoryview(piece)
            while view:
                try:
                    view = view[sock.send(view) :]
                except BlockingIOError:
                    await trio.lowlevel.wait_writable(sock)
            if pause and index < last:
                await trio.sleep(pause)
    except ConnectionResetError:
        return "reset"
    except OSError:
        return "broken"
    return "ok"


async def _recv_until_eof(
    sock: socket.socket, timeout: float, idle: float, limit: int = 64 * 1024 * 1024
) -> tuple[bytes, str]:
    """Read until EOF (``eof``), a reset (``reset``), ``idle`` seconds without a byte
    (``idle``), ``limit`` bytes (``limit``) or ``timeout`` seconds in all (``timeout``),
    as ``StreamClient.recv_until_eof`` does."""
    parts: list[bytes] = []
    total = 0
    deadline = trio.current_time() + timeout
    while True:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            left = deadline - trio.current_time()
            with trio.move_on_after(min(idle, left)):
                await trio.lowlevel.wait_readable(sock)
                continue
            return b"".join(parts), "idle" if idle < left else "timeout"
        except ConnectionResetError:
            return b"".join(parts), "reset"
        if not data:
            return b"".join(parts), "eof"
        parts.append(data)
        total += len(data)
        if total >= limit:
            return b"".join(parts), "limit"


# --- observations, comparison, known deviations ------------------------------------------


_CONNECTION_LOST = ("BrokenPipeError", "ConnectionResetError", "ConnectionAbortedError")


def observation(raw: dict[str, Any], case: Case | None = None) -> dict[str, Any]:
    """A raw case result, normalized for comparison (dates, ports, tracebacks).

    When the client closed or reset without reading (``close``, ``reset``), how far the
    server got before it noticed is a matter of timing, so only what does not depend on it
    is kept: the server's state and the exceptions that are not a lost connection.
    """
    server = raw.get("server") or {}
    out: dict[str, Any] = {}
    if case is not None and case.end in ("close", "reset"):
        out["end"] = "closed"
        _server_state(out, server)
        errors = server.get("errors", [])
        out["errors"] = [e for e in errors if not e.startswith(_CONNECTION_LOST)]
        return out
    if "replies" in raw:
        out["replies"] = raw["replies"]
    else:
        reply = raw.get("reply", "")
        if len(reply) > 16384:
            out["reply"] = _long_reply(reply)
        else:
            out["reply"] = normalize_http(reply)
        out["end"] = raw.get("end")
    _server_state(out, server)
    out["errors"] = server.get("errors", [])
    out["stderr"] = normalize_text(server.get("stderr", ""))
    return out


def _long_reply(reply: str) -> Any:
    """A reply too long to keep whole: its length, digest and head (after normalizing),
    and, when status lines and headers precede error pages in it, the same of what is
    left without them (for the gh-54930 explainer)."""
    text = normalize_http(reply)
    out = render_bytes(text.encode("latin-1"), 16384)
    if isinstance(out, str):  # short enough once normalized
        return out
    stripped = _ERROR_HEAD.sub("", text)
    if stripped != text:
        out["without_error_heads"] = render_bytes(stripped.encode("latin-1"), 16384)
    return out


def _server_state(out: dict[str, Any], server: dict[str, Any]) -> None:
    if server.get("died"):
        out["server"] = "died"
    elif server.get("unresponsive"):
        out["server"] = "unresponsive"
    elif server.get("missing"):
        out["server"] = "never saw the connection"
    elif server and not server.get("done", True):
        out["server"] = "handler still running (hang)"


def status_line(obs: dict[str, Any]) -> str:
    """The first line of a reply (or a short tag), for signatures and summaries."""
    reply = obs.get("reply")
    if isinstance(reply, str):
        line = reply.split("\r\n", 1)[0].split("\n", 1)[0]
        return line[:40] if line.startswith("HTTP/") else ("<body only>" if line else "<none>")
    return "<long>" if reply is not None else "<datagrams>"


def signature(keys: list[str], base: dict[str, Any], got: dict[str, Any]) -> str:
    """What makes two differences the same finding: keys and both status lines."""
    return f"{','.join(keys)}|{status_line(base)}|{status_line(got)}"


@dataclasses.dataclass(frozen=True)
class Deviation:
    """A known, intended difference a fuzz case may show, with a test that recognises it."""

    issue: str
    reason: str
    matches: Callable[[Case, dict[str, Any], dict[str, Any], list[str]], bool]

    def describe(self) -> str:
        """The reason, with its issue number."""
        return f"{self.reason} ({self.issue})"


def _first_line_words(case: Case) -> list[bytes]:
    line = case.data.split(b"\n", 1)[0].rstrip(b"\r")
    return line.split()


def _http09_no_wait(case: Case, base: dict[str, Any], got: dict[str, Any], keys: list[str]) -> bool:
    if not set(keys) <= {"reply", "end", "stderr", "server"}:
        return False
    if len(_first_line_words(case)) == 2:
        return not str(got.get("reply", "")).startswith("HTTP/")
    return _pipelined_http09_echo(base.get("reply"), got.get("reply"))


def _pipelined_http09_echo(base_reply: Any, got_reply: Any) -> bool:
    """Whether two replies are the same up to a last, HTTP/0.9 request of a pipeline, and
    the fuzz handler's echoes of that request (body-only JSON, as HTTP/0.9 replies are)
    differ only in what the header block gave: the headers, which the target did not read
    (so none), and a body read by their Content-Length."""
    if not (isinstance(base_reply, str) and isinstance(got_reply, str)):
        return False
    parted = next(
        (i for i, (a, b) in enumerate(zip(base_reply, got_reply)) if a != b),
        min(len(base_reply), len(got_reply)),
    )
    start = base_reply.rfind("\n", 0, parted) + 1  # the line where the replies part
    try:
        base_echo, got_echo = json.loads(base_reply[start:]), json.loads(got_reply[start:])
    except ValueError:
        return False
    if not (isinstance(base_echo, dict) and isinstance(got_echo, dict)):
        return False
    same = ("command", "path", "version", "close")
    return (
        base_echo.get("version") == "HTTP/0.9"
        and got_echo.get("headers") == []
        and all(base_echo.get(k) == got_echo.get(k) for k in same)
    )


_ERROR_HEAD = re.compile(
    r"HTTP/1\.[01] (?:400|505) [^\r\n]*\r\n(?:[^\r\n]+\r\n)*\r\n(?=<!DOCTYPE HTML>)"
)


def _bare_error_gets_status_line(
    case: Case, base: dict[str, Any], got: dict[str, Any], keys: list[str]
) -> bool:
    base_reply, got_reply = base.get("reply", ""), got.get("reply", "")
    if set(keys) - {"reply", "stderr", "end"} or "reply" not in keys:
        return False
    # A reset may cut either reply short (see ``observed_differences``): then only what
    # is left of the first line can be compared.
    same: Callable[[Any, Any], bool] = operator.eq
    if "reset" in (base.get("end"), got.get("end")):
        same = _same_first_line
    if isinstance(got_reply, dict):  # long: compare digests
        stripped = got_reply.get("without_error_heads")
        if isinstance(base_reply, str):
            base_reply = render_bytes(base_reply.encode("latin-1"), 16384)
        return stripped is not None and same(stripped, base_reply)
    if not isinstance(base_reply, str):
        return False
    # Take out every status line + header block that precedes an error page; what is left
    # must be the baseline's reply (pipelined replies before it included).
    stripped = _ERROR_HEAD.sub("", got_reply)
    return stripped != got_reply and same(stripped, base_reply)


_LOST_CONNECTION_REPORT = re.compile(
    r"-{40}\nException occurred during processing of request from [^\n]*\n"
    r"Traceback \(most recent call last\):\n(?:  [^\n]*\n)*"
    r"(?:BrokenPipeError|ConnectionResetError|ConnectionAbortedError)[^\n]*\n-{40}\n"
)


def _error_head_meets_gone_client(
    case: Case, base: dict[str, Any], got: dict[str, Any], keys: list[str]
) -> bool:
    """gh-54930 when the client has stopped reading and gone: the status line and
    headers go out in a write of their own before the error page, and that second write
    meets the closed connection (a lost-connection error the stdlib's single write of a
    bare page does not get). Nothing else may differ."""
    if case.end != "open" or set(keys) - {"errors", "stderr"}:
        return False
    if "code 400, message" not in base.get("stderr", "") and "code 505" not in base.get(
        "stderr", ""
    ):
        return False
    extra = list(got.get("errors", []))
    for error in base.get("errors", []):
        if error not in extra:
            return False
        extra.remove(error)
    if not extra or not all(e.startswith(_CONNECTION_LOST) for e in extra):
        return False
    stderr = _LOST_CONNECTION_REPORT.sub("", got.get("stderr", ""), count=len(extra))
    return stderr == base.get("stderr", "")


#: Every deviation the fuzzer can recognise; a run uses those that the target declares
#: (``implementation/deviations.py`` for the reference).
DEVIATIONS: tuple[Deviation, ...] = (
    Deviation(
        "gh-70765",
        "a two-word HTTP/0.9 request is answered at once, without waiting for a header block",
        _http09_no_wait,
    ),
    Deviation(
        "gh-54930",
        "an error reply to a malformed request line carries a status line and headers",
        _bare_error_gets_status_line,
    ),
    Deviation(
        "gh-54930",
        "an error reply to a malformed request line carries a status line and headers "
        "(written before the page: a client that has gone makes that second write fail)",
        _error_head_meets_gone_client,
    ),
)


def active_deviations(target: Target) -> list[Deviation]:
    """The deviations that explain differences of ``target``: for a target running the
    reference's modules, those ``implementation.deviations`` lists as active on the
    target's interpreter (the stdlib there still has the old behaviour)."""
    if "reference" not in target.labels:
        return []
    from implementation import deviations

    version = interpreter_version(target.python)
    named = {entry["id"] for entry in deviations.active_deviations(version)}
    return [d for d in DEVIATIONS if d.issue in named]


def explain_case(
    case: Case, base: dict[str, Any], got: dict[str, Any], keys: list[str], active: list[Deviation]
) -> Deviation | None:
    """The active deviation that explains this whole difference, if one does."""
    for deviation in active:
        with contextlib.suppress(Exception):
            if deviation.matches(case, base, got, keys):
                return deviation
    return None


# --- reproducers ---------------------------------------------------------------------------


def save_reproducer(
    directory: Path,
    case: Case,
    *,
    kind: str,
    seed: int | None,
    targets: dict[str, str],
    verdict: str,
    detail: dict[str, Any],
) -> Path:
    """Write a reproducer file (``<family>-<hash>.json``) and return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{case.family}-{case.key()}.json"
    data = {
        "kind": kind,
        "case": case.to_json(),
        "seed": seed,
        "targets": targets,
        "verdict": verdict,
        "python": sys.version.split()[0],
        **detail,
        "replay": f"python -m harness replay {path}",
    }
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    return path


def load_reproducer(path: Path) -> dict[str, Any]:
    """Read a reproducer file; UsageError when it is not one."""
    try:
        data = json.loads(Path(path).read_text())
        data["case_object"] = Case.from_json(data["case"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{path}: not a reproducer file ({exc})") from None
    return data


# --- the fuzz loop -----------------------------------------------------------------------


@dataclasses.dataclass
class Finding:
    """A difference found, shrunk and confirmed (or not)."""

    case: Case
    verdict: str  # differs | flaky | explained
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


# A memo lookup's "not there" (a memo value may be None: no difference).
_UNSEEN = object()


class _Found(AssertionError):
    """Raised inside the hypothesis test to make it shrink a new difference."""


class TimeUp(BaseException):
    """Raised inside a hypothesis test when the time budget is spent: hypothesis lets a
    BaseException through at once, without shrinking."""


def judge(case: Case, base_raw: dict[str, Any], target_raw: dict[str, Any]) -> Any:
    """None when both sides observed the same, else ``(baseline obs, target obs, keys)``.

    Cheap when they are the same (equal raw results,
    then equal observations), a key-by-key diff only when they are not."""
    if base_raw == target_raw:
        return None
    base, got = observation(base_raw, case), observation(target_raw, case)
    if base == got:
        return None
    keys = observed_differences(base, got)
    return (base, got, keys) if keys else None


def _status_line(reply: Any) -> str:
    if isinstance(reply, dict):
        reply = reply.get("head", "")
    return str(reply).split("\n", 1)[0]


def _same_first_line(a: Any, b: Any) -> bool:
    return _status_line(a) == _status_line(b)


def observed_differences(base: dict[str, Any], got: dict[str, Any]) -> list[str]:
    """The differing keys of two case observations, allowing for a reset's truncation.

    A server that closes with request bytes still unread makes the kernel send RST, and an
    RST discards what the client had not read yet: the same reply may then arrive whole
    (``eof``) or cut short (``reset``), depending on timing alone. When one side ended with
    a reset, the replies are compared by their status lines only.
    """
    if (
        "reset" in (base.get("end"), got.get("end"))
        and "reply" in base
        and "reply" in got
        and _status_line(base["reply"]) == _status_line(got["reply"])
    ):
        base = {**base, "reply": _status_line(base["reply"]), "end": "closed"}
        got = {**got, "reply": _status_line(got["reply"]), "end": "closed"}
    return differing_keys(base, got)


def nothing_found_row(
    scenario: str, description: str, target: str, seconds: float, python: Any
) -> dict[str, Any]:
    """The report row of a fuzz run that found nothing (schema of ``report.json``)."""
    from harness.engine import Result

    row = Result(scenario, target, "same", round(seconds, 3), python=list(python or [])).to_json()
    row["description"] = description
    return row


def run_hypothesis(
    strategy: Any,
    check: Callable[[Any], None],
    *,
    examples: int,
    run_seed: int,
    reuse: bool,
    report_dir: Path,
    digest: str,
) -> None:
    """Run ``check`` on examples of ``strategy`` with hypothesis, quietly.

    The example database lives in ``report_dir/hypothesis`` and is keyed by ``digest``
    (one per fuzzed family or handler), so a later run with ``reuse`` tries the cases an
    earlier run found first. ``check`` raises to report a finding, which hypothesis then
    shrinks.
    """
    database = DirectoryBasedExampleDatabase(str(report_dir / "hypothesis"))
    phases = [Phase.explicit, Phase.generate, Phase.shrink]
    if reuse:
        phases.insert(1, Phase.reuse)

    @hypothesis_seed(run_seed)
    @settings(
        max_examples=examples,
        database=database,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=phases,
        report_multiple_bugs=False,
        print_blob=False,
        verbosity=Verbosity.quiet,
    )
    @given(strategy)
    def fuzz_one(example: Any) -> None:
        check(example)

    fuzz_one.hypothesis.inner_test._hypothesis_internal_add_digest = digest.encode()  # type: ignore[attr-defined]
    fuzz_one()


class Fuzzer:
    """Runs the differential fuzz loop of one ``FuzzConfig``."""

    def __init__(self, config: FuzzConfig, log: Callable[[str], None] | None = None) -> None:
        self.config = config
        self.log = log or (lambda line: None)
        self.outcome = FuzzOutcome()
        self.active = active_deviations(config.target)
        self._known: set[str] = set()
        self._memo: dict[Case, Any] = {}
        # The template and case that failed last, and what both servers did then.
        self._last_failure: (
            tuple[Template, Case, list[str], dict[str, Any], dict[str, Any]] | None
        ) = None
        self._shrink_started: float | None = None
        self._deadline = float("inf")
        self._last_progress = 0.0
        self._started = 0.0

    # -- running cases --

    async def _run_both(self, cases: list[Case]) -> tuple[list[Any], list[Any]]:
        got: dict[str, list[dict[str, Any]]] = {}

        async def side(name: str, server: FuzzServer) -> None:
            got[name] = await server.run(cases, self.config.batch)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(side, "base", self.base_server)
            nursery.start_soon(side, "target", self.target_server)
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
        Open cases found in ``cases`` are run with the chunks.
        """
        chunk = self.config.chunk
        seen: set[Case] = set()
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

        opened = [c for c in opened or () if c not in self._memo]
        seen.update(opened)
        open_run: tuple[trio.Event, list[Any]] = (trio.Event(), [])

        async def produce(nursery: trio.Nursery) -> None:
            # A chunk, once started, runs to its end (a cancelled one would leave records
            # of half-run connections in the servers): stopping means starting no more.
            async with send:
                if opened:
                    nursery.start_soon(run_part, opened, *open_run, False)
                more = True
                while more and not (found and stop):
                    part = []
                    while len(part) < chunk:
                        case = next(source, None)
                        if case is None:
                            more = False
                            break
                        if case in seen:
                            continue
                        seen.add(case)
                        known = self._memo.get(case, _UNSEEN)
                        if known is not _UNSEEN:
                            # The result travels with the message: the memo may be
                            # cleared before the consumer gets to it.
                            await send.send(([case], None, [known]))
                        else:
                            part.append(case)
                    if part:
                        await in_flight.acquire()
                        done, slot = trio.Event(), []
                        nursery.start_soon(run_part, part, done, slot)
                        await send.send((part, done, slot))
                if opened:
                    await send.send((opened, *open_run))

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
                        self._remember(part, results)
                    for case, result in zip(part, results):
                        if result is not None and self._note(case, *result):
                            found.append((case, *result))
            self._progress()
        return found[0] if found else None

    def _remember(self, cases: list[Case], results: list[Any]) -> None:
        if len(self._memo) > 50_000:
            self._memo.clear()
        self._memo.update(zip(cases, results))

    def _note(self, case: Case, base: dict[str, Any], got: dict[str, Any], keys: list[str]) -> bool:
        """Whether a difference is new: not explained (those are noted) nor known."""
        deviation = explain_case(case, base, got, keys, self.active)
        if deviation is not None:
            if deviation.issue not in self.outcome.explained:
                self.outcome.explained[deviation.issue] = Finding(
                    case,
                    "explained",
                    keys,
                    readable_diff(base, got, self._names()),
                    base,
                    got,
                    deviation.describe(),
                )
            return False
        return signature(keys, base, got) not in self._known

    def _progress(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_progress < 2.0:
            return
        self._last_progress = now
        elapsed = now - self._started
        rate = self.outcome.cases / elapsed if elapsed > 0 else 0.0
        self.log(
            f"[{elapsed:6.1f}s] {self.outcome.cases} cases ({rate:.0f}/s), "
            f"{len(self.outcome.findings)} found, {len(self.outcome.explained)} explained"
        )

    # -- the hypothesis test --

    def _check_template(self, template: Template) -> None:
        """The body of the hypothesis test: run the template's cases, fail on a new
        difference. While shrinking, the case that failed last is tried first (a
        shrink step that keeps it costs one case)."""
        now = time.monotonic()
        if self._shrink_started is not None:
            over = now - self._shrink_started > self.config.shrink_seconds / 2
            if over and self._last_failure is not None:
                if template == self._last_failure[0]:
                    raise _Found("difference (shrink budget spent)")
                return
        elif now > self._deadline:
            raise TimeUp()
        cases: Iterable[Case] = derive_iter(template)
        opened: list[Case] = []
        if template.allow_open or self._last_failure is not None:
            listed = derive(template)
            # Open cases are few, and must start first.
            opened = [c for c in listed if c.end == "open"]
            listed = [c for c in listed if c.end != "open"]
            # While shrinking, the case that failed goes first if the template has it.
            if self._last_failure is not None and self._last_failure[1] in listed:
                listed.insert(0, self._last_failure[1])
            cases = listed
        self.outcome.examples += 1
        found = trio.from_thread.run(self.find_difference, cases, True, opened)
        if found is None:
            return
        case, base, got, keys = found
        if self._shrink_started is None:
            self._shrink_started = time.monotonic()
        self._last_failure = (template, case, keys, base, got)
        raise _Found(f"difference in {keys}")

    def _names(self) -> tuple[str, str]:
        return (self.config.baseline.name, self.config.target.name)

    def _hypothesis_run(self, examples: int, run_seed: int, reuse: bool) -> None:
        run_hypothesis(
            templates(self.config.family, self.config.derived, self.config.batch),
            self._check_template,
            examples=examples,
            run_seed=run_seed,
            reuse=reuse,
            report_dir=self.config.report_dir,
            digest=f"harness-fuzz-{self.config.family}",
        )

    def _unexplained(self, case: Case, base: dict[str, Any], got: dict[str, Any]) -> list[str]:
        """The keys that differ, when no active deviation explains the difference; else
        an empty list."""
        keys = observed_differences(base, got)
        if keys and explain_case(case, base, got, keys, self.active) is None:
            return keys
        return []

    async def _still_differs(self, candidates: list[Case], wanted: str) -> list[bool]:
        """For each candidate: does it show the unexplained difference ``wanted`` (a
        signature)?"""
        out = []
        for case, base, got in await self.compare_cases(candidates):
            keys = self._unexplained(case, base, got)
            out.append(bool(keys) and signature(keys, base, got) == wanted)
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
                _with_data(case, data[:start] + data[start + size :])
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

    async def _settle_finding(self) -> None:
        """Minimize the shrunk case's bytes, confirm it on its own twice, save it.

        Only a difference no deviation explains counts, on every rerun: a case whose
        reruns show an explained difference, or none, is flaky, and is reported with
        the last unexplained observation of it."""
        assert self._last_failure is not None
        _template, case, keys, base, got = self._last_failure
        self._last_failure = None
        evidence = (case, base, got)
        spent = time.monotonic() - (self._shrink_started or time.monotonic())
        self._shrink_started = None
        (_, base, got), *_ = await self.compare_cases([case])
        first_keys = self._unexplained(case, base, got)
        if first_keys:
            evidence = (case, base, got)
            wanted = signature(first_keys, base, got)
            budget = max(1.0, self.config.shrink_seconds - spent)
            case = await self.minimize(case, wanted, budget)
        repeats = 0
        for _ in range(2):
            (_, base, got), *_ = await self.compare_cases([case])
            if self._unexplained(case, base, got):
                repeats += 1
                evidence = (case, base, got)
        case, base, got = evidence
        if repeats == 2:
            verdict, reason = "differs", ""
        else:
            verdict = "flaky"
            reason = f"the difference repeated {repeats} of 2 times on rerun"
        keys = observed_differences(base, got) or keys
        self._known.add(signature(keys, base, got))
        finding = Finding(
            case, verdict, keys, readable_diff(base, got, self._names()), base, got, reason
        )
        finding.path = save_reproducer(
            self.config.report_dir,
            case,
            kind="differential",
            seed=self.config.seed,
            targets={
                "target": self.config.target.spec_string(),
                "baseline": self.config.baseline.spec_string(),
            },
            verdict=verdict,
            detail={"differing_keys": keys, "diff": finding.diff, "baseline": base, "target": got},
        )
        self.outcome.findings.append(finding)
        self.log(f"found ({verdict}): {case.describe()} -> {finding.path}")

    async def run(self) -> FuzzOutcome:
        """The whole run: start both servers, fuzz until the budget is spent, stop them."""
        config = self.config
        self._started = time.monotonic()
        if config.duration is not None:
            self._deadline = self._started + config.duration
        self.base_server = FuzzServer(config.baseline, config.family, config.idle, config.batch)
        self.target_server = FuzzServer(config.target, config.family, config.idle, config.batch)
        async with trio.open_nursery() as nursery:
            try:
                await self.base_server.start(nursery)
                await self.target_server.start(nursery)
                self.outcome.python = self.target_server.python
                await self._loop()
            finally:
                await self.base_server.stop()
                await self.target_server.stop()
                nursery.cancel_scope.cancel()
        self.outcome.seconds = time.monotonic() - self._started
        self.outcome.restarts = self.base_server.restarts + self.target_server.restarts
        self._progress(force=True)
        return self.outcome

    async def _loop(self) -> None:
        config = self.config
        chunk = 0
        examples_left = config.max_examples
        while len(self.outcome.findings) < config.max_findings:
            if time.monotonic() > self._deadline:
                break
            if examples_left is not None and examples_left <= 0:
                break
            size = 100_000 if examples_left is None else examples_left
            before = self.outcome.examples
            run_seed = config.seed * 100_003 + chunk
            try:
                await trio.to_thread.run_sync(self._hypothesis_run, size, run_seed, chunk == 0)
            except _Found:
                pass
            except TimeUp:
                break
            except Exception as exc:  # hypothesis's Flaky and friends: the case still counts
                if self._last_failure is None:
                    raise HarnessError(f"hypothesis failed: {type(exc).__name__}: {exc}") from exc
            if self._last_failure is not None:
                await self._settle_finding()
            chunk += 1
            if examples_left is not None:
                examples_left -= max(1, self.outcome.examples - before)


def fuzz(config: FuzzConfig, log: Callable[[str], None] | None = None) -> FuzzOutcome:
    """Run a differential fuzz (blocking); see ``Fuzzer``."""
    return trio.run(Fuzzer(config, log).run)


def _with_data(case: Case, data: bytes) -> Case:
    """``case`` with other bytes (its splits cut to fit them)."""
    splits, total = [], 0
    for size in case.splits:
        if total + size >= len(data):
            break
        splits.append(size)
        total += size
    return dataclasses.replace(case, data=data, splits=tuple(splits))


# --- replay ------------------------------------------------------------------------------


async def _replay(
    case: Case, targets: list[Target], baseline: Target, batch: bool
) -> list[tuple[Target, dict[str, Any], dict[str, Any]]]:
    servers = [FuzzServer(t, case.family, batch=batch) for t in [baseline, *targets]]
    out = []
    async with trio.open_nursery() as nursery:
        try:
            for server in servers:
                await server.start(nursery)
            raws = [await server.run([case], batch) for server in servers]
            base = observation(raws[0][0], case)
            for target, raw in zip(targets, raws[1:]):
                out.append((target, base, observation(raw[0], case)))
        finally:
            for server in servers:
                await server.stop()
            nursery.cancel_scope.cancel()
    return out


def replay_differential(
    data: dict[str, Any],
    targets: list[Target] | None = None,
    baseline: Target | None = None,
    log: Callable[[str], None] = print,
) -> bool:
    """Run a saved differential case again; True when a difference is still there."""
    case: Case = data["case_object"]
    saved = data.get("targets", {})
    targets = targets or [parse_target(saved.get("target", "reference"))]
    baseline = baseline or parse_target(saved.get("baseline", "stdlib"))
    found = False
    for target, base, got in trio.run(_replay, case, targets, baseline, False):
        keys = observed_differences(base, got)
        deviation = explain_case(case, base, got, keys, active_deviations(target)) if keys else None
        if not keys:
            log(f"{target.name}: same as {baseline.name}")
        elif deviation is not None:
            log(f"{target.name}: explained: {deviation.describe()}")
        else:
            found = True
            log(f"{target.name}: differs from {baseline.name} in {', '.join(keys)}")
            log(readable_diff(base, got, (baseline.name, target.name)))
    return found
