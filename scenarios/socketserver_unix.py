"""socketserver/unix: the AF_UNIX servers, stream and datagram, plain, threading, forking.

The family is checked on the wire independently of the classes' own attributes: clients
are AF_UNIX sockets, handlers report their socket's family and names, and the harness asks
the kernel (psutil) which Unix sockets the server process holds. Also the socket file left
behind by server_close (S16), abstract names, and SO_REUSEPORT on AF_UNIX (gh-128916).
"""

from __future__ import annotations

import os
import stat

import psutil

from harness.scenario import Known, ServerSpec, scenario
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


def unix_sockets(run, address) -> list[list]:
    """The server process's Unix sockets bound to ``address``, as the kernel reports them:
    ``[family, type, status]`` each, sorted (psutil on the agent's pid)."""
    if isinstance(address, dict):
        address = address["bytes"]
    rows = []
    for conn in psutil.Process(run.agent.pid).net_connections(kind="unix"):
        laddr = conn.laddr
        if laddr == address or (
            isinstance(address, str) and laddr.replace("@", "\0", 1) == address
        ):
            rows.append([conn.family.name, conn.type.name, conn.status])
    return sorted(rows)


@scenario("socketserver/unix/answers", server=ServerSpec("UnixStreamServer", handler=STREAM_ECHO))
async def answers(run):
    """Sanity: a UnixStreamServer bound to a socket file echoes over an AF_UNIX connection;
    the kernel shows one listening AF_UNIX stream socket on that path, none after close."""
    run.record("kernel before", unix_sockets(run, run.address))
    serve_id = await serve(run)
    run.record("reply", await stream_exchange(run, b"over a socket file"))
    await stop(run, serve_id)
    run.record("kernel after close", unix_sockets(run, run.address))


@scenario(
    "socketserver/unix/stream_describe",
    server=ServerSpec("UnixStreamServer", handler=handler("DescribeStream")),
    events="sequence",
)
async def stream_describe(run):
    """What a StreamRequestHandler sees on a UnixStreamServer: an AF_UNIX SOCK_STREAM
    connection named by the server's path, an unnamed client (client_address '')."""
    serve_id = await serve(run)
    async with await run.connect() as client:
        await client.send(b"describe\n")
        run.record("handler sees", json_reply(await client.recv_until_eof(timeout=5)))
    await stop(run, serve_id)


_ATTRIBUTES = """
import os, socket, stat
s = server
result = {
    "server_address type": type(s.server_address).__name__,
    "server_address is the path": s.server_address == os.path.join(tmpdir, "server.sock"),
    "server_address is getsockname": s.server_address == s.socket.getsockname(),
    "socket family": s.socket.family.name,
    "socket type": s.socket.type.name,
    "address_family": getattr(s.address_family, "name", s.address_family),
    "listening": s.socket.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN),
    "file is a socket": stat.S_ISSOCK(os.stat(s.server_address).st_mode),
}
"""


@scenario(
    "socketserver/unix/attributes", server=ServerSpec("UnixStreamServer", handler=STREAM_ECHO)
)
async def attributes(run):
    """A constructed UnixStreamServer: server_address is the socket file's path (a str, as
    getsockname() reports it), AF_UNIX SOCK_STREAM, listening, the file is a socket."""
    run.record("attributes", outcome(await run.exec(_ATTRIBUTES)))
    run.record("close", outcome(await run.server_close()))


async def _datagram_ask(run, payloads: list[bytes]) -> list:
    replies = []
    async with await run.datagram() as client:
        for payload in payloads:
            sent = await client.send(payload)
            data = await client.recv(timeout=5) if sent == "ok" else None
            replies.append(f"send: {sent}" if sent != "ok" else json_text(_text(data)))
    return replies


def _text(data: bytes | None) -> str | None:
    return None if data is None else data.decode("latin-1")


@scenario(
    "socketserver/unix/datagram_answers",
    server=ServerSpec("UnixDatagramServer", handler=DATAGRAM_ECHO),
)
async def datagram_answers(run):
    """Sanity: a UnixDatagramServer echoes datagrams to a client bound to its own socket
    file; the kernel shows one AF_UNIX datagram socket on the server's path."""
    run.record("kernel", unix_sockets(run, run.address))
    serve_id = await serve(run)
    run.record("replies", await _datagram_ask(run, [b"one", b"", b"three"]))
    await stop(run, serve_id)


@scenario(
    "socketserver/unix/datagram_describe",
    server=ServerSpec("UnixDatagramServer", handler=handler("DescribeDatagram")),
)
async def datagram_describe(run):
    """What a DatagramRequestHandler sees on a UnixDatagramServer: request (data, server
    socket) on AF_UNIX SOCK_DGRAM, client_address the client's socket path (a str)."""
    serve_id = await serve(run)
    run.record("handler sees", await _datagram_ask(run, [b"describe me"]))
    await stop(run, serve_id)


def _variant(name: str, server: str, datagram: bool, doc: str, known=()) -> None:
    spec = ServerSpec(server, handler=DATAGRAM_ECHO if datagram else STREAM_ECHO)

    @scenario(f"socketserver/unix/{name}", server=spec, description=doc, known=known)
    async def body(run):
        run.record("kernel", unix_sockets(run, run.address))
        serve_id = await serve(run)
        if datagram:
            run.record("replies", await _datagram_ask(run, [b"a", b"bb"]))
        else:
            run.record("first", await stream_exchange(run, b"a"))
            run.record("second", await stream_exchange(run, b"bb"))
        await stop(run, serve_id)
        after = await run.settle(lambda s: s["threads"] <= 0 and s["children"] == 0)
        run.record(
            "after close",
            {
                "threads": after["threads"],
                "children": after["children"],
                "zombies": after["zombies"],
            },
        )


_variant(
    "threading_stream",
    "ThreadingUnixStreamServer",
    False,
    "ThreadingUnixStreamServer: two connections, each handled in a thread (events in the "
    "``thread`` context); nothing left after server_close.",
)
_variant(
    "threading_datagram",
    "ThreadingUnixDatagramServer",
    True,
    "ThreadingUnixDatagramServer: two datagrams, each handled in a thread; nothing left "
    "after server_close.",
)
_variant(
    "forking_stream",
    "ForkingUnixStreamServer",
    False,
    "ForkingUnixStreamServer (3.12+): two connections, each handled in a forked child; no "
    "child left after server_close.",
)
_variant(
    "forking_datagram",
    "ForkingUnixDatagramServer",
    True,
    "ForkingUnixDatagramServer (3.12+): two datagrams, each handled in a forked child; no "
    "child left after server_close.",
)


_REBIND = """
import errno, socketserver

def bind():
    try:
        second = socketserver.UnixStreamServer(path, socketserver.StreamRequestHandler)
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno))
    second.server_close()
    return "bound"

path = server.server_address
result = bind()
"""


@scenario(
    "socketserver/unix/socket_file_left",
    server=ServerSpec("UnixStreamServer", handler=STREAM_ECHO),
)
async def socket_file_left(run):
    """server_close does not unlink the socket file (S16): it is still there, a new server
    on the same path fails with EADDRINUSE until the file is removed."""
    path = run.address
    run.record("close", outcome(await run.server_close()))
    run.record("file left", os.path.exists(path) and stat.S_ISSOCK(os.stat(path).st_mode))
    run.record("connect", await run.connect_result())
    run.record("rebind", outcome(await run.exec(_REBIND)))
    os.unlink(path)
    run.record("rebind after unlink", outcome(await run.exec("result = bind()")))


@scenario(
    "socketserver/unix/abstract",
    server=ServerSpec("UnixStreamServer", handler=STREAM_ECHO, family="unix-abstract"),
)
async def abstract(run):
    """An abstract name ('\\0...'): no file is created, server_address reads back as bytes
    starting with NUL (getsockname's form), and the server echoes over it."""
    run.record(
        "server_address",
        await run.value(
            "{'type': type(server.server_address).__name__,"
            " 'starts with NUL': server.server_address[:1] in (b'\\0', '\\0'),"
            " 'is getsockname': server.server_address == server.socket.getsockname()}"
        ),
    )
    run.record("files", sorted(p for p in os.listdir(run.workdir) if p.endswith(".sock")))
    run.record("kernel", unix_sockets(run, run.address))
    serve_id = await serve(run)
    run.record("reply", await stream_exchange(run, b"abstract"))
    await stop(run, serve_id)


@scenario(
    "socketserver/unix/reuse_port",
    server=ServerSpec(
        "UnixStreamServer", handler=STREAM_ECHO, server_attrs={"allow_reuse_port": True}
    ),
    known=[
        Known(
            ("construct", "facts*", "events"),
            "the reference sets SO_REUSEPORT only on AF_INET/AF_INET6; CPython before "
            "3.13.2 sets it on AF_UNIX too, which Linux >= 6.12.9 refuses with EOPNOTSUPP",
            issue="gh-128916",
            applies=lambda v: tuple(v) < (3, 13, 2),
        )
    ],
)
async def reuse_port(run):
    """UnixStreamServer with allow_reuse_port=True: whether construction succeeds (on Linux
    >= 6.12.9 SO_REUSEPORT on AF_UNIX fails with errno 95 unless it is skipped), then
    the server echoes."""
    run.record(
        "SO_REUSEPORT",
        await run.value(
            "server.socket.getsockopt(__import__('socket').SOL_SOCKET,"
            " __import__('socket').SO_REUSEPORT)"
        ),
    )
    serve_id = await serve(run)
    run.record("echo", await stream_exchange(run, b"reuse port"))
    await stop(run, serve_id)


@scenario(
    "socketserver/unix/nagle_on_unix",
    server=ServerSpec(
        "UnixStreamServer",
        handler=handler("DescribeStream"),
        handler_attrs={"disable_nagle_algorithm": True},
    ),
    events="sequence",
)
async def nagle_on_unix(run):
    """disable_nagle_algorithm=True on a Unix stream: setting TCP_NODELAY on an AF_UNIX
    socket fails in setup, which handle_error reports; the client (which sends nothing, so
    that no unread data turns the close into a reset) reads EOF."""
    serve_id = await serve(run)
    async with await run.connect() as client:
        run.record("reply", (await client.recv_until_eof(timeout=5)).summary())
    await stop(run, serve_id)
