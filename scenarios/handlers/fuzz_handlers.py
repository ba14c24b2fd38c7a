"""Servers and handlers for the fuzzer (``python -m harness fuzz``).

Written against the stdlib names (``import http.server``, ``import socketserver``), so the
agent's module substitution makes them run on every target unchanged. Stdlib-only,
Python 3.9-compatible.

One server lives for a whole fuzz run and serves many cases at once, so what the server did
is kept per connection, keyed by the client's port or, over Unix sockets, by the name the
client bound (a queue per key, in connection order, since the kernel reuses ports
quickly): what the handler thread wrote to ``sys.stderr`` (log lines, ``handle_error``
tracebacks) and the exceptions ``handle_error`` saw. ``take_records_to`` hands them to the
harness (a named operation, called through the agent's ``call`` command) once each
connection's thread has finished; the servers also have the operations of
``harness.agent_batch.FuzzOps`` (batch mode).

- ``FuzzHTTPServer`` + ``ParsedEcho``: an HTTP/1.1 handler that replies with what it parsed
  (command, path, version, headers, the body it read); the ``http-files``, ``http-cgi``
  and ``http-errors`` handlers are in ``scenarios.handlers.fuzz_site``.
- ``FuzzTCPServer`` / ``FuzzUnixStreamServer`` + ``LineEcho``: a line-echo stream handler.
- ``FuzzUDPServer`` / ``FuzzUnixDatagramServer`` + ``DatagramEcho``: echoes each datagram
  with its length.
"""

import functools
import gc
import http.server
import json
import queue
import socketserver
import subprocess
import sys
import threading

from harness.agent_batch import FuzzOps
from harness.agent_batch import record_key as _key

_local = threading.local()


class _StderrRouter:
    """``sys.stderr`` that sends a fuzz thread's writes to that thread's own buffer."""

    def __init__(self, real):
        self._real = real

    def write(self, text):
        buffer = getattr(_local, "buffer", None)
        if buffer is not None:
            buffer.append(text)
            return len(text)
        return self._real.write(text)

    def flush(self):
        if getattr(_local, "buffer", None) is None:
            self._real.flush()

    def __getattr__(self, name):
        return getattr(self._real, name)


if not isinstance(sys.stderr, _StderrRouter):
    sys.stderr = _StderrRouter(sys.stderr)


def _remember_traceback_positions():
    """Memoize two pure helpers of ``traceback`` (3.11+): a connection the client closed
    before reading makes the handler's write fail, and ``handle_error`` prints the
    traceback, where parsing each source line for its carets (``ast.parse``) and finding
    each frame's position cost more than ten ordinary cases. Both are functions of their
    arguments alone (a line's text; a code object and an offset), so what is printed does
    not change."""
    import traceback

    for name in ("_extract_caret_anchors_from_line_segment", "_get_code_position"):
        function = getattr(traceback, name, None)
        if function is not None and not hasattr(function, "cache_info"):
            setattr(traceback, name, functools.lru_cache(maxsize=4096)(function))


_remember_traceback_positions()


def _in_no_record(function):
    """``function``, with what it prints going to no request's record."""

    def quietly(*args, **kwargs):
        saved = getattr(_local, "buffer", None)
        _local.buffer = []
        try:
            return function(*args, **kwargs)
        finally:
            _local.buffer = saved

    quietly.__wrapped__ = function
    return quietly


# A Popen dropped while its child still ran (a CGI request whose body read failed) is
# released by the next Popen, in whatever request starts one: the warnings about its
# unclosed pipes would land there. A pipe left open by a request whose child has ended
# still warns in that request.
if hasattr(subprocess, "_cleanup") and not hasattr(subprocess._cleanup, "__wrapped__"):
    subprocess._cleanup = _in_no_record(subprocess._cleanup)


class RecordingMixIn(FuzzOps):
    """Keeps, per client port, what the server did for each connection on that port.

    The kernel may give a client port to a new connection as soon as the last one on it
    has closed, even within one chunk of cases: each port has a queue of records, oldest
    first. Records are opened in the order connections are accepted (``process_request``,
    in the serving thread), which for one port is the order the harness made them in, and
    ``take_records`` takes them in that order.

    Garbage collection happens only in ``take_records`` and ``collect_garbage`` (the
    collector is off otherwise), and what finalizers print then belongs to no record: a ResourceWarning for a file a
    request left to the collector would otherwise land in whichever request the collector
    happened to run in. What reference counting frees still warns in its own request.
    """

    def __init__(self, *args, **kwargs):
        # Before the server exists: no request thread can race to create these.
        self._records = {}
        self._records_changed = threading.Condition()
        self._opened = {}
        self._collections = 0
        gc.disable()
        super().__init__(*args, **kwargs)

    def collect_garbage(self):
        """Collect the young generation (everything now and then), its output dropped."""
        self._collections += 1
        _in_no_record(gc.collect)(2 if self._collections % 64 == 0 else 0)

    def record_key(self, client_address):
        """The key of the records of ``client_address`` (``take_records`` takes keys)."""
        return _key(client_address)

    def record_open(self, client_address):
        """Queue a new record for a connection (or a datagram) from ``client_address``."""
        record = {"errors": [], "stderr": "", "done": False}
        with self._records_changed:
            self._records.setdefault(_key(client_address), []).append(record)
        return record

    def record_begin(self, record):
        """Route this thread's stderr and ``handle_error`` notes into ``record``."""
        _local.buffer = []
        _local.record = record

    def record_close(self, record):
        """Close ``record``: add this thread's stderr text and mark it done."""
        buffer = getattr(_local, "buffer", None) or []
        _local.buffer = None
        _local.record = None
        with self._records_changed:
            record["stderr"] += "".join(buffer)
            record["done"] = True
            self._records_changed.notify_all()

    def handle_error(self, request, client_address):
        """Note the exception type and message, then report it as the target does."""
        exc = sys.exc_info()[1]
        with self._records_changed:
            record = getattr(_local, "record", None)
            if record is None:
                # Outside a handler (the serving thread, after process_request failed):
                # the newest record of this client, just opened by process_request.
                queue = self._records.get(_key(client_address))
                record = queue[-1] if queue else None
            if record is None:
                record = {"errors": [], "stderr": "", "done": True}
                self._records.setdefault(_key(client_address), []).append(record)
            if exc is not None:
                record["errors"].append("%s: %s" % (type(exc).__name__, str(exc)[:200]))
        super().handle_error(request, client_address)

    def take_records(self, keys, timeout=2.0, collect=True):
        """The records of ``keys``, oldest first for a port named more than once, waiting
        up to ``timeout`` for their threads to end.

        A connection whose thread is still running gets ``{"done": False}`` (it hangs);
        one the server never saw gets ``{"missing": True}``. With ``timeout`` 0 (batch
        mode, where the handler ran in the caller's thread) nothing is waited for.
        Returns ``{key: record}`` for keys named once, ``{key: [records]}`` otherwise.
        Batch mode, which takes one case's records at a time, passes ``collect`` False
        and calls ``collect_garbage`` once per batch: a collection per case cost more
        than the case.
        """
        if collect:
            self.collect_garbage()
        keys = [str(k) for k in keys]
        wanted = {}
        for k in keys:
            wanted[k] = wanted.get(k, 0) + 1
        records = self._records

        def pending():
            for k, count in wanted.items():
                queue = records.get(k, ())
                if len(queue) < count or not all(r.get("done") for r in queue[:count]):
                    return True
            return False

        with self._records_changed:
            if timeout > 0:
                import time

                deadline = time.monotonic() + timeout
                while True:
                    left = deadline - time.monotonic()
                    if not pending() or left <= 0:
                        break
                    self._records_changed.wait(min(left, 0.05))
            out = {}
            for k, count in wanted.items():
                queue = records.get(k, [])
                taken, rest = queue[:count], queue[count:]
                if rest:
                    records[k] = rest
                else:
                    records.pop(k, None)
                taken += [{"missing": True}] * (count - len(taken))
                out[k] = taken[0] if count == 1 else taken
        return out

    def take_records_to(self, keys, path, timeout=2.0):
        """``take_records`` written as JSON to ``path`` (agent events are size-limited)."""
        with open(path, "w") as f:
            # ``dumps``: ``dump`` encodes in pure Python, several times slower.
            f.write(json.dumps(self.take_records(keys, timeout)))
        return path


class _ThreadedRecording(RecordingMixIn):
    #: Many cases connect at once; the default backlog of 5 would drop SYNs (1 s retries).
    request_queue_size = 256

    def process_request(self, request, client_address):
        # Opened here, in accept order; the thread picks its record up by the request.
        record = self._opened[id(request)] = self.record_open(client_address)
        try:
            super().process_request(request, client_address)
        except BaseException:
            # No thread will run for it (it could not start): the record is complete.
            self._opened.pop(id(request), None)
            with self._records_changed:
                record["done"] = True
                self._records_changed.notify_all()
            raise

    def process_request_thread(self, request, client_address):
        record = self._opened.pop(id(request), None)
        if record is None:  # called directly (batch mode)
            record = self.record_open(client_address)
        self.record_begin(record)
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.record_close(record)


class _PooledThreads(_ThreadedRecording):
    """Hands each connection to a thread that lives for the whole run, which runs the
    target's ``process_request_thread`` on it.

    Starting a thread per connection (``ThreadingMixIn.process_request``) costs about a
    third of what an HTTP server spends on a fuzz case; that part belongs to socketserver,
    which the ``stream`` family fuzzes with a thread per connection. A new thread joins
    the pool whenever every thread is busy, so a connection never waits for another.
    """

    def __init__(self, *args, **kwargs):
        self._tasks = queue.SimpleQueue()
        self._pool_lock = threading.Lock()
        self._idle = 0
        super().__init__(*args, **kwargs)

    def process_request(self, request, client_address):
        # Opened here, in accept order, as ``_ThreadedRecording`` does.
        self._opened[id(request)] = self.record_open(client_address)
        self._tasks.put((request, client_address))
        with self._pool_lock:
            if self._idle:
                self._idle -= 1
                return
        threading.Thread(target=self._serve_tasks, daemon=True).start()

    def _serve_tasks(self):
        while True:
            request, client_address = self._tasks.get()
            self.process_request_thread(request, client_address)
            with self._pool_lock:
                self._idle += 1


class FuzzHTTPServer(_PooledThreads, http.server.ThreadingHTTPServer):
    """The target's ThreadingHTTPServer, recording per connection, its connections
    served by a pool of threads."""

    daemon_threads = True


class FuzzTCPServer(_ThreadedRecording, socketserver.ThreadingTCPServer):
    """The target's ThreadingTCPServer, recording per connection."""

    daemon_threads = True
    allow_reuse_address = True


class FuzzUnixStreamServer(_ThreadedRecording, socketserver.ThreadingUnixStreamServer):
    """The target's ThreadingUnixStreamServer, recording per connection (clients bind a
    name of their own, which is the key)."""

    daemon_threads = True


class _DatagramRecording(RecordingMixIn):
    """Records per client: a case's datagrams all come from one client socket (held
    until its record is taken), so they share one record."""

    def process_request(self, request, client_address):
        with self._records_changed:
            queue = self._records.get(_key(client_address))
            record = queue[-1] if queue else None
            if record is not None:
                record["done"] = False
        if record is None:
            record = self.record_open(client_address)
        self.record_begin(record)
        try:
            super().process_request(request, client_address)
        finally:
            self.record_close(record)


class FuzzUDPServer(_DatagramRecording, socketserver.UDPServer):
    """The target's UDPServer, recording per client port."""


class FuzzUnixDatagramServer(_DatagramRecording, socketserver.UnixDatagramServer):
    """The target's UnixDatagramServer, recording per client name."""


def _short(value, limit=200):
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= limit:
        return text
    return "%s...<%d chars>" % (text[:60], len(text))


class ParsedEcho(http.server.BaseHTTPRequestHandler):
    """Replies 200 with what ``parse_request`` produced and the body it read.

    HTTP/1.1, so keep-alive, pipelining and ``Expect: 100-continue`` are in play. The body
    is read by ``Content-Length`` when that is a plain number up to 65536.
    """

    protocol_version = "HTTP/1.1"

    def _reply(self):
        length = self.headers.get("Content-Length", "")
        body = b""
        if length.isdigit() and int(length) <= 65536:
            body = self.rfile.read(int(length))
        parsed = {
            "command": _short(self.command),
            "path": _short(self.path),
            "version": _short(self.request_version),
            "headers": [[_short(k, 80), _short(v)] for k, v in self.headers.items()],
            "close": bool(self.close_connection),
            "body": _short(body.decode("latin-1")),
        }
        payload = json.dumps(parsed, sort_keys=True).encode("utf-8", "backslashreplace")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_OPTIONS = do_PATCH = _reply
    do_TRACE = do_CONNECT = do_get = do_post = _reply


class LineEcho(socketserver.StreamRequestHandler):
    """Echo each line read with ``readline(65537)``, prefixed by its length."""

    def handle(self):
        while True:
            line = self.rfile.readline(65537)
            if not line:
                return
            self.wfile.write(b"%d:" % len(line) + line[:64] + b"\n")


class DatagramEcho(socketserver.DatagramRequestHandler):
    """Reply to each datagram with its length and its first 64 bytes."""

    def handle(self):
        data = self.rfile.read()
        self.wfile.write(b"%d:" % len(data) + data[:64])
