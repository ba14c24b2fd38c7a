"""The server side of fuzzing: one long-lived server process per target, fed cases.

``FuzzServer`` starts a target's server for a family (``harness.fuzz.transports``: a
class of ``scenarios.handlers.fuzz_handlers`` with the family's handler, bound for the
transport), serves forever in it, and runs cases against it, two ways:

- real sockets (``run(cases)``): a new connection (or datagram socket) per case, over TCP,
  TCP over IPv6, Unix stream, UDP or Unix datagram sockets; the server's records of the
  connections are taken afterwards (``take_records_to``);
- batch mode (``run(cases, batch=True)``): the cases go to ``harness.agent_batch`` inside
  the server process (``fuzz_batch``), over socketpairs.

The server's operations are called by name (the agent's ``call`` command). The bytes on
the wire are the steps of ``harness.wire``, driven by ``harness.clients.drive``.

Resource handling: ``start`` makes the process's private directory (the file tree of the
site families is built in it first), ``stop`` kills the process and all it started
(``harness.host``), reaps them and removes the directory; datagram client sockets stay
bound until their records are taken (the server keys a record by the client's port or
name, which the next socket could get).

Error handling: a server process that dies or stops answering is an observation
(``server: died``/``unresponsive`` for the cases in flight) and is started afresh, once,
by the first run that notices; the harness's own failures raise ``HarnessError``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import select
import socket
import struct
from builtins import BaseExceptionGroup  # Python 3.11+, as the harness is
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

from harness import wire
from harness.agent_batch import record_key
from harness.clients import drive, wire_address
from harness.errors import AgentGone, HarnessError
from harness.fuzz import tree
from harness.fuzz.case import HTTP_FAMILIES, Case
from harness.fuzz.transports import Transport, server_spec
from harness.host import AgentProcess, make_workdir
from harness.scenario import ServerSpec
from harness.targets import Target

START_TIMEOUT = 30.0
#: What a run meets when its server has died or stopped answering.
_SERVER_GONE = (AgentGone, OSError, trio.TooSlowError)


#: Datagram payload bytes in flight to one server at a time. The server's socket queues
#: what it has not read yet in a receive buffer of about 208 KiB (``rmem_default``),
#: charged at up to twice a datagram's size on loopback: concurrent clients sending
#: 64 KiB datagrams would overflow it, and the kernel would drop datagrams (a loss that
#: says nothing about the server).
DATAGRAM_BYTES_IN_FLIGHT = 64 * 1024


#: Events a fuzz server's agent gathers before those examined are dropped.
EVENTS_KEPT = 100


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


_client_names = itertools.count()


#: A Unix client's name as the server may print it (``_client_name``, and batch mode's).
_CLIENT_NAME = re.compile(r"hfz-(?:batch-)?\d+-\d+")


def _client_name() -> bytes:
    """A name in Linux's abstract namespace for a Unix client socket: the server sees it
    as the client's address (the record key), and no file is left behind."""
    return b"\0hfz-%d-%d" % (os.getpid(), next(_client_names))


#: The last few chunks encoded for batch mode: ``(cases, indexes, text)``.
_ENCODED: list[tuple[list[Case], list[int], str]] = []


def _batch_json(cases: list[Case], indexes: list[int]) -> str:
    """The batch agent's JSON of ``cases[i]`` for each of ``indexes``, encoded once for
    both servers of a pair: the same list of cases goes to both (encoding was a sixth of
    the harness's work in batch mode)."""
    for held, held_indexes, text in _ENCODED:
        if held is cases and held_indexes == indexes:
            return text
    text = json.dumps([cases[i].wire() for i in indexes])
    _ENCODED.append((cases, indexes, text))
    del _ENCODED[:-4]  # two chunks in flight, each in up to two parts
    return text


def _writable_now(sock: socket.socket) -> bool:
    """Whether ``sock`` is writable (or failed) now, without waiting."""
    poller = select.poll()
    poller.register(sock, select.POLLOUT)
    return bool(poller.poll(0))


class FuzzServer:
    """One target's server process, serving fuzz cases for a whole run.

    ``spec`` replaces the family's server (the handler fuzzer runs a user's server, which
    keeps no per-connection records); ``concurrency`` is how many of a run's cases are
    under way at a time (a case that stays open is not counted).
    """

    def __init__(
        self,
        target: Target,
        family: str,
        transport: Transport,
        idle: float = 0.5,
        spec: ServerSpec | None = None,
        concurrency: int = 32,
    ) -> None:
        self.target = target
        self.family = family
        self.transport = transport
        self.spec = spec or server_spec(family, transport)
        #: Whether the server keeps per-connection records (the fuzz servers do).
        self.records = spec is None
        self.site = spec is None and family in HTTP_FAMILIES[1:]
        self.idle = idle
        self.agent: AgentProcess | None = None
        self.address: Any = None
        self.python: list[int] = []
        self.restarts = 0
        self.replacements: list[tuple[str, str]] = []
        self._nursery: trio.Nursery | None = None
        self._serving = True
        self._calls = 0
        self._limiter = trio.CapacityLimiter(concurrency)
        #: Awaited before each stream connection (the handler fuzzer's accept gate).
        self.before_connect: Callable[[], Awaitable[None]] | None = None
        self._datagram_bytes = ByteBudget(DATAGRAM_BYTES_IN_FLIGHT)
        self._generation = 0
        self._restart_lock = trio.Lock()
        self._take_lock = trio.Lock()
        self._tokens = itertools.count()
        #: Per record key, the tokens of the cases whose records are still in the server.
        self._unfetched: dict[str, list[int]] = {}
        self._fetched: dict[int, Any] = {}

    async def start(self, nursery: trio.Nursery, serve: bool = True) -> None:
        """Start the server process, and ``serve_forever`` in it unless ``serve`` is
        False (batch mode drives the server itself)."""
        self._nursery = nursery
        workdir = make_workdir()
        if self.site:
            await trio.to_thread.run_sync(tree.build, workdir)
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
        self.replacements = []
        if self.site:
            # What differs between two servers of one tree: where it is, and the port.
            port = self.address[1]
            self.replacements = [
                (str(workdir), "<workdir>"),
                (f"SERVER_PORT=[{port}]", "SERVER_PORT=[<port>]"),
                (f"SERVER_PORT={port}\n", "SERVER_PORT=<port>\n"),
            ]
        # A new process has no records yet.
        self._unfetched.clear()
        self._fetched.clear()
        self._serving = serve
        if serve:
            cid = self.agent.command("call", method="serve_forever", args=[0.05], thread=True)
            # Wait until its thread exists, so that thread counts start from it.
            await self.agent.wait_for(
                lambda e: e.get("id") == cid and e["ev"].startswith("command:"), 5.0
            )

    async def stop(self) -> None:
        """Stop the server process and everything it started (``AgentProcess.stop``),
        and remove its private directory."""
        if self.agent is not None:
            with trio.CancelScope(shield=True):
                await self.agent.stop()
            tree.remove(self.agent.workdir)
            self.agent = None

    async def restart(self) -> None:
        """A fresh server process (after the old one died or stopped answering)."""
        assert self._nursery is not None
        await self.stop()
        self.restarts += 1
        self._generation += 1
        await self.start(self._nursery, self._serving)

    async def call(
        self, method: str, *args: Any, timeout: float = 20.0, thread: bool = False
    ) -> Any:
        """Call one of the server's named operations; its value."""
        if self.agent is None:
            raise AgentGone("the server process is being restarted")
        agent = self.agent
        cid = agent.command("call", method=method, args=list(args), thread=thread)
        event = await agent.wait_command(cid, timeout)
        # Commands' events are all we collect (the fuzz servers are not instrumented):
        # drop those every command still waiting has looked at. (Dropping them only when
        # none was waiting let 35,000 of them pile up in ten minutes: two chunks run at once;
        # letting a thousand gather per server held 0.6 MB across the eight of ``--family http``.)
        if len(agent.events) > EVENTS_KEPT and not self.spec.instrument:
            agent.drop_examined_events()
        if event is None:
            raise AgentGone("the server process did not answer a command")
        if event["ev"] != "command:returned":
            raise HarnessError(f"{method} failed: {event.get('type')}: {event.get('message')}")
        if "value_file" in event:
            return json.loads(Path(event["value_file"]).read_text())
        return event.get("value")

    def _path(self, name: str) -> str:
        assert self.agent is not None
        self._calls += 1
        return str(self.agent.workdir / f"{name}-{self._calls}.json")

    def _normalize(self, result: dict[str, Any]) -> dict[str, Any]:
        """``result`` with what differs between two servers replaced: the tree's place
        and the port (site families), the names Unix clients bound."""
        for field, holder in (("reply", result), ("stderr", result.get("server") or {})):
            text = holder.get(field)
            if text:
                for old, new in self.replacements:
                    text = text.replace(old, new)
                if "hfz-" in text:
                    text = _CLIENT_NAME.sub("hfz-<client>", text)
                holder[field] = text
        return result

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
            results = await (self._run_batch(cases) if batch else self._run_real(cases))
        except (*_SERVER_GONE, BaseExceptionGroup) as exc:
            # Several cases' connections fail at once when the server dies under them.
            if isinstance(exc, BaseExceptionGroup) and exc.split(_SERVER_GONE)[1] is not None:
                raise
            died = {"server": {"died": True}, "error": str(exc)[:200]}
            if self.agent is not None and self.agent.alive():
                died = {"server": {"unresponsive": True}}
            async with self._restart_lock:
                if generation == self._generation:
                    await self.restart()
            return [dict(died) for _ in cases]
        if self.replacements or self.transport.family == socket.AF_UNIX:
            results = [self._normalize(r) for r in results]
        return results

    async def _run_batch(self, cases: list[Case]) -> list[dict[str, Any]]:
        """The cases through ``fuzz_batch``: those that stay open (each waits ``idle``
        seconds) in a command thread of their own, so that the others do not wait."""
        opened = [i for i, c in enumerate(cases) if c.end == "open"]
        rest = [i for i, c in enumerate(cases) if c.end != "open"]
        results: list[dict[str, Any]] = [{} for _ in cases]

        async def part(indexes: list[int], thread: bool) -> None:
            in_path, out_path = self._path("in"), self._path("out")
            Path(in_path).write_text(_batch_json(cases, indexes))
            timeout = 10.0 + len(indexes) * (self.idle + 0.1)
            await self.call(
                "fuzz_batch", in_path, out_path, self.idle, timeout=timeout, thread=thread
            )
            for index, result in zip(indexes, json.loads(Path(out_path).read_text())):
                results[index] = result
            os.unlink(in_path)
            os.unlink(out_path)

        async with trio.open_nursery() as nursery:
            for indexes, thread in ((opened, True), (rest, False)):
                if indexes:
                    nursery.start_soon(part, indexes, thread)
        return results

    async def _run_real(self, cases: list[Case]) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = [{} for _ in cases]
        # (record key, case index, token) of the cases that reached the server.
        ended: list[tuple[str, int, int]] = []
        bound: list[Any] = []

        async def one(index: int, case: Case) -> None:
            if case.family == "datagram":
                async with self._limiter:
                    results[index] = await self._datagram(case, bound)
            elif case.end == "open":  # mostly waits: not counted against the limit
                results[index] = await self._stream(case)
            else:
                async with self._limiter:
                    results[index] = await self._stream(case)
            key = results[index].pop("key", None)
            # None: nothing reached the server, no record to wait for.
            if key is not None and self.records:
                token = next(self._tokens)
                self._unfetched.setdefault(key, []).append(token)
                ended.append((key, index, token))

        try:
            async with trio.open_nursery() as nursery:
                for index, case in enumerate(cases):
                    nursery.start_soon(one, index, case)
            if not self.records:
                return results
            async with self._take_lock:
                await self._fetch_records({token for _key, _index, token in ended})
        finally:
            for sock in bound:
                sock.close()
        for result in results:
            result["server"] = {}
        for _key, index, token in ended:
            results[index]["server"] = self._fetched.pop(token, {})
        return results

    async def _fetch_records(self, tokens: set[int]) -> None:
        """Take the server's records of the cases ``tokens`` into ``_fetched``.

        The server keeps, per key, a queue of records in connection order, and the kernel
        may reuse a port as soon as the last connection on it has closed: within one run,
        or across the runs in flight. ``_unfetched`` holds, per key, the tokens of the
        cases whose records are still queued in the server, in the order the cases ended,
        which for one key is the connection order. Taking a key's queue up to the last of
        our cases keeps both in step; records of other runs' cases taken on the way wait
        in ``_fetched`` for their run.
        """
        plan: list[tuple[str, list[int]]] = []
        for key, queue in self._unfetched.items():
            ours = [i for i, token in enumerate(queue) if token in tokens]
            if ours:
                plan.append((key, queue[: ours[-1] + 1]))
        if not plan:
            return
        keys = [key for key, head in plan for _ in head]
        path = self._path("records")
        await self.call("take_records_to", keys, path, 5.0)
        records = json.loads(Path(path).read_text())
        os.unlink(path)
        for key, head in plan:
            got = records.get(key, {})
            self._fetched.update(zip(head, got if len(head) > 1 else [got]))
            rest = self._unfetched[key][len(head) :]
            if rest:
                self._unfetched[key] = rest
            else:
                del self._unfetched[key]

    async def _stream(self, case: Case) -> dict[str, Any]:
        """One stream case on a new connection (a plain non-blocking socket: the same
        client as ``harness.clients.StreamClient``, at a fraction of its cost)."""
        sock = socket.socket(self.transport.family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            if self.transport.family == socket.AF_UNIX:
                sock.bind(_client_name())
            else:
                # Each piece goes out when it is sent (Nagle would hold a small piece
                # back until the last one is acknowledged, gluing pieces together).
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.before_connect is not None:
                await self.before_connect()
            try:
                sock.connect(self.address)
            except BlockingIOError:
                # Over loopback the handshake is over when connect returns: a poll that
                # does not wait costs a fraction of trio's wait.
                if not _writable_now(sock):
                    with trio.fail_after(5.0):
                        await trio.lowlevel.wait_writable(sock)
                error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if error:
                    raise OSError(error, os.strerror(error)) from None
            key = record_key(sock.getsockname())
            sent = await drive(wire.sending(case.pieces(), case.pause), sock)
            data, end = b"", "closed"
            if case.end == "reset":
                if self.transport.family != socket.AF_UNIX:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif case.end != "close":
                if case.end == "half_close":
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_WR)
                # A busy machine may take a while to start a reply, or to start the CGI
                # script that writes the rest of it. After a half-close the server ends
                # the connection itself, so silence there is given as long as a first
                # byte; only a client that stays open has to stop at ``idle``.
                patience = max(4 * self.idle, 2.0)
                idle = patience if case.end == "half_close" else self.idle
                steps = wire.reading(5.0, idle, first_byte=patience)
                data, end = await drive(steps, sock)
        finally:
            trio.lowlevel.notify_closing(sock)
            sock.close()
        return {"key": key, "sent": sent, "reply": data.decode("latin-1"), "end": end}

    async def _datagram(self, case: Case, bound: list[Any]) -> dict[str, Any]:
        """One datagram case from a new client socket, which goes into ``bound`` for the
        caller to close."""
        family = self.transport.family
        sock = trio.socket.socket(family, socket.SOCK_DGRAM)
        bound.append(sock)
        replies: list[Any] = []
        if family == socket.AF_UNIX:
            await sock.bind(_client_name())
        else:
            await sock.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
        key: str | None = record_key(sock.getsockname())
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
            key = None  # every send failed (EMSGSIZE, say): the server has no record
        return {"key": key, "sent": "ok", "replies": replies}

    def sample(self) -> dict[str, int]:
        """Threads, fds, children and zombies of the server process now."""
        assert self.agent is not None
        return self.agent.sample()
