"""Handlers and server subclasses for the socketserver catalog (tcp, stream_handler, udp,
unix, ipv6 families).

Runs inside the server process: stdlib-only, Python 3.9-compatible, written against the
stdlib names (``import socketserver`` gets the target's module). Handlers that report what
they can see either send it to the client as one JSON line or call ``note`` (a ``note``
event in the observation).
"""

import hashlib
import json
import socket
import socketserver
import sys
import threading

#: Upper bound on what a flooding handler writes when nothing stops it.
FLOOD_LIMIT = 64 * 1024 * 1024

#: Opened by the harness (``run.exec``) to let a ``WaitForGate`` handler return.
GATE = threading.Event()


def note(text):
    """Report ``text`` as a ``note`` event of the server process (shown in the events).

    The agent runs as ``python -m harness.agent``, so its ``emit`` lives in ``__main__``
    (an ``import harness.agent`` here would load a second, unconnected copy).
    """
    emit = getattr(sys.modules.get("__main__"), "emit", None)
    if emit is None:
        return
    emit("note", note=text)


def digest(data):
    """A short, stable digest of ``data`` (first 16 hex digits of its SHA-256)."""
    return hashlib.sha256(data).hexdigest()[:16]


def family_name(value):
    """An address family or socket type as its name (``AF_UNIX``, ``SOCK_STREAM``)."""
    return getattr(value, "name", str(value))


def send_json(handler, facts):
    """Send ``facts`` to the client as one JSON line through ``handler.wfile``."""
    handler.wfile.write(json.dumps(facts, sort_keys=True).encode("ascii") + b"\n")


# --- stream handlers ---------------------------------------------------------------------


class ReadExact(socketserver.StreamRequestHandler):
    """Read a line of sizes (``"5,1,300\\n"``), then ``rfile.read(size)`` for each.

    Replies one line per piece: the length ``read`` returned and the piece's digest, then
    ``end``. A buffered ``rfile`` must gather pieces that arrive in several segments.
    """

    def handle(self):
        sizes = [int(x) for x in self.rfile.readline().split(b",") if x.strip()]
        for size in sizes:
            piece = self.rfile.read(size)
            self.wfile.write(b"%d %s\n" % (len(piece), digest(piece).encode("ascii")))
        self.wfile.write(b"end\n")


class CountUntilEof(socketserver.StreamRequestHandler):
    """Read everything until the client half-closes, then reply with the count and digest."""

    def handle(self):
        data = self.rfile.read()
        self.wfile.write(b"%d bytes %s\n" % (len(data), digest(data).encode("ascii")))


class TwoLines(socketserver.StreamRequestHandler):
    """Read one line, note it, then block reading a second line; reply with both."""

    def handle(self):
        first = self.rfile.readline()
        note("first line: %r" % (first,))
        second = self.rfile.readline()
        note("second line: %r" % (second,))
        self.wfile.write(first + second)


class Flood(socketserver.StreamRequestHandler):
    """Read one line, note ``flooding``, then write 64 KiB blocks until a write fails."""

    def handle(self):
        self.rfile.readline()
        note("flooding")
        block = b"x" * 65536
        written = 0
        while written < FLOOD_LIMIT:
            self.wfile.write(block)
            written += len(block)
        note("flood limit reached")


class SendBig(socketserver.StreamRequestHandler):
    """Read a line with a byte count N, write N bytes of a fixed pattern in one write."""

    def handle(self):
        count = int(self.rfile.readline())
        pattern = bytes(range(256))
        data = (pattern * (count // 256 + 1))[:count]
        self.wfile.write(data)
        note("wrote %d" % (count,))


class SendBigSmallBuffer(SendBig):
    """SendBig with an 8 KiB SO_SNDBUF, so that one send() cannot queue the whole reply
    (a non-blocking send then returns a partial count)."""

    def setup(self):
        self.request.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
        SendBig.setup(self)


class PeekThenReturn(socketserver.BaseRequestHandler):
    """Wait until the client's data has arrived (MSG_PEEK: nothing is consumed), return."""

    def handle(self):
        peeked = self.request.recv(1, socket.MSG_PEEK)
        note("peeked %d byte(s)" % (len(peeked),))


class RaiseSystemExit(socketserver.StreamRequestHandler):
    """Read one line, then raise SystemExit (a BaseException, not an Exception)."""

    def handle(self):
        self.rfile.readline()
        raise SystemExit("exit from handler")


class RaiseKeyboardInterrupt(socketserver.StreamRequestHandler):
    """Read one line, then raise KeyboardInterrupt."""

    def handle(self):
        self.rfile.readline()
        raise KeyboardInterrupt("interrupt from handler")


class RaiseOSError(socketserver.StreamRequestHandler):
    """Read one line, write a partial reply, then raise OSError (an Exception subclass)."""

    def handle(self):
        self.rfile.readline()
        self.wfile.write(b"partial\n")
        raise OSError(5, "handler I/O error")


class Silent(socketserver.BaseRequestHandler):
    """Do nothing at all: the server's close sequence alone decides what the client sees."""

    def handle(self):
        pass


def stream_facts(handler):
    """What a stream handler can see of its request, connection and files."""
    conn = handler.connection
    facts = {
        "request_is_connection": handler.request is conn,
        "server_is_server": isinstance(handler.server, socketserver.BaseServer),
        "rfile": type(handler.rfile).__name__,
        "wfile": type(handler.wfile).__name__,
        "rfile_readable": handler.rfile.readable(),
        "wfile_writable": handler.wfile.writable(),
        "timeout": conn.gettimeout(),
        "family": family_name(conn.family),
        "type": family_name(conn.type),
        "blocking": conn.getblocking(),
        "rbufsize": handler.rbufsize,
        "wbufsize": handler.wbufsize,
        "disable_nagle_algorithm": handler.disable_nagle_algorithm,
    }
    if conn.family in (socket.AF_INET, socket.AF_INET6):
        facts["nodelay"] = bool(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        facts["client_host"] = handler.client_address[0]
        facts["client_address_len"] = len(handler.client_address)
        facts["sockname_is_server_address"] = conn.getsockname() == handler.server.server_address
    else:
        facts["client_address"] = repr(handler.client_address)
        facts["sockname_is_server_address"] = conn.getsockname() == handler.server.server_address
        facts["peername"] = repr(conn.getpeername())
    return facts


class DescribeStream(socketserver.StreamRequestHandler):
    """Read one line, reply with ``stream_facts`` as JSON; note whether finish closed the
    files."""

    def handle(self):
        self.rfile.readline()
        send_json(self, stream_facts(self))

    def finish(self):
        socketserver.StreamRequestHandler.finish(self)
        note(
            "after finish: rfile closed=%s wfile closed=%s" % (self.rfile.closed, self.wfile.closed)
        )


class RawAfterLine(socketserver.StreamRequestHandler):
    """Read one line through ``rfile``, then ``recv`` on the raw socket.

    With ``rbufsize=0`` the rest of what the client sent is still in the socket; with a
    buffered ``rfile`` it was pulled into the buffer and the raw read sees EOF (the client
    half-closed). Replies with both, as JSON.
    """

    def handle(self):
        line = self.rfile.readline()
        raw = self.connection.recv(65536)
        send_json(
            self,
            {
                "line": line.decode("latin-1"),
                "raw_recv": raw.decode("latin-1"),
                "rest_via_rfile": self.rfile.read().decode("latin-1"),
            },
        )


class WriteThenWait(socketserver.StreamRequestHandler):
    """Write ``first``, then wait for a line from the client, then write ``second``.

    With ``wbufsize=0`` the client sees ``first`` before it sends its line; with a buffered
    ``wfile`` nothing leaves before ``finish`` flushes.
    """

    def handle(self):
        self.wfile.write(b"first;")
        note("wrote first")
        line = self.rfile.readline()
        self.wfile.write(b"second;" + line)


class WaitForGate(socketserver.StreamRequestHandler):
    """Read a line, write a reply (into wfile's buffer when wbufsize > 0), note
    ``waiting``, then wait (at most 5 s) for the harness to open ``GATE`` and return."""

    def handle(self):
        line = self.rfile.readline()
        self.wfile.write(b"reply to " + line)
        note("waiting")
        note("gate opened=%s" % (GATE.wait(5),))


class ReadLineTimeout(socketserver.StreamRequestHandler):
    """Note the socket timeout, then read a line (the client sends none)."""

    def handle(self):
        note("timeout=%r" % (self.connection.gettimeout(),))
        line = self.rfile.readline()
        self.wfile.write(b"got " + line)


# --- server subclasses -------------------------------------------------------------------


class RefusingTCPServer(socketserver.TCPServer):
    """A TCPServer whose ``verify_request`` refuses every request."""

    def verify_request(self, request, client_address):
        return False


class ReturningTimeoutTCPServer(socketserver.TCPServer):
    """A TCPServer whose ``handle_timeout`` returns a value (handle_request passes it on)."""

    timeout = 0.05

    def handle_timeout(self):
        socketserver.TCPServer.handle_timeout(self)
        return "timed out"


# --- datagram handlers -------------------------------------------------------------------


class DatagramLength(socketserver.DatagramRequestHandler):
    """Reply with the length and digest of the datagram as the handler saw it."""

    def handle(self):
        data = self.rfile.read()
        self.wfile.write(b"%d %s" % (len(data), digest(data).encode("ascii")))


class DatagramSilent(socketserver.DatagramRequestHandler):
    """Write nothing: DatagramRequestHandler.finish still sends the (empty) reply."""

    def handle(self):
        note("got %d bytes" % (len(self.packet),))


class DescribeDatagram(socketserver.DatagramRequestHandler):
    """Reply with what the handler sees of its request, as JSON."""

    def handle(self):
        request = self.request
        facts = {
            "request_type": type(request).__name__,
            "request_len": len(request),
            "data_type": type(request[0]).__name__,
            "data": request[0].decode("latin-1"),
            "socket_is_server_socket": request[1] is self.server.socket,
            "self_socket_is_request_socket": self.socket is request[1],
            "packet_is_data": self.packet == request[0],
            "rfile": type(self.rfile).__name__,
            "wfile": type(self.wfile).__name__,
            "rfile_content": self.rfile.read().decode("latin-1"),
            "family": family_name(request[1].family),
            "type": family_name(request[1].type),
        }
        if request[1].family in (socket.AF_INET, socket.AF_INET6):
            facts["client_host"] = self.client_address[0]
            facts["client_address_len"] = len(self.client_address)
        else:
            facts["client_address_kind"] = type(self.client_address).__name__
            facts["client_address_named"] = bool(self.client_address)
        facts["sockname_is_server_address"] = request[1].getsockname() == self.server.server_address
        self.wfile.write(json.dumps(facts, sort_keys=True).encode("ascii"))


class DatagramRaise(socketserver.DatagramRequestHandler):
    """Write a partial reply, then raise ValueError (finish still sends what was written)."""

    def handle(self):
        self.wfile.write(b"partial")
        raise ValueError("boom from datagram handler")
