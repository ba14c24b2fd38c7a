"""Handlers and servers for the concurrency and lifecycle scenarios of socketserver.

Stdlib-only and Python 3.9-compatible; written against ``import socketserver`` (the agent
substitutes the target's module before this is imported).

``Command`` blocks in ``readline`` until its client sends a line, so the client decides
when each handler finishes: that is how scenarios order concurrent requests without sleeps.
"""

import os
import socketserver
import threading

try:
    from harness.agent import emit
except ImportError:  # outside the harness: nothing to report to

    def emit(ev, **fields):
        """No harness, no events."""


class Command(socketserver.StreamRequestHandler):
    """Read one line (blocking until the client sends it) and act on it.

    ``raise`` raises ValueError; ``exit`` raises SystemExit; ``daemon`` replies whether the
    handler's thread is a daemon; ``pid`` replies the process id; ``shutdown`` replies, calls
    ``server.shutdown()`` and replies again once it returned; anything else is echoed as
    ``reply:<line>``. Replies are one line each.
    """

    def handle(self):
        line = self.rfile.readline().strip()
        word = line.decode("latin-1")
        if word == "raise":
            raise ValueError("boom from handler")
        if word == "exit":
            raise SystemExit(7)
        if word == "daemon":
            daemon = threading.current_thread().daemon
            emit("note", note="handler thread daemon=%s" % (daemon,))
            self.wfile.write(b"daemon=%s\n" % (str(daemon).encode(),))
            return
        if word == "pid":
            self.wfile.write(b"pid=%d\n" % (os.getpid(),))
            return
        if word == "shutdown":
            self.wfile.write(b"shutting down\n")
            self.server.shutdown()
            self.wfile.write(b"shut down\n")
            return
        self.wfile.write(b"reply:" + line + b"\n")


class DatagramCommand(socketserver.DatagramRequestHandler):
    """Reply ``reply:<datagram>``; a datagram ``raise`` raises ValueError instead."""

    def handle(self):
        data = self.rfile.read()
        if data == b"raise":
            raise ValueError("boom from datagram handler")
        self.wfile.write(b"reply:" + data)


class ServiceCountingServer(socketserver.TCPServer):
    """A TCPServer that counts ``service_actions`` calls (``service_calls``) and sets
    ``service_called`` (an Event) on the first one."""

    service_calls = 0

    def __init__(self, *args, **kwargs):
        self.service_called = threading.Event()
        socketserver.TCPServer.__init__(self, *args, **kwargs)

    def service_actions(self):
        """Count the call, then do what the base class does."""
        self.service_calls += 1
        self.service_called.set()
        socketserver.TCPServer.service_actions(self)


class FailingActivateServer(socketserver.TCPServer):
    """A TCPServer whose ``server_activate`` raises: the constructor must close the socket."""

    def server_activate(self):
        """Fail after the bind."""
        raise OSError(99, "activation refused by the scenario")
