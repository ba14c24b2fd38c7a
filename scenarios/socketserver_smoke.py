"""Smoke scenarios: the engine end to end."""

from harness.scenario import ServerSpec, scenario

ECHO = "scenarios.handlers.stream:Echo"


@scenario("socketserver/smoke/tcp_echo", server=ServerSpec("TCPServer", handler=ECHO))
async def tcp_echo(run):
    """A TCPServer echoes one short message and closes after the client half-closes."""
    serve = run.serve_forever()
    async with await run.connect() as client:
        await client.send(b"hello")
        client.shutdown_write()
        run.record("reply", (await client.recv_until_eof()).summary())
    run.record("stop", await run.stop_serving(serve))


@scenario(
    "socketserver/smoke/udp_echo",
    server=ServerSpec("UDPServer", handler="scenarios.handlers.datagram:Echo"),
)
async def udp_echo(run):
    """A UDPServer echoes a datagram, handled by handle_request."""
    async with await run.datagram() as client:
        await client.send(b"ping")
        outcome = await run.call("handle_request", timeout=5)
        run.record("handled", dict(outcome))
        reply = await client.recv(timeout=5)
        run.record("reply", None if reply is None else reply.decode("latin-1"))


@scenario(
    "socketserver/smoke/forking_error",
    server=ServerSpec("ForkingTCPServer", handler="scenarios.handlers.stream:Raise"),
)
async def forking_error(run):
    """A ForkingTCPServer's child reports the handler's exception and exits."""
    serve = run.serve_forever(0.05)
    async with await run.connect() as client:
        await client.send(b"line\n")
        run.record("reply", (await client.recv_until_eof()).summary())
    after = await run.settle(lambda s: s["children"] == 0 and s["zombies"] == 0)
    run.expect(after["zombies"] == 0, "a finished child is reaped while serve_forever runs")
    run.record("stop", await run.stop_serving(serve))
    run.record("after close", await run.sample())


@scenario(
    "socketserver/smoke/handler_emits",
    server=ServerSpec("TCPServer", handler="scenarios.handlers.stream:Note"),
)
async def handler_emits(run):
    """A handler's own events (harness.agent.emit) reach the harness."""
    async with await run.connect() as client:
        await client.send(b"x\n")
        run.record("handled", dict(await run.call("handle_request")))
        run.record("reply", (await client.recv_until_eof()).summary())
    run.expect(
        [e.get("note") for e in run.events("note")] == ["handled in Note"],
        "the handler's note event arrives",
    )
