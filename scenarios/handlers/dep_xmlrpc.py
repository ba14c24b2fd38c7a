"""XML-RPC servers for the ``dependents/xmlrpc`` family: the stdlib's ``xmlrpc.server`` on
top of the target's ``socketserver`` and ``http.server``.

``xmlrpc.server`` is imported here, after the agent has installed the target's modules
under the stdlib names, so ``SimpleXMLRPCServer`` derives from the target's
``socketserver.TCPServer`` and ``SimpleXMLRPCRequestHandler`` from its
``BaseHTTPRequestHandler``. Any name a target adds to those classes that clashes with a
name of ``xmlrpc.server`` (``_dispatch``, ``system_listMethods``, ...) shows in what the
clients get. Stdlib-only, Python 3.9-compatible.

Each server registers its functions in ``__init__``; what it registers besides the
functions is chosen by class attributes (``xr_*``, set per scenario through
``server_attrs``), named so that they clash with nothing of ``socketserver`` or
``xmlrpc.server``.
"""

import datetime
import http.server
import socketserver
import xmlrpc.server
from xmlrpc.client import Binary, DateTime, Fault

# xmlrpc.server must have been imported on the target's modules: had anything imported it
# before the agent installed them, every target would run the stdlib's and look the same.
if (
    xmlrpc.server.socketserver is not socketserver
    or xmlrpc.server.BaseHTTPRequestHandler is not http.server.BaseHTTPRequestHandler
):
    raise ImportError("xmlrpc.server was imported before the target's modules were installed")

SimpleXMLRPCServer = xmlrpc.server.SimpleXMLRPCServer


# -- the functions every server exports ------------------------------------------------


def add(a, b):
    """Return the sum of a and b (ints, floats or both)."""
    return a + b


def echo(value):
    """Return the value unchanged, as the server decoded it."""
    return value


def describe(value):
    """Return [type name, text] of the value the server decoded from the request."""
    if isinstance(value, Binary):
        return ["Binary", value.data.hex()]
    if isinstance(value, DateTime):
        return ["DateTime", value.value]
    if isinstance(value, (bytes, bytearray)):
        return [type(value).__name__, bytes(value).hex()]
    if isinstance(value, datetime.datetime):
        return ["datetime", value.isoformat()]
    if isinstance(value, dict):
        return ["dict", [[key, describe(item)] for key, item in sorted(value.items())]]
    if isinstance(value, (list, tuple)):
        return [type(value).__name__, [describe(item) for item in value]]
    return [type(value).__name__, repr(value)]


def nothing():
    """Return None (a fault unless the server allows None)."""
    return None


def huge():
    """Return an int beyond XML-RPC's 32 bits (a fault from the marshaller)."""
    return 2**40


def raise_fault():
    """Raise an xmlrpc Fault with a code and a non-ASCII string."""
    raise Fault(42, "no answer here: \u00e9\u2713")


def raise_error():
    """Raise an ordinary exception (a ValueError)."""
    raise ValueError("bad value \u00fc")


def text(size):
    """Return a text of ``size`` characters (a cycle of letters and digits)."""
    pattern = "abcdefghijklmnopqrstuvwxyz0123456789\n"
    return (pattern * (size // len(pattern) + 1))[:size]


def length(value):
    """Return the length of a string or of binary data."""
    if isinstance(value, Binary):
        return len(value.data)
    return len(value)


FUNCTIONS = (add, echo, describe, nothing, huge, raise_fault, raise_error, text, length)


# -- instances ---------------------------------------------------------------------------


class Inner:
    """Reached only through a dotted name (``sub.ping``)."""

    def ping(self, value):
        """Return ['pong', value]."""
        return ["pong", value]

    def _private(self):
        """Never callable over XML-RPC: its name starts with '_'."""
        return "private"


class Plain:
    """An instance without ``_dispatch``: its public methods are looked up by name."""

    def __init__(self):
        self.sub = Inner()

    def greet(self, name):
        """Return a greeting for name."""
        return "hello, %s" % name

    def add(self, a, b):
        """Shadowed by the registered function of the same name."""
        return "instance add"

    def _hidden(self):
        """Never callable over XML-RPC: its name starts with '_'."""
        return "hidden"


class Dispatching:
    """An instance with its own ``_dispatch``: it receives every unregistered name."""

    def _dispatch(self, method, params):
        if method == "boom":
            raise Fault(7, "dispatching instance refuses %s" % method)
        return ["dispatched", method, list(params)]

    def _listMethods(self):
        return ["virtual.one", "virtual.two"]

    def _methodHelp(self, method):
        return "help for %s from the instance" % method

    def _get_method_argstring(self, method):
        return "(x, y)"


INSTANCES = {"plain": Plain, "dispatching": Dispatching}


def register(server):
    """Register the functions, and what the server's ``xr_*`` attributes ask for."""
    for function in FUNCTIONS:
        server.register_function(function)
    server.register_function(lambda: server.xr_count(), "count")
    kind = getattr(server, "xr_instance", "")
    if kind:
        server.register_instance(INSTANCES[kind](), allow_dotted_names=server.xr_dotted)
    if server.xr_introspection:
        server.register_introspection_functions()
    if server.xr_multicall:
        server.register_multicall_functions()


class Options:
    """The ``xr_*`` options of a server, and a call counter kept by the server."""

    xr_instance = ""
    xr_dotted = False
    xr_introspection = False
    xr_multicall = False
    xr_calls = 0

    def xr_count(self):
        """Count calls to ``count`` on this server: shows a kept-alive connection's state."""
        self.xr_calls += 1
        return self.xr_calls


class FunctionsServer(Options, SimpleXMLRPCServer):
    """A SimpleXMLRPCServer exporting ``FUNCTIONS`` (and more, by ``xr_*`` options)."""

    def __init__(self, *args, **kwargs):
        SimpleXMLRPCServer.__init__(self, *args, **kwargs)
        register(self)


class ThreadingFunctionsServer(socketserver.ThreadingMixIn, FunctionsServer):
    """``FunctionsServer`` with a thread per connection: the usual production recipe."""


class MultiPathServer(Options, xmlrpc.server.MultiPathXMLRPCServer):
    """A MultiPathXMLRPCServer with a dispatcher at /alpha and another at /beta.

    Both export ``which`` (naming their path) and ``add``; only /beta has introspection.
    """

    def __init__(self, *args, **kwargs):
        xmlrpc.server.MultiPathXMLRPCServer.__init__(self, *args, **kwargs)
        for path in ("/alpha", "/beta"):
            dispatcher = xmlrpc.server.SimpleXMLRPCDispatcher(allow_none=True)
            dispatcher.register_function(lambda path=path: path, "which")
            dispatcher.register_function(add)
            self.add_dispatcher(path, dispatcher)
        self.get_dispatcher("/beta").register_introspection_functions()


class DocServer(Options, xmlrpc.server.DocXMLRPCServer):
    """A DocXMLRPCServer exporting ``FUNCTIONS``, with the title, name and documentation
    given by ``xr_title``, ``xr_name`` and ``xr_documentation`` (None keeps the default)."""

    xr_title = None
    xr_name = None
    xr_documentation = None

    def __init__(self, *args, **kwargs):
        xmlrpc.server.DocXMLRPCServer.__init__(self, *args, **kwargs)
        register(self)
        if self.xr_title is not None:
            self.set_server_title(self.xr_title)
        if self.xr_name is not None:
            self.set_server_name(self.xr_name)
        if self.xr_documentation is not None:
            self.set_server_documentation(self.xr_documentation)
