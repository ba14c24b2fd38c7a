"""The fuzzer's side of the server process: named operations and batch mode.

The fuzzer never sends source code to the server process: its servers have the
operations of ``FuzzOps`` as methods, which the harness calls by name through the agent's
``call`` command:

- ``fuzz_batch(in_path, out_path, idle)``: run the cases of a JSON file (batch mode),
  write one result per case to another file, return the count;
- ``fuzz_describe()``: what the server is (an HTTP handler? a datagram server? which
  address family?), for the handler fuzzer.

The fuzz servers of ``scenarios.handlers.fuzz_handlers`` inherit ``FuzzOps``; a user's
server class (``fuzz --handler M:C --server S``) gets them through ``UserServer``, the
class named by the ``HARNESS_FUZZ_SERVER`` environment variable with ``FuzzOps`` mixed in
(the agent resolves ``harness.agent_batch:UserServer`` like any server class).

Batch mode: each stream case gets a fresh ``socketpair``: the client end sends the case's
pieces (``harness.wire``) and ends as the case says (``half_close``: SHUT_WR; ``close``
and ``reset``: closed before the server reads, which a Unix socket cannot tell apart;
``open``: left open until the server has been silent for ``idle`` seconds); the server
end goes through ``server.process_request_thread`` (ThreadingMixIn servers) or the path
``BaseServer.process_request`` takes, in this thread, so no thread is started per case
except for ``open`` ones. Datagram cases go to the server's own socket and through
``server._handle_request_noblock()``, so ``max_packet_size`` is applied by the target.

One case gives ``{"sent", "reply", "end", "server"}`` (``replies`` for datagrams): the
reply as Latin-1 text, ``end`` one of ``eof``, ``idle``, ``closed`` (the client had
closed), ``hang`` (the handler had not finished 2 s after the client closed), and the
server's record of the connection (``take_records``, if the server keeps them).

Stdlib-only and Python 3.9-compatible: this runs under the target's interpreter.
"""

import itertools
import json
import os
import select
import socket
import threading
from typing import Any, Dict, List

from harness import wire

_ports = itertools.count(20000)
_names = itertools.count()
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


def _client_address(server: Any) -> Any:
    """A client address as the server's family gives them, unique within the process."""
    if getattr(server, "address_family", socket.AF_INET) == socket.AF_UNIX:
        return ("\0hfz-batch-%d-%d" % (os.getpid(), next(_names))).encode()
    return ("127.0.0.1", next(_ports))


def record_key(address: Any) -> str:
    """The key a fuzz server files a client's records under: the client's port, or the
    name a Unix client bound (without the abstract namespace's leading NUL). The harness
    computes it from its own end of the connection, the server from the other."""
    if isinstance(address, tuple) and len(address) >= 2:
        return str(address[1])
    if isinstance(address, bytes):
        address = address.decode("latin-1")
    return str(address).lstrip("\0")


def _record_of(server: Any, address: Any, wait: float) -> Dict[str, Any]:
    if not hasattr(server, "take_records"):
        return {}
    key = server.record_key(address)
    # Garbage is collected once per batch (``FuzzOps.fuzz_batch``), not per case.
    return server.take_records([key], timeout=wait, collect=False).get(key, {})


def run_stream_case(server: Any, case: Dict[str, Any], idle: float = 0.5) -> Dict[str, Any]:
    """Feed one stream case to the server's handler over a socketpair."""
    client, served = socket.socketpair()
    data = case["data"].encode("latin-1")
    # The handler writes its whole reply before the client reads any of it (a file of
    # 70 KiB, say): the buffer must hold it, or the handler waits for its timeout.
    served.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _BUFFER)
    if len(data) > _SMALL:
        # Likewise everything is sent before the handler reads.
        client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _BUFFER)
    served.settimeout(5.0)  # a handler blocked writing to a reader that is not there
    address = _client_address(server)
    sent = wire.run_blocking(wire.sending(wire.pieces(data, case.get("splits"))), client)
    end = case.get("end", "half_close")
    reply, how = b"", "closed"
    try:
        if end in ("close", "reset"):
            client.close()
            _process(server, served, address)
        elif end == "half_close":
            client.shutdown(socket.SHUT_WR)
            _process(server, served, address)
            reply, how = wire.run_blocking(wire.reading(5.0, idle), client)
        else:
            worker = threading.Thread(target=_process, args=(server, served, address))
            worker.daemon = True
            worker.start()
            reply, how = wire.run_blocking(wire.reading(5.0, idle), client)
            client.close()
            worker.join(2.0)
            if worker.is_alive():
                how = "hang"
    finally:
        client.close()
    record = _record_of(server, address, 0.0 if how != "hang" else 0.1)
    return {"sent": sent, "reply": reply.decode("latin-1"), "end": how, "server": record}


def _datagram_client(server: Any) -> socket.socket:
    family = getattr(server, "address_family", socket.AF_INET)
    client = socket.socket(family, socket.SOCK_DGRAM)
    if family == socket.AF_UNIX:
        client.bind(_client_address(server))
    else:
        client.bind(("::1", 0) if family == socket.AF_INET6 else ("127.0.0.1", 0))
    return client


def run_datagram_case(server: Any, case: Dict[str, Any], idle: float = 0.5) -> Dict[str, Any]:
    """Send a datagram case to the server's socket and let it handle each datagram."""
    client = _datagram_client(server)
    replies: List[Any] = []
    try:
        address = client.getsockname()
        for text in case.get("datagrams") or []:
            try:
                client.sendto(text.encode("latin-1"), server.server_address)
            except OSError as exc:
                replies.append({"send": type(exc).__name__})
                continue
            server._handle_request_noblock()
            ready, _, _ = select.select([client], [], [], idle)
            replies.append({"reply": client.recv(65536).decode("latin-1")} if ready else None)
        record = _record_of(server, address, 0.0)
    finally:
        client.close()
    return {"sent": "ok", "replies": replies, "server": record}


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


class FuzzOps:
    """The operations the fuzzer calls by name on its servers (see the module docstring)."""

    def fuzz_batch(self, in_path: str, out_path: str, idle: float = 0.5) -> int:
        """``run_batch`` on cases read from a JSON file, results written to another; the
        count. Files, because the agent's events (where results go) are size-limited."""
        with open(in_path) as f:
            cases = json.load(f)
        results = run_batch(self, cases, idle)
        collect = getattr(self, "collect_garbage", None)
        if collect is not None:
            collect()
        # ``dumps``, not ``dump``: ``dump`` encodes in pure Python, which cost more than a
        # tenth of a batch.
        with open(out_path, "w") as f:
            f.write(json.dumps(results))
        return len(results)

    def fuzz_describe(self) -> Dict[str, Any]:
        """What this server is: ``http`` (its handler is a BaseHTTPRequestHandler),
        ``datagram`` (its socket type), ``unix`` (its address family)."""
        import http.server

        handler = getattr(self, "RequestHandlerClass", None)
        return {
            "http": isinstance(handler, type)
            and issubclass(handler, http.server.BaseHTTPRequestHandler),
            "datagram": getattr(self, "socket_type", None) == socket.SOCK_DGRAM,
            "unix": getattr(self, "address_family", None) == socket.AF_UNIX,
        }


#: The environment variable that names the user's server class for ``UserServer``.
USER_SERVER = "HARNESS_FUZZ_SERVER"


def __getattr__(name: str) -> Any:
    if name != "UserServer":
        raise AttributeError("module %r has no attribute %r" % (__name__, name))
    from harness.agent import resolve

    base = resolve(os.environ[USER_SERVER], default_module="socketserver")
    # Named as the user's class, so that nothing that prints the class name changes.
    return type(base.__name__, (base, FuzzOps), {})
