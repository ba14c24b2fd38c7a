"""``http/server``: what HTTPServer and ThreadingHTTPServer are, apart from the handler.

Class attributes a program relies on (``allow_reuse_address``, ``daemon_threads``), the
listening socket's options, and the ``server_name``/``server_port`` that ``server_bind``
sets.
"""

from __future__ import annotations

from harness.scenario import ServerSpec, scenario

HANDLER = "scenarios.handlers.http_protocol:Echo"
DEFAULTS = "scenarios.handlers.ss_defaults"

DESCRIBE = (
    """
import socket
cls = type(server).__mro__[1]
result = {
    "allow_reuse_address": bool(cls.allow_reuse_address),
    "allow_reuse_port": bool(getattr(cls, "allow_reuse_port", False)),
    "daemon_threads": getattr(cls, "daemon_threads", None),
    "block_on_close": getattr(cls, "block_on_close", None),
    "options": __import__("%s", fromlist=["x"]).socket_options(server.socket),
    "server_port is the bound port": server.server_port == server.socket.getsockname()[1],
    "server_name": type(server.server_name).__name__,
    "request_queue_size": cls.request_queue_size,
}
"""
    % DEFAULTS
)


def _describe(server: str) -> None:
    @scenario(
        f"http/server/{server.lower()}_attributes",
        server=ServerSpec(f"http.server:{server}", handler=HANDLER),
        description=f"A {server}'s class defaults (allow_reuse_address, daemon_threads, "
        "block_on_close), its listening socket's SO_REUSEADDR/SO_REUSEPORT, and the "
        "server_name/server_port set by server_bind.",
    )
    async def body(run):
        outcome = await run.exec(DESCRIBE)
        run.record("attributes", outcome.get("returned", dict(outcome)))


for _server in ("HTTPServer", "ThreadingHTTPServer"):
    _describe(_server)


HANDLER_DEFAULTS = """
import http.server as hs
base, files = hs.BaseHTTPRequestHandler, hs.SimpleHTTPRequestHandler
result = {
    "weekdayname": base.weekdayname,
    "monthname": base.monthname,
    "default_request_version": base.default_request_version,
    "protocol_version": base.protocol_version,
    "server_version": base.server_version.split("/")[0],
    "files server_version": files.server_version.split("/")[0],
    "sys_version starts": base.sys_version.split("/")[0],
    "error_content_type": base.error_content_type,
    "error_message_format": base.error_message_format,
    "MessageClass": base.MessageClass.__module__ + "." + base.MessageClass.__name__,
    "responses": {str(k): list(v) for k, v in sorted(base.responses.items())},
    "extensions_map": dict(sorted(files.extensions_map.items())),
    "rbufsize": base.rbufsize,
    "DEFAULT_ERROR_CONTENT_TYPE": hs.DEFAULT_ERROR_CONTENT_TYPE,
    "DEFAULT_ERROR_MESSAGE": hs.DEFAULT_ERROR_MESSAGE,
    "all": sorted(hs.__all__),
}
"""


@scenario(
    "http/server/handler_class_defaults",
    server=ServerSpec("http.server:HTTPServer", handler=HANDLER),
)
async def handler_class_defaults(run):
    """The class attributes of BaseHTTPRequestHandler and SimpleHTTPRequestHandler that
    subclasses and log lines rely on (day and month names, versions, error template and
    content type, the responses table, extensions_map) and the module's ``__all__``."""
    outcome = await run.exec(HANDLER_DEFAULTS)
    run.record("defaults", outcome.get("returned", dict(outcome)))
