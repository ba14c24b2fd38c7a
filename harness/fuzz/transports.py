"""Transports and servers: how clients reach the server of each fuzz family.

``TRANSPORTS`` are the ways a client connects (TCP, TCP over IPv6, UDP, Unix stream, Unix
datagram sockets); ``FAMILY_TRANSPORTS`` which of them each family runs over (the first
is its default); ``server_spec`` the server of a family bound for a transport: a class of
``scenarios.handlers.fuzz_handlers`` with the family's handler (``fuzz_site`` for the
file, CGI and error families), all written against the stdlib names so that every target
runs them on its own modules.
"""

from __future__ import annotations

import dataclasses
import socket

from harness.errors import UsageError
from harness.fuzz.case import HTTP_FAMILIES
from harness.scenario import ServerSpec

HANDLERS = "scenarios.handlers.fuzz_handlers"
SITE = "scenarios.handlers.fuzz_site"


@dataclasses.dataclass(frozen=True)
class Transport:
    """How clients reach a server: socket family and type, and the agent's family name."""

    name: str
    family: socket.AddressFamily
    type: socket.SocketKind
    agent_family: str

    @property
    def datagram(self) -> bool:
        """Whether this is a datagram transport."""
        return self.type == socket.SOCK_DGRAM


TRANSPORTS = {
    t.name: t
    for t in (
        Transport("tcp", socket.AF_INET, socket.SOCK_STREAM, "inet"),
        Transport("tcp6", socket.AF_INET6, socket.SOCK_STREAM, "inet6"),
        Transport("udp", socket.AF_INET, socket.SOCK_DGRAM, "inet"),
        Transport("unix", socket.AF_UNIX, socket.SOCK_STREAM, "unix"),
        Transport("unix-datagram", socket.AF_UNIX, socket.SOCK_DGRAM, "unix"),
    )
}
#: The transports each family runs over; the first is its default.
FAMILY_TRANSPORTS = {
    **dict.fromkeys(HTTP_FAMILIES, ("tcp", "tcp6")),
    "stream": ("tcp", "tcp6", "unix"),
    "datagram": ("udp", "unix-datagram"),
}
#: (server class, handler) of each family; the server class by transport.
_HANDLERS = {
    "http-parser": f"{HANDLERS}:ParsedEcho",
    "http-files": f"{SITE}:Files",
    "http-cgi": f"{SITE}:Cgi",
    "http-errors": f"{SITE}:Errors",
    "stream": f"{HANDLERS}:LineEcho",
    "datagram": f"{HANDLERS}:DatagramEcho",
}
_SERVERS = {
    **dict.fromkeys(HTTP_FAMILIES, f"{HANDLERS}:FuzzHTTPServer"),
    "stream": f"{HANDLERS}:FuzzTCPServer",
    "datagram": f"{HANDLERS}:FuzzUDPServer",
    ("stream", "unix"): f"{HANDLERS}:FuzzUnixStreamServer",
    ("datagram", "unix-datagram"): f"{HANDLERS}:FuzzUnixDatagramServer",
}


def transport_for(family: str, name: str | None) -> Transport:
    """The transport ``name`` (default: the family's), checked against the family."""
    allowed = FAMILY_TRANSPORTS[family]
    name = name or allowed[0]
    if name not in allowed:
        raise UsageError(f"--transport={name}: the {family} family runs over {', '.join(allowed)}")
    return TRANSPORTS[name]


def server_spec(family: str, transport: Transport) -> ServerSpec:
    """The fuzz server of ``family`` bound for ``transport``."""
    server = _SERVERS.get((family, transport.name), _SERVERS[family])
    attrs = {"address_family": int(socket.AF_INET6)} if transport.name == "tcp6" else {}
    return ServerSpec(
        server,
        _HANDLERS[family],
        family=transport.agent_family,
        server_attrs=attrs,
        instrument=False,
    )
