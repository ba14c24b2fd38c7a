"""``dependents/xmlrpc``: the stdlib's ``xmlrpc.server`` running on each target's modules.

``SimpleXMLRPCServer`` is ``socketserver.TCPServer`` plus ``SimpleXMLRPCDispatcher``, and its
handler is a ``BaseHTTPRequestHandler``: a name an implementation adds to those classes can
win over xmlrpc's own in the MRO (a ``_dispatch`` on ``BaseServer`` breaks every call while
every other scenario stays ``same``). These scenarios run the real servers of
``xmlrpc.server`` (built in ``scenarios.handlers.dep_xmlrpc``) on the target and drive them
with two clients:

- ``xmlrpc.client.ServerProxy`` in a worker thread (bounded by a socket timeout): what a
  program sees, values with their types, ``Fault`` codes and strings, protocol errors;
- raw bytes through ``exchange``: the replies byte for byte (Date and Server normalized).

The server's log lines (stderr) and hook events are compared as for every scenario.
"""

from __future__ import annotations

import dataclasses
import datetime
import gzip
import hashlib
import re
import xmlrpc.client
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import trio

from harness.clients import render_bytes
from harness.observation import normalize_http
from harness.scenario import Run, ServerSpec, scenario
from scenarios._http_common import exchange

FAMILY = "dependents/xmlrpc"
HANDLERS = "scenarios.handlers.dep_xmlrpc"
SIMPLE_HANDLER = "xmlrpc.server:SimpleXMLRPCRequestHandler"
DOC_HANDLER = "xmlrpc.server:DocXMLRPCRequestHandler"

#: serve_forever's poll interval: stop_serving waits up to this long.
POLL = 0.05
#: Every socket operation of a ServerProxy client gives up after this long.
CLIENT_TIMEOUT = 5.0
#: How long a read on a kept-alive connection waits for more bytes.
IDLE = 0.5
#: SimpleXMLRPCRequestHandler reads a body in chunks of this size (10 MiB).
CHUNK = 10 * 1024 * 1024


def spec(
    server: str = "FunctionsServer",
    handler: str = SIMPLE_HANDLER,
    *,
    handler_attrs: dict[str, Any] | None = None,
    kwargs: dict[str, Any] | None = None,
    family: str | None = None,
    **attrs: Any,
) -> ServerSpec:
    """A server of ``scenarios.handlers.dep_xmlrpc`` with ``xr_*`` options as ``attrs``."""
    return ServerSpec(
        f"{HANDLERS}:{server}",
        handler=handler,
        family=family,
        server_attrs=dict(attrs),
        handler_attrs=dict(handler_attrs or {}),
        server_kwargs=dict(kwargs or {}),
    )


# -- raw requests ----------------------------------------------------------------------------


def call_body(method: str, *params: Any, allow_none: bool = False) -> bytes:
    """The XML of a methodCall, as ``xmlrpc.client`` writes it."""
    return xmlrpc.client.dumps(params, method, allow_none=allow_none).encode("utf-8")


def post(
    body: bytes,
    path: str = "/RPC2",
    *,
    version: str = "HTTP/1.0",
    headers: Sequence[tuple[str, str]] = (),
    length: str | None = "auto",
) -> bytes:
    """A POST of ``body``; ``length`` is the Content-Length value (None: no such header)."""
    lines = [f"POST {path} {version}", "Host: h", "Content-Type: text/xml"]
    lines += [f"{name}: {value}" for name, value in headers]
    if length == "auto":
        length = str(len(body))
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def get(path: str = "/", method: str = "GET") -> bytes:
    """A bodiless request (HTTP/1.0)."""
    return f"{method} {path} HTTP/1.0\r\nHost: h\r\n\r\n".encode("latin-1")


@dataclasses.dataclass(frozen=True)
class Raw:
    """One request on a connection of its own, the reply recorded byte for byte.

    ``fault`` records a Fault reply as what the server did rather than as bytes
    (``fault_record``): ``"class"`` keeps the exception class of its faultString,
    ``"message"`` the message too (where the message shows what the server did).
    """

    request: bytes
    half_close: bool = False
    idle: float | None = None
    fault: str | None = None


#: A faultString as ``_marshaled_dispatch`` writes it: ``"%s:%s" % (type, value)``.
_FAULT_STRING = re.compile(r"(<class '[\w.]+'>):(.*)", re.DOTALL)
_CONTENT_LENGTH = re.compile(r"^(Content-length): (\d+)(\r?)$", re.MULTILINE | re.IGNORECASE)


def fault_record(record: dict[str, Any], keep_message: bool) -> dict[str, Any]:
    """A Fault reply of ``exchange`` as what the server did: its status line and headers,
    the Fault's code and the class of the exception it reports (and its message when
    ``keep_message``), how the connection ended.

    The text of an exception raised by another module (expat's class, which PyPy names
    ``pyexpat.ExpatError``; the interpreter's wording of a TypeError) is not the server's
    doing, yet it sets the Content-length: a Content-length that counts the body is
    recorded as such, any other value as it is. A reply that is not a Fault is kept
    whole.
    """
    head, sep, body = record.get("reply", "").partition("\r\n\r\n")
    if not sep or "body" in record:
        return record
    try:
        xmlrpc.client.loads(body.encode("latin-1"))
    except xmlrpc.client.Fault as fault:
        code, string = fault.faultCode, fault.faultString
    except Exception:  # not XML-RPC at all: the bytes are the fact
        return record
    else:
        return record
    parsed = _FAULT_STRING.fullmatch(string) if isinstance(string, str) else None
    # The class as its repr: the engine reads every spelling of a class as one name.
    reported: dict[str, Any] = {"code": code, "class": parsed.group(1) if parsed else None}
    if keep_message or parsed is None:
        reported["message"] = parsed.group(2) if parsed else string

    def length(match: re.Match[str]) -> str:
        if int(match.group(2)) != len(body):
            return match.group(0)
        return f"{match.group(1)}: <the body's length>{match.group(3)}"

    rest = {key: value for key, value in record.items() if key != "reply"}
    return {"head": _CONTENT_LENGTH.sub(length, head) + sep, "fault": reported, **rest}


# -- the ServerProxy client ------------------------------------------------------------------


class Transport(xmlrpc.client.Transport):
    """The stdlib transport with a socket timeout, so that every call is bounded.

    ``encode_threshold`` (None by default) makes it gzip requests longer than that.
    """

    def __init__(self, *, encode_threshold: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.encode_threshold = encode_threshold

    def make_connection(self, host: Any) -> Any:
        """The cached HTTPConnection, with the timeout set before it connects."""
        connection = super().make_connection(host)
        connection.timeout = CLIENT_TIMEOUT
        return connection


def url(run: Run, path: str) -> str:
    """The URL of ``path`` on the server under test (IPv4 or IPv6 loopback)."""
    host, port = run.address[0], run.address[1]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}{path}"


def typed(value: Any) -> Any:
    """A value the client decoded, as JSON that keeps its types (1, 1.0 and True differ)."""
    if isinstance(value, list):
        return [typed(item) for item in value]
    if isinstance(value, tuple):
        return {"tuple": [typed(item) for item in value]}
    if isinstance(value, dict):
        return {"dict": {str(key): typed(item) for key, item in value.items()}}
    if isinstance(value, xmlrpc.client.Binary):
        return f"Binary:{value.data.hex()}"
    if isinstance(value, xmlrpc.client.DateTime):
        return f"DateTime:{value.value}"
    if isinstance(value, (bytes, bytearray)):
        return f"{type(value).__name__}:{bytes(value).hex()}"
    if isinstance(value, str) and len(value) > 512:
        digest = hashlib.sha256(value.encode("utf-8")).hexdigest()[:16]
        return f"str:<{len(value)} chars sha256:{digest}>"
    return f"{type(value).__name__}:{value!r}"


def outcome_of(call: Callable[[], Any], port: int) -> dict[str, Any]:
    """Run one client call: its value, or what it raised (``failure``)."""
    try:
        return {"value": typed(call())}
    except Exception as exc:  # what a client program would see: part of the observation
        return failure(exc, port)


def failure(exc: Exception, port: int) -> dict[str, Any]:
    """What a client call raised: a Fault's code and string, a ProtocolError's status, or
    the exception's type and message (the server's port taken out)."""
    if isinstance(exc, xmlrpc.client.Fault):
        return {"fault": [exc.faultCode, exc.faultString]}
    if isinstance(exc, xmlrpc.client.ProtocolError):
        return {"protocol_error": [exc.errcode, exc.errmsg]}
    return {"raised": f"{type(exc).__name__}: {exc}".replace(str(port), "PORT")}


def calls_on(proxy: Any, calls: Sequence[tuple[Any, ...]], port: int) -> list[dict[str, Any]]:
    """Each ``(method, *args)`` called through ``proxy``, with its outcome."""
    results = []
    for method, *args in calls:
        outcome = outcome_of(lambda method=method, args=args: getattr(proxy, method)(*args), port)
        results.append({"call": method, **outcome})
    return results


async def with_proxy(
    run: Run,
    work: Callable[[Any, int], Any],
    path: str = "/RPC2",
    *,
    allow_none: bool = False,
    use_builtin_types: bool = False,
    encode_threshold: int | None = None,
) -> Any:
    """``work(proxy, port)`` in a worker thread, on a ServerProxy closed afterwards."""
    target = url(run, path)
    port = run.address[1]

    def client() -> Any:
        transport = Transport(
            encode_threshold=encode_threshold, use_builtin_types=use_builtin_types
        )
        with xmlrpc.client.ServerProxy(target, transport=transport, allow_none=allow_none) as proxy:
            return work(proxy, port)

    return await trio.to_thread.run_sync(client)


async def proxy_calls(
    run: Run, calls: Sequence[tuple[Any, ...]], path: str = "/RPC2", **options: Any
) -> list[dict[str, Any]]:
    """The outcomes of ``calls`` made through one ServerProxy."""
    return await with_proxy(run, lambda proxy, port: calls_on(proxy, calls, port), path, **options)


# -- a table of scenarios --------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Case:
    """A scenario made of ServerProxy calls on ``path`` and raw exchanges, in that order."""

    name: str
    doc: str
    server: ServerSpec = dataclasses.field(default_factory=spec)
    calls: tuple[tuple[Any, ...], ...] = ()
    raw: tuple[Raw, ...] = ()
    path: str = "/RPC2"
    proxy: dict[str, Any] = dataclasses.field(default_factory=dict)
    stderr: str = "text"


def case_body(case: Case) -> Callable[[Run], Awaitable[None]]:
    """Serve, make the calls, then the exchanges, then stop serving."""

    async def body(run: Run) -> None:
        serve = run.serve_forever(POLL)
        if case.calls:
            run.record("calls", await proxy_calls(run, case.calls, case.path, **case.proxy))
        for index, raw in enumerate(case.raw, 1):
            record = await exchange(run, raw.request, half_close=raw.half_close, idle=raw.idle)
            if raw.fault is not None:
                record = fault_record(record, keep_message=raw.fault == "message")
            run.record(f"reply{index}", record)
        run.record("stop", await run.stop_serving(serve))

    return body


def register(cases: Sequence[Case]) -> None:
    """One scenario ``dependents/xmlrpc/<name>`` per case."""
    for case in cases:
        scenario(
            f"{FAMILY}/{case.name}",
            server=case.server,
            description=case.doc,
            stderr=case.stderr,
        )(case_body(case))


NON_ASCII = "h\u00e9llo \u2713 \u65e5\u672c \U0001f600 <&>"
WHEN = datetime.datetime(2024, 2, 29, 23, 59, 58)
BLOB = bytes(range(256))

#: The calls of the type scenarios with and without builtin types.
BINARY_CALLS = (
    ("echo", xmlrpc.client.Binary(b"\x00\xffbin")),
    ("echo", b"raw bytes \x00\x01"),
    ("describe", xmlrpc.client.Binary(BLOB)),
    ("describe", b"\xfe"),
    ("echo", xmlrpc.client.DateTime("20240229T23:59:58")),
    ("echo", WHEN),
    ("describe", xmlrpc.client.DateTime(WHEN)),
    ("describe", WHEN),
    ("length", xmlrpc.client.Binary(b"x" * 100)),
    ("echo", [xmlrpc.client.Binary(b"in a list"), {"when": WHEN}]),
)

CASES = [
    Case(
        "scalars",
        "Registered functions with ints, floats, booleans and non-ASCII strings: values "
        "round-trip with their types; an int beyond 32 bits is a marshalling Fault.",
        calls=(
            ("add", 2, 3),
            ("add", 1.5, 2.25),
            ("add", 2, 0.5),
            ("add", "con", "cat"),
            ("echo", NON_ASCII),
            ("echo", ""),
            ("echo", True),
            ("echo", False),
            ("echo", -2147483648),
            ("echo", 2147483647),
            ("echo", 1e300),
            ("echo", -0.0),
            ("describe", 7),
            ("describe", True),
            ("describe", 0.1),
            ("describe", NON_ASCII),
            ("huge",),
        ),
    ),
    Case(
        "raw_call",
        "A call as raw bytes, HTTP/1.0 and HTTP/1.1 with Connection: close, on / and "
        "/RPC2: the 200 reply byte for byte (status line, headers, XML).",
        raw=(
            Raw(post(call_body("add", 2, 3))),
            Raw(post(call_body("echo", NON_ASCII), "/")),
            Raw(
                post(
                    call_body("describe", [1, "a"]),
                    version="HTTP/1.1",
                    headers=[("Connection", "close")],
                )
            ),
        ),
    ),
    Case(
        "none_allowed",
        "allow_none on the server and the client: None goes both ways as <nil/>.",
        server=spec(kwargs={"allow_none": True}),
        calls=(("echo", None), ("describe", None), ("nothing",), ("echo", [None, 1, {"k": None}])),
        proxy={"allow_none": True},
        raw=(Raw(post(call_body("nothing"))),),
    ),
    Case(
        "none_refused",
        "Without allow_none on the server, returning None is a Fault; the server still "
        "decodes a <nil/> it receives.",
        calls=(("nothing",), ("echo", None), ("describe", None)),
        proxy={"allow_none": True},
        raw=(Raw(post(call_body("nothing"))),),
    ),
    Case(
        "containers",
        "Arrays, structs, empty ones and nested ones round-trip; a tuple arrives as a list.",
        calls=(
            ("echo", [1, "two", 3.0, True]),
            ("echo", {"a": 1, "b": [1, 2], NON_ASCII: "key"}),
            ("echo", []),
            ("echo", {}),
            ("echo", {"list": [{"x": [1, {"y": NON_ASCII}]}, []], "n": {"m": {}}}),
            ("echo", (1, 2)),
            ("describe", {"b": [1, 2.5], "a": (True,)}),
        ),
    ),
    Case(
        "binary_datetime",
        "Binary, bytes and DateTime values: the server sees Binary and DateTime objects "
        "(use_builtin_types off) and sends them back.",
        calls=BINARY_CALLS,
    ),
    Case(
        "builtin_types",
        "use_builtin_types on the server and the client: bytes and datetime both ways.",
        server=spec(kwargs={"use_builtin_types": True}),
        calls=BINARY_CALLS,
        proxy={"use_builtin_types": True},
    ),
    Case(
        "encoding_latin1",
        "A server with encoding='iso-8859-1': its replies declare it, and characters "
        "outside Latin-1 become character references.",
        server=spec(kwargs={"encoding": "iso-8859-1"}),
        calls=(("echo", NON_ASCII), ("describe", "\u00e9\u2713")),
        raw=(Raw(post(call_body("echo", NON_ASCII))),),
    ),
    Case(
        "instance_plain",
        "register_instance without _dispatch: public methods are called by name, a "
        "registered function wins over a method, private and dotted names are refused "
        "(allow_dotted_names=False).",
        server=spec(xr_instance="plain"),
        calls=(
            ("greet", "w\u00f6rld"),
            ("add", 1, 2),
            ("_hidden",),
            ("sub.ping", 1),
            ("sub",),
            ("nosuch",),
        ),
        raw=(Raw(post(call_body("sub.ping", 1))),),
    ),
    Case(
        "instance_dotted",
        "allow_dotted_names=True: a dotted name is resolved through attributes, but no "
        "segment may start with '_'.",
        server=spec(xr_instance="plain", xr_dotted=True),
        calls=(
            ("sub.ping", 1),
            ("sub._private",),
            ("_hidden",),
            ("sub.nope",),
            ("greet", "x"),
            ("add", 1, 2),
        ),
        raw=(Raw(post(call_body("sub.ping", [1]))),),
    ),
    Case(
        "instance_dispatch",
        "An instance with its own _dispatch receives every name no function has; a Fault "
        "it raises reaches the client; registered functions still come first.",
        server=spec(xr_instance="dispatching"),
        calls=(
            ("anything.at.all", 1, "two"),
            ("_private", 1),
            ("boom",),
            ("add", 1, 2),
        ),
        raw=(Raw(post(call_body("virtual", 1))),),
    ),
    Case(
        "introspection",
        "register_introspection_functions with a plain instance: system.listMethods, "
        "system.methodHelp (a function's, a method's, an unknown one's) and "
        "system.methodSignature.",
        server=spec(xr_instance="plain", xr_introspection=True),
        calls=(
            ("system.listMethods",),
            ("system.methodHelp", "add"),
            ("system.methodHelp", "greet"),
            ("system.methodHelp", "sub.ping"),
            ("system.methodHelp", "nosuch"),
            ("system.methodHelp", "system.methodHelp"),
            ("system.methodSignature", "add"),
        ),
        raw=(Raw(post(call_body("system.listMethods"))),),
    ),
    Case(
        "introspection_dispatching",
        "Introspection with a dispatching instance: its _listMethods and _methodHelp are used.",
        server=spec(xr_instance="dispatching", xr_introspection=True),
        calls=(
            ("system.listMethods",),
            ("system.methodHelp", "virtual.one"),
            ("system.methodHelp", "echo"),
        ),
    ),
    Case(
        "fault_raised",
        "A function raising Fault(42, ...): the client gets that code and string.",
        calls=(("raise_fault",), ("add", 1, 1)),
        raw=(Raw(post(call_body("raise_fault"))),),
    ),
    Case(
        "exception_raised",
        "A function raising ValueError, or called with the wrong number of arguments: "
        "Fault 1 with the exception's type and message, nothing on stderr but the log.",
        calls=(("raise_error",), ("add", 1), ("echo",), ("add", 1, "x")),
        raw=(Raw(post(call_body("raise_error"))),),
    ),
    Case(
        "unknown_method",
        "An unknown method: Fault 1, 'method ... is not supported'.",
        calls=(("nosuch",), ("system.listMethods",), ("system.multicall", [])),
        raw=(Raw(post(call_body("nosuch", 1))),),
    ),
    Case(
        "malformed_xml",
        "Bodies that are not a methodCall: garbage, truncated XML, a methodResponse, an "
        "empty body: each a Fault reply with status 200 (its code and exception class; "
        "the parser's messages are expat's).",
        raw=(
            Raw(post(b"this is not xml"), fault="class"),
            Raw(post(call_body("add", 1, 2)[:-20]), fault="class"),
            Raw(post(xmlrpc.client.dumps((1,), methodresponse=True).encode()), fault="class"),
            Raw(post(b""), fault="class"),
            Raw(post(b"<?xml version='1.0'?><methodCall><params/></methodCall>"), fault="class"),
        ),
    ),
    Case(
        "non_post",
        "GET, HEAD and PUT to SimpleXMLRPCRequestHandler: 501 Unsupported method.",
        raw=(Raw(get("/RPC2")), Raw(get("/RPC2", "HEAD")), Raw(get("/RPC2", "PUT"))),
    ),
    Case(
        "wrong_path",
        "A path outside rpc_paths (the default ('/', '/RPC2', '/pydoc.css')): 404 'No "
        "such page' to raw requests and a ProtocolError to ServerProxy; a query string "
        "makes the path another one.",
        calls=(("add", 1, 2),),
        path="/nowhere",
        raw=(Raw(post(call_body("add", 1, 2), "/nowhere")), Raw(post(call_body("add"), "/?x"))),
    ),
    Case(
        "rpc_paths_custom",
        "rpc_paths=['/api']: /api answers, /RPC2 is 404.",
        server=spec(handler_attrs={"rpc_paths": ["/api"]}),
        calls=(("add", 1, 2),),
        path="/api",
        raw=(Raw(post(call_body("add", 1, 2), "/RPC2")),),
    ),
    Case(
        "rpc_paths_empty",
        "Empty rpc_paths: every path is an RPC path.",
        server=spec(handler_attrs={"rpc_paths": []}),
        calls=(("add", 1, 2),),
        path="/any/where?at=all",
        raw=(Raw(post(call_body("add", 1, 2), "/elsewhere")),),
    ),
    Case(
        "gzip_request",
        "Requests with Content-Encoding: gzip (from ServerProxy with encode_threshold=0, "
        "and raw, the header in any case) are decoded before dispatch.",
        calls=(("echo", NON_ASCII), ("length", "y" * 5000)),
        proxy={"encode_threshold": 0},
        raw=(
            Raw(
                post(
                    gzip.compress(call_body("add", 20, 22), mtime=0),
                    headers=[("Content-Encoding", "gzip")],
                )
            ),
            Raw(
                post(
                    gzip.compress(call_body("echo", "GZ"), mtime=0),
                    headers=[("Content-Encoding", "GZIP")],
                )
            ),
        ),
    ),
    Case(
        "gzip_request_bad",
        "A body that is not gzip under Content-Encoding: gzip is 400; an unknown "
        "encoding is 501; identity is read as is.",
        raw=(
            Raw(post(call_body("add", 1, 2), headers=[("Content-Encoding", "gzip")])),
            Raw(post(call_body("add", 1, 2), headers=[("Content-Encoding", "br")])),
            Raw(post(call_body("add", 1, 2), headers=[("Content-Encoding", "identity")])),
        ),
    ),
    Case(
        "multipath",
        "MultiPathXMLRPCServer with dispatchers at /alpha and /beta: each path reaches "
        "its own; a path in rpc_paths without a dispatcher is Fault 1 (KeyError); one "
        "outside rpc_paths is 404.",
        server=spec(
            "MultiPathServer",
            handler_attrs={"rpc_paths": ["/alpha", "/beta", "/gamma"]},
            kwargs={"allow_none": True},
        ),
        raw=(
            Raw(post(call_body("which"), "/alpha")),
            Raw(post(call_body("which"), "/beta")),
            Raw(post(call_body("system.listMethods"), "/beta")),
            Raw(post(call_body("system.listMethods"), "/alpha")),
            Raw(post(call_body("add", 1, 2), "/gamma")),
            Raw(post(call_body("add", 1, 2), "/RPC2")),
        ),
    ),
    Case(
        "log_requests_on",
        "logRequests=True (the default): one log line per request, the error line of a 501.",
        calls=(("add", 1, 2), ("raise_fault",)),
        raw=(Raw(get("/RPC2")), Raw(post(call_body("add", 1, 2), "/nowhere"))),
    ),
    Case(
        "log_requests_off",
        "logRequests=False: no request lines; send_error's 'code 501' line still comes "
        "through log_error.",
        server=spec(kwargs={"logRequests": False}),
        calls=(("add", 1, 2), ("raise_fault",)),
        raw=(Raw(get("/RPC2")), Raw(post(call_body("add", 1, 2), "/nowhere"))),
    ),
    Case(
        "content_length_short",
        "A Content-Length shorter than the body: the server parses the truncated XML "
        "(a Fault whose message says where the parse stopped: at byte 100) and leaves "
        "the rest unread.",
        raw=(Raw(post(call_body("add", 1, 2), length="100"), fault="message"),),
    ),
    Case(
        "content_length_long",
        "A Content-Length longer than the body, the client half-closed: the server "
        "reads to EOF and dispatches what it got.",
        raw=(Raw(post(call_body("add", 1, 2), length="100000"), half_close=True),),
    ),
    Case(
        "content_length_bad",
        "No Content-Length, a non-numeric one, a negative one (the client half-closed): "
        "500 with an empty body; -1 first reads to EOF, then the next, negative read fails.",
        raw=(
            Raw(post(call_body("add", 1, 2), length=None)),
            Raw(post(call_body("add", 1, 2), length="abc")),
            Raw(post(call_body("add", 1, 2), length="-1"), half_close=True),
        ),
    ),
    Case(
        "large_body",
        "A body longer than the 10 MiB chunk the handler reads at a time is read whole.",
        raw=(Raw(post(call_body("length", "z" * (CHUNK + 1000)))),),
    ),
    Case(
        "ipv6",
        "SimpleXMLRPCServer bound to ::1: calls work and the log shows the IPv6 client.",
        server=spec(family="inet6", address_family=10),
        calls=(("add", 1, 2), ("echo", NON_ASCII)),
        raw=(Raw(post(call_body("add", 3, 4))),),
    ),
    Case(
        "doc_page",
        "DocXMLRPCServer with set_server_title/name/documentation: the HTML page on GET /, "
        "the CSS on GET /pydoc.css, 404 elsewhere, 501 for HEAD, and calls by POST.",
        server=spec(
            "DocServer",
            DOC_HANDLER,
            xr_title="Dep <title> & co",
            xr_name="Dependents \u00e9 server",
            xr_documentation="Exports <b>add</b> & echo.\nSee http://example.invalid/ too.",
            xr_introspection=True,
        ),
        calls=(("add", 1, 2), ("system.methodHelp", "echo")),
        raw=(
            Raw(get("/")),
            Raw(get("/pydoc.css")),
            Raw(get("/RPC2?x")),
            Raw(get("/", "HEAD")),
            Raw(post(call_body("add", 1, 2), "/")),
        ),
    ),
    Case(
        "doc_page_instance",
        "DocXMLRPCServer's defaults with a dispatching instance (its _methodHelp and "
        "_get_method_argstring document its methods) and multicall registered.",
        server=spec("DocServer", DOC_HANDLER, xr_instance="dispatching", xr_multicall=True),
        raw=(Raw(get("/RPC2")),),
    ),
    Case(
        "doc_page_plain_instance",
        "DocXMLRPCServer with a plain instance: its public methods are documented from "
        "their signatures and docstrings.",
        server=spec("DocServer", DOC_HANDLER, xr_instance="plain", xr_introspection=True),
        raw=(Raw(get("/")),),
    ),
]

register(CASES)


# -- scenarios that need more than a table ----------------------------------------------------


@scenario(f"{FAMILY}/multicall", server=spec(xr_multicall=True))
async def multicall(run: Run) -> None:
    """system.multicall with good calls, a Fault, an ordinary exception and an unknown
    method (ServerProxy's MultiCall), then raw: an entry without params fails the whole
    call, a non-list argument too (a TypeError, recorded by class: its wording is the
    interpreter's)."""
    serve = run.serve_forever(POLL)

    def work(proxy: Any, port: int) -> list[dict[str, Any]]:
        batch = xmlrpc.client.MultiCall(proxy)
        batch.add(2, 3)
        batch.raise_fault()
        batch.nosuch(1)
        batch.raise_error()
        batch.echo(NON_ASCII)
        getattr(batch, "system.multicall")([])
        try:
            results = batch()
        except Exception as exc:  # the whole system.multicall failed
            return [failure(exc, port)]
        return [outcome_of(lambda i=i: results[i], port) for i in range(6)]

    run.record("multicall", await with_proxy(run, work))
    bad = [{"methodName": "add", "params": [1, 2]}, {"methodName": "add"}]
    run.record("reply1", await exchange(run, post(call_body("system.multicall", bad))))
    not_a_list = await exchange(run, post(call_body("system.multicall", "x")))
    run.record("reply2", fault_record(not_a_list, keep_message=False))
    run.record("stop", await run.stop_serving(serve))


def gzip_record(data: bytes) -> dict[str, Any]:
    """A reply whose body may be gzip: the head, the gzip header without its time stamp
    (``gzip_encode`` writes the current time), a digest of the deflate stream, and the
    decompressed text. A reply that is not gzip-encoded is recorded whole."""
    head, sep, body = data.partition(b"\r\n\r\n")
    record: dict[str, Any] = {"head": normalize_http((head + sep).decode("latin-1"))}
    if b"\r\ncontent-encoding: gzip" not in head.lower():
        record["body"] = render_bytes(body)
        return record
    record["gzip_header"] = f"{body[:4].hex()} <mtime> {body[8:10].hex()}"
    record["deflate"] = hashlib.sha256(body[10:]).hexdigest()[:16]
    record["length"] = len(body)
    try:
        record["decompressed"] = render_bytes(gzip.decompress(body))
    except (OSError, EOFError) as exc:
        record["decompressed"] = f"{type(exc).__name__}: {exc}"
    return record


@scenario(f"{FAMILY}/gzip_response", server=spec())
async def gzip_response(run: Run) -> None:
    """Replies longer than encode_threshold (1400) are gzip-encoded when the client
    accepts gzip (also with q=0.5 after another coding); not with q=0, not when shorter,
    not without Accept-Encoding. ServerProxy (which accepts gzip) decodes them."""
    serve = run.serve_forever(POLL)
    run.record("calls", await proxy_calls(run, [("text", 3000), ("text", 1000)]))
    big, small = call_body("text", 3000), call_body("text", 1000)
    requests = [
        post(big, headers=[("Accept-Encoding", "gzip")]),
        post(big, headers=[("Accept-Encoding", "identity, gzip;q=0.5")]),
        post(big, headers=[("Accept-Encoding", "gzip;q=0")]),
        post(big),
        post(small, headers=[("Accept-Encoding", "gzip")]),
    ]
    for index, request in enumerate(requests, 1):
        async with await run.connect() as client:
            await client.send(request)
            received = await client.recv_until_eof(timeout=5.0)
        record = gzip_record(received.data)
        record["end"] = received.end
        run.record(f"reply{index}", record)
    run.record("stop", await run.stop_serving(serve))


@scenario(
    f"{FAMILY}/gzip_threshold_off",
    server=spec(handler_attrs={"encode_threshold": None}),
)
async def gzip_threshold_off(run: Run) -> None:
    """encode_threshold=None: a long reply stays plain even when the client accepts gzip."""
    serve = run.serve_forever(POLL)
    record = await exchange(
        run, post(call_body("text", 3000), headers=[("Accept-Encoding", "gzip")])
    )
    run.record("reply", record)
    run.record("stop", await run.stop_serving(serve))


@scenario(
    f"{FAMILY}/keepalive",
    server=spec(handler_attrs={"protocol_version": "HTTP/1.1"}),
)
async def keepalive(run: Run) -> None:
    """HTTP/1.1 handler: ServerProxy makes several calls over one connection (the
    server's counter shows one server); two pipelined raw POSTs get both replies on one
    connection, and a third request without Connection: close keeps it open."""
    serve = run.serve_forever(POLL)
    calls = [("count",), ("add", 1, 2), ("count",), ("raise_fault",), ("count",)]
    run.record("calls", await proxy_calls(run, calls))
    pipelined = post(call_body("count"), version="HTTP/1.1") + post(
        call_body("add", 20, 3), version="HTTP/1.1", headers=[("Connection", "close")]
    )
    run.record("pipelined", await exchange(run, pipelined))
    open_one = post(call_body("count"), version="HTTP/1.1")
    run.record("kept_open", await exchange(run, open_one, idle=IDLE))
    run.record("stop", await run.stop_serving(serve))


@scenario(
    f"{FAMILY}/threading",
    server=spec("ThreadingFunctionsServer"),
    stderr="sorted",
)
async def threading_clients(run: Run) -> None:
    """ThreadingMixIn + SimpleXMLRPCServer: four ServerProxy clients call at once, each
    gets its own results; server_close joins the request threads."""
    serve = run.serve_forever(POLL)
    results: dict[int, Any] = {}

    async def client(number: int) -> None:
        calls = [("add", number, step) for step in range(4)] + [("describe", [number])]
        results[number] = await proxy_calls(run, calls)

    async with trio.open_nursery() as nursery:
        for number in range(4):
            nursery.start_soon(client, number)
    run.record("calls", [results[number] for number in sorted(results)])
    run.record("stop", await run.stop_serving(serve))
    sample = await run.settle(lambda s: s["threads"] <= 0)
    run.record("threads_left", sample["threads"])
