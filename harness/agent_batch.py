"""Batch mode of the fuzzer, the agent's side: feed many cases to the handler in-process.

Called through the agent's ``exec`` op (``server`` is bound there)::

    from harness.agent_batch import run_batch_files
    result = run_batch_files(server, "/tmp/ssh-.../in.json", "/tmp/ssh-.../out.json")

Each stream case gets a fresh ``socketpair``: the client end sends the case's pieces and
ends as the case says (``half_close``: SHUT_WR; ``close`` and ``reset``: closed before the
server reads, which a Unix socket cannot tell apart; ``open``: left open until the server
has been silent for ``idle`` seconds); the server end goes through
``server.process_request_thread`` (ThreadingMixIn servers) or ``finish_request`` /
``handle_error`` / ``shutdown_request`` (the path ``BaseServer.process_request`` takes),
in this thread, so no thread is started per case except for ``open`` ones. Datagram cases
go over real loopback UDP to the server's own socket and through
``server._handle_request_noblock()``, so ``max_packet_size`` is applied by the target.

What one case gives: ``{"sent", "reply", "end", "server"}`` with the reply as Latin-1
text, ``end`` one of ``eof``, ``idle``, ``closed`` (the client had closed), ``hang`` (the
handler had not finished 2 s after the client closed), and the server's record for the
connection (``take_records``, if the server keeps them).

Stdlib-only and Python 3.9-compatible: this runs under the target's interpreter.
"""

import itertools
import json
import select
import socket
import threading
from typing import Any, Dict, List

_ports = itertools.count(20000)
_BUFFER = 1 << 20
#: Cases up to this size fit the default socketpair buffers along with the reply.
_SMALL = 32768


def _process(server: Any, sock: socket.socket, address: Any) -> None:
    if hasattr(server, "process_request_thread"):
        server.process_request_thread(sock, address)
        return
    try:
        server.finish_request(sock, address)
    except Exception:
        server.handle_error(sock, address)
    finally:
        server.shutdown_request(sock)


def _read_until_eof(sock: socket.socket, idle: float) -> "tuple[bytes, str]":
    parts: List[bytes] = []
    while True:
        ready, _, _ = select.select([sock], [], [], idle)
        if not ready:
            return b"".join(parts), "idle"
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            return b"".join(parts), "reset"
        if not data:
            return b"".join(parts), "eof"
        parts.append(data)


def _pieces(data: bytes, splits: List[int]) -> List[bytes]:
    out, start = [], 0
    for size in splits:
        if start >= len(data):
            break
        out.append(data[start : start + size])
        start += size
    if start < len(data) or not out:
        out.append(data[start:])
    return out


def run_stream_case(server: Any, case: Dict[str, Any], idle: float = 0.5) -> Dict[str, Any]:
    """Feed one stream case to the server's handler over a socketpair."""
    client, served = socket.socketpair()
    data = case["data"].encode("latin-1")
    if len(data) > _SMALL:
        # Everything is sent before the handler reads: the buffers must hold it all.
        for sock in (client, served):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _BUFFER)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _BUFFER)
    served.settimeout(5.0)  # a handler blocked writing to a reader that is not there
    address = ("127.0.0.1", next(_ports))
    sent = "ok"
    try:
        splits = case.get("splits")
        for piece in _pieces(data, splits) if splits else (data,):
            client.sendall(piece)
    except OSError:
        sent = "broken"
    end = case.get("end", "half_close")
    reply, how = b"", "closed"
    try:
        if end in ("close", "reset"):
            client.close()
            _process(server, served, address)
        elif end == "half_close":
            client.shutdown(socket.SHUT_WR)
            _process(server, served, address)
            reply, how = _read_until_eof(client, idle)
        else:
            worker = threading.Thread(target=_process, args=(server, served, address))
            worker.daemon = True
            worker.start()
            reply, how = _read_until_eof(client, idle)
            client.close()
            worker.join(2.0)
            if worker.is_alive():
                how = "hang"
    finally:
        client.close()
    record: Dict[str, Any] = {}
    if hasattr(server, "take_records"):
        record = server.take_records([address[1]], timeout=0.0 if how != "hang" else 0.1)
        record = record.get(str(address[1]), {})
    return {"sent": sent, "reply": reply.decode("latin-1"), "end": how, "server": record}


def run_datagram_case(server: Any, case: Dict[str, Any], idle: float = 0.5) -> Dict[str, Any]:
    """Send a datagram case over loopback UDP and let the server handle each datagram."""
    family = getattr(server, "address_family", socket.AF_INET)
    client = socket.socket(family, socket.SOCK_DGRAM)
    replies: List[Any] = []
    records: Dict[str, Any] = {}
    try:
        client.bind(("127.0.0.1", 0) if family == socket.AF_INET else ("::1", 0))
        port = client.getsockname()[1]
        for text in case.get("datagrams") or []:
            try:
                client.sendto(text.encode("latin-1"), server.server_address)
            except OSError as exc:
                replies.append({"send": type(exc).__name__})
                continue
            server._handle_request_noblock()
            ready, _, _ = select.select([client], [], [], idle)
            replies.append({"reply": client.recv(65536).decode("latin-1")} if ready else None)
        if hasattr(server, "take_records"):
            records = server.take_records([port], timeout=0.0).get(str(port), {})
    finally:
        client.close()
    return {"sent": "ok", "replies": replies, "server": records}


def run_batch(server: Any, cases: List[Dict[str, Any]], idle: float = 0.5) -> List[Dict[str, Any]]:
    """Run every case (in the agent's wire form) and return one result per case.

    ``open`` cases each wait for ``idle`` seconds of silence, so they run in threads of
    their own, all at once, after the others.
    """
    out: List[Any] = [None] * len(cases)
    waiting = []
    for index, case in enumerate(cases):
        if case.get("family") == "datagram":
            out[index] = run_datagram_case(server, case, idle)
        elif case.get("end") == "open":
            waiting.append(index)
        else:
            out[index] = run_stream_case(server, case, idle)

    def one(index: int) -> None:
        out[index] = run_stream_case(server, cases[index], idle)

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in waiting]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(idle + 10.0)
    for index in waiting:
        if out[index] is None:
            out[index] = {"sent": "ok", "reply": "", "end": "hang", "server": {"done": False}}
    return out


def run_batch_files(server: Any, in_path: str, out_path: str, idle: float = 0.5) -> int:
    """``run_batch`` on cases read from a JSON file, results written to another; the count.

    Files, because the agent's events (where ``exec`` results go) are size-limited.
    """
    with open(in_path) as f:
        cases = json.load(f)
    results = run_batch(server, cases, idle)
    with open(out_path, "w") as f:
        json.dump(results, f)
    return len(results)
