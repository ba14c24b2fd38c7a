"""Servers for the socketserver/defaults family: class defaults and rare error paths.

Stdlib-only, Python 3.9-compatible; written against ``import socketserver`` so that the
target's module is the one subclassed.
"""

import socket
import socketserver

#: Class attributes a subclass or a client can rely on, per kind of class.
SERVER_ATTRIBUTES = (
    "timeout",
    "address_family",
    "socket_type",
    "request_queue_size",
    "allow_reuse_address",
    "max_packet_size",
    "max_children",
    "block_on_close",
    "daemon_threads",
    "active_children",
)
HANDLER_ATTRIBUTES = ("rbufsize", "wbufsize", "timeout", "disable_nagle_algorithm")


def class_defaults(names):
    """``{class name: {attribute: value}}`` for the named classes of the module."""
    table = {}
    for name in names:
        cls = getattr(socketserver, name, None)
        if cls is None:
            table[name] = None
            continue
        wanted = HANDLER_ATTRIBUTES if name.endswith("Handler") else SERVER_ATTRIBUTES
        table[name] = {attr: repr(getattr(cls, attr)) for attr in wanted if hasattr(cls, attr)}
    return table


def reuse_port_defaults(names):
    """``{class name: allow_reuse_port}`` (a 3.11 attribute) for the named classes."""
    return {
        name: repr(getattr(getattr(socketserver, name, None), "allow_reuse_port", "<absent>"))
        for name in names
        if not name.endswith("Handler") and "MixIn" not in name
    }


def socket_options(sock):
    """The socket options a server sets on its listening socket."""
    options = {}
    for name in ("SO_REUSEADDR", "SO_REUSEPORT"):
        level_name = getattr(socket, name, None)
        if level_name is not None:
            options[name] = bool(sock.getsockopt(socket.SOL_SOCKET, level_name))
    return options


class FlakyAcceptServer(socketserver.TCPServer):
    """A TCPServer whose first ``get_request`` fails with OSError (a failed accept)."""

    failures = 1

    def get_request(self):
        if self.failures > 0:
            type(self).failures -= 1
            conn, _ = self.socket.accept()
            conn.close()
            raise OSError("deliberate accept failure")
        return super().get_request()
