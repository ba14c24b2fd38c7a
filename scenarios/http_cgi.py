"""``http/cgi``: CGIHTTPRequestHandler on the fork path and on the subprocess path.

Scripts live in ``www/cgi-bin`` of the run's work directory. On the fork path the child
execs the script itself, after switching to ``nobody`` when it can (the catalog runs as
root): the scripts there are ``/bin/sh`` scripts, and the work directory is opened to its
group, which such a child keeps (root's), so that it can reach them. On the subprocess
path (``have_fork = False``, the Windows path) ``.py`` scripts run under the server's own
interpreter, as the server's user.

What the family shows: a client that resets or stalls during the request body leaves no
script process and no pipe behind; a value the environment cannot hold (a NUL in a header
or in the path) fails before any status line, as in the stdlib; the stdlib writes every
request's values into the server process's own environment, the reference does not (a
deliberate deviation, ``cgi-environ-leak``).
"""

from __future__ import annotations

import os
from typing import Any

import trio

from harness.known import deviation
from harness.scenario import SLOW, Run, ServerSpec, scenario
from scenarios._http_common import reply_record
from scenarios._http_files_common import File, Site, build_tree, get

HANDLERS = "scenarios.handlers.http_cgi"

#: A ``.py`` script for the subprocess path: reports the body it got on stdin.
ECHO_PY = b"""import sys
body = sys.stdin.buffer.read()
sys.stdout.write("Content-Type: text/plain\\r\\n\\r\\n")
sys.stdout.write("read %d bytes: %r\\n" % (len(body), body))
"""

#: A shell script for the fork path: reports the variables the scenarios send values in.
ENV_SH = b"""#!/bin/sh
printf 'Content-Type: text/plain\\r\\n\\r\\n'
printf 'PATH_INFO=[%s]\\n' "$PATH_INFO"
printf 'HTTP_USER_AGENT=[%s]\\n' "$HTTP_USER_AGENT"
printf 'HTTP_COOKIE=[%s]\\n' "$HTTP_COOKIE"
printf 'REMOTE_USER=[%s]\\n' "$REMOTE_USER"
"""

TREE = (
    File("cgi-bin/echo.py", ECHO_PY, mode=0o755),
    File("cgi-bin/env.sh", ENV_SH, mode=0o755),
)

#: A body of 100 bytes announced, 10 sent (in the same packet as the head).
SHORT_BODY_POST = get("/cgi-bin/echo.py", "Content-Length: 100", method="POST") + b"0123456789"


def cgi_server(**handler_attrs: Any) -> ServerSpec:
    """``http.server:HTTPServer`` running the ``Cgi`` handler with ``handler_attrs``."""
    return ServerSpec(
        "http.server:HTTPServer", handler=f"{HANDLERS}:Cgi", handler_attrs=handler_attrs
    )


class CgiSite(Site):
    """A ``Site`` that remembers its ``serve_forever`` command, to stop it at the end."""

    def __init__(self, run: Run, serve: int) -> None:
        super().__init__(run)
        self.serve = serve


async def open_cgi_site(run: Run) -> CgiSite:
    """Build the scripts, let a child that became ``nobody`` reach them, start serving."""
    await trio.to_thread.run_sync(build_tree, run.workdir / "www", TREE)
    # mkdtemp made the work directory 0700; a forked child that switched to ``nobody``
    # keeps root's group, so group access lets it exec the scripts.
    os.chmod(run.workdir, 0o750)
    return CgiSite(run, run.serve_forever(0.05))


def nothing_left(sample: dict[str, int]) -> bool:
    """No child, no zombie and no fd beyond those the server had when it was ready."""
    return sample["children"] == 0 and sample["zombies"] == 0 and sample["fds"] <= 0


async def record_leftovers(run: Run, site: CgiSite) -> None:
    """Stop serving, then record (and require) that no process and no extra fd is left.

    Counted after ``serve_forever`` has returned, because a serving loop may hold fds of
    its own (the reference's wake-up pipe); the server's socket is closed by then too.
    """
    run.record("stop", await run.stop_serving(site.serve))
    left = await run.settle(nothing_left)
    run.record("left", {key: left[key] for key in ("alive", "children", "zombies", "fds")})
    run.expect(nothing_left(left), "no script process, zombie or pipe is left behind")


def handle_errors(run: Run) -> list[str]:
    """The ``handle_error`` events so far, as ``context: Type: message``."""
    return [
        f"{e.get('ctx')}: {e.get('type')}: {e.get('message')}" for e in run.events("handle_error")
    ]


@scenario(
    "http/cgi/subprocess_reset_during_body",
    server=cgi_server(have_fork=False),
    # The reference, like CPython since the gh-119452 fix, reads the body up to
    # Content-Length, so it is still reading when the client resets; the stdlib before the
    # fix takes one read, runs the script on the 10 bytes and replies at once. A CPython
    # with the fix is still reading as well, and it starts the script before the read, so
    # it leaves the script and its pipes behind: there the invariant fails on the stdlib.
    known=[deviation("gh-119452", ("facts.reply", "facts.handle_error", "events", "stderr"))],
    tags=(SLOW,),  # the reference: the client's 5 s wait for a reply
)
async def subprocess_reset_during_body(run: Run) -> None:
    """Subprocess path: a POST announces 100 bytes and sends 10, the client waits for the
    reply (up to 5 s) and then resets. Whatever the server was doing (replying, or still
    reading the body when the reset came), no script process and no pipe is left."""
    site = await open_cgi_site(run)
    async with await run.connect() as client:
        await client.send(SHORT_BODY_POST)
        received = await client.recv_until_eof(timeout=5.0)
        client.reset()
    run.record("reply", reply_record(received))
    await site.wait_closed()
    run.record("handle_error", handle_errors(run))
    await record_leftovers(run, site)


@scenario(
    "http/cgi/subprocess_short_body_times_out",
    server=cgi_server(have_fork=False, timeout=0.5),
)
async def subprocess_short_body_times_out(run: Run) -> None:
    """Subprocess path with a handler timeout of 0.5 s: a POST announces 100 bytes and
    sends 10, then waits. The script runs on the 10 bytes (the stdlib at once, after one
    read; the reference when the wait for more times out, as CPython's gh-119452 fix
    does), the reply is complete, and no process or pipe is left."""
    site = await open_cgi_site(run)
    async with await run.connect() as client:
        await client.send(SHORT_BODY_POST)
        received = await client.recv_until_eof(timeout=5.0)
    run.record("reply", reply_record(received))
    await site.wait_closed()
    run.record("handle_error", handle_errors(run))
    await record_leftovers(run, site)


@scenario("http/cgi/fork_nul_in_environment", server=cgi_server(have_fork=True))
async def fork_nul_in_environment(run: Run) -> None:
    """Fork path: a NUL in a header value (``User-Agent: a\\x00b``) or in PATH_INFO
    (``%2500``) cannot go into the script's environment. The stdlib fails while building
    it, before any status line: no reply, ``handle_error`` with ``ValueError: embedded
    null byte``, no child forked. A plain request before them runs the script."""
    site = await open_cgi_site(run)
    requests = {
        "plain": get("/cgi-bin/env.sh/ok", "User-Agent: plain"),
        "nul in user-agent": get("/cgi-bin/env.sh", "User-Agent: a\x00b"),
        "nul in path_info": get("/cgi-bin/env.sh/%2500"),
    }
    for name, request in requests.items():
        run.record(name, await site.fetch(request))
    run.record("handle_error", handle_errors(run))
    await record_leftovers(run, site)


#: Names of the values a CGI request puts in the script's environment (RFC 3875).
_SHOWN_VALUES = (
    "GATEWAY_INTERFACE",
    "REQUEST_METHOD",
    "SCRIPT_NAME",
    "PATH_INFO",
    "QUERY_STRING",
    "HTTP_USER_AGENT",
    "HTTP_COOKIE",
    "AUTH_TYPE",
    "REMOTE_USER",
)

_CHANGES = f"__import__('{HANDLERS}', fromlist=['_']).inherited_environment_changes()"


async def inherited_changes(run: Run) -> dict[str, Any]:
    """What a child the server starts now inherits unlike the server's ``os.environ``.

    Names sorted; the values of ``_SHOWN_VALUES`` (the others, such as SERVER_PORT or
    REMOTE_PORT-like values, vary from run to run).
    """
    changes = await run.value(_CHANGES, timeout=30.0)
    if not isinstance(changes, dict) or "raised" in changes or "pending" in changes:
        return {"probe failed": changes}
    return {
        "names": sorted(changes),
        "values": {name: changes[name] for name in _SHOWN_VALUES if name in changes},
    }


@scenario(
    "http/cgi/environment_leaks_into_server",
    server=cgi_server(have_fork=True),
    known=[deviation("cgi-environ-leak", ("facts.inherited after the request",))],
)
async def environment_leaks_into_server(run: Run) -> None:
    """Fork path: a request with a User-Agent, a Cookie and Basic credentials runs a
    script. The stdlib builds the script's environment in a deep copy of ``os.environ``,
    which still calls ``putenv``: the request's values stay in the server process's
    C-level environment (not in its ``os.environ`` mapping), and every child it starts
    later without ``env=`` inherits them. The reference leaves the server's environment
    alone."""
    site = await open_cgi_site(run)
    run.record("inherited before", await inherited_changes(run))
    request = get(
        "/cgi-bin/env.sh/leak?q",
        "User-Agent: leak-probe",
        "Cookie: session=secret",
        "Authorization: Basic dXNlcjpwdw==",
    )
    run.record("reply", await site.fetch(request))
    run.record("inherited after the request", await inherited_changes(run))
    in_mapping = await run.value("__import__('os').environ.get('HTTP_USER_AGENT')")
    run.record("HTTP_USER_AGENT in os.environ", in_mapping)
    await record_leftovers(run, site)
