"""Compare the attribute names of the reference modules' public classes with the stdlib's.

Run by ``tests/test_namespace_hygiene.py`` under each CPython it finds::

    python3.X tests/namespace_probe.py

Stdlib-only and Python 3.9-compatible: it runs under every interpreter the reference
supports. It imports the running interpreter's stdlib ``socketserver`` and ``http.server``,
then installs the reference ones under those names (``harness.substitution``, as the
harness's server processes do) and compares, for every public class of both modules:

* the names ``dir(cls)`` lists;
* the names in ``vars()`` of servers built from both implementations, after construction,
  after ``handle_request()`` answered a request, after ``serve_forever()`` answered one and
  was shut down, and after ``server_close()``;
* the names in ``vars()`` of handler instances while they handle a request and after
  ``finish()`` (for forking servers: in the child, reported back in the reply).

The reference may add only name-mangled names (``_<Class>__name``) of its own classes.
Prints one JSON object on stdout: the interpreter, and per module the public classes,
``__all__`` and the public module-level names of both implementations, the offending names (``extra``: the reference has
them, the stdlib does not; ``missing``: the other way round) by class and by phase, and
``errors`` for whatever could not be probed.
"""

import contextlib
import functools
import itertools
import json
import os
import platform
import shutil
import socket
import sys
import tempfile
import threading
import traceback
import warnings

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 10.0
# Per-request work must not slow the probe down: a short poll interval makes the stdlib's
# shutdown() return quickly.
POLL = 0.01
_CLIENT_NUMBERS = itertools.count()


def public_classes(module, stdname):
    """``{name: class}`` of the public classes defined in ``module`` (named ``stdname``)."""
    found = {}
    for name in dir(module):
        value = getattr(module, name)
        if not name.startswith("_") and isinstance(value, type) and value.__module__ == stdname:
            found[name] = value
    return found


def public_names(module):
    """The public names of ``module``'s namespace (classes, functions, imported modules)."""
    return sorted(name for name in vars(module) if not name.startswith("_"))


def mangled_prefixes(cls, ref_modules):
    """``_<Class>__`` for every class in ``cls``'s MRO that a reference module defines."""
    prefixes = []
    for klass in cls.__mro__:
        for module in ref_modules:
            if vars(module).get(klass.__name__) is klass:
                prefixes.append("_%s__" % klass.__name__.lstrip("_"))
    return tuple(prefixes)


def offending(ref_names, std_names, prefixes):
    """``(extra, missing)``: names only the reference has (less the allowed name-mangled
    ones), names only the stdlib has."""
    extra = sorted(
        name
        for name in set(ref_names) - set(std_names)
        if not (name.startswith(prefixes) and not name.endswith("__"))
    )
    missing = sorted(set(std_names) - set(ref_names))
    return extra, missing


class Report:
    """Collects the findings of one module."""

    def __init__(self):
        self.extra = {}
        self.missing = {}
        self.errors = []
        self.checked = {}

    def compare(self, cls_name, what, ref_names, std_names, prefixes):
        """Record the differences of one comparison, ``what`` naming it (``dir``...)."""
        extra, missing = offending(ref_names, std_names, prefixes)
        self.checked.setdefault(cls_name, []).append(what)
        if extra:
            self.extra.setdefault(cls_name, {})[what] = extra
        if missing:
            self.missing.setdefault(cls_name, {})[what] = missing

    @contextlib.contextmanager
    def guard(self, label):
        """Record an exception raised while probing ``label`` instead of stopping."""
        try:
            yield
        except Exception:
            self.errors.append("%s: %s" % (label, traceback.format_exc(limit=6)))

    def as_dict(self):
        """The JSON-ready findings."""
        return {
            "extra": self.extra,
            "missing": self.missing,
            "errors": self.errors,
            "checked": self.checked,
        }


# -- clients -----------------------------------------------------------------------


def stream_exchange(server, data, serve):
    """Connect to ``server``, send ``data``, let ``serve()`` handle it, read to EOF."""
    client = socket.socket(server.address_family, socket.SOCK_STREAM)
    client.settimeout(TIMEOUT)
    with client:
        client.connect(server.server_address)
        client.sendall(data)
        serve()
        chunks = []
        while True:
            chunk = client.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def datagram_exchange(server, data, serve, workdir):
    """Send ``data`` to ``server`` from a bound socket, let ``serve()`` handle it, read the
    reply datagram."""
    client = socket.socket(server.address_family, socket.SOCK_DGRAM)
    client.settimeout(TIMEOUT)
    with client:
        if server.address_family == socket.AF_INET:
            client.bind(("127.0.0.1", 0))
        else:
            client.bind(os.path.join(workdir, "client-%d.sock" % next(_CLIENT_NUMBERS)))
        client.sendto(data, server.server_address)
        serve()
        return client.recv(65536)


def serve_one_with_serve_forever(server, exchange):
    """Run ``serve_forever()`` in a thread, make one exchange, shut the loop down."""
    thread = threading.Thread(target=server.serve_forever, args=(POLL,))
    thread.start()
    try:
        return exchange(lambda: None)
    finally:
        server.shutdown()
        thread.join(TIMEOUT)


# -- socketserver --------------------------------------------------------------------


def socketserver_handlers(module, finished):
    """Handlers on ``module``'s classes replying with the names in ``vars(self)``; after
    ``finish()`` they append ``(base name, names)`` to ``finished``."""

    def names(handler):
        return json.dumps(sorted(vars(handler))).encode()

    class Stream(module.StreamRequestHandler):
        def handle(self):
            self.rfile.readline()
            self.wfile.write(names(self))

        def finish(self):
            super().finish()
            finished.append(("StreamRequestHandler", sorted(vars(self))))

    class Datagram(module.DatagramRequestHandler):
        def handle(self):
            self.wfile.write(names(self))

        def finish(self):
            super().finish()
            finished.append(("DatagramRequestHandler", sorted(vars(self))))

    class Base(module.BaseRequestHandler):
        def handle(self):
            self.request.recv(100)
            self.request.sendall(names(self))

        def finish(self):
            super().finish()
            finished.append(("BaseRequestHandler", sorted(vars(self))))

    return {"stream": Stream, "datagram": Datagram, "base": Base}


def server_address(cls, workdir, tag):
    """A fresh loopback or Unix-socket address for a server of class ``cls``."""
    if cls.address_family == socket.AF_INET:
        return ("127.0.0.1", 0)
    return os.path.join(workdir, "%s.sock" % tag)


def socketserver_instances(module, names, workdir, tag):
    """Exercise every server class in ``names`` of ``module``; return
    ``{class: {phase: names}}`` for servers and handler classes."""
    finished = []
    handlers = socketserver_handlers(module, finished)
    seen = {}

    def note(cls_name, phase, value):
        seen.setdefault(cls_name, {})[phase] = sorted(value)

    base = module.BaseServer(("127.0.0.1", 0), handlers["stream"])
    note("BaseServer", "instance after construction", vars(base))

    replies = {}
    for name in names:
        cls = getattr(module, name)
        if not (isinstance(cls, type) and issubclass(cls, module.TCPServer)):
            continue
        stream = cls.socket_type == socket.SOCK_STREAM
        handler = handlers["stream" if stream else "datagram"]
        server = cls(server_address(cls, workdir, "%s-%s" % (tag, name)), handler)
        try:
            note(name, "instance after construction", vars(server))
            if stream:
                exchange = functools.partial(stream_exchange, server, b"ping\n")
            else:
                exchange = functools.partial(datagram_exchange, server, b"ping", workdir=workdir)
            replies.setdefault(handler, []).append(exchange(server.handle_request))
            note(name, "instance after handle_request()", vars(server))
            replies[handler].append(serve_one_with_serve_forever(server, exchange))
            note(name, "instance after serve_forever() and shutdown()", vars(server))
        finally:
            server.server_close()
        note(name, "instance after server_close()", vars(server))

    # BaseRequestHandler on its own, in a plain TCP server.
    server = module.TCPServer(("127.0.0.1", 0), handlers["base"])
    with server:
        replies[handlers["base"]] = [stream_exchange(server, b"ping", server.handle_request)]

    for handler, base_name in (
        (handlers["stream"], "StreamRequestHandler"),
        (handlers["datagram"], "DatagramRequestHandler"),
        (handlers["base"], "BaseRequestHandler"),
    ):
        during = set()
        for reply in replies.get(handler, []):
            during.update(json.loads(reply.decode()))
        note(base_name, "instance in handle()", during)
        after = set()
        for finished_name, value in finished:
            if finished_name == base_name:
                after.update(value)
        note(base_name, "instance after finish()", after)
    return seen


# -- http.server ---------------------------------------------------------------------


def http_instances(module, workdir, tag):
    """Serve two GETs with each handler class of ``module``; return ``{class: {phase:
    names}}`` for the servers and the handlers."""
    finished = {}
    seen = {}

    def record(cls_name):
        def finish(self):
            super(type(self), self).finish()
            finished.setdefault(cls_name, set()).update(vars(self))

        return finish

    class Base(module.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"hello\n"
            if self.path != "/":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):
            """Keep the probe's stderr for errors."""

    handlers = {"BaseHTTPRequestHandler": Base}
    for name in ("SimpleHTTPRequestHandler", "CGIHTTPRequestHandler"):
        cls = getattr(module, name, None)
        if cls is not None:
            handlers[name] = type(name + "Probe", (cls,), {"log_message": Base.log_message})
    for name, handler in handlers.items():
        handler.finish = record(name)

    site = os.path.join(workdir, "site-%s" % tag)
    os.mkdir(site)
    with open(os.path.join(site, "file.txt"), "w") as f:
        f.write("content\n")

    for server_name in ("HTTPServer", "ThreadingHTTPServer"):
        server_cls = getattr(module, server_name, None)
        if server_cls is None:
            continue
        for handler_name, handler in handlers.items():
            if handler_name == "BaseHTTPRequestHandler":
                factory = handler
            else:
                factory = functools.partial(handler, directory=site)
            server = server_cls(("127.0.0.1", 0), factory)
            with server:
                if handler_name == "BaseHTTPRequestHandler":
                    seen.setdefault(server_name, {}).setdefault(
                        "instance after construction", sorted(vars(server))
                    )
                for path in ("/", "/file.txt", "/missing"):
                    request = ("GET %s HTTP/1.0\r\nHost: probe\r\n\r\n" % path).encode()
                    stream_exchange(server, request, server.handle_request)
                phase = "instance after handle_request()"
                names = set(seen.setdefault(server_name, {}).get(phase, ()))
                seen[server_name][phase] = sorted(names | set(vars(server)))
    for handler_name, names in finished.items():
        seen.setdefault(handler_name, {})["instance after finish()"] = sorted(names)
    return seen


# -- the comparison -------------------------------------------------------------------


def compare_module(stdname, std_module, ref_module, ref_modules, instances, workdir):
    """The findings for one module: class sets, ``__all__``, ``dir()`` and instances."""
    report = Report()
    std_classes = public_classes(std_module, stdname)
    ref_classes = public_classes(ref_module, stdname)
    result = {
        "classes only in reference": sorted(set(ref_classes) - set(std_classes)),
        "classes only in stdlib": sorted(set(std_classes) - set(ref_classes)),
        "__all__ of reference": list(getattr(ref_module, "__all__", [])),
        "__all__ of stdlib": list(getattr(std_module, "__all__", [])),
        "names only in reference": sorted(
            set(public_names(ref_module)) - set(public_names(std_module))
        ),
        "names only in stdlib": sorted(
            set(public_names(std_module)) - set(public_names(ref_module))
        ),
    }
    common = sorted(set(std_classes) & set(ref_classes))
    for name in common:
        with report.guard("dir(%s)" % name):
            prefixes = mangled_prefixes(ref_classes[name], ref_modules)
            report.compare(
                name, "dir(class)", dir(ref_classes[name]), dir(std_classes[name]), prefixes
            )
    with report.guard("instances"):
        std_seen = instances(std_module, common, workdir, "std")
        ref_seen = instances(ref_module, common, workdir, "ref")
        for name in sorted(set(std_seen) | set(ref_seen)):
            prefixes = mangled_prefixes(ref_classes.get(name, object), ref_modules)
            std_phases = std_seen.get(name, {})
            ref_phases = ref_seen.get(name, {})
            for phase in sorted(set(std_phases) | set(ref_phases)):
                if phase not in std_phases or phase not in ref_phases:
                    report.errors.append("%s: %r seen on one side only" % (name, phase))
                    continue
                report.compare(name, phase, ref_phases[phase], std_phases[phase], prefixes)
    result.update(report.as_dict())
    return result


def main():
    """Probe both modules and print the findings as JSON."""
    warnings.simplefilter("ignore")  # CGIHTTPRequestHandler is deprecated in 3.13
    import http.server as std_http_server
    import socketserver as std_socketserver

    sys.path.insert(0, REPO)
    from harness.substitution import install_module

    del sys.modules["socketserver"], sys.modules["http.server"]
    ref_socketserver = install_module("socketserver", "implementation.socketserver")
    output = {
        "python": platform.python_version(),
        "executable": sys.executable,
        "modules": {},
    }
    errors = []
    ref_http_server = None
    try:
        ref_http_server = install_module(
            "http.server", os.path.join(REPO, "implementation", "http", "server.py")
        )
    except Exception:
        errors.append("importing the reference http.server: " + traceback.format_exc(limit=6))
    ref_modules = [m for m in (ref_socketserver, ref_http_server) if m is not None]

    workdir = tempfile.mkdtemp(prefix="namespace-probe-")
    try:
        output["modules"]["socketserver"] = compare_module(
            "socketserver",
            std_socketserver,
            ref_socketserver,
            ref_modules,
            socketserver_instances,
            workdir,
        )
        if ref_http_server is not None:
            output["modules"]["http.server"] = compare_module(
                "http.server",
                std_http_server,
                ref_http_server,
                ref_modules,
                lambda module, names, workdir, tag: http_instances(module, workdir, tag),
                workdir,
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    output["errors"] = errors
    json.dump(output, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
