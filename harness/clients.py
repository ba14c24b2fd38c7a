"""Trio clients over TCP (IPv4, IPv6), UDP, Unix stream and Unix datagram sockets.

Fault injection lives here: sends split at chosen sizes with pauses, half-close, abortive
close (RST), slow readers. Every wait is bounded; a read that times out reports it as a
value (``end="timeout"``), because to a scenario a silent server is an observation.

Resource handling: each client owns one socket, closed by ``aclose`` (or leaving the
``async with``); Unix datagram clients also own their bound socket file, removed on close.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import socket
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import trio

from harness import wire

FAMILIES = {
    "inet": socket.AF_INET,
    "inet6": socket.AF_INET6,
    "unix": socket.AF_UNIX,
    "unix-abstract": socket.AF_UNIX,
}

_names = itertools.count()


def wire_address(address: Any) -> Any:
    """A server address as reported by the agent, made usable by ``socket.connect``."""
    if isinstance(address, list):
        return tuple(address)
    if isinstance(address, dict) and "bytes" in address:
        return address["bytes"].encode("latin-1")
    return address


@dataclasses.dataclass
class Received:
    """What a read got: the bytes, and how the read ended (eof, reset, timeout, limit)."""

    data: bytes
    end: str

    def summary(self, inline: int = 4096) -> dict[str, Any]:
        """A JSON-friendly record; long data is summarised by length and digest."""
        return {"data": render_bytes(self.data, inline), "end": self.end}


def render_bytes(data: bytes, inline: int = 4096) -> Any:
    """Bytes as text for a report: verbatim when short, else length, digest and head."""
    if len(data) <= inline:
        return data.decode("latin-1")
    import hashlib

    return {
        "len": len(data),
        "sha256": hashlib.sha256(data).hexdigest()[:16],
        "head": data[:64].decode("latin-1"),
    }


class StreamClient:
    """A connected stream socket (TCP or Unix) with fault-injecting send and read helpers."""

    def __init__(self, sock: trio.socket.SocketType) -> None:
        self.sock = sock

    async def __aenter__(self) -> StreamClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the socket (an orderly close: FIN, unless unread data makes it an RST)."""
        self.sock.close()

    def reset(self) -> None:
        """Abortive close: SO_LINGER 0 makes the kernel send RST instead of FIN."""
        if self.sock.family in (socket.AF_INET, socket.AF_INET6):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def shutdown_write(self) -> None:
        """Half-close: the server reads EOF, the client can still read the reply."""
        self.sock.shutdown(socket.SHUT_WR)

    async def send(
        self, data: bytes, *, split: Iterable[int] | int | None = None, pause: float = 0.0
    ) -> str:
        """Send all of ``data``, optionally in pieces with a pause after each piece.

        ``split`` is a piece size (int) or a list of piece sizes (the rest goes last).
        Returns ``"ok"``, or how sending failed (``"reset"``, ``"broken"``) so that a
        scenario can record it.
        """
        split = split if split is None or isinstance(split, int) else list(split)
        return await drive(wire.sending(wire.pieces(data, split), pause), self.sock)

    async def recv_some(self, max_bytes: int = 65536, timeout: float = 5.0) -> Received:
        """One read: what arrived first, or how the wait ended."""
        with trio.move_on_after(timeout):
            try:
                data = await self.sock.recv(max_bytes)
            except ConnectionResetError:
                return Received(b"", "reset")
            return Received(data, "data" if data else "eof")
        return Received(b"", "timeout")

    async def recv_until_eof(
        self,
        timeout: float = 5.0,
        limit: int = 64 * 1024 * 1024,
        chunk: int = 65536,
        pause: float = 0.0,
        idle: float | None = None,
        first_byte: float | None = None,
    ) -> Received:
        """Read until EOF, reset, ``limit`` bytes, or ``timeout`` seconds in all.

        A slow reader passes a small ``chunk`` and a ``pause`` between reads. With ``idle``
        the read also ends (``end="idle"``) after that long without new bytes; the wait
        for the first byte is ``first_byte`` (default: ``idle``), so that a server slow to
        start its reply on a busy machine is not taken for a silent one.
        """
        steps = wire.reading(timeout, idle, limit, chunk, pause, first_byte)
        data, end = await drive(steps, self.sock)
        return Received(data, end)

    async def recv_until(self, marker: bytes, timeout: float = 5.0) -> Received:
        """Read until ``marker`` has arrived (end ``"marker"``), EOF, reset or timeout."""
        buffer = b""
        with trio.move_on_after(timeout):
            while marker not in buffer:
                try:
                    data = await self.sock.recv(65536)
                except ConnectionResetError:
                    return Received(buffer, "reset")
                if not data:
                    return Received(buffer, "eof")
                buffer += data
            return Received(buffer, "marker")
        return Received(buffer, "timeout")

    async def recv_exactly(self, count: int, timeout: float = 5.0) -> Received:
        """Read exactly ``count`` bytes (end ``"count"``), or less on EOF/reset/timeout."""
        buffer = b""
        with trio.move_on_after(timeout):
            while len(buffer) < count:
                try:
                    data = await self.sock.recv(count - len(buffer))
                except ConnectionResetError:
                    return Received(buffer, "reset")
                if not data:
                    return Received(buffer, "eof")
                buffer += data
            return Received(buffer, "count")
        return Received(buffer, "timeout")


async def drive(steps: wire.Steps, sock: Any) -> Any:
    """Perform ``harness.wire`` steps on a socket; their result.

    ``sock`` is a trio socket, or a non-blocking stdlib socket (the fuzzer's clients:
    a call that would not block goes straight through, one that would waits for
    readiness with trio's low-level waits, at a fraction of a trio socket's cost).
    A socket error goes back into the steps, which decide what it means.
    """
    raw = isinstance(sock, socket.socket)
    reply: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = steps.throw(error) if error is not None else steps.send(reply)
        except StopIteration as stop:
            return stop.value
        reply = error = None
        try:
            if step[0] == wire.SEND:
                reply = await (_raw_send(sock, step[1]) if raw else sock.send(step[1]))
            elif step[0] == wire.RECV:
                reply = await (_raw_recv(sock, step[1], step[2]) if raw else _recv(sock, *step[1:]))
            else:
                await trio.sleep(step[1])
        except OSError as exc:
            error = exc


async def _recv(sock: trio.socket.SocketType, size: int, wait: float) -> bytes | None:
    with trio.move_on_after(wait):
        return await sock.recv(size)
    return None


async def _raw_send(sock: socket.socket, view: memoryview) -> int:
    while True:
        try:
            return sock.send(view)
        except BlockingIOError:
            await trio.lowlevel.wait_writable(sock)


async def _raw_recv(sock: socket.socket, size: int, wait: float) -> bytes | None:
    while True:
        try:
            return sock.recv(size)
        except BlockingIOError:
            with trio.move_on_after(wait) as scope:
                await trio.lowlevel.wait_readable(sock)
            if scope.cancelled_caught:
                return None


async def connect_stream(family: str, address: Any, timeout: float = 5.0) -> StreamClient:
    """Open a stream connection to the server; OSError if it is refused."""
    sock = trio.socket.socket(FAMILIES[family], socket.SOCK_STREAM)
    try:
        with trio.fail_after(timeout):
            await sock.connect(wire_address(address))
    except BaseException:
        sock.close()
        raise
    return StreamClient(sock)


class DatagramClient:
    """A datagram socket (UDP or Unix) aimed at the server's address."""

    def __init__(self, sock: trio.socket.SocketType, address: Any, path: Path | None) -> None:
        self.sock = sock
        self.address = wire_address(address)
        self.path = path

    async def __aenter__(self) -> DatagramClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the socket and remove its socket file, if it has one."""
        self.sock.close()
        if self.path is not None:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass

    async def send(self, data: bytes) -> str:
        """Send one datagram; returns ``"ok"`` or the error's name."""
        try:
            await self.sock.sendto(data, self.address)
        except OSError as exc:
            return type(exc).__name__
        return "ok"

    async def recv(self, timeout: float = 5.0, max_bytes: int = 65536) -> bytes | None:
        """One datagram (possibly empty), or None if none came within ``timeout``."""
        with trio.move_on_after(timeout):
            data, _ = await self.sock.recvfrom(max_bytes)
            return data
        return None


async def open_datagram(family: str, address: Any, workdir: Path) -> DatagramClient:
    """A datagram client; Unix ones are bound to a socket file so that replies reach them."""
    sock = trio.socket.socket(FAMILIES[family], socket.SOCK_DGRAM)
    path = None
    try:
        if family in ("unix", "unix-abstract"):
            path = workdir / f"client-{next(_names)}.sock"
            await sock.bind(str(path))
        elif family == "inet6":
            await sock.bind(("::1", 0))
        else:
            await sock.bind(("127.0.0.1", 0))
    except BaseException:
        sock.close()
        raise
    return DatagramClient(sock, address, path)
