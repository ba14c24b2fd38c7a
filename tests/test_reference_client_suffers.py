"""Where a client suffers from the stdlib and not from the reference (issue 12, part 5).

- ``keepalive-nagle-stall``: a kept-alive connection gets ``SimpleHTTPRequestHandler``'s
  replies without a delayed-acknowledgement stall each, with the same bytes. The unit
  tests of ``_SocketWriter``'s hold come first, then real servers in threads of this
  process (the stdlib's is the control that shows the stall exists on this machine).
- ``accept-emfile-spin``: ``_pace_accepts`` with a fake waiter (the pause, its growth,
  the early end when a request frees a descriptor), then real server processes run out
  of descriptors by ``benchmarks/bench_client_suffers.py``'s own server.

Timing assertions have wide margins: a loaded machine can make a test slower, not fail it.
"""

import functools
import http.server as std_http_server
import importlib.util
import os
import re
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

from implementation import socketserver as ref
from implementation.http import server as ref_http_server

ROOT = Path(__file__).resolve().parent.parent
SMALL = b"a small file\n"


# -- _SocketWriter's hold ------------------------------------------------------------------


@pytest.fixture
def pair():
    """A connected socket pair: (writer side, reader side)."""
    left, right = socket.socketpair()
    right.settimeout(5.0)
    yield left, right
    left.close()
    right.close()


def available(sock):
    """What has arrived on ``sock`` so far (without waiting)."""
    sock.setblocking(False)
    try:
        return sock.recv(65536)
    except BlockingIOError:
        return b""
    finally:
        sock.settimeout(5.0)


def test_a_held_write_leaves_with_the_next_one(pair):
    left, right = pair
    writer = ref._SocketWriter(left)
    assert ref._hold_next_write(writer)
    assert not ref._hold_next_write(writer), "a hold in place is not armed twice"
    assert writer.write(b"") == 0  # an empty write leaves the hold waiting
    assert writer.write(memoryview(b"head|")) == 5
    assert available(right) == b""
    assert writer.write(bytearray(b"body")) == 4
    assert right.recv(100) == b"head|body"
    assert writer.write(b"after") == 5  # the hold is over: straight out
    assert right.recv(100) == b"after"


@pytest.mark.parametrize("ending", ["flush", "fileno", "close"])
def test_a_held_write_is_sent_when_the_hold_ends(pair, ending):
    left, right = pair
    writer = ref._SocketWriter(left)
    ref._hold_next_write(writer)
    writer.write(b"only the head")
    assert available(right) == b""
    if ending == "fileno":
        assert writer.fileno() == left.fileno()
    else:
        getattr(writer, ending)()
    assert right.recv(100) == b"only the head"


def test_no_hold_on_other_writers(pair):
    left, _right = pair
    buffered = left.makefile("wb")
    assert not ref._hold_next_write(buffered)
    buffered.close()


# -- keep-alive replies ---------------------------------------------------------------------


def make_handler(module, variant):
    """A silent SimpleHTTPRequestHandler subclass of ``module`` speaking HTTP/1.1:
    ``plain``, with ``end_headers`` overridden, or with a buffered ``wfile``."""

    class Files(module.SimpleHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        if variant == "buffered":
            wbufsize = -1

        def log_message(self, *args):
            pass

        if variant == "end_headers_overridden":

            def end_headers(self):
                self.send_header("X-Extra", "1")
                super().end_headers()

    return Files


@pytest.fixture
def site(tmp_path):
    """A served directory with a small file and a listing."""
    (tmp_path / "small.txt").write_bytes(SMALL)
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "x.txt").write_bytes(b"x\n")
    return tmp_path


class Serving:
    """An HTTPServer of ``module`` with ``handler`` in a thread; a context manager."""

    def __init__(self, module, handler, directory):
        bound = functools.partial(handler, directory=str(directory))
        self.server = module.HTTPServer(("127.0.0.1", 0), bound)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,))

    def __enter__(self):
        self.thread.start()
        return self.server.server_address

    def __exit__(self, *exc_info):
        self.server.shutdown()
        self.thread.join()
        self.server.server_close()


def series(address, requests):
    """Send each request on one connection after the previous reply; return the replies
    (Date masked) and the seconds it all took."""
    replies = []
    with socket.create_connection(address, timeout=5.0) as conn:
        pending = b""
        started = time.perf_counter()
        for request in requests:
            conn.sendall(request)
            while b"\r\n\r\n" not in pending:
                pending += conn.recv(65536)
            head, _, rest = pending.partition(b"\r\n\r\n")
            found = re.search(rb"\r\nContent-Length: (\d+)", head)
            length = 0 if request.startswith(b"HEAD") or not found else int(found.group(1))
            while len(rest) < length:
                rest += conn.recv(65536)
            replies.append(re.sub(rb"\r\nDate: [^\r]*", b"", head) + b"\r\n\r\n" + rest[:length])
            pending = rest[length:]
        took = time.perf_counter() - started
    return replies, took


def get(path, method="GET"):
    """An HTTP/1.1 request for ``path``."""
    return b"%s %s HTTP/1.1\r\nHost: t\r\n\r\n" % (method.encode(), path.encode())


REQUESTS = [get("/small.txt")] * 8 + [get("/small.txt", "HEAD"), get("/dir/"), get("/dir")]
#: Less than one delayed acknowledgement costs (Linux: 40 ms).
STALL = 0.030


@pytest.mark.parametrize("variant", ["plain", "end_headers_overridden", "buffered"])
def test_keepalive_replies_are_the_stdlibs_without_the_stall(site, variant):
    with Serving(std_http_server, make_handler(std_http_server, variant), site) as address:
        expected, stdlib_took = series(address, REQUESTS)
    with Serving(ref_http_server, make_handler(ref_http_server, variant), site) as address:
        got, took = series(address, REQUESTS)
    assert got == expected
    if variant == "buffered":
        return  # one write per reply: the stdlib does not stall either
    if stdlib_took < STALL * 8:
        pytest.skip(f"the stdlib did not stall here ({stdlib_took:.3f} s): nothing to compare")
    # The stdlib's replies 2-8 and the listing each waited for a delayed ACK; load on the
    # machine slows both servers alike, so the reference must take well under half.
    assert took < stdlib_took / 2, f"reference {took:.3f} s, stdlib {stdlib_took:.3f} s"


# -- accept() out of descriptors --------------------------------------------------------------


class FakeWaiter:
    """Records register/unregister of the server, as ``_pace_accepts`` uses a waiter."""

    def __init__(self):
        self.watching = True

    def register(self, fileobj, data=None):
        assert not self.watching
        self.watching = True

    def unregister(self, fileobj):
        assert self.watching
        self.watching = False


class FakeServer:
    """Just what ``_loops_of`` needs."""

    _BaseServer__loops = None


def test_pace_accepts_pauses_grows_and_ends_early_when_a_request_ends(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(ref, "time", lambda: now[0])
    server, waiter = FakeServer(), FakeWaiter()
    loops = ref._loops_of(server)

    loops.exhausted = True
    pacer, wait = ref._pace_accepts(server, waiter, None, 0.5)
    assert not waiter.watching and loops.pausing == 1
    assert wait == pytest.approx(ref._FIRST_PAUSE)
    # The pause is over: watch again, on probation.
    now[0] += ref._FIRST_PAUSE
    pacer, wait = ref._pace_accepts(server, waiter, pacer, 0.5)
    assert waiter.watching and loops.pausing == 0 and wait == 0.5
    # accept() fails again at once: the pause doubles.
    loops.exhausted = True
    pacer, wait = ref._pace_accepts(server, waiter, pacer, None)
    assert not waiter.watching and wait == pytest.approx(2 * ref._FIRST_PAUSE)
    # A request ends and frees a descriptor: watch again before the pause is over.
    ref._descriptor_freed(server)
    assert loops.freed
    pacer, wait = ref._pace_accepts(server, waiter, pacer, None)
    assert waiter.watching and not loops.freed and wait is None
    # A pass without a failure: descriptors are back, the pacer is dropped.
    assert ref._pace_accepts(server, waiter, pacer, 0.5) == (None, 0.5)


def test_pauses_never_exceed_the_longest():
    server, waiter = FakeServer(), FakeWaiter()
    loops = ref._loops_of(server)
    pacer = None
    for _ in range(20):
        loops.exhausted = True
        pacer, wait = ref._pace_accepts(server, waiter, pacer, 10.0)
        loops.freed = True  # end the pause at once, keeping its length
        pacer, _wait = ref._pace_accepts(server, waiter, pacer, 10.0)
    assert pacer.pause == ref._LONGEST_PAUSE
    assert wait <= ref._LONGEST_PAUSE


def load_bench():
    """``benchmarks/bench_client_suffers.py`` as a module."""
    path = ROOT / "benchmarks" / "bench_client_suffers.py"
    spec = importlib.util.spec_from_file_location("bench_client_suffers", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_out_of_descriptors_the_reference_waits_and_serves_the_queue():
    bench = load_bench()
    window = 1.0
    taken, cpu, served, took = bench.starvation("reference", window, 3)
    assert taken > 0
    assert served == 3
    # Freed from outside any request: the pause ends by itself, within the longest one.
    assert took < ref._LONGEST_PAUSE + 2.0
    assert cpu < 0.05 * window, f"{cpu:.3f} CPU seconds in a {window} s starvation"
    # The control: the stdlib's loop spins (on any machine that lets it run at all).
    _taken, stdlib_cpu, stdlib_served, _took = bench.starvation("stdlib", window, 3)
    assert stdlib_served == 3
    assert stdlib_cpu > cpu, (stdlib_cpu, cpu)


def test_the_benchmark_runs_start_to_end(capsys):
    """A short run of the benchmark itself, so that it keeps working."""
    bench = load_bench()
    status = bench.main(
        ["--requests", "40", "--stdlib-requests", "4", "--rounds", "2", "--starve", "0.2"]
    )
    out = capsys.readouterr().out
    assert "replies byte for byte the same apart from Date: yes" in out, out
    assert out.count("served afterwards 3/3") == 2, out
    assert status == 0, out


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-v"]))
