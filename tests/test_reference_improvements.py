"""The reference ``socketserver``'s improvements over the stdlib, with real sockets and
real processes.

Each test shows something the 3.11 stdlib cannot do (prompt ``shutdown()``, prompt child
reaping, ``max_children`` in ``handle_request()`` loops, only live threads in ``_threads``)
and that the stdlib semantics around it are kept. Waits are bounded and generous: a
slow machine can make a test slower, never make it fail.
"""

import contextlib
import os
import socket
import sys
import threading
import time

import psutil
import pytest

from implementation import socketserver as ref

LOCALHOST = "127.0.0.1"
# Upper bound for anything that should happen "at once"; far below the 30 s poll
# interval the tests use, far above scheduling noise on a busy 2-core machine.
PROMPT = 5.0

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork and /proc")


class EchoHandler(ref.StreamRequestHandler):
    """Echo one line back."""

    def handle(self):
        self.wfile.write(self.rfile.readline())


class HeldHandler(ref.StreamRequestHandler):
    """Answer with the handling process id, then wait until the client sends a line."""

    # Bounds the wait: a forked child holds copies of the test's client sockets, so it
    # would never see EOF if a failing test closed them without sending the line.
    timeout = PROMPT * 2

    def handle(self):
        self.wfile.write(b"%d\n" % os.getpid())
        self.rfile.readline()


def wait_until(predicate, timeout=PROMPT * 2, interval=0.01):
    """Poll ``predicate`` until true; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def echo(address, payload=b"ping\n"):
    """One request: send a line, return everything until EOF."""
    if isinstance(address, str):
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.settimeout(PROMPT * 2)
        conn.connect(address)
    else:
        conn = socket.create_connection(address, timeout=PROMPT * 2)
    with conn:
        conn.sendall(payload)
        chunks = []
        while True:
            chunk = conn.recv(4096)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def is_zombie_or_gone(pid):
    """True once ``pid`` has exited (zombie) or has been reaped."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def is_gone(pid):
    """True once ``pid`` has been reaped (no process, not even a zombie)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_DEAD
    except psutil.NoSuchProcess:
        return True


def open_fds():
    """The file descriptors this process has open."""
    return set(os.listdir("/proc/self/fd"))


@pytest.fixture(autouse=True)
def no_leftovers():
    """Fail a test that leaves child processes or threads behind; reap them anyway."""
    threads_before = set(threading.enumerate())
    me = psutil.Process()
    children_before = {child.pid for child in me.children()}
    started = time.time()
    yield
    # Only children this test started: once an earlier test made this process a child
    # subreaper, orphans of other tests' subprocess trees are re-parented here too.
    leftover_children = []
    for child in me.children():
        with contextlib.suppress(psutil.NoSuchProcess):
            if child.pid not in children_before and child.create_time() >= started - 0.5:
                leftover_children.append(child)
    for child in leftover_children:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
        with contextlib.suppress(ChildProcessError):
            os.waitpid(child.pid, 0)
    leftover_threads = [
        t for t in threading.enumerate() if t not in threads_before and t.is_alive()
    ]
    for thread in leftover_threads:
        thread.join(PROMPT)
    assert not leftover_children, f"child processes left behind: {leftover_children}"
    assert not [t for t in leftover_threads if t.is_alive()], "threads left behind"


@contextlib.contextmanager
def serving(server, poll_interval=30.0):
    """Run ``server.serve_forever(poll_interval)`` in a thread; stop and close on exit."""
    thread = threading.Thread(target=server.serve_forever, args=(poll_interval,))
    thread.start()
    try:
        yield thread
    finally:
        stopper = threading.Thread(target=server.shutdown)
        stopper.start()
        stopper.join(PROMPT)
        if stopper.is_alive():
            # Broken wake-up: fall back to the flag and the poll interval.
            server._BaseServer__shutdown_request = True
            stopper.join()
        thread.join()
        server.server_close()


def timed_shutdown(server):
    """Call ``server.shutdown()`` in a thread; return how long it took (None if stuck)."""
    started = time.monotonic()
    stopper = threading.Thread(target=server.shutdown)
    stopper.start()
    stopper.join(PROMPT)
    if stopper.is_alive():
        return None
    return time.monotonic() - started


# -- shutdown ---------------------------------------------------------------------


def test_shutdown_returns_at_once_with_a_long_poll_interval():
    # The stdlib's shutdown() waits for the current select(30) to time out.
    server = ref.TCPServer((LOCALHOST, 0), EchoHandler)
    with serving(server, poll_interval=30.0):
        assert echo(server.server_address) == b"ping\n"  # the loop is running
        elapsed = timed_shutdown(server)
    assert elapsed is not None, "shutdown() did not return within %s s" % PROMPT
    assert elapsed < 1.0


def test_shutdown_of_an_idle_loop_that_never_served():
    server = ref.ThreadingTCPServer((LOCALHOST, 0), EchoHandler)
    with serving(server, poll_interval=30.0) as loop:
        # Give the loop a chance to reach select(); either way shutdown must be prompt.
        time.sleep(0.05)
        elapsed = timed_shutdown(server)
        loop.join(PROMPT)
        assert not loop.is_alive()
    assert elapsed is not None and elapsed < 1.0


def test_shutdown_before_serve_forever_waits_for_a_loop():
    # Stdlib semantics (S2): shutdown() blocks until a serve_forever() runs and ends.
    server = ref.TCPServer((LOCALHOST, 0), EchoHandler)
    try:
        stopper = threading.Thread(target=server.shutdown)
        stopper.start()
        stopper.join(0.2)
        assert stopper.is_alive()
        server.serve_forever(poll_interval=30.0)  # sees the request and returns at once
        stopper.join(PROMPT)
        assert not stopper.is_alive()
    finally:
        server.server_close()


def test_serve_forever_can_run_again_after_shutdown():
    server = ref.TCPServer((LOCALHOST, 0), EchoHandler)
    try:
        for round_ in range(3):
            thread = threading.Thread(target=server.serve_forever, args=(30.0,))
            thread.start()
            assert echo(server.server_address, b"%d\n" % round_) == b"%d\n" % round_
            assert timed_shutdown(server) is not None
            thread.join(PROMPT)
            assert not thread.is_alive()
    finally:
        server.server_close()


def test_serve_forever_after_server_close_raises_like_the_stdlib():
    server = ref.TCPServer((LOCALHOST, 0), EchoHandler)
    server.server_close()
    with pytest.raises(ValueError, match="Invalid file descriptor: -1"):
        server.serve_forever()


def test_service_actions_still_runs_every_poll_interval():
    ticks = threading.Semaphore(0)

    class Ticking(ref.TCPServer):
        def service_actions(self):
            ticks.release()

    server = Ticking((LOCALHOST, 0), EchoHandler)
    with serving(server, poll_interval=0.01):
        # Three idle wake-ups without any request or shutdown.
        assert all(ticks.acquire(timeout=PROMPT) for _ in range(3))


def test_serve_loops_leave_no_file_descriptors_open():
    server = ref.TCPServer((LOCALHOST, 0), EchoHandler)
    before = open_fds()
    for _ in range(3):
        thread = threading.Thread(target=server.serve_forever, args=(30.0,))
        thread.start()
        echo(server.server_address)
        server.shutdown()
        thread.join(PROMPT)
    server.server_close()
    leaked = open_fds() - before
    # The listening socket's descriptor was in ``before`` and is now closed.
    assert not leaked, f"descriptors left open: {leaked}"


# -- forking ----------------------------------------------------------------------


def test_handle_request_loop_leaves_no_zombie():
    # The stdlib reaps only in service_actions()/handle_timeout(): in a handle_request()
    # loop every finished child stays a zombie until a 300 s timeout.
    server = ref.ForkingTCPServer((LOCALHOST, 0), EchoHandler)
    try:
        with socket.create_connection(server.server_address, timeout=PROMPT * 2) as conn:
            server.handle_request()
            (first,) = server.active_children
            conn.sendall(b"one\n")
            assert conn.recv(100) == b"one\n"
        assert wait_until(lambda: is_zombie_or_gone(first))
        result = []
        client = threading.Thread(target=lambda: result.append(echo(server.server_address)))
        client.start()
        server.handle_request()
        client.join(PROMPT * 2)
        assert result == [b"ping\n"]
        assert first not in server.active_children
        assert is_gone(first)
    finally:
        server.server_close()
    assert not server.active_children


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="needs os.pidfd_open (Linux)")
def test_child_is_reaped_while_handle_request_waits():
    server = ref.ForkingTCPServer((LOCALHOST, 0), HeldHandler)
    try:
        with socket.create_connection(server.server_address, timeout=PROMPT * 2) as conn:
            server.handle_request()
            reader = conn.makefile("rb")
            child = int(reader.readline())
            waiter = threading.Thread(target=server.handle_request)
            waiter.start()  # waits for a second request that comes later
            conn.sendall(b"done\n")
            assert reader.read() == b""
            reader.close()
        assert wait_until(lambda: is_gone(child)), "the exited child was not reaped"
        assert child not in server.active_children
        echo(server.server_address)  # releases the waiting handle_request()
        waiter.join(PROMPT * 2)
        assert not waiter.is_alive()
    finally:
        server.server_close()


def test_serve_forever_reaps_children_without_waiting_for_the_poll_interval():
    started = time.time()
    server = ref.ForkingTCPServer((LOCALHOST, 0), EchoHandler)
    with serving(server, poll_interval=30.0):
        assert echo(server.server_address) == b"ping\n"
        # The child has shut the connection down; it exits right after.
        assert wait_until(lambda: not server.active_children), server.active_children
    # Children of this test only (other tests' orphans come to a subreaper pytest).
    assert not [c for c in psutil.Process().children() if c.create_time() >= started - 0.5]


def test_max_children_holds_in_handle_request_loop():
    live_at_fork = []

    class Limited(ref.ForkingTCPServer):
        max_children = 2

        def process_request(self, request, client_address):
            super().process_request(request, client_address)
            live = [c for c in psutil.Process().children() if c.status() != psutil.STATUS_ZOMBIE]
            live_at_fork.append(len(live))

    server = Limited((LOCALHOST, 0), HeldHandler)
    clients = []
    try:
        for _ in range(2):
            conn = socket.create_connection(server.server_address, timeout=PROMPT * 2)
            clients.append(conn)
            server.handle_request()
            assert conn.recv(100).endswith(b"\n")  # the child is handling it
        third = socket.create_connection(server.server_address, timeout=PROMPT * 2)
        clients.append(third)
        waiter = threading.Thread(target=server.handle_request)
        waiter.start()
        # The stdlib forks a third child right away; ours waits for one to finish.
        waiter.join(0.3)
        assert waiter.is_alive()
        clients[0].sendall(b"done\n")
        waiter.join(PROMPT * 2)
        assert not waiter.is_alive()
        assert third.recv(100).endswith(b"\n")
        for conn in clients[1:]:
            conn.sendall(b"done\n")
    finally:
        for conn in clients:
            conn.close()
        server.server_close()
    assert live_at_fork[:2] == [1, 2]
    assert max(live_at_fork) <= 2, live_at_fork


def test_children_the_server_did_not_fork_are_left_alone():
    # At max_children the stdlib calls os.waitpid(-1, 0), which can steal the exit
    # status of any child of the process.
    foreign = os.spawnv(os.P_NOWAIT, sys.executable, [sys.executable, "-c", "raise SystemExit(7)"])
    try:
        assert wait_until(lambda: is_zombie_or_gone(foreign))

        class One(ref.ForkingTCPServer):
            max_children = 1

        server = One((LOCALHOST, 0), EchoHandler)
        with serving(server, poll_interval=30.0):
            for _ in range(3):
                assert echo(server.server_address) == b"ping\n"
    finally:
        pid, status = os.waitpid(foreign, 0)
    assert pid == foreign
    assert os.WEXITSTATUS(status) == 7


def test_forking_server_close_leaves_no_descriptors():
    before = open_fds()
    server = ref.ForkingTCPServer((LOCALHOST, 0), EchoHandler)
    with serving(server, poll_interval=30.0):
        for _ in range(5):
            echo(server.server_address)
    assert open_fds() - before == set()


# -- threads ----------------------------------------------------------------------


def test_threads_keeps_no_finished_thread():
    # The stdlib drops finished threads only when the next one is appended.
    workers = []

    class Recording(EchoHandler):
        def handle(self):
            workers.append(threading.current_thread())
            super().handle()

    server = ref.ThreadingTCPServer((LOCALHOST, 0), Recording)
    try:
        for _ in range(5):
            with socket.create_connection(server.server_address, timeout=PROMPT * 2) as c:
                server.handle_request()
                c.sendall(b"x\n")
                assert c.recv(10) == b"x\n"
        for worker in workers:
            worker.join(PROMPT * 2)
        assert len(workers) == 5
        assert list(server._threads) == []
    finally:
        server.server_close()


def test_server_close_still_joins_live_threads():
    release = threading.Event()
    finished = []

    class Slow(ref.BaseRequestHandler):
        def handle(self):
            release.wait(PROMPT * 2)
            finished.append(True)

    server = ref.ThreadingTCPServer((LOCALHOST, 0), Slow)
    with socket.create_connection(server.server_address, timeout=PROMPT * 2):
        server.handle_request()
        assert len(server._threads) == 1 and server._threads[0].is_alive()
        threading.Timer(0.1, release.set).start()
        server.server_close()  # must wait for the handler
        assert finished == [True]


# -- gh-128916 --------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="needs AF_UNIX")
def test_unix_stream_server_with_allow_reuse_port_binds(tmp_path):
    # The 3.11 stdlib sets SO_REUSEPORT on AF_UNIX; Linux >= 6.12.9 rejects that.
    class Reusing(ref.UnixStreamServer):
        allow_reuse_port = True

    path = str(tmp_path / "sock")
    with Reusing(path, EchoHandler) as server, serving(server):
        assert echo(path) == b"ping\n"
