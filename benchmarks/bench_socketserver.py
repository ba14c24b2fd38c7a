"""Reference ``socketserver`` against the stdlib: idle shutdown latency and echo throughput.

Run by hand from the repository root::

    python3 benchmarks/bench_socketserver.py [--requests 4000] [--shutdowns 20] [--block 20]

Throughput: each server (the stdlib's and the reference's, built from the same handler
code) runs ``serve_forever()`` in a process of its own, as a real server does; this
process is the client, one connection (or datagram) per request. With two or more CPUs
the client is pinned to CPU 0 and both servers to CPU 1, so neither server gets a better
CPU placement than the other (unpinned, the scheduler's choice alone moved UDP ratios
between 0.4 and 2.9 from run to run). The client alternates small blocks of requests
between the two servers, so load from other processes hits both sides alike; besides the
overall ratio it prints the median of the per-block ratios, which resists load bursts.

Shutdown latency is measured in this process: ``shutdown()`` of an idle
``serve_forever()`` loop running in a thread.

Ratios are reference/stdlib: for throughput higher is better (goal >= 1.0), for shutdown
latency lower is better (goal <= 1/50).
"""

import argparse
import contextlib
import json
import os
import random
import socket
import socketserver as std
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from implementation import socketserver as ref

MODULES = (("stdlib", std), ("reference", ref))
PAYLOAD = b"x" * 64 + b"\n"
CLIENT_TIMEOUT = 10.0


def stream_echo_handler(module):
    """A line-echo handler built on ``module.StreamRequestHandler``."""

    class Echo(module.StreamRequestHandler):
        def handle(self):
            self.wfile.write(self.rfile.readline())

    return Echo


def datagram_echo_handler(module):
    """A datagram-echo handler built on ``module.DatagramRequestHandler``."""

    class Echo(module.DatagramRequestHandler):
        def handle(self):
            self.wfile.write(self.rfile.read())

    return Echo


def stream_request(family, address):
    """One stream request: connect, send a line, read to EOF."""
    with socket.socket(family, socket.SOCK_STREAM) as conn:
        conn.settimeout(CLIENT_TIMEOUT)
        conn.connect(address)
        conn.sendall(PAYLOAD)
        received = b""
        while True:
            chunk = conn.recv(4096)
            if not chunk:
                break
            received += chunk
    if received != PAYLOAD:
        raise RuntimeError(f"bad echo: {received!r}")


def udp_request(conn, address):
    """One datagram request on the shared client socket."""
    conn.sendto(PAYLOAD, address)
    received = conn.recv(4096)
    if received != PAYLOAD:
        raise RuntimeError(f"bad echo: {received!r}")


def make_server(module, kind, workdir):
    """Build the server ``kind`` from ``module``; return (server, family)."""
    if kind == "UDPServer":
        return module.UDPServer(("127.0.0.1", 0), datagram_echo_handler(module)), socket.AF_INET
    if kind == "UnixStreamServer":
        path = os.path.join(workdir, f"{id(module)}-{time.monotonic_ns()}.sock")
        server = module.UnixStreamServer(path, stream_echo_handler(module))
        return server, socket.AF_UNIX
    server_class = getattr(module, kind)
    return server_class(("127.0.0.1", 0), stream_echo_handler(module)), socket.AF_INET


def send_requests(kind, family, address, count):
    """Make ``count`` sequential echo requests; return the seconds they took."""
    if kind == "UDPServer":
        with socket.socket(family, socket.SOCK_DGRAM) as conn:
            conn.settimeout(CLIENT_TIMEOUT)
            started = time.perf_counter()
            for _ in range(count):
                udp_request(conn, address)
            return time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(count):
        stream_request(family, address)
    return time.perf_counter() - started


KINDS = ("TCPServer", "ThreadingTCPServer", "UDPServer", "UnixStreamServer")
SERVER_CPU = 1
CLIENT_CPU = 0


def pin(cpu):
    """Pin this process to ``cpu`` when the machine has it; True if pinned."""
    if not hasattr(os, "sched_setaffinity") or (os.cpu_count() or 1) < 2:
        return False
    os.sched_setaffinity(0, {cpu})
    return True


def serve(name, kind, workdir):
    """Server process body: build the server, print its address, serve until stdin ends."""
    pin(SERVER_CPU)
    server, family = make_server(dict(MODULES)[name], kind, workdir)
    loop = threading.Thread(target=server.serve_forever)
    loop.start()
    try:
        print(json.dumps([family == socket.AF_UNIX, server.server_address]), flush=True)
        sys.stdin.read()
    finally:
        server.shutdown()
        loop.join()
        server.server_close()
        if family == socket.AF_UNIX:
            os.unlink(server.server_address)


class ServerProcess:
    """One module's echo server in a child process (``--serve``); a context manager that
    stops it (closing its stdin) and waits for it."""

    def __init__(self, name, kind, workdir):
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve", name, kind, workdir],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.process.stdout.readline()
        if not line:
            self.close()
            raise RuntimeError(f"the {name} {kind} server process did not start")
        is_unix, address = json.loads(line)
        self.family = socket.AF_UNIX if is_unix else socket.AF_INET
        self.address = address if is_unix else tuple(address)

    def close(self):
        """Stop the server and reap its process (killed if it does not stop in 10 s)."""
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


def throughput(kind, requests, block, workdir):
    """Requests per second of each module's server, measured in interleaved blocks.

    Both servers run at once, each in its own process; the client alternates blocks of
    ``block`` requests between them (swapping who goes first every time), so load from
    other processes on the machine falls on both sides alike.
    """
    with contextlib.ExitStack() as stack:
        servers = {
            name: stack.enter_context(ServerProcess(name, kind, workdir)) for name, _ in MODULES
        }
        # Warm-up, so neither side pays for first-use costs.
        for server in servers.values():
            send_requests(kind, server.family, server.address, min(block * 10, requests))
        spent = dict.fromkeys(servers, 0.0)
        block_ratios = []
        order = list(servers)
        done = 0
        while done < requests:
            count = min(block, requests - done)
            took = {}
            for name in order:
                server = servers[name]
                took[name] = send_requests(kind, server.family, server.address, count)
                spent[name] += took[name]
            block_ratios.append(took["stdlib"] / took["reference"])
            order.reverse()
            done += count
    rates = {name: requests / seconds for name, seconds in spent.items()}
    return rates, statistics.median(block_ratios)


def shutdown_latencies(module, delays):
    """Seconds ``shutdown()`` takes on an idle loop, once per delay after the loop starts.

    The delays spread the call over the stdlib's 0.5 s poll interval, as a real program's
    shutdown would land at a random moment.
    """
    server = module.TCPServer(("127.0.0.1", 0), stream_echo_handler(module))
    latencies = []
    try:
        for delay in delays:
            loop = threading.Thread(target=server.serve_forever)
            loop.start()
            time.sleep(delay)
            started = time.perf_counter()
            server.shutdown()
            latencies.append(time.perf_counter() - started)
            loop.join()
    finally:
        server.server_close()
    return latencies


def main(argv=None):
    """Run the benchmark and print one line per measurement."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000, help="requests per server")
    parser.add_argument("--shutdowns", type=int, default=20, help="shutdowns per module")
    parser.add_argument("--block", type=int, default=20, help="requests per interleaved block")
    parser.add_argument(
        "--kinds",
        default=",".join(KINDS),
        help="comma-separated server classes to measure throughput of",
    )
    parser.add_argument(
        "--serve", nargs=3, metavar=("MODULE", "KIND", "WORKDIR"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.serve:
        serve(*args.serve)
        return 0

    print(f"Python {sys.version.split()[0]} on {sys.platform}, {os.cpu_count()} CPUs")
    delays = [random.Random(seed).uniform(0.01, 0.5) for seed in range(args.shutdowns)]
    medians = {}
    for name, module in MODULES:
        medians[name] = statistics.median(shutdown_latencies(module, delays))
    ratio = medians["reference"] / medians["stdlib"]
    print(
        f"idle shutdown latency, median of {args.shutdowns}: "
        f"stdlib {medians['stdlib'] * 1000:.2f} ms, reference "
        f"{medians['reference'] * 1000:.3f} ms, ratio {ratio:.5f} (1/{1 / ratio:.0f}; "
        "goal <= 1/50)"
    )

    kinds = [kind for kind in args.kinds.split(",") if kind]
    if not hasattr(socket, "AF_UNIX") and "UnixStreamServer" in kinds:
        print("  UnixStreamServer skipped: no AF_UNIX on this platform")
        kinds.remove("UnixStreamServer")
    unknown = [kind for kind in kinds if kind not in KINDS]
    if unknown:
        parser.error(f"unknown server classes {unknown}; choose from {', '.join(KINDS)}")
    pinned = "client on CPU 0, servers on CPU 1" if pin(CLIENT_CPU) else "not pinned"
    print(
        f"echo throughput, {args.requests} requests per server, "
        f"interleaved in blocks of {args.block}, a process per server ({pinned}):"
    )
    with tempfile.TemporaryDirectory() as workdir:
        for kind in kinds:
            rates, median_ratio = throughput(kind, args.requests, args.block, workdir)
            std_rate, ref_rate = rates["stdlib"], rates["reference"]
            print(
                f"  {kind:<20} stdlib {std_rate:8.0f} req/s  reference {ref_rate:8.0f} req/s"
                f"  ratio {ref_rate / std_rate:.3f}, median block ratio {median_ratio:.3f}"
                " (goal >= 1.0)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
