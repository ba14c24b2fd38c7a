"""socketserver/udp: UDPServer and DatagramRequestHandler.

Echo, truncation at ``max_packet_size`` (S13), empty datagrams in and out (S14), the shape
of ``request`` (S15), one request per datagram, errors (finish still replies), and the
threading and forking variants with the context their handlers run in.
"""

from __future__ import annotations

from harness.scenario import ServerSpec, scenario
from scenarios._ss_common import (
    DATAGRAM_ECHO,
    handler,
    json_text,
    outcome,
    pattern,
    serve,
    stop,
)
from scenarios.handlers.ss_basic import digest

ECHO = ServerSpec("UDPServer", handler=DATAGRAM_ECHO)
LENGTH = handler("DatagramLength")


def _reply(data: bytes | None) -> str | None:
    return None if data is None else data.decode("latin-1")


async def _ask(run, payloads: list[bytes]) -> list[str | None]:
    """Send each payload from one client and wait for its reply (None if none in 5 s)."""
    replies = []
    async with await run.datagram() as client:
        for payload in payloads:
            sent = await client.send(payload)
            if sent != "ok":
                replies.append(f"send: {sent}")
                continue
            replies.append(_reply(await client.recv(timeout=5)))
    return replies


@scenario("socketserver/udp/answers", server=ECHO)
async def answers(run):
    """Sanity: a UDPServer under serve_forever echoes two datagrams back to the client."""
    serve_id = await serve(run)
    run.record("replies", await _ask(run, [b"ping", b"pong"]))
    await stop(run, serve_id)


@scenario("socketserver/udp/truncation_default", server=ServerSpec("UDPServer", handler=LENGTH))
async def truncation_default(run):
    """max_packet_size=8192 (default): a 9000-byte datagram is truncated to its first 8192
    bytes without any error; 8192 bytes exactly arrive whole (S13)."""
    serve_id = await serve(run)
    big = pattern(9000)
    run.record("replies", await _ask(run, [big, big[:8192]]))
    run.record("expected digest of 8192", digest(big[:8192]))
    await stop(run, serve_id)


@scenario(
    "socketserver/udp/max_packet_size_100",
    server=ServerSpec("UDPServer", handler=LENGTH, server_attrs={"max_packet_size": 100}),
)
async def max_packet_size_100(run):
    """Server attribute max_packet_size=100: datagrams of 150, 100 and 99 bytes reach the
    handler as 100, 100 and 99 bytes."""
    serve_id = await serve(run)
    data = pattern(150)
    run.record("replies", await _ask(run, [data, data[:100], data[:99]]))
    await stop(run, serve_id)


@scenario("socketserver/udp/empty_datagram", server=ECHO, events="sequence")
async def empty_datagram(run):
    """A zero-length datagram is a request: the handler runs and the echo is a zero-length
    datagram too."""
    serve_id = await serve(run)
    run.record("replies", await _ask(run, [b""]))
    await stop(run, serve_id)


@scenario(
    "socketserver/udp/empty_reply",
    server=ServerSpec("UDPServer", handler=handler("DatagramSilent")),
    events="sequence",
)
async def empty_reply(run):
    """A handler that writes nothing still sends a zero-length datagram back, because
    DatagramRequestHandler.finish always sends wfile's contents (S14)."""
    serve_id = await serve(run)
    run.record("replies", await _ask(run, [b"hello"]))
    await stop(run, serve_id)


@scenario(
    "socketserver/udp/request_shape",
    server=ServerSpec("UDPServer", handler=handler("DescribeDatagram")),
)
async def request_shape(run):
    """What a DatagramRequestHandler sees: request is (data, server socket), packet and
    socket split from it, rfile/wfile are BytesIO, client_address is the sender's (S15)."""
    serve_id = await serve(run)
    (reply,) = await _ask(run, [b"describe me"])
    run.record("handler sees", json_text(reply))
    await stop(run, serve_id)


@scenario(
    "socketserver/udp/error_still_replies",
    server=ServerSpec("UDPServer", handler=handler("DatagramRaise")),
    events="sequence",
)
async def error_still_replies(run):
    """A datagram handler writes, then raises: finish still sends what was written,
    handle_error prints the dashed block, the server serves the next datagram."""
    serve_id = await serve(run)
    run.record("replies", await _ask(run, [b"one", b"two"]))
    await stop(run, serve_id)


@scenario("socketserver/udp/one_request_per_datagram", server=ECHO, events="sequence")
async def one_request_per_datagram(run):
    """Three datagrams queued before any handle_request: each handle_request call handles
    exactly one of them, in order."""
    async with await run.datagram() as client:
        for payload in (b"first", b"second", b"third"):
            await client.send(payload)
        calls = []
        replies = []
        for _ in range(3):
            calls.append(outcome(await run.call("handle_request", timeout=5)))
            replies.append(_reply(await client.recv(timeout=5)))
    run.record("handle_request", calls)
    run.record("replies", replies)
    run.record("close", outcome(await run.server_close()))


_ATTRIBUTES = """
import socket
s = server
result = {
    "server_address is getsockname": s.server_address == s.socket.getsockname(),
    "host": s.server_address[0],
    "port set": s.server_address[1] != 0,
    "socket family": s.socket.family.name,
    "socket type": s.socket.type.name,
    "listening": s.socket.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN),
    "max_packet_size": s.max_packet_size,
    "allow_reuse_address": s.allow_reuse_address,
    "allow_reuse_port": s.allow_reuse_port,
    "server_activate": s.server_activate(),
    "SO_REUSEADDR": s.socket.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR),
}
"""


@scenario("socketserver/udp/attributes", server=ECHO)
async def attributes(run):
    """What a constructed UDPServer exposes: a bound, non-listening SOCK_DGRAM socket,
    server_address from getsockname(), max_packet_size 8192, server_activate a no-op."""
    run.record("attributes", outcome(await run.exec(_ATTRIBUTES)))
    run.record("close", outcome(await run.server_close()))


@scenario("socketserver/udp/threading", server=ServerSpec("ThreadingUDPServer", handler=LENGTH))
async def threading_udp(run):
    """ThreadingUDPServer: each datagram is handled in a thread of its own (events in the
    ``thread`` context); replies as from UDPServer; server_close leaves no thread behind."""
    serve_id = await serve(run)
    run.record("replies", await _ask(run, [b"a", b"bb", b"ccc"]))
    await stop(run, serve_id)
    after = await run.settle(lambda s: s["threads"] <= 0)
    run.record("threads after close", after["threads"])


@scenario("socketserver/udp/forking", server=ServerSpec("ForkingUDPServer", handler=LENGTH))
async def forking_udp(run):
    """ForkingUDPServer: each datagram is handled in a forked child (events in the
    ``child`` context); after server_close no child is left, live or zombie."""
    serve_id = await serve(run)
    run.record("replies", await _ask(run, [b"a", b"bb", b"ccc"]))
    await stop(run, serve_id)
    after = await run.sample()
    run.record("children after close", {"children": after["children"], "zombies": after["zombies"]})
