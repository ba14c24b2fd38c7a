"""``http/cli``: ``python -m http.server`` as a user runs it.

The target's ``http.server`` file is run as ``__main__`` in a process of its own (started
from the server process, so under the target's interpreter and environment), bound to
127.0.0.1 on a free port, asked for one file and one listing over a real socket, then sent
SIGINT. Compared: the banner, the replies, the log, the Ctrl-C message and exit status.
"""

from __future__ import annotations

import json

import trio

from harness.clients import Received
from harness.observation import normalize_text
from harness.scenario import ServerSpec, scenario
from scenarios._http_common import reply_record

IDLE = ServerSpec("http.server:HTTPServer", handler="scenarios.handlers.http_protocol:Echo")

#: Starts the CLI in a child of the server process; waits until its banner names the port.
START = """
import os, runpy, subprocess, sys, time
here = os.path.join(tmpdir, "cli")
os.makedirs(os.path.join(here, "sub"), exist_ok=True)
with open(os.path.join(here, "hello.txt"), "w") as f:
    f.write("hello from the cli\\n")
# Run as a file named server.py wherever the target's module lives: argparse names the
# program after the file it runs.
bindir = os.path.join(tmpdir, "cli-bin")
os.makedirs(bindir, exist_ok=True)
main = os.path.join(bindir, "server.py")
with open(sys.modules["http.server"].__file__, "rb") as src, open(main, "wb") as dst:
    dst.write(src.read())
code = "import runpy; runpy.run_path(%r, run_name='__main__')" % main
cli = subprocess.Popen(
    [sys.executable, "-u", "-c", code] + ARGS,
    cwd=here, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
)
banner = cli.stdout.readline()
result = banner
"""

STOP = """
import signal
if INTERRUPT:
    cli.send_signal(signal.SIGINT)
# Not communicate(): it reads the raw pipes and would lose what readline() buffered.
cli.wait(timeout=10)
out, err = cli.stdout.read(), cli.stderr.read()
result = {"stdout": out, "stderr": err, "status": cli.returncode}
"""


def _cli_scenario(name: str, args: list[str], requests: list[bytes], doc: str) -> None:
    """Register ``http/cli/<name>``: run the CLI with ``args``, send ``requests``, then
    SIGINT (only to a CLI that serves: one that prints and exits is waited for)."""
    interrupt = bool(requests)

    @scenario(f"http/cli/{name}", server=IDLE, description=doc, deadline=30.0)
    async def body(run):
        started = await run.exec(f"ARGS = {json.dumps(args)}\n" + START, timeout=20)
        banner = started.get("returned") or ""
        port = _port_of(banner)
        run.record("banner", _normalize(banner, port) if banner else dict(started))
        replies = []
        if port:
            for request in requests:
                with trio.fail_after(10):
                    stream = await trio.open_tcp_stream("127.0.0.1", int(port))
                async with stream:
                    await stream.send_all(request)
                    data = b""
                    with trio.move_on_after(5):
                        while chunk := await stream.receive_some(65536):
                            data += chunk
                replies.append(reply_record(Received(data, "eof")))
        run.record("replies", replies)
        stopped = await run.exec(f"INTERRUPT = {interrupt}\n" + STOP, timeout=20)
        result = stopped.get("returned")
        if isinstance(result, dict):
            result = {k: _normalize(v, port) for k, v in result.items()}
        run.record(
            "after SIGINT" if interrupt else "exit", result if result is not None else dict(stopped)
        )


def _normalize(value: object, port: str) -> object:
    """The CLI's output without what varies: its port, log times and traceback frames."""
    if not isinstance(value, str):
        return value
    return normalize_text(value.replace(port, "PORT") if port else value)


def _port_of(banner: str) -> str:
    """The port in ``Serving HTTP on 127.0.0.1 port 12345 (...) ...``, or ''."""
    words = banner.split()
    if "port" in words and words.index("port") + 1 < len(words):
        return words[words.index("port") + 1]
    return ""


GET_FILE = b"GET /hello.txt HTTP/1.0\r\n\r\n"
GET_LISTING = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"

_cli_scenario(
    "serve_and_interrupt",
    ["-b", "127.0.0.1", "0"],
    [GET_FILE, GET_LISTING, b"GET /sub HTTP/1.0\r\n\r\n"],
    "python -m http.server -b 127.0.0.1 0: the banner, a file, a listing and a redirect "
    "(HTTP/1.0 by default), then SIGINT: 'Keyboard interrupt received, exiting.', status 0.",
)
_cli_scenario(
    "protocol_http11",
    ["-b", "127.0.0.1", "-p", "HTTP/1.1", "0"],
    [GET_FILE],
    "-p HTTP/1.1: replies carry HTTP/1.1 status lines and a keep-alive connection stays "
    "open until the client closes.",
)
_cli_scenario(
    "directory_option",
    ["-b", "127.0.0.1", "-d", "sub", "0"],
    [GET_LISTING],
    "-d sub serves the directory given instead of the working directory.",
)
_cli_scenario(
    "help",
    ["--help"],
    [],
    "--help prints the usage of the stdlib's options and exits 0.",
)
_cli_scenario(
    "bad_port",
    ["-b", "127.0.0.1", "notaport"],
    [],
    "A port that is not a number: argparse's error, exit status 2.",
)
