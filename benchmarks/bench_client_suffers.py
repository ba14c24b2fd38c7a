"""Where a client suffers from the stdlib: keep-alive replies, and accept() out of descriptors.

Run by hand from the repository root::

    python3 benchmarks/bench_client_suffers.py [--requests 2000] [--stdlib-requests 40]
                                               [--rounds 3] [--starve 2.0] [--queued 3]

Keep-alive: each module's ``SimpleHTTPRequestHandler`` (``protocol_version`` HTTP/1.1)
serves a small file from a process of its own; this process is the client, one connection
per client kind and server, one request at a time: ``http.client`` (a real client), then a
raw socket that reads exactly one reply per request. The stdlib writes the header block
and the body in two sends, so on a kept-alive connection each reply's body waits for the
client's delayed acknowledgement (about 40 ms on Linux); the reference sends them together
and pushes what Nagle's algorithm holds back once a reply is complete (deviation
``keepalive-nagle-stall``). The stdlib being about 100 times slower, it gets fewer
requests; both run in the same rounds, alternating, so load from other processes falls on
both alike. Before timing, one raw reply of each is compared: apart from the ``Date``
value they must be the same bytes.

Starvation: each module's ``ThreadingTCPServer`` (a line echo) runs ``serve_forever()`` in
a process of its own. On command it lowers its ``RLIMIT_NOFILE`` and fills every free
descriptor, so ``accept()`` fails with EMFILE; ``--queued`` clients connect (the kernel
queues them) and send a line; after ``--starve`` seconds the server frees its descriptors.
Printed: the CPU seconds the server process used while starved (the stdlib retries
``accept()`` at full speed, the reference pauses: deviation ``accept-emfile-spin``),
whether every queued client got its reply afterwards, and how long after the release.

With two or more CPUs the client is pinned to CPU 0 and the servers to CPU 1. The figures
depend on the machine's load: say how loaded it was when quoting them.
"""

import argparse
import contextlib
import http.client
import os
import re
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

NAMES = ("stdlib", "reference")
SMALL_FILE = b"a small file, as a keep-alive client would fetch many of\n"
CLIENT_TIMEOUT = 10.0
SERVER_CPU = 1
CLIENT_CPU = 0


def pin(cpu):
    """Pin this process to ``cpu`` when the machine has it; True if pinned."""
    if not hasattr(os, "sched_setaffinity") or (os.cpu_count() or 1) < 2:
        return False
    os.sched_setaffinity(0, {cpu})
    return True


# --- the server processes ----------------------------------------------------------------


def http_server_module(name):
    """The ``http.server`` module of ``name`` (the reference imports its own socketserver)."""
    if name == "stdlib":
        import http.server as module
    else:
        from implementation.http import server as module
    return module


def socketserver_module(name):
    """The ``socketserver`` module of ``name``."""
    if name == "stdlib":
        import socketserver as module
    else:
        from implementation import socketserver as module
    return module


def serve_http(name, directory):
    """Server process body: a keep-alive file server until stdin ends."""
    module = http_server_module(name)

    class Files(module.SimpleHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=directory, **kwargs)

    server = module.HTTPServer(("127.0.0.1", 0), Files)
    loop = threading.Thread(target=server.serve_forever)
    loop.start()
    try:
        print(server.server_address[1], flush=True)
        sys.stdin.read()
    finally:
        server.shutdown()
        loop.join()
        server.server_close()


class Hog:
    """Every descriptor the process may still open, held until ``release()``."""

    def __init__(self):
        self.limits = resource.getrlimit(resource.RLIMIT_NOFILE)
        self.held = []

    def fill(self):
        """Lower the soft limit just above the highest open descriptor, then open
        ``/dev/null`` until EMFILE; return how many descriptors that took."""
        highest = max(int(name) for name in os.listdir("/proc/self/fd"))
        resource.setrlimit(resource.RLIMIT_NOFILE, (highest + 4, self.limits[1]))
        with contextlib.suppress(OSError):
            while True:
                self.held.append(os.open(os.devnull, os.O_RDONLY))
        return len(self.held)

    def release(self):
        """Close what ``fill`` opened and restore the limit."""
        for fd in self.held:
            os.close(fd)
        self.held = []
        resource.setrlimit(resource.RLIMIT_NOFILE, self.limits)


def serve_starving(name):
    """Server process body: a threading line echo, starved and released on command.

    Commands on stdin, one a line, each answered on stdout: ``starve`` (answer: the
    number of descriptors taken), ``cpu`` (the process's CPU seconds), ``release``.
    """
    module = socketserver_module(name)

    class Echo(module.StreamRequestHandler):
        def handle(self):
            self.wfile.write(b"echo " + self.rfile.readline())

    server = module.ThreadingTCPServer(("127.0.0.1", 0), Echo)
    loop = threading.Thread(target=server.serve_forever)
    loop.start()
    hog = Hog()
    try:
        print(server.server_address[1], flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command == "starve":
                # The warm-up request's thread may still be closing its connection:
                # a descriptor freed after the fill would let a queued client in.
                deadline = time.monotonic() + CLIENT_TIMEOUT
                while threading.active_count() > 2 and time.monotonic() < deadline:
                    time.sleep(0.001)
                print(hog.fill(), flush=True)
            elif command == "cpu":
                print(time.process_time(), flush=True)
            elif command == "release":
                hog.release()
                print("released", flush=True)
    finally:
        hog.release()
        server.shutdown()
        loop.join()
        server.server_close()


class ServerProcess:
    """One server in a child process (``--serve``); a context manager that stops it
    (closing its stdin) and waits for it. ``command`` sends a line and reads the answer."""

    #: Whether server processes pin themselves to SERVER_CPU (``--pin``).
    pinned = False

    def __init__(self, name, kind, *rest):
        pinning = "pin" if self.pinned else "free"
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve", name, kind, pinning, *rest],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        line = self.process.stdout.readline()
        if not line:
            self.close()
            raise RuntimeError(f"the {name} {kind} server process did not start")
        self.address = ("127.0.0.1", int(line))

    def command(self, text):
        """Send one command line; return the answer line."""
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()
        return self.process.stdout.readline().strip()

    def close(self):
        """Stop the server and reap its process (killed if it does not stop in 10 s)."""
        with contextlib.suppress(BrokenPipeError):
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


# --- keep-alive --------------------------------------------------------------------------


def read_reply(conn, pending):
    """Read one reply with a ``Content-Length`` body; return ``(reply, leftover)``."""
    while b"\r\n\r\n" not in pending:
        data = conn.recv(65536)
        if not data:
            raise RuntimeError("the server closed the kept-alive connection")
        pending += data
    head, _, rest = pending.partition(b"\r\n\r\n")
    length = int(re.search(rb"\r\nContent-Length: (\d+)", head).group(1))
    while len(rest) < length:
        data = conn.recv(65536)
        if not data:
            raise RuntimeError("the server closed the connection inside a reply")
        rest += data
    return head + b"\r\n\r\n" + rest[:length], rest[length:]


REQUEST = b"GET /small.txt HTTP/1.1\r\nHost: bench\r\n\r\n"


def raw_exchange(address, count):
    """``count`` GETs on one raw connection; return (seconds, the last reply)."""
    with socket.create_connection(address, timeout=CLIENT_TIMEOUT) as conn:
        pending = b""
        reply = b""
        started = time.perf_counter()
        for _ in range(count):
            conn.sendall(REQUEST)
            reply, pending = read_reply(conn, pending)
        took = time.perf_counter() - started
    if not reply.endswith(SMALL_FILE):
        raise RuntimeError(f"bad reply: {reply!r}")
    return took, reply


def raw_requests(address, count):
    """``count`` GETs on one raw connection; return the seconds they took."""
    return raw_exchange(address, count)[0]


def http_client_requests(address, count):
    """``count`` GETs on one ``http.client`` connection; return the seconds they took."""
    conn = http.client.HTTPConnection(*address, timeout=CLIENT_TIMEOUT)
    try:
        started = time.perf_counter()
        for _ in range(count):
            conn.request("GET", "/small.txt")
            response = conn.getresponse()
            body = response.read()
            if response.status != 200 or body != SMALL_FILE or response.will_close:
                raise RuntimeError(f"bad reply: {response.status} {body!r}")
        return time.perf_counter() - started
    finally:
        conn.close()


def same_bytes(replies):
    """True if the replies are equal once the ``Date`` value is masked."""
    masked = {re.sub(rb"\r\nDate: [^\r]*", b"\r\nDate: -", reply) for reply in replies}
    return len(masked) == 1


def keepalive(args, workdir):
    """Measure both servers with both clients; print rates and ratios."""
    with open(os.path.join(workdir, "small.txt"), "wb") as out:
        out.write(SMALL_FILE)
    counts = {"stdlib": args.stdlib_requests, "reference": args.requests}
    with contextlib.ExitStack() as stack:
        servers = {
            name: stack.enter_context(ServerProcess(name, "http", workdir)) for name in NAMES
        }
        # Warm-up, and the bytes check: the reference must send exactly what the stdlib does.
        first = {name: raw_exchange(server.address, 3)[1] for name, server in servers.items()}
        identical = same_bytes(first.values())
        clients = (("http.client", http_client_requests), ("raw socket", raw_requests))
        spent = {(client, name): 0.0 for client, _ in clients for name in NAMES}
        made = dict.fromkeys(spent, 0)
        # The client's own CPU per reference request: what the client adds to each round
        # trip, apart from the server and the machine's load.
        client_cpu = dict.fromkeys(spent, 0.0)
        order = list(NAMES)
        for _round in range(args.rounds):
            for client, measure in clients:
                for name in order:
                    count = max(1, counts[name] // args.rounds)
                    cpu = time.process_time()
                    spent[client, name] += measure(servers[name].address, count)
                    client_cpu[client, name] += time.process_time() - cpu
                    made[client, name] += count
            order.reverse()
    print(
        "keep-alive GETs of a %d-byte file, one connection per client and server "
        "(SimpleHTTPRequestHandler, protocol_version HTTP/1.1), %d rounds:"
        % (len(SMALL_FILE), args.rounds)
    )
    ratios = []
    for client, _ in clients:
        rates = {name: made[client, name] / spent[client, name] for name in NAMES}
        ratio = rates["reference"] / rates["stdlib"]
        ratios.append(ratio)
        print(
            f"  {client:<12} stdlib {rates['stdlib']:8.1f} req/s ({made[client, 'stdlib']})"
            f"  reference {rates['reference']:8.0f} req/s ({made[client, 'reference']})"
            f"  ratio {ratio:6.0f}  (goal >= 100);  client CPU"
            f" {client_cpu[client, 'reference'] / made[client, 'reference'] * 1e6:.0f} us a request"
        )
    print(f"  replies byte for byte the same apart from Date: {'yes' if identical else 'NO'}")
    return identical and min(ratios) >= 1


# --- starvation --------------------------------------------------------------------------


def answered(conn):
    """True if ``conn`` has received anything yet (without waiting)."""
    conn.setblocking(False)
    try:
        return bool(conn.recv(100, socket.MSG_PEEK))
    except BlockingIOError:
        return False
    finally:
        conn.settimeout(CLIENT_TIMEOUT)


def starvation(name, seconds, queued):
    """One module's starvation run: (cpu seconds, served, seconds to serve after release)."""
    with ServerProcess(name, "starve") as server:
        with socket.create_connection(server.address, timeout=CLIENT_TIMEOUT) as probe:
            probe.sendall(b"warm-up\n")
            if probe.recv(100) != b"echo warm-up\n":
                raise RuntimeError("the echo server does not echo")
            probe.recv(100)  # EOF: the server is done with it
        taken = int(server.command("starve"))
        clients = []
        try:
            for index in range(queued):
                conn = socket.create_connection(server.address, timeout=CLIENT_TIMEOUT)
                clients.append(conn)
                conn.sendall(b"queued %d\n" % index)
            cpu_before = float(server.command("cpu"))
            time.sleep(seconds)  # the fixed length of the starvation
            cpu_after = float(server.command("cpu"))
            if any(answered(conn) for conn in clients):
                raise RuntimeError(f"the {name} server answered while starved")
            released = time.perf_counter()
            server.command("release")
            served = 0
            for index, conn in enumerate(clients):
                with contextlib.suppress(OSError):
                    if conn.recv(100) == b"echo queued %d\n" % index:
                        served += 1
            took = time.perf_counter() - released
        finally:
            for conn in clients:
                conn.close()
    return taken, cpu_after - cpu_before, served, took


def starving(args):
    """Measure both servers' starvation; print CPU use and what the clients got."""
    print(
        f"accept() out of descriptors for {args.starve:g} s with {args.queued} connections "
        "queued (ThreadingTCPServer, serve_forever(), a line echo):"
    )
    complete = True
    for name in NAMES:
        taken, cpu, served, took = starvation(name, args.starve, args.queued)
        complete = complete and served == args.queued
        print(
            f"  {name:<10} server CPU {cpu:7.3f} s ({cpu / args.starve:6.1%} of one CPU)"
            f"  queued clients served afterwards {served}/{args.queued},"
            f" the last {took:.3f} s after the release ({taken} descriptors held)"
        )
    return complete


def main(argv=None):
    """Run both measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="reference requests per client")
    parser.add_argument(
        "--stdlib-requests", type=int, default=40, help="stdlib requests per client (~44 ms each)"
    )
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds")
    parser.add_argument("--starve", type=float, default=2.0, help="seconds out of descriptors")
    parser.add_argument("--queued", type=int, default=3, help="clients queued while starved")
    parser.add_argument(
        "--pin", action="store_true", help="pin the client to CPU 0 and the servers to CPU 1"
    )
    parser.add_argument("--serve", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        name, kind, pinned, *rest = args.serve
        if pinned == "pin":
            pin(SERVER_CPU)
        if kind == "http":
            serve_http(name, rest[0])
        else:
            serve_starving(name)
        return 0

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    pinned = "not pinned"
    if args.pin and pin(CLIENT_CPU):
        pinned = "client on CPU 0, servers on CPU 1"
        ServerProcess.pinned = True
    print(
        f"Python {sys.version.split()[0]} on {sys.platform}, {os.cpu_count()} CPUs ({pinned}),"
        f" load average {load:.1f} when started"
    )
    with tempfile.TemporaryDirectory() as workdir:
        fine = keepalive(args, workdir)
    fine = starving(args) and fine
    return 0 if fine else 1


if __name__ == "__main__":
    sys.exit(main())
