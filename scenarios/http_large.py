"""``http/large``: file sizes and slow or vanishing readers (SimpleHTTPRequestHandler).

``copyfile`` streams the file with ``shutil.copyfileobj`` (64 KiB reads on POSIX), so the
catalog serves files at those boundaries, several MiB of pseudo-random bytes (recorded as
length and digest, the head normalized apart), an empty file and a sparse one; a slow
reader drains a file in small paced reads; a client that resets the connection mid-body
must leave the server serving the next request.
"""

import functools
import random
from typing import Any

from harness.clients import render_bytes
from harness.scenario import Run, scenario
from scenarios._http_files_common import (
    STANDARD,
    File,
    Row,
    expect_status,
    files_server,
    get,
    open_site,
    register_rows,
)

MIB = 1024 * 1024
KIB64 = 64 * 1024


@functools.cache  # every tree of a run has the same files: 7 MiB made once, not per side
def noise(size: int, seed: int) -> bytes:
    """``size`` pseudo-random bytes, the same on every run."""
    return random.Random(seed).getrandbits(8 * size).to_bytes(size, "little") if size else b""


def lazy_noise(size: int, seed: int) -> functools.partial:
    """File content made only when a tree is built (not when the catalog is imported)."""
    return functools.partial(noise, size, seed)


FILES = {
    "empty.bin": b"",
    "k64.bin": lazy_noise(KIB64, 64),
    "k64_minus_1.bin": lazy_noise(KIB64 - 1, 63),
    "k64_plus_1.bin": lazy_noise(KIB64 + 1, 65),
    "m5.bin": lazy_noise(5 * MIB, 5),
    "m2.bin": lazy_noise(2 * MIB, 2),
}


def tree(*names: str) -> tuple:
    """The standard tree plus the named files (only those: big files cost time to write)."""
    return (*STANDARD, *(File(name, FILES[name]) for name in names))


def digest_is(name: str) -> Any:
    """A check: every reply's body is the file ``name``, byte for byte (its digest)."""

    def check(run: Run, replies: list[dict[str, Any]]) -> None:
        body_length_matches(run, replies)
        content = FILES[name]() if callable(FILES[name]) else FILES[name]
        expected = render_bytes(content, 1024)
        for index, record in enumerate(replies):
            run.expect(record["body"] == expected, f"reply {index + 1}: the body is {name}")

    return check


def body_length_matches(run: Run, replies: list[dict[str, Any]]) -> None:
    """Invariant: each body is as long as the Content-Length the reply declares."""
    for index, record in enumerate(replies):
        declared = [
            line.split(":", 1)[1].strip()
            for line in record["head"].split("\r\n")
            if line.lower().startswith("content-length:")
        ]
        body = record["body"]
        length = body["len"] if isinstance(body, dict) else len(body.encode("latin-1"))
        if declared and not record["head"].startswith("HTTP/1.0 304"):
            run.expect(
                declared == [str(length)],
                f"reply {index + 1}: body of {length} bytes, Content-Length {declared}",
            )


def row(name: str, requests: Any, doc: str, file: str = "", **fields: Any) -> Row:
    """A row recording the normalized head and the body's length and digest; ``file`` is
    added to the tree and, unless the row checks otherwise, each body must be it."""
    fields.setdefault("check", digest_is(file) if file else body_length_matches)
    return Row(name, requests, doc, long=True, tree=tree(*[file] if file else []), **fields)


ROWS = [
    row("server_answers", get("/a.txt"), "Sanity: a small file, head and body recorded apart."),
    row(
        "empty_file",
        [get("/empty.bin"), get("/empty.bin", method="HEAD")],
        "An empty file: 200 with Content-Length: 0 and no body, for GET and HEAD.",
        file="empty.bin",
    ),
    row(
        "boundary_64k",
        get("/k64.bin"),
        "Exactly 64 KiB, one copyfileobj buffer: served whole.",
        file="k64.bin",
    ),
    row(
        "boundary_64k_minus_1",
        get("/k64_minus_1.bin"),
        "64 KiB - 1 bytes: served whole.",
        file="k64_minus_1.bin",
    ),
    row(
        "boundary_64k_plus_1",
        get("/k64_plus_1.bin"),
        "64 KiB + 1 bytes (a second, one-byte buffer): served whole.",
        file="k64_plus_1.bin",
    ),
    row(
        "several_mib",
        get("/m5.bin"),
        "5 MiB of pseudo-random bytes: length and SHA-256 of the body match the file.",
        file="m5.bin",
    ),
    row(
        "head_large",
        get("/m5.bin", method="HEAD"),
        "HEAD on a 5 MiB file: Content-Length: 5242880 and no body.",
        file="m5.bin",
        check=expect_status(200),
    ),
    row(
        "slow_reader",
        get("/m2.bin"),
        "A client reading 2 MiB in 16 KiB reads with a pause after each: the server blocks "
        "in send and completes; the body is intact.",
        options={"chunk": 16384, "pause": 0.0005, "timeout": 15.0},
        file="m2.bin",
    ),
]

register_rows("large", ROWS)

SPARSE = 64 * MIB


def _sparse(path: str) -> None:
    with open(path, "wb") as out:
        out.truncate(SPARSE)


@scenario(
    "http/large/client_resets_mid_body",
    server=files_server(),
    events="none",
    stderr="none",
)
async def client_resets_mid_body(run: Run) -> None:
    """A client reads the head of a 64 MiB (sparse) file, then resets the connection: the
    server's send fails (handle_error), and it serves the next request normally."""
    site = await open_site(run, STANDARD)
    _sparse(str(run.workdir / "www" / "sparse.bin"))
    async with await run.connect() as client:
        await client.send(get("/sparse.bin"))
        head = await client.recv_until(b"\r\n\r\n")
        run.record("head end", head.end)
        run.record("status", head.data.split(b"\r\n", 1)[0].decode("latin-1"))
        client.reset()
    await site.wait_closed()
    # Which error the send raises (EPIPE or ECONNRESET) depends on timing; record its kind.
    errors = [
        "connection error" if e.get("type") in ("BrokenPipeError", "ConnectionResetError") else e
        for e in run.events("handle_error")
    ]
    run.record("handle_error", errors)
    run.record("next request", await site.fetch(get("/a.txt")))
    alive = await run.sample()
    run.expect(alive["alive"] == 1, "the server process is still running")
