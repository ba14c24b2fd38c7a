"""socketserver/ipv6: TCPServer and UDPServer over ::1 (``address_family = AF_INET6``).

The servers are the plain classes with ``address_family`` set to AF_INET6 (10), as the
documentation tells users to do; clients are AF_INET6 sockets.
"""

from __future__ import annotations

from harness.scenario import ServerSpec, scenario
from scenarios._ss_common import (
    DATAGRAM_ECHO,
    STREAM_ECHO,
    handler,
    json_reply,
    json_text,
    outcome,
    serve,
    stop,
    stream_exchange,
)

INET6 = {"address_family": 10}


def _spec(server: str, handler_path: str) -> ServerSpec:
    return ServerSpec(server, handler=handler_path, family="inet6", server_attrs=INET6)


_ADDRESS = """
s = server
result = {
    "server_address type": type(s.server_address).__name__,
    "length": len(s.server_address),
    "host": s.server_address[0],
    "port set": s.server_address[1] != 0,
    "flowinfo, scope_id": list(s.server_address[2:]),
    "is getsockname": s.server_address == s.socket.getsockname(),
    "socket family": s.socket.family.name,
    "socket type": s.socket.type.name,
}
"""


@scenario("socketserver/ipv6/answers", server=_spec("TCPServer", STREAM_ECHO))
async def answers(run):
    """Sanity: a TCPServer with address_family AF_INET6 on ::1 echoes; its server_address
    is getsockname()'s 4-tuple (host, port, flowinfo, scope_id)."""
    run.record("address", outcome(await run.exec(_ADDRESS)))
    serve_id = await serve(run)
    run.record("reply", await stream_exchange(run, b"over ipv6"))
    await stop(run, serve_id)


@scenario("socketserver/ipv6/udp_answers", server=_spec("UDPServer", DATAGRAM_ECHO))
async def udp_answers(run):
    """Sanity: a UDPServer with address_family AF_INET6 on ::1 echoes datagrams, including
    an empty one."""
    run.record("address", outcome(await run.exec(_ADDRESS)))
    serve_id = await serve(run)
    replies = []
    async with await run.datagram() as client:
        for payload in (b"ping6", b""):
            await client.send(payload)
            data = await client.recv(timeout=5)
            replies.append(None if data is None else data.decode("latin-1"))
    run.record("replies", replies)
    await stop(run, serve_id)


@scenario(
    "socketserver/ipv6/tcp_describe",
    server=_spec("TCPServer", handler("DescribeStream")),
    events="sequence",
)
async def tcp_describe(run):
    """A StreamRequestHandler over IPv6 sees an AF_INET6 connection, a 4-tuple
    client_address from ::1, and the server's address as its socket name."""
    serve_id = await serve(run)
    async with await run.connect() as client:
        await client.send(b"describe\n")
        run.record("handler sees", json_reply(await client.recv_until_eof(timeout=5)))
    await stop(run, serve_id)


@scenario("socketserver/ipv6/udp_describe", server=_spec("UDPServer", handler("DescribeDatagram")))
async def udp_describe(run):
    """A DatagramRequestHandler over IPv6 sees (data, socket) on an AF_INET6 datagram
    socket and a 4-tuple client_address from ::1."""
    serve_id = await serve(run)
    async with await run.datagram() as client:
        await client.send(b"describe me")
        data = await client.recv(timeout=5)
    run.record("handler sees", json_text(None if data is None else data.decode("latin-1")))
    await stop(run, serve_id)


@scenario(
    "socketserver/ipv6/without_address_family",
    server=ServerSpec("TCPServer", handler=STREAM_ECHO, family="inet6"),
)
async def without_address_family(run):
    """A plain TCPServer (AF_INET) given the address ('::1', 0) cannot bind it: the
    constructor raises, and what it raises is the observation."""
    run.record("constructed", True)
    run.record("close", outcome(await run.server_close()))
