"""The wire helpers: cutting, sending and reading, with the blocking and the trio driver."""

import socket
import struct
import time

import pytest
import trio

from harness import wire
from harness.clients import drive


def test_pieces_cut_whole_by_size_and_by_list():
    assert wire.pieces(b"abcde") == [b"abcde"]
    assert wire.pieces(b"abcde", 2) == [b"ab", b"cd", b"e"]
    assert wire.pieces(b"", 2) == [b""]
    assert wire.pieces(b"abcde", [1, 2]) == [b"a", b"bc", b"de"]
    assert wire.pieces(b"abc", [5, 5]) == [b"abc"]  # the sizes stop where the data does
    assert wire.pieces(b"", []) == [b""]
    with pytest.raises(ValueError, match="split=0"):
        wire.pieces(b"abc", 0)


def test_blocking_send_then_read_to_eof():
    client, server = socket.socketpair()
    with client, server:
        assert (
            wire.run_blocking(wire.sending(wire.pieces(b"hello world", [3, 3]), 0.001), client)
            == "ok"
        )
        client.shutdown(socket.SHUT_WR)
        assert wire.run_blocking(wire.reading(2.0, 0.5), server) == (b"hello world", "eof")


def test_reads_end_idle_timeout_and_limit():
    client, server = socket.socketpair()
    with client, server:
        client.sendall(b"abc")
        started = time.monotonic()
        assert wire.run_blocking(wire.reading(5.0, 0.1), server) == (b"abc", "idle")
        assert time.monotonic() - started < 2.0
        assert wire.run_blocking(wire.reading(0.1), server) == (b"", "timeout")
        client.sendall(b"x" * 100)
        data, end = wire.run_blocking(wire.reading(2.0, limit=10, chunk=4), server)
        assert end == "limit" and 10 <= len(data) < 100


def test_a_long_first_byte_wait_before_a_short_idle():
    client, server = socket.socketpair()
    with client, server:
        started = time.monotonic()
        assert wire.run_blocking(wire.reading(5.0, 0.05, first_byte=0.3), server) == (b"", "idle")
        assert time.monotonic() - started >= 0.3


def _tcp_pair():
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    server, _ = listener.accept()
    listener.close()
    return client, server


def test_send_and_read_failures_are_named():
    client, server = _tcp_pair()
    with client:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        server.close()  # RST
        time.sleep(0.05)
        assert wire.run_blocking(wire.reading(1.0, 0.5), client) == (b"", "reset")
    client, server = _tcp_pair()
    with client, server:
        server.close()
        client.sendall(b"x")  # answered by an RST
        time.sleep(0.05)
        assert wire.run_blocking(wire.sending([b"y" * 100000]), client) in ("reset", "broken")


@pytest.mark.parametrize("kind", ["trio", "raw"])
def test_the_trio_driver_does_what_the_blocking_one_does(kind):
    async def main():
        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        near = trio.socket.from_stdlib_socket(a) if kind == "trio" else a
        sent = await drive(wire.sending(wire.pieces(b"hello" * 1000, 700), 0.001), near)
        a.shutdown(socket.SHUT_WR)
        got = await drive(
            wire.reading(2.0, 0.5), b if kind == "raw" else trio.socket.from_stdlib_socket(b)
        )
        quiet = await drive(wire.reading(0.2, 0.05), near)
        a.close()
        b.close()
        return sent, got, quiet

    sent, got, quiet = trio.run(main)
    assert sent == "ok"
    assert got == (b"hello" * 1000, "eof")
    assert quiet == (b"", "idle")
