"""Reference ``socketserver`` against the stdlib: idle shutdown latency and echo throughput.

Run by hand from the repository root::

    python3 benchmarks/bench_socketserver.py [--requests 2000] [--shutdowns 20] [--rounds 3]

Both modules are imported side by side (``import socketserver as std`` and
``import implementation.socketserver as ref``) and driven by the same code in the same
process: the server runs ``serve_forever()`` in a thread, the client is this thread, one
connection (or datagram) per request. Rounds alternate stdlib/reference and each figure
is the median over rounds, so machine noise hits both sides alike. Ratios are
reference/stdlib: for throughput higher is better (goal >= 1.0), for shutdown latency
lower is better (goal <= 1/50).
"""

import argparse
import os
import random
import socket
import socketserver as std
import statistics
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


def throughput(module, kind, requests, workdir):
    """Requests per second of ``requests`` sequential echo requests."""
    server, family = make_server(module, kind, workdir)
    loop = threading.Thread(target=server.serve_forever)
    loop.start()
    try:
        address = server.server_address
        if kind == "UDPServer":
            with socket.socket(family, socket.SOCK_DGRAM) as conn:
                conn.settimeout(CLIENT_TIMEOUT)
                started = time.perf_counter()
                for _ in range(requests):
                    udp_request(conn, address)
                elapsed = time.perf_counter() - started
        else:
            started = time.perf_counter()
            for _ in range(requests):
                stream_request(family, address)
            elapsed = time.perf_counter() - started
    finally:
        server.shutdown()
        loop.join()
        server.server_close()
        if family == socket.AF_UNIX:
            os.unlink(server.server_address)
    return requests / elapsed


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
    parser.add_argument("--requests", type=int, default=2000, help="requests per run")
    parser.add_argument("--shutdowns", type=int, default=20, help="shutdowns per module")
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs per module")
    args = parser.parse_args(argv)

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

    kinds = ["TCPServer", "ThreadingTCPServer", "UDPServer"]
    if hasattr(socket, "AF_UNIX"):
        kinds.append("UnixStreamServer")
    print(f"echo throughput, {args.requests} requests, median of {args.rounds} rounds:")
    with tempfile.TemporaryDirectory() as workdir:
        for kind in kinds:
            # Warm-up, so neither side pays for first-use costs.
            for _name, module in MODULES:
                throughput(module, kind, min(200, args.requests), workdir)
            rates = {name: [] for name, _ in MODULES}
            for round_ in range(args.rounds):
                # Alternate who goes first so drifts in machine load cancel out.
                order = MODULES if round_ % 2 == 0 else MODULES[::-1]
                for name, module in order:
                    rates[name].append(throughput(module, kind, args.requests, workdir))
            std_rate = statistics.median(rates["stdlib"])
            ref_rate = statistics.median(rates["reference"])
            print(
                f"  {kind:<20} stdlib {std_rate:8.0f} req/s  reference {ref_rate:8.0f} req/s"
                f"  ratio {ref_rate / std_rate:.3f} (goal >= 1.0)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
