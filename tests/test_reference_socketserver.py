"""The reference ``socketserver`` passes CPython's own ``test_socketserver``, under every
CPython we have, and keeps the stdlib's public surface.

The suite runs in a subprocess (``python -m harness.cpython_suite``) so that the
reference is installed as ``socketserver`` before anything imports the stdlib one.
"""

import contextlib
import glob
import io
import os
import re
import socket
import socketserver as std
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from implementation import socketserver as ref

ROOT = Path(__file__).resolve().parent.parent
PYENV_VERSIONS = Path.home() / ".pyenv" / "versions"
OTHER_PYTHONS = ["3.9", "3.12", "3.13"]
# Generous: the suite takes about a second, but forks and threads on a loaded machine.
SUITE_TIMEOUT = 600


def run_cpython_suite(python):
    """Run test_socketserver with the reference under ``python``; return (rc, output)."""
    proc = subprocess.run(
        [
            python,
            "-m",
            "harness.cpython_suite",
            "test_socketserver",
            "--socketserver",
            "implementation.socketserver",
        ],
        cwd=str(ROOT),
        capture_output=True,
        text=True,
        timeout=SUITE_TIMEOUT,
    )
    return proc.returncode, proc.stdout + proc.stderr


def suite_counts(output):
    """Parse the runner's ``ran=N failures=N errors=N skipped=N`` line."""
    match = re.search(r"ran=(\d+) failures=(\d+) errors=(\d+) skipped=(\d+)", output)
    assert match, f"no summary line in the suite output:\n{output[-3000:]}"
    return dict(zip(("ran", "failures", "errors", "skipped"), map(int, match.groups())))


def find_python(version):
    """The newest pyenv interpreter ``version``.x, or None."""
    candidates = sorted(glob.glob(str(PYENV_VERSIONS / (version + ".*") / "bin" / "python")))
    return candidates[-1] if candidates else None


def test_cpython_suite_passes_under_this_interpreter():
    rc, output = run_cpython_suite(sys.executable)
    counts = suite_counts(output)
    assert rc == 0, output[-3000:]
    assert counts["failures"] == counts["errors"] == 0
    if sys.version_info[:2] == (3, 11):
        assert counts["ran"] == 27
    else:
        assert counts["ran"] > 0


@pytest.mark.parametrize("version", OTHER_PYTHONS)
def test_cpython_suite_passes_under_other_interpreters(version):
    python = find_python(version)
    if python is None:
        pytest.skip(f"no CPython {version} under {PYENV_VERSIONS}")
    rc, output = run_cpython_suite(python)
    counts = suite_counts(output)
    assert rc == 0, output[-3000:]
    assert counts["ran"] > 0
    assert counts["failures"] == counts["errors"] == 0


# -- public surface, compared with the running stdlib -----------------------------


def test_all_is_the_running_stdlibs():
    # The public names follow the running interpreter (the Forking Unix servers are 3.12+).
    assert set(ref.__all__) == set(std.__all__)
    assert len(ref.__all__) == len(std.__all__)


@pytest.mark.parametrize("name", sorted(set(std.__all__)))
def test_class_layout_matches_the_stdlib(name):
    ours, theirs = getattr(ref, name), getattr(std, name)
    assert [c.__name__ for c in ours.__mro__] == [c.__name__ for c in theirs.__mro__]
    assert ours.__module__ == theirs.__module__ == "socketserver"
    public = {a for a in dir(theirs) if not a.startswith("__") or a in ("__enter__", "__exit__")}
    missing = {a for a in public if not hasattr(ours, a)}
    assert not missing
    for attr in public:
        value = getattr(theirs, attr)
        if isinstance(value, (bool, int, float, str, type(None))):
            assert getattr(ours, attr) == value, attr


def test_private_names_third_party_code_uses_exist():
    for name in ("_ServerSelector", "_SocketWriter", "_Threads", "_NoThreads"):
        assert hasattr(ref, name), name
    assert ref._ServerSelector is std._ServerSelector
    assert isinstance(ref.ThreadingMixIn._threads, ref._NoThreads)
    server = ref.TCPServer(("127.0.0.1", 0), ref.BaseRequestHandler)
    try:
        assert not server._BaseServer__shutdown_request
        assert isinstance(server._BaseServer__is_shut_down, threading.Event)
    finally:
        server.server_close()


def test_deviations_are_documented_as_data():
    assert ref._DEVIATIONS
    for entry in ref._DEVIATIONS:
        assert set(entry) == {"id", "summary", "observable"}
        assert re.fullmatch(r"(gh|bpo)-\d+", entry["id"]), entry["id"]
        assert isinstance(entry["observable"], bool)
        assert entry["summary"]
    assert "gh-128916" in {e["id"] for e in ref._DEVIATIONS}


# -- handle_error output, differential --------------------------------------------


class Failing(std.BaseRequestHandler):
    def handle(self):
        raise ValueError("boom")


def error_report(module):
    """What ``handle_error`` prints for a failing handler, with paths and lines masked."""
    server = module.TCPServer(("127.0.0.1", 0), Failing)
    stderr = io.StringIO()
    try:
        with socket.create_connection(server.server_address, timeout=30) as conn:
            with contextlib.redirect_stderr(stderr):
                server.handle_request()
            assert conn.recv(10) == b""  # the request was shut down after the error
            port = conn.getsockname()[1]
    finally:
        server.server_close()
    lines = stderr.getvalue().replace(str(port), "PORT").splitlines()
    # Keep the frame-independent lines: the frames differ by file and line.
    return [line for line in lines if not line.startswith("  ")]


def test_handle_error_prints_what_the_stdlib_prints():
    ours, theirs = error_report(ref), error_report(std)
    assert ours == theirs
    assert ours[0] == "-" * 40
    assert ours[1] == "Exception occurred during processing of request from ('127.0.0.1', PORT)"
    assert ours[-2:] == ["ValueError: boom", "-" * 40]


def accepted_shape(module, family, default_timeout, listener_timeout):
    """What ``get_request()`` of ``module``'s server hands over for one connection."""
    server_class = module.TCPServer if family == socket.AF_INET else module.UnixStreamServer
    with contextlib.ExitStack() as stack:
        if family == socket.AF_INET:
            address = ("127.0.0.1", 0)
        else:
            address = os.path.join(stack.enter_context(tempfile.TemporaryDirectory()), "s.sock")
        server = server_class(address, module.BaseRequestHandler)
        stack.callback(server.server_close)
        server.socket.settimeout(listener_timeout)
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(default_timeout)
        stack.callback(socket.setdefaulttimeout, previous)
        client = stack.enter_context(socket.socket(family, socket.SOCK_STREAM))
        client.connect(server.server_address)
        connection, client_address = server.get_request()
        with connection:
            return (
                type(connection),
                connection.family,
                connection.type,
                connection.proto,
                connection.gettimeout(),
                type(client_address),
            )


@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_UNIX], ids=["tcp", "unix"])
@pytest.mark.parametrize("default_timeout", [None, 3.0])
@pytest.mark.parametrize("listener_timeout", [None, 2.0, 0.0])
def test_accepted_connection_is_the_one_accept_gives(family, default_timeout, listener_timeout):
    # get_request() builds the connection itself for a plain socket (no enum conversions
    # per request): it must be what socket.accept() would have returned.
    ours = accepted_shape(ref, family, default_timeout, listener_timeout)
    theirs = accepted_shape(std, family, default_timeout, listener_timeout)
    assert ours == theirs
    assert ours[0] is socket.socket


def test_a_wrapped_listener_accepts_through_its_own_accept():
    class CountingSocket(socket.socket):
        accepted = 0

        def accept(self):
            CountingSocket.accepted += 1
            return super().accept()

    server = ref.TCPServer(("127.0.0.1", 0), ref.BaseRequestHandler)
    try:
        plain = server.socket
        server.socket = CountingSocket(plain.family, plain.type, fileno=plain.detach())
        with socket.create_connection(server.server_address):
            connection, _ = server.get_request()
            connection.close()
        assert CountingSocket.accepted == 1
    finally:
        server.server_close()


def test_a_replaced_server_selector_is_used_by_the_serve_loop(monkeypatch):
    import selectors

    made = []

    class CountingSelector(selectors.SelectSelector):
        def __init__(self):
            super().__init__()
            made.append(self)

    monkeypatch.setattr(ref, "_ServerSelector", CountingSelector)

    class Echo(ref.StreamRequestHandler):
        def handle(self):
            self.wfile.write(self.rfile.readline())

    server = ref.TCPServer(("127.0.0.1", 0), Echo)
    loop = threading.Thread(target=server.serve_forever)
    loop.start()
    try:
        with socket.create_connection(server.server_address, timeout=10) as client:
            client.sendall(b"ping\n")
            assert client.makefile("rb").readline() == b"ping\n"
    finally:
        server.shutdown()
        loop.join(10)
        server.server_close()
    assert not loop.is_alive()
    assert len(made) == 1
