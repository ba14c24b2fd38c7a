"""``dependents/logging``: the logging cookbook's network receivers on each target's modules.

``logging`` relies on ``socketserver`` in two places: the cookbook's receivers for the
records of ``logging.handlers.SocketHandler`` (a ``StreamRequestHandler`` under a
``ThreadingTCPServer``) and ``DatagramHandler`` (a ``DatagramRequestHandler`` under a
``UDPServer``), and ``logging.config.listen``, a ``ThreadingTCPServer`` that logging runs
in a thread of its own to receive new configurations. The receivers
(``scenarios/handlers/dep_logging.py``) run in the server process on the target's modules;
the clients are the real logging handlers, in worker threads of the harness, aimed at
``run.address`` (and, for ``listen``, a raw client in the length-prefixed format it reads).

Records carry times, process and thread ids: the server prints and reports (``record``
events) only what does not vary: name, level, message, args, function, exception text.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import struct
import time
from collections.abc import Callable
from typing import Any

import trio

from harness.clients import connect_stream
from harness.scenario import Run, ServerSpec, scenario
from scenarios._ss_concurrency_common import NOT_YET

FAMILY = "dependents/logging"
HANDLERS = "scenarios.handlers.dep_logging"
IMPORT = f"from {HANDLERS.rsplit('.', 1)[0]} import dep_logging\n"

#: serve_forever's poll interval: shutdown() waits up to this long.
POLL = 0.05
#: A bound on every client action run in a worker thread (the handlers' own sockets time
#: out after 1 s, so an abandoned thread ends soon after).
CLIENT_TIMEOUT = 10.0
#: How long a wait for the server's events may take on a loaded machine.
WAIT = 5.0


def stream_spec(handler: str = "LogRecordStreamHandler", **handler_attrs: Any) -> ServerSpec:
    """The cookbook's ``ThreadingTCPServer`` receiver with a handler of ``dep_logging``."""
    return ServerSpec(
        f"{HANDLERS}:LogRecordReceiver",
        handler=f"{HANDLERS}:{handler}",
        handler_attrs=dict(handler_attrs),
    )


DATAGRAM = ServerSpec("UDPServer", handler=f"{HANDLERS}:LogRecordDatagramHandler")

#: ``logging.config.listen`` starts its own server: the agent's is never served.
IDLE_SERVER = ServerSpec("TCPServer", handler=f"{HANDLERS}:LogRecordStreamHandler")


def client_logger(name: str, handler: logging.Handler) -> logging.Logger:
    """A logger of the harness process that only ``handler`` listens to.

    It is not registered with the logging manager (``logging.Logger(name)``), so nothing
    of the harness's own logging configuration reaches it and nothing of it stays behind.
    """
    logger = logging.Logger(name, logging.DEBUG)
    logger.addHandler(handler)
    return logger


async def in_thread(work: Callable[[], Any]) -> Any:
    """Run a blocking client action in a worker thread, bounded by ``CLIENT_TIMEOUT``."""
    with trio.fail_after(CLIENT_TIMEOUT):
        return await trio.to_thread.run_sync(work, abandon_on_cancel=True)


def socket_handler(run: Run) -> logging.handlers.SocketHandler:
    """A real ``SocketHandler`` aimed at the server."""
    host, port = run.address
    return logging.handlers.SocketHandler(host, port)


async def wait_records(run: Run, count: int) -> None:
    """Wait until the server has handled ``count`` records (an invariant)."""
    run.expect(
        await run.wait_event("record", count, timeout=WAIT),
        f"the receiver handles {count} records",
    )


async def wait_closed(run: Run, connections: int) -> None:
    """Wait until the server has closed ``connections`` connections (an invariant)."""
    run.expect(
        await run.wait_event("close_request", connections, timeout=WAIT),
        f"the server closes all {connections} connections",
    )


async def send_and_close(run: Run, log: Callable[[logging.Logger], None], records: int) -> None:
    """One ``SocketHandler`` connection: ``log(logger)``, wait for ``records`` records on
    the server, close the handler, wait for the server to close the connection."""
    handler = socket_handler(run)
    logger = client_logger("dep.client", handler)
    try:
        await in_thread(lambda: log(logger))
        await wait_records(run, records)
    finally:
        await in_thread(handler.close)
    await wait_closed(run, 1)


# -- SocketHandler -> StreamRequestHandler --------------------------------------------------


@scenario(f"{FAMILY}/socket/one_record", server=stream_spec())
async def socket_one_record(run: Run) -> None:
    """One record from a SocketHandler reaches the cookbook's stream receiver."""
    run.serve_forever(POLL)
    await send_and_close(run, lambda logger: logger.info("hello %s", "receiver"), 1)


def log_many(logger: logging.Logger) -> None:
    """Forty records at every level, with %-args of several types and an ``extra`` field."""
    levels = (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL)
    for index in range(40):
        logger.log(
            levels[index % len(levels)],
            "record %d of %s: %r %.2f %s",
            index,
            "many",
            {"k": index},
            index / 3,
            "\u00e9\u4e2d",
            extra={"tag": f"t{index % 4}"},
        )


@scenario(f"{FAMILY}/socket/many_records", server=stream_spec())
async def socket_many_records(run: Run) -> None:
    """Forty records on one connection, every level, args rendered by the client, an
    ``extra`` attribute carried over; received in order."""
    run.serve_forever(POLL)
    await send_and_close(run, log_many, 40)


def log_large(logger: logging.Logger) -> None:
    """A 1 MiB message between two small ones."""
    logger.info("before the large one")
    logger.warning("%s", "0123456789abcdef" * 65536)
    logger.info("after the large one")


@scenario(f"{FAMILY}/socket/large_message", server=stream_spec())
async def socket_large_message(run: Run) -> None:
    """A 1 MiB message (many reads of the connection) between two small ones."""
    run.serve_forever(POLL)
    await send_and_close(run, log_large, 3)


def log_exception(logger: logging.Logger) -> None:
    """``logger.exception`` for a chained exception: the client formats ``exc_text``."""
    try:
        try:
            {}["missing"]
        except KeyError as exc:
            raise ValueError("converted for the receiver") from exc
    except ValueError:
        logger.exception("failed with %s", "an exception")
    logger.error("no exception here", exc_info=False)


@scenario(f"{FAMILY}/socket/exc_info", server=stream_spec())
async def socket_exc_info(run: Run) -> None:
    """A record with exception information arrives with its exc_text (the traceback the
    client formatted), the next without."""
    run.serve_forever(POLL)
    await send_and_close(run, log_exception, 2)


@scenario(f"{FAMILY}/socket/several_connections", server=stream_spec(), stdout="sorted")
async def socket_several_connections(run: Run) -> None:
    """Three SocketHandlers connected at once, their records interleaved: the threading
    receiver handles the three connections side by side."""
    run.serve_forever(POLL)
    handlers = [socket_handler(run) for _ in range(3)]
    loggers = [client_logger(f"dep.conn{index}", h) for index, h in enumerate(handlers)]

    def interleave() -> None:
        for number in range(5):
            for logger in loggers:
                logger.info("record %d from %s", number, logger.name)

    try:
        await in_thread(interleave)
        await wait_records(run, 15)
        run.record(
            "handlers running", len(run.events("handle")) - len(run.events("handle:returned"))
        )
    finally:
        for handler in handlers:
            await in_thread(handler.close)
    await wait_closed(run, 3)


@scenario(f"{FAMILY}/socket/rfile_large_message", server=stream_spec("LogRecordFileHandler"))
async def socket_rfile_large_message(run: Run) -> None:
    """A receiver that reads with ``rfile.read(n)`` gets whole records, a 1 MiB one
    included (``rfile`` is buffered, so each read returns all it asked for)."""
    run.serve_forever(POLL)
    await send_and_close(run, log_large, 3)


@scenario(
    f"{FAMILY}/socket/reconnect",
    server=stream_spec("LogRecordFileHandler", per_connection=1),
)
async def socket_reconnect(run: Run) -> None:
    """The server closes the connection after one record: the SocketHandler's next sends
    fail, it drops its socket, connects again and the record after that arrives."""
    run.serve_forever(POLL)
    handler = socket_handler(run)
    logger = client_logger("dep.reconnect", handler)
    try:
        await in_thread(lambda: logger.info("before the server closed"))
        await wait_records(run, 1)
        await wait_closed(run, 1)

        def until_reconnected() -> dict[str, Any]:
            # The first send after the close still succeeds (the kernel takes it, the
            # server's answer is a reset); once the reset is in, a send fails, the handler
            # drops its socket and the next emit connects again and sends on the new
            # connection. How many records that loses depends on when the reset arrives,
            # so the loop polls that state until a deadline rather than counting.
            first = handler.sock
            deadline = time.monotonic() + WAIT
            attempts = 0
            while time.monotonic() < deadline:
                attempts += 1
                logger.info("after the server closed")
                if handler.sock is not None and handler.sock is not first:
                    return {"reconnected": True, "records lost first": attempts > 1}
                time.sleep(0.01)
            return {"reconnected": False}

        run.record("client", await in_thread(until_reconnected))
        await wait_records(run, 2)
    finally:
        await in_thread(handler.close)
    await wait_closed(run, 2)


@scenario(f"{FAMILY}/socket/server_close_waits", server=stream_spec())
async def socket_server_close_waits(run: Run) -> None:
    """server_close() of the threading receiver waits for a connected SocketHandler to
    close (its handler thread is joined), then returns."""
    serve = run.serve_forever(POLL)
    handler = socket_handler(run)
    logger = client_logger("dep.held", handler)
    try:
        await in_thread(lambda: logger.info("a record on a connection kept open"))
        await wait_records(run, 1)
        run.record("shutdown", dict(await run.shutdown()))
        run.record("serve_forever", dict(await run.outcome(serve, WAIT)))
        close = run.start("server_close")
        run.record("server_close while connected", dict(await run.outcome(close, NOT_YET)))
    finally:
        await in_thread(handler.close)
    run.record("server_close at last", dict(await run.outcome(close, WAIT)))
    await wait_closed(run, 1)


# -- DatagramHandler -> DatagramRequestHandler ----------------------------------------------


async def datagram_records(run: Run, messages: list[str]) -> None:
    """Send ``messages`` from one ``DatagramHandler``, each after the server finished the
    previous one, and record what came back to the handler's socket after each.

    ``DatagramRequestHandler.finish`` sends ``wfile`` back to the client even when the
    handler wrote nothing; it is on the client's socket (loopback delivers at once) by the
    time the server's ``close_request`` hook (its last for a request) runs, so a
    non-blocking read sees it.
    """
    host, port = run.address
    handler = logging.handlers.DatagramHandler(host, port)
    logger = client_logger("dep.udp", handler)
    replies = []

    def drain() -> list[str]:
        got = []
        handler.sock.setblocking(False)
        while True:
            try:
                data = handler.sock.recv(65536)
            except BlockingIOError:
                return got
            got.append(data.decode("latin-1"))

    try:
        for index, message in enumerate(messages, 1):
            await in_thread(lambda message=message: logger.info("%s", message))
            run.expect(
                await run.wait_event("close_request", index, timeout=WAIT),
                f"the server finishes datagram {index}",
            )
            replies.append(await in_thread(drain))
    finally:
        await in_thread(handler.close)
    run.record("replies to the client", replies)


@scenario(f"{FAMILY}/datagram/one", server=DATAGRAM)
async def datagram_one(run: Run) -> None:
    """One DatagramHandler record reaches the cookbook's UDP receiver; the server sends the
    handler's empty wfile back."""
    run.serve_forever(POLL)
    await datagram_records(run, ["one datagram"])
    await wait_records(run, 1)


@scenario(f"{FAMILY}/datagram/several", server=DATAGRAM)
async def datagram_several(run: Run) -> None:
    """Five records, one datagram each, from one DatagramHandler socket."""
    run.serve_forever(POLL)
    await datagram_records(run, [f"datagram {index}" for index in range(5)])
    await wait_records(run, 5)


@scenario(f"{FAMILY}/datagram/over_max_packet_size", server=DATAGRAM)
async def datagram_over_max_packet_size(run: Run) -> None:
    """A record whose datagram is longer than UDPServer.max_packet_size (8192): the
    receiver gets its first 8192 bytes, which do not unpickle (the handler's
    UnreadableRecord names the length it got; handle_error), nothing is sent back; a
    small record after it is received."""
    run.serve_forever(POLL)
    await datagram_records(run, ["x" * 9000, "small after the large one"])
    await wait_records(run, 1)
    run.record("errors", [e.get("type") for e in run.events("handle_error")])


# -- logging.config.listen ------------------------------------------------------------------

DICT_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "CFG %(name)s %(levelname)s %(message)s"}},
    "handlers": {
        "out": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "plain",
            "level": "INFO",
        }
    },
    "loggers": {"depcfg.app": {"level": "WARNING", "handlers": ["out"], "propagate": False}},
}

FILE_CONFIG = b"""\
[loggers]
keys=root,app

[handlers]
keys=out

[formatters]
keys=plain

[logger_root]
level=CRITICAL
handlers=

[logger_app]
level=DEBUG
handlers=out
qualname=depcfg.app
propagate=0

[handler_out]
class=StreamHandler
level=INFO
formatter=plain
args=(sys.stdout,)

[formatter_plain]
format=FILE %(name)s %(levelname)s %(message)s
"""

#: Parses as an ini file but names a handler without a section (fileConfig's KeyError).
#: Text that does not parse at all is not used: 3.11+ reports it with the repr of a
#: StringIO, an address that varies from run to run. ``listen`` tries JSON first, and the
#: traceback shows json's error as the KeyError's context: the text starts with a section
#: ``[1]`` (which fileConfig ignores), a JSON value followed by more, so that json's
#: error is "Extra data" at a position every implementation agrees on. Text that JSON
#: rejects at its first token gets each JSON decoder's own wording ("Expecting value" on
#: CPython, "Unexpected 'l'" on PyPy), which is not what this scenario is about.
BAD_FILE_CONFIG = b"""\
[1]

[loggers]
keys=root

[handlers]
keys=missing

[formatters]
keys=

[logger_root]
level=INFO
handlers=missing
"""

SIGNATURE = b"signed by dependents\n"  # dep_logging.SIGNATURE


async def send_config(port: int, payload: bytes) -> str:
    """Send ``payload`` to the listener as ``logging.config`` reads it: a 4-byte
    big-endian length, then the bytes; then close."""
    async with await connect_stream("inet", ("127.0.0.1", port), timeout=WAIT) as client:
        return await client.send(struct.pack(">L", len(payload)) + payload)


async def config_listener(run: Run, payload: bytes, verify: str | None = None) -> None:
    """Start ``logging.config.listen(0, verify)`` in the server process, send ``payload``,
    record the ``depcfg.app`` logger before and after, probe it, stop the listener and
    check that its thread (and every handler thread) is gone."""
    started = await run.exec(IMPORT + f"result = dep_logging.start_config_listener({verify!r})")
    if not run.expect(started.returned, f"listen() started: {dict(started)}"):
        return
    port = started["returned"]
    run.record("before", await run.value("dep_logging.describe_logger('depcfg.app')"))
    waiter = run.start_exec("result = dep_logging.wait_config(%r)" % WAIT)
    run.record("sent", await send_config(port, payload))
    run.record("handled", dict(await run.outcome(waiter, WAIT + 1)))
    run.record("after", await run.value("dep_logging.describe_logger('depcfg.app')"))
    run.record("probe", dict(await run.exec("dep_logging.try_logger('depcfg.app')")))
    stopped = await run.exec("result = dep_logging.stop_config_listener(%r)" % WAIT, WAIT + 1)
    run.record("listener alive after stop", dict(stopped))
    sample = await run.settle(lambda s: s["threads"] == 0)
    run.record("threads left", sample["threads"])


@scenario(f"{FAMILY}/config/dict_json", server=IDLE_SERVER)
async def config_dict_json(run: Run) -> None:
    """listen() receives a dict configuration as JSON: the logger gets its level, handler
    and format; only WARNING and above come out."""
    await config_listener(run, json.dumps(DICT_CONFIG).encode("utf-8"))


@scenario(f"{FAMILY}/config/file_config", server=IDLE_SERVER)
async def config_file_config(run: Run) -> None:
    """listen() receives a fileConfig text (not JSON): the logger gets its handler, which
    lets INFO and above out."""
    await config_listener(run, FILE_CONFIG)


@scenario(f"{FAMILY}/config/bad_config", server=IDLE_SERVER)
async def config_bad_config(run: Run) -> None:
    """listen() receives an ini text that names a handler it does not define: the
    fileConfig traceback is printed on stderr, nothing changes, the listener keeps going
    until stopped."""
    await config_listener(run, BAD_FILE_CONFIG)


@scenario(f"{FAMILY}/config/verify_refuses", server=IDLE_SERVER)
async def config_verify_refuses(run: Run) -> None:
    """listen(verify=...) with a verifier that refuses an unsigned configuration: it is
    discarded, the logger is unchanged."""
    await config_listener(run, json.dumps(DICT_CONFIG).encode("utf-8"), verify="signed")


@scenario(f"{FAMILY}/config/verify_accepts", server=IDLE_SERVER)
async def config_verify_accepts(run: Run) -> None:
    """listen(verify=...) with a signed configuration: the verifier strips the signature
    and the configuration it returns is applied."""
    await config_listener(run, SIGNATURE + FILE_CONFIG, verify="signed")
