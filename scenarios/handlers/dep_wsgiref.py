"""WSGI applications served by ``wsgiref.simple_server`` on top of the target's modules.

``wsgiref.simple_server`` is a user of ``http.server`` (``WSGIServer`` is an ``HTTPServer``,
``WSGIRequestHandler`` a ``BaseHTTPRequestHandler``) and, through it, of ``socketserver``.
The agent substitutes the target's modules before this module imports ``wsgiref``, so the
stdlib's own WSGI server runs on top of the implementation under test, unchanged: a
defect of the target in what wsgiref relies on shows in the replies, the log lines or the
events of the ``dependents/wsgiref`` scenarios.

``AppServer`` picks its application by name (``app_name``, a class attribute the scenario
sets through ``server_attrs``) from ``APPS``. Applications report what only the server
process sees (an iterable's ``close()``) as ``note`` events. Stdlib-only, Python
3.9-compatible.
"""

import hashlib
import socketserver
import sys
import threading
import urllib.parse
import wsgiref.simple_server

try:
    from harness.agent import emit
except ImportError:  # outside the harness: nothing to report to

    def emit(ev, **fields):
        """No harness, no events."""


#: The server being built or run, so that applications can compare the environ with it.
CURRENT = {}

#: Set by a ``/release`` request of the ``rendezvous`` application; ``/wait`` waits for it.
RELEASE = threading.Event()

#: How long ``/wait`` waits for ``/release``: long enough for a loaded machine, paid in
#: full only by a server that cannot run two requests at once.
RENDEZVOUS_WAIT = 3.0

#: The CGI variables whose values do not vary from run to run (``SERVER_PORT`` is shown
#: as whether it matches the server's port).
STABLE_KEYS = (
    "CONTENT_LENGTH",
    "CONTENT_TYPE",
    "GATEWAY_INTERFACE",
    "PATH_INFO",
    "QUERY_STRING",
    "REMOTE_ADDR",
    "REMOTE_HOST",
    "REQUEST_METHOD",
    "SCRIPT_NAME",
    "SERVER_NAME",
    "SERVER_PORT",
    "SERVER_PROTOCOL",
    "SERVER_SOFTWARE",
)

TEXT = [("Content-Type", "text/plain; charset=utf-8")]


def digest(data):
    """The first 16 hex digits of the SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()[:16]


def hello(environ, start_response):
    """200 with several headers (one repeated) and a body of one chunk."""
    start_response(
        "200 OK",
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("X-Dependent", "wsgiref"),
            ("Set-Cookie", "a=1"),
            ("Set-Cookie", "b=2"),
            ("Cache-Control", "no-store"),
        ],
    )
    return [b"Hello from a WSGI application\n"]


def status(environ, start_response):
    """The status line is the percent-decoded query string; 204 and 304 get no body."""
    line = urllib.parse.unquote(environ["QUERY_STRING"])
    headers = [("Content-Type", "text/plain")]
    if line.startswith("3"):
        headers.append(("Location", "/elsewhere"))
    start_response(line, headers)
    if line[:3] in ("204", "304"):
        return []
    return [("status was %s\n" % line).encode("latin-1")]


class Pieces:
    """An iterable of chunks (one of them empty) with no length, and a ``close()``."""

    def __init__(self, chunks):
        self.chunks = chunks

    def __iter__(self):
        return iter(self.chunks)

    def close(self):
        """Report that the server closed the iterable, as PEP 3333 requires."""
        emit("note", note="iterable closed")


def chunks(environ, start_response):
    """A body in four pieces, the second empty: no Content-Length, the body ends at close."""
    start_response("200 OK", list(TEXT))
    return Pieces([b"first piece,", b"", b"second piece,", b"last piece\n"])


def generator(environ, start_response):
    """A generator body; its ``finally`` reports how the server ended it."""
    start_response("200 OK", list(TEXT))

    def body():
        try:
            for index in range(3):
                yield ("line %d\n" % index).encode("ascii")
        finally:
            emit("note", note="generator finished")

    return body()


def write_callable(environ, start_response):
    """The ``write()`` callable of ``start_response`` first, then a returned iterable."""
    write = start_response("200 OK", list(TEXT))
    write(b"written first\n")
    write(b"written second\n")
    return [b"returned third\n"]


def raise_before(environ, start_response):
    """Raise before ``start_response``: the server sends its own 500."""
    raise ValueError("the application failed before start_response")


def raise_after_start(environ, start_response):
    """Call ``start_response`` then raise: nothing was sent yet, so the 500 replaces it."""
    start_response("200 OK", list(TEXT))
    raise ValueError("the application failed after start_response")


def raise_after_chunk(environ, start_response):
    """Raise from the body after its first chunk: the headers and that chunk are out."""
    start_response("200 OK", list(TEXT))

    def body():
        yield b"the first chunk\n"
        raise RuntimeError("the application failed after its first chunk")

    return body()


def post(environ, start_response):
    """Read the body in one ``wsgi.input.read(CONTENT_LENGTH)`` call (as most applications
    do) and describe what arrived: its length, digest and head."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    data = environ["wsgi.input"].read(length)
    start_response("200 OK", list(TEXT))
    lines = [
        "method: %s" % environ["REQUEST_METHOD"],
        "content-length: %d" % length,
        "read: %d" % len(data),
        "sha256: %s" % digest(data),
        "head: %s" % ascii(data[:40]),
    ]
    return [("\n".join(lines) + "\n").encode("ascii")]


def render_value(key, value):
    """A value of the environ that does not vary from run to run, as text."""
    if key == "SERVER_PORT":
        server = CURRENT.get("server")
        port = getattr(server, "server_port", None)
        return "<the server's port>" if value == str(port) else ascii(value)
    if key == "wsgi.input":
        return "<%s>" % type(value).__name__
    if key == "wsgi.errors":
        return "<sys.stderr>" if value is sys.stderr else "<%s>" % type(value).__name__
    if key == "wsgi.file_wrapper":
        return "<%s.%s>" % (value.__module__, value.__qualname__)
    return ascii(value)


def environ_app(environ, start_response):
    """Reply with the sorted CGI and WSGI keys of the environ that do not vary."""
    keys = sorted(
        key
        for key in environ
        if key in STABLE_KEYS or key.startswith("HTTP_") or key.startswith("wsgi.")
    )
    lines = ["%s=%s" % (key, render_value(key, environ[key])) for key in keys]
    start_response("200 OK", list(TEXT))
    return [("\n".join(lines) + "\n").encode("ascii")]


#: 1 MiB, every byte value: more than one send of the socket takes.
LARGE = bytes(range(256)) * 4096


def large(environ, start_response):
    """1 MiB in one chunk (wsgiref sets Content-Length) with one ``write`` to the socket."""
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return [LARGE]


def huge(environ, start_response):
    """8 MiB in one chunk: more than the kernel takes in one send on loopback (about 4 MB)."""
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return [LARGE * 8]


def large_chunks(environ, start_response):
    """1 MiB from a generator of 64 chunks of 16 KiB: no Content-Length."""
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return (LARGE[start : start + 16384] for start in range(0, len(LARGE), 16384))


def rendezvous(environ, start_response):
    """``/wait`` waits (bounded) until a ``/release`` request has arrived; both reply."""
    path = environ["PATH_INFO"]
    if path == "/release":
        RELEASE.set()
        body = b"released the waiting request\n"
    elif path == "/wait":
        released = RELEASE.wait(RENDEZVOUS_WAIT)
        body = b"released\n" if released else b"never released\n"
    else:
        body = b"neither wait nor release\n"
    start_response("200 OK", list(TEXT))
    return [body]


APPS = {
    "hello": hello,
    "status": status,
    "chunks": chunks,
    "generator": generator,
    "write": write_callable,
    "raise_before": raise_before,
    "raise_after_start": raise_after_start,
    "raise_after_chunk": raise_after_chunk,
    "post": post,
    "environ": environ_app,
    "rendezvous": rendezvous,
    "large": large,
    "huge": huge,
    "large_chunks": large_chunks,
    "demo": wsgiref.simple_server.demo_app,
}


class AppServer(wsgiref.simple_server.WSGIServer):
    """``WSGIServer`` serving ``APPS[app_name]`` (``app_name`` set per scenario)."""

    app_name = "hello"

    def __init__(self, *args, **kwargs):
        wsgiref.simple_server.WSGIServer.__init__(self, *args, **kwargs)
        self.set_app(APPS[self.app_name])
        CURRENT["server"] = self


class ThreadingAppServer(socketserver.ThreadingMixIn, AppServer):
    """A WSGI server with a thread per request (how frameworks' development servers
    combine ``ThreadingMixIn`` with ``WSGIServer``)."""
