"""What the SimpleHTTPRequestHandler catalog modules share (``http/<family>/<name>``).

- Trees: a scenario builds the directory the server serves, ``run.workdir / "www"``, from
  the harness side before it sends anything, from a list of entries (files, directories,
  symlinks, modes), with every mtime pinned to ``MTIME`` so that ``Last-Modified`` and
  ``If-Modified-Since`` behave the same on every run.
- Rows: most scenarios are rows of a table (id, requests, tree, description) sharing one
  body, ``serve_rows``: build the tree, ``serve_forever``, send each request on a new
  connection with ``exchange`` and record each reply.
- Known differences: the deliberate deviations of the reference ``http.server``, with the
  CPython versions that carry each fix, taken from ``implementation.deviations`` (one
  place for versions).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import trio

from harness.clients import render_bytes
from harness.known import deviation as known_deviation
from harness.observation import normalize_http
from harness.scenario import Known, Run, ServerSpec, scenario
from scenarios._http_common import exchange

HANDLERS = "scenarios.handlers.http_files"

#: Every file, directory and symlink of a tree gets this mtime: Tue, 14 Nov 2023 22:13:20 GMT.
MTIME = 1_700_000_000
MTIME_HTTP = "Tue, 14 Nov 2023 22:13:20 GMT"

# --- trees ------------------------------------------------------------------------------

Name = str | bytes


@dataclasses.dataclass(frozen=True)
class File:
    """A regular file with ``content`` (bytes, or a function making them when the tree is
    built); ``mode`` applied after everything is built."""

    path: Name
    content: bytes | Callable[[], bytes] = b""
    mode: int | None = None
    mtime: float | None = None


@dataclasses.dataclass(frozen=True)
class Dir:
    """A directory; ``mode`` applied after everything is built (``0`` = no permission)."""

    path: Name
    mode: int | None = None


@dataclasses.dataclass(frozen=True)
class Link:
    """A symlink at ``path`` pointing at ``target`` (relative to the link's directory)."""

    path: Name
    target: Name


Entry = File | Dir | Link


def _fs(name: Name) -> bytes:
    return os.fsencode(name)


def build_tree(root: Path, entries: Iterable[Entry]) -> None:
    """Create ``entries`` under ``root`` (paths may climb out with ``../``), pin mtimes.

    Parents are created as needed; modes are applied last so a chmod-000 directory can
    still be filled first.
    """
    base = _fs(root)
    os.makedirs(base, exist_ok=True)
    made: list[tuple[bytes, bool]] = [(base, False)]
    modes: list[tuple[bytes, int]] = []
    for entry in entries:
        path = os.path.normpath(os.path.join(base, _fs(entry.path)))
        parent = os.path.dirname(path)
        if not os.path.isdir(parent):
            os.makedirs(parent)
            made.append((parent, False))
        if isinstance(entry, File):
            with open(path, "wb") as out:
                out.write(entry.content() if callable(entry.content) else entry.content)
            made.append((path, False))
        elif isinstance(entry, Dir):
            os.makedirs(path, exist_ok=True)
            made.append((path, False))
        else:
            os.symlink(_fs(entry.target), path)
            made.append((path, True))
        if getattr(entry, "mode", None) is not None:
            modes.append((path, entry.mode))
    for path, is_link in made:
        os.utime(path, (MTIME, MTIME), follow_symlinks=not is_link)
    for entry in entries:
        if isinstance(entry, File) and entry.mtime is not None:
            path = os.path.normpath(os.path.join(base, _fs(entry.path)))
            os.utime(path, (entry.mtime, entry.mtime))
    for path, mode in modes:
        os.chmod(path, mode)


#: Files outside the served root start with this: no reply may contain it unless a row
#: says so (symlinks out of the root are followed, by design).
SECRET = "SECRET"

#: The tree most rows use: files, nested directories, a directory outside the served root
#: (for traversal attempts to aim at) and symlinks into it, plus a dangling one.
STANDARD: tuple[Entry, ...] = (
    File("a.txt", b"hello a\n"),
    File("b.html", b"<p>b</p>\n"),
    File("sub/b.txt", b"in sub\n"),
    File("sub/deeper/c.txt", b"deeper c\n"),
    Dir("empty"),
    File("\u00e9.txt", b"e acute\n"),
    File("../outside/secret.txt", b"SECRET outside the served root\n"),
    File("../secret.txt", b"SECRET in the work directory\n"),
    Link("out", "../outside"),
    Link("out.txt", "../outside/secret.txt"),
    Link("dangling", "nowhere"),
)


# --- requests ---------------------------------------------------------------------------


def get(path: str | bytes, *headers: str, method: str = "GET", version: str = "HTTP/1.0") -> bytes:
    """A request with a request line ``METHOD PATH VERSION`` and the given header lines."""
    target = path if isinstance(path, bytes) else path.encode("latin-1")
    head = method.encode() + b" " + target + b" " + version.encode() + b"\r\n"
    return head + b"".join(h.encode("latin-1") + b"\r\n" for h in headers) + b"\r\n"


class Site:
    """A running file server: the tree is built, ``serve_forever`` runs in a thread.

    Requests go one after the other, each on a new connection; after each reply the site
    waits until the server has closed that request, so logs and hook events are complete
    and in order before the next one.
    """

    def __init__(self, run: Run) -> None:
        self.run = run
        self.closed = 0

    async def fetch(self, request: bytes, **options: Any) -> dict[str, Any]:
        """Send ``request`` on a new connection (``exchange``); the reply record."""
        record = await exchange(self.run, request, **options)
        await self.wait_closed()
        return record

    async def fetch_long(
        self,
        request: bytes,
        *,
        chunk: int = 65536,
        pause: float = 0.0,
        timeout: float = 10.0,
        inline: int = 1024,
        keep: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Like ``fetch``, for long replies: the normalized head and the body's digest.

        ``exchange`` digests a long reply whole, Date header included, so the digest
        changes every second; here the head is normalized and only the body is digested.
        ``chunk`` and ``pause`` make a slow reader. ``keep`` names headers whose raw
        values are recorded too (``Last-Modified`` of a pinned mtime is deterministic,
        but ``normalize_http`` replaces it).
        """
        async with await self.run.connect() as client:
            sent = await client.send(request)
            received = await client.recv_until_eof(timeout=timeout, chunk=chunk, pause=pause)
        head, separator, body = received.data.partition(b"\r\n\r\n")
        record = {
            "head": normalize_http(head.decode("latin-1")),
            "separator": separator.decode("latin-1"),
            "body": render_bytes(body, inline),
            "end": received.end,
            "sent": sent,
        }
        if keep:
            wanted = {name.lower() for name in keep}
            record["kept"] = [
                line
                for line in head.decode("latin-1").split("\r\n")[1:]
                if line.split(":", 1)[0].strip().lower() in wanted
            ]
        await self.wait_closed()
        return record

    async def wait_closed(self) -> None:
        """Wait until the server has closed one more request (its ``close_request``)."""
        self.closed += 1
        done = await self.run.wait_event("close_request", self.closed, timeout=5.0)
        self.run.expect(done, f"the server closes request {self.closed} within 5 s")


async def open_site(run: Run, tree: Iterable[Entry]) -> Site:
    """Build ``tree`` under ``run.workdir / "www"`` and start ``serve_forever``.

    The tree is built in a worker thread: the harness's event loop keeps serving the
    other scenarios' clients meanwhile.
    """
    await trio.to_thread.run_sync(build_tree, run.workdir / "www", tuple(tree))
    run.serve_forever(0.05)
    return Site(run)


# --- tables -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Row:
    """One scenario of a table: requests sent in order, each on its own connection.

    ``requests`` are raw bytes (use ``get``); ``options`` go to ``exchange`` (``idle=``
    for keep-alive replies), or to ``Site.fetch_long`` with ``long=True`` (replies over
    16 KiB). The description is ``doc``.
    """

    name: str
    requests: bytes | Sequence[bytes]
    doc: str
    tree: Sequence[Entry] = STANDARD
    handler: str = "Files"
    handler_attrs: dict[str, Any] = dataclasses.field(default_factory=dict)
    known: Sequence[Known] = ()
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    check: Callable[[Run, list[dict[str, Any]]], None] | None = None
    long: bool = False
    #: whether a reply may carry the bytes of the files outside the root (symlinks to them)
    reaches_outside: bool = False


def files_server(handler: str = "Files", **handler_attrs: Any) -> ServerSpec:
    """``http.server:HTTPServer`` with a handler from ``scenarios.handlers.http_files``."""
    return ServerSpec(
        "http.server:HTTPServer", handler=f"{HANDLERS}:{handler}", handler_attrs=handler_attrs
    )


def register_rows(
    family: str, rows: Iterable[Row], tree: Sequence[Entry] | None = None, **options: Any
) -> None:
    """Register each row as ``http/<family>/<row.name>`` with the shared body.

    ``tree`` replaces ``STANDARD`` as the default tree of the family's rows.
    """
    for row in rows:
        if tree is not None and row.tree is STANDARD:
            row = dataclasses.replace(row, tree=tree)
        scenario(
            f"http/{family}/{row.name}",
            server=files_server(row.handler, **row.handler_attrs),
            description=row.doc,
            known=row.known,
            **options,
        )(_row_body(row))


def _row_body(row: Row) -> Callable[[Run], Any]:
    requests = [row.requests] if isinstance(row.requests, bytes) else list(row.requests)

    async def body(run: Run) -> None:
        site = await open_site(run, row.tree)
        replies = []
        for index, request in enumerate(requests):
            fetch = site.fetch_long if row.long else site.fetch
            record = await fetch(request, **row.options)
            replies.append(record)
            run.record("reply" if len(requests) == 1 else f"reply {index + 1}", record)
            if not row.reaches_outside:
                run.expect(
                    SECRET not in str(record.get("reply", record)),
                    f"request {index + 1} does not reach the files outside the served root",
                )
        if row.check is not None:
            row.check(run, replies)

    return body


def status_of(record: dict[str, Any]) -> str:
    """The status line of a recorded reply ('' when there is none)."""
    reply = record.get("reply", record.get("head"))
    if not isinstance(reply, str):
        data = record.get("data")
        reply = str(data.get("head", "")) if isinstance(data, dict) else str(data or "")
    return reply.split("\r\n", 1)[0] if reply.startswith("HTTP/") else ""


def expect_status(*codes: int) -> Callable[[Run, list[dict[str, Any]]], None]:
    """A row check: reply N has status ``codes[N]`` (an invariant on every target)."""

    def check(run: Run, replies: list[dict[str, Any]]) -> None:
        for index, (record, code) in enumerate(zip(replies, codes)):
            line = status_of(record)
            run.expect(
                line.split(" ")[1:2] == [str(code)],
                f"reply {index + 1} has status {code} (got {line or 'no status line'!r})",
            )

    return check


# --- the reference's deliberate deviations ----------------------------------------------


def deviation(issue: str, keys: tuple[str, ...] = ("facts.*", "stderr")) -> Known:
    """The Known for a deliberate deviation of the reference (``harness.known``), covering
    the replies and the log by default."""
    return known_deviation(issue, keys)
