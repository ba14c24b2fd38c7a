"""socketserver/defaults: class defaults, listening-socket options and rare error paths.

Small facts with large reach: a changed default (``max_children``, ``ForkingMixIn.timeout``,
``UDPServer.allow_reuse_address``) changes every program that relies on it, and no echo
test notices.
"""

from __future__ import annotations

from harness.scenario import ServerSpec, scenario
from scenarios._ss_common import serve, stop

ECHO_LINE = "scenarios.handlers.stream:EchoLine"
DEFAULTS = "scenarios.handlers.ss_defaults"

CLASSES = [
    "BaseServer",
    "TCPServer",
    "UDPServer",
    "UnixStreamServer",
    "UnixDatagramServer",
    "ForkingMixIn",
    "ThreadingMixIn",
    "ForkingTCPServer",
    "ForkingUDPServer",
    "ThreadingTCPServer",
    "ThreadingUDPServer",
    "ThreadingUnixStreamServer",
    "ThreadingUnixDatagramServer",
    "BaseRequestHandler",
    "StreamRequestHandler",
    "DatagramRequestHandler",
]


@scenario(
    "socketserver/defaults/class_attributes",
    server=ServerSpec("TCPServer", handler=ECHO_LINE),
)
async def class_attributes(run):
    """The documented class defaults of every server, mix-in and handler class
    (timeouts, max_children, block_on_close, daemon_threads, buffer sizes, reuse flags,
    max_packet_size, request_queue_size) and the module's ``__all__``."""
    names = repr(CLASSES)
    run.record(
        "defaults",
        await run.value(f"__import__('{DEFAULTS}', fromlist=['x']).class_defaults({names})"),
    )
    run.record(
        "allow_reuse_port",
        await run.value(f"__import__('{DEFAULTS}', fromlist=['x']).reuse_port_defaults({names})"),
    )
    run.record("all_names", await run.value("sorted(__import__('socketserver').__all__)"))
    run.record(
        "forking_unix",
        await run.value(
            f"__import__('{DEFAULTS}', fromlist=['x']).class_defaults("
            "['ForkingUnixStreamServer', 'ForkingUnixDatagramServer'])"
        ),
    )


def _options_scenario(server: str, reuse: bool) -> None:
    sid = f"socketserver/defaults/socket_options_{server.lower()}" + ("_reuse" if reuse else "")
    spec = ServerSpec(
        server,
        handler=ECHO_LINE if "TCP" in server else "scenarios.handlers.datagram:Echo",
        server_attrs={"allow_reuse_address": True, "allow_reuse_port": True} if reuse else {},
    )

    async def body(run):
        run.record(
            "options",
            await run.value(
                f"__import__('{DEFAULTS}', fromlist=['x']).socket_options(server.socket)"
            ),
        )

    doc = f"The SO_REUSEADDR/SO_REUSEPORT options on a {server}'s listening socket, " + (
        "with both allow_reuse flags set." if reuse else "with the class defaults."
    )
    scenario(sid, server=spec, description=doc)(body)


for _server in ("TCPServer", "UDPServer"):
    for _reuse in (False, True):
        _options_scenario(_server, _reuse)


@scenario(
    "socketserver/defaults/accept_failure",
    server=ServerSpec(f"{DEFAULTS}:FlakyAcceptServer", handler=ECHO_LINE),
)
async def accept_failure(run):
    """An OSError from get_request (a failed accept) is swallowed: handle_request returns
    quietly, nothing reaches handle_error, and the next connection is served (S7)."""
    first = await run.connect()
    outcome = await run.call("handle_request")
    run.record("first handle_request", dict(outcome))
    run.record("first client", (await first.recv_until_eof(timeout=5)).summary())
    first.close()
    serve_id = await serve(run)
    async with await run.connect() as second:
        await second.send(b"again\n")
        run.record("second client", (await second.recv_until_eof(timeout=5)).summary())
    await stop(run, serve_id)


@scenario(
    "socketserver/defaults/sigchld_ignored",
    server=ServerSpec("ForkingTCPServer", handler=ECHO_LINE, server_attrs={"max_children": 1}),
    stderr="sorted",
)
async def sigchld_ignored(run):
    """With SIGCHLD ignored the kernel reaps children itself, so waiting for them finds
    none (ChildProcessError): a ForkingTCPServer with max_children=1 must still serve one
    client after another without reporting an error."""
    await run.exec("import signal; signal.signal(signal.SIGCHLD, signal.SIG_IGN)")
    serve_id = await serve(run)
    replies = []
    for line in (b"one\n", b"two\n", b"three\n"):
        async with await run.connect() as client:
            await client.send(line)
            replies.append((await client.recv_until_eof(timeout=5)).summary())
    run.record("replies", replies)
    await stop(run, serve_id)
    run.record("errors", len(run.events("handle_error")))
