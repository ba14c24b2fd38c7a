"""Wire helpers: how a client cuts its bytes into sends, sends them, and reads to the end.

One implementation of the client's side of a connection, used by the trio clients
(``harness.clients``), the fuzzer's servers (``harness.fuzz.servers``) and the batch agent
inside the server process (``harness.agent_batch``). The policy (where the sends are
cut, the pause after each, what ends a read and what that end is called) lives in
generators of *steps*; a driver performs each step on a socket and sends the result back:

- ``(SEND, view)``: send some of ``view``; the driver sends back the count sent;
- ``(RECV, size, wait)``: receive up to ``size`` bytes, waiting at most ``wait`` seconds;
  the driver sends back the bytes (``b""`` at EOF) or None when the wait ran out;
- ``(SLEEP, seconds)``: pause.

A driver throws an ``OSError`` from the socket back into the generator, which turns the
ones that are observations (a reset, a broken pipe) into results and lets the others
propagate. ``run_blocking`` is the driver for plain sockets (the server process);
``harness.clients.drive`` is the trio one.

Stdlib-only and Python 3.9-compatible: the batch agent runs under the target's interpreter.
"""

import select
import socket
import time
from typing import Any, Generator, List, Optional, Sequence, Tuple, Union

SEND = "send"
RECV = "recv"
SLEEP = "sleep"

#: What a read keeps at most, unless told otherwise.
READ_LIMIT = 64 * 1024 * 1024

Step = Tuple[Any, ...]
Steps = Generator[Step, Any, Any]


def pieces(data: bytes, split: Union[int, Sequence[int], None] = None) -> List[bytes]:
    """``data`` cut into sends: whole (``split`` None), in pieces of ``split`` bytes (an
    int), or in pieces of the listed sizes, the rest going last (a list). A size list
    longer than the data stops where the data does. Always at least one piece."""
    if split is None:
        return [data]
    if isinstance(split, int):
        if split <= 0:
            raise ValueError("split=%r: piece size must be positive" % (split,))
        return [data[start : start + split] for start in range(0, len(data), split)] or [b""]
    out, start = [], 0
    for size in split:
        if start >= len(data):
            break
        out.append(data[start : start + size])
        start += size
    if start < len(data) or not out:
        out.append(data[start:])
    return out


def sending(chunks: Sequence[bytes], pause: float = 0.0) -> Steps:
    """Steps that send each chunk whole, ``pause`` seconds after each but the last.

    Returns ``"ok"``, or how sending failed: ``"reset"`` (the peer reset the
    connection) or ``"broken"`` (any other socket error: a broken pipe, a closed peer).
    """
    last = len(chunks) - 1
    try:
        for index, chunk in enumerate(chunks):
            view = memoryview(chunk)
            while view:
                sent = yield (SEND, view)
                view = view[sent:]
            if pause and index < last:
                yield (SLEEP, pause)
    except ConnectionResetError:
        return "reset"
    except OSError:
        return "broken"
    return "ok"


def reading(
    timeout: float = 5.0,
    idle: Optional[float] = None,
    limit: int = READ_LIMIT,
    chunk: int = 65536,
    pause: float = 0.0,
    first_byte: Optional[float] = None,
) -> Steps:
    """Steps that read until the stream ends; returns ``(data, end)``.

    ``end`` is ``eof``, ``reset``, ``limit`` (``limit`` bytes read), ``timeout``
    (``timeout`` seconds in all) or, with ``idle``, ``idle`` (that long without a new
    byte; the wait for the first byte is ``first_byte``, default ``idle``). A slow
    reader passes a small ``chunk`` and a ``pause`` after each read. A socket error other
    than a reset propagates.
    """
    parts: List[bytes] = []
    total = 0
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return b"".join(parts), "timeout"
        patience = None
        if idle is not None:
            patience = first_byte if first_byte is not None and not parts else idle
        wait = left if patience is None else min(patience, left)
        try:
            data = yield (RECV, chunk, wait)
        except ConnectionResetError:
            return b"".join(parts), "reset"
        if data is None:
            ran_out = "idle" if patience is not None and patience < left else "timeout"
            return b"".join(parts), ran_out
        if not data:
            return b"".join(parts), "eof"
        parts.append(data)
        total += len(data)
        if total >= limit:
            return b"".join(parts), "limit"
        if pause:
            yield (SLEEP, max(0.0, min(pause, deadline - time.monotonic())))


#: ``recv`` flag that makes one call non-blocking (0 where there is none).
_DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0)
_NOTHING_YET = object()


def _recv_ready(sock: socket.socket, size: int) -> Any:
    """What a receive gets at once (data, or ``b""`` at EOF), or ``_NOTHING_YET``.

    The batch agent reads a reply the handler finished writing before the read started:
    one call then does what a ``select`` and a ``recv`` do. Only on a blocking socket
    without a timeout: one with a timeout waits for data even when told not to.
    """
    if not _DONTWAIT or sock.gettimeout() is not None:
        return _NOTHING_YET
    try:
        return sock.recv(size, _DONTWAIT)
    except BlockingIOError:
        return _NOTHING_YET


def run_blocking(steps: Steps, sock: socket.socket) -> Any:
    """Perform ``steps`` on the blocking socket ``sock`` in this thread; their result.

    A send blocks until some bytes go (or the socket's own timeout, an error);
    a receive waits with ``select``, so its wait is bounded whatever the socket's mode.
    """
    reply: Any = None
    error: Optional[BaseException] = None
    while True:
        try:
            step = steps.throw(error) if error is not None else steps.send(reply)
        except StopIteration as stop:
            return stop.value
        reply = error = None
        try:
            if step[0] == SEND:
                reply = sock.send(step[1])
            elif step[0] == RECV:
                reply = _recv_ready(sock, step[1])
                if reply is _NOTHING_YET:
                    ready = select.select([sock], [], [], step[2])[0]
                    reply = sock.recv(step[1]) if ready else None
            else:
                time.sleep(step[1])
        except OSError as exc:
            error = exc
