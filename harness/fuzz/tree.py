"""The file tree the ``http-files``, ``http-cgi`` and ``http-errors`` families serve.

The harness builds it in each server process's private directory before the process
starts (``build``), from the same entries, with every mtime pinned
(``scenarios._http_files_common.build_tree``), so every target serves the same tree:

- nested directories; ``index.html``, ``index.htm``, both, neither, and a directory
  named ``index.html``;
- a file for every extension of ``SimpleHTTPRequestHandler.extensions_map``, common
  ones, upper-case and double ones, unknown ones and none;
- names that need percent-encoding (space, ``%``, ``#``, ``?``, ``;``, ``&``, quotes,
  angle brackets, non-ASCII, undecodable bytes);
- a directory an absolute-form target (``http://h.example/d``) names;
- symlinks inside the root and out of it (to ``SECRET`` files), a dangling one, a loop;
- a file and a directory nobody may read (the handlers drop root's override per thread);
- CGI scripts: ``cgi-bin`` is run on the fork path, ``htbin`` on the subprocess path
  (``scenarios.handlers.fuzz_site``); scripts that dump their environment, echo their
  input, exit non-zero, are not executable, are not ``.py`` (and one that is).

``PATHS`` are the request paths of the tree (and of a few missing names) that the
request grammar (``harness.fuzz.site``) starts from.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from scenarios._http_files_common import SECRET, Dir, Entry, File, Link, build_tree

#: SimpleHTTPRequestHandler.extensions_map, then common, odd and unknown extensions.
EXTENSIONS = (".gz", ".Z", ".bz2", ".xz", ".html", ".htm", ".txt", ".css", ".js", ".json")
EXTENSIONS += (".png", ".svg", ".pdf", ".xml", ".zip", ".py", ".sh", ".webp", ".csv", ".md")
EXTENSIONS += (".TXT", ".Gz", ".tar.gz", ".txt.gz", ".zzz", ".unknownext", "", ".")
#: ``extensions_map``'s keys in other cases (it is looked up as is, then lower-cased).
EXTENSIONS += (".BZ2", ".Xz", ".z", ".GZ")

#: Names a client has to percent-encode (as bytes: one is not valid UTF-8).
ODD_NAMES = (b"with space.txt", b"100%.txt", b"hash#name.txt", b"ques?tion.txt")
ODD_NAMES += (b"semi;colon.txt", b"plus+amp&.txt", b"quote'\".txt", b"<angle>.html")
ODD_NAMES += ("\u00e9t\u00e9.txt".encode(), b"\xff\xfe.txt", b".hidden", b"tilde~.txt")

_SH = b"#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\n"
#: The CGI variables (``${NAME-<unset>}`` tells unset from empty), with builtins only.
_CGI_NAMES = [
    "SERVER_SOFTWARE",
    "SERVER_NAME",
    "GATEWAY_INTERFACE",
    "SERVER_PROTOCOL",
    "SERVER_PORT",
    "REQUEST_METHOD",
    "PATH_INFO",
    "PATH_TRANSLATED",
    "SCRIPT_NAME",
    "QUERY_STRING",
    "REMOTE_HOST",
    "REMOTE_ADDR",
    "AUTH_TYPE",
    "REMOTE_USER",
    "CONTENT_TYPE",
    "CONTENT_LENGTH",
    "HTTP_REFERER",
    "HTTP_ACCEPT",
    "HTTP_USER_AGENT",
    "HTTP_COOKIE",
]
ENV_SH = (
    _SH
    + b"".join(
        b"printf '%s=[%%s]\\n' \"${%s-<unset>}\"\n" % (n.encode(), n.encode()) for n in _CGI_NAMES
    )
    + b"printf 'argv=[%s]\\n' \"$*\"\n"
)
#: The whole environment, sorted (what a mutant adds or drops shows here), and who runs
#: the script (the fork path switches to ``nobody`` when it can).
ENV_ALL_SH = (
    _SH + b"/usr/bin/env | LC_ALL=C /usr/bin/sort\nprintf 'uid=%s\\n' \"$(/usr/bin/id -u)\"\n"
)
#: Echoes its standard input. Only on the subprocess path, where the input is the body
#: the server read (on the fork path it is the socket, after whatever the server's
#: buffered reader took: what is left depends on how the bytes arrived).
ECHO_SH = _SH + b"printf 'argv=[%s]\\n' \"$*\"\n/usr/bin/head -c 65536\n"
#: The fork path's echo: its arguments and the announced length, not its input.
ECHO_FORK_SH = _SH + b'printf \'argv=[%s] length=[%s]\\n\' "$*" "$CONTENT_LENGTH"\n'
FAIL_SH = _SH + b"printf 'failing\\n'\nexit 3\n"
ENV_PY = (
    b"#!/usr/bin/python3\nimport os, sys\n"
    b"sys.stdout.write('Content-Type: text/plain\\r\\n\\r\\n')\n"
    b"for k in sorted(os.environ):\n    sys.stdout.write('%s=[%s]\\n' % (k, os.environ[k]))\n"
    b"sys.stdout.write('argv=%r stdin=%r\\n' % (sys.argv[1:], sys.stdin.read(4096)))\n"
)


def _scripts(directory: str, echo: bytes) -> tuple[Entry, ...]:
    return (
        File(f"{directory}/env.sh", ENV_SH, mode=0o755),
        File(f"{directory}/envall.sh", ENV_ALL_SH, mode=0o755),
        File(f"{directory}/echo.sh", echo, mode=0o755),
        File(f"{directory}/fail.sh", FAIL_SH, mode=0o755),
        File(f"{directory}/noexec.sh", ENV_SH, mode=0o644),
        File(f"{directory}/env.py", ENV_PY, mode=0o755),
        File(f"{directory}/sub/inner.sh", ENV_SH, mode=0o755),
        File(f"{directory}/data.txt", b"not a script\n", mode=0o644),
    )


ENTRIES: tuple[Entry, ...] = (
    *(File(b"file" + ext.encode(), b"content of file%s\n" % ext.encode()) for ext in EXTENSIONS),
    *(File(name, b"odd name: " + name + b"\n") for name in ODD_NAMES),
    File("empty.txt", b""),
    File("big.bin", bytes(range(256)) * 280),
    File("dir/index.html", b"<p>dir index.html</p>\n"),
    File("dir/other.txt", b"dir other\n"),
    File("dir2/index.htm", b"<p>dir2 index.htm</p>\n"),
    File("both/index.html", b"<p>both: html</p>\n"),
    File("both/index.htm", b"<p>both: htm</p>\n"),
    File("noindex/a.txt", b"noindex a\n"),
    File("noindex/b.html", b"<p>noindex b</p>\n"),
    File("nested/a/b/c/deep.txt", b"deep\n"),
    File("idx/index.html/inside.txt", b"a directory named index.html\n"),
    Dir("empty"),
    File("space dir/in space.txt", b"in a spaced directory\n"),
    File("\u00e9 dir/x.txt".encode(), b"in a non-ASCII directory\n"),
    File("dot.dir/x.txt", b"in dot.dir\n"),
    # An absolute-form target (``http://h.example/d``) is translated whole: the path
    # ``http:/h.example/d`` names this directory, so such a request reaches a redirect.
    File("http:/h.example/d/x.txt", b"reached through an absolute URI\n"),
    File("locked.txt", b"nobody may read this\n", mode=0o000),
    File("lockeddir/x.txt", b"in a locked directory\n"),
    Dir("lockeddir", mode=0o000),
    File("lockedindex/index.html", b"locked index\n", mode=0o000),
    Link("link.txt", "file.txt"),
    Link("linkdir", "nested"),
    Link("out.txt", "../outside/secret.txt"),
    Link("outdir", "../outside"),
    Link("dangling", "nowhere"),
    Link("loop", "loop"),
    File("../outside/secret.txt", f"{SECRET} outside the served root\n".encode()),
    *_scripts("cgi-bin", ECHO_FORK_SH),
    *_scripts("htbin", ECHO_SH),
)


def _request_path(name: bytes) -> bytes:
    return b"/" + name


#: Request paths of everything in the tree (directories also without their slash), and
#: of names that are not there; raw bytes, the grammar encodes them.
PATHS: tuple[bytes, ...] = tuple(
    sorted(
        {
            _request_path(os.fsencode(entry.path))
            for entry in ENTRIES
            if not os.fsencode(entry.path).startswith(b"../")
        }
        | {b"/", b"/dir/", b"/dir", b"/dir2/", b"/both/", b"/noindex/", b"/nested/a/b/"}
        | {b"/idx/index.html/", b"/empty/", b"/lockeddir/", b"/cgi-bin/", b"/htbin/"}
        | {b"/missing.txt", b"/nope/", b"/dir/missing", b"/file.txt/", b"/outdir/secret.txt"}
        | {b"/linkdir/a/b/c/deep.txt", b"/space dir/", b"/cgi-bin/sub/"}
        | {b"/d", b"/d/", b"/d/x.txt"}  # the tail of ``http://h.example/d``
    )
)


def build(workdir: Path) -> None:
    """Build the tree in ``workdir`` (``www`` and ``outside``), readable by ``nobody``
    (the fork path's scripts run as ``nobody`` when the server runs as root)."""
    build_tree(workdir / "www", ENTRIES)
    # mkdtemp made the directory 0700; scripts run by ``nobody`` must reach their files.
    os.chmod(workdir, 0o755)


def remove(workdir: Path) -> None:
    """Remove ``workdir`` whole, the unreadable parts of the tree included."""
    for path in (workdir / "www" / "lockeddir",):
        if path.exists():
            os.chmod(path, 0o755)
    shutil.rmtree(workdir, ignore_errors=True)
