"""BaseHTTPRequestHandler subclasses for the HTTP protocol catalog.

Written against the stdlib names (``import http.server``): the agent substitutes the
target's module, so these classes derive from the implementation under test. Stdlib-only,
Python 3.9-compatible.

Most handlers reply with what they parsed (``Echo``): the body lists ``command``, ``path``,
``request_version``, ``requestline``, ``close_connection`` and the headers as
``(name, value)`` pairs, each rendered with ``ascii()``. Comparing that body compares two
implementations on their interpretation of a request, not just on the bytes they send.
Protocol variants (``protocol_version``, ``timeout``, ``error_message_format``) are set
per scenario through ``handler_attrs``.
"""

import hashlib
import http.server
import re
import sys
import urllib.parse

BaseHTTPRequestHandler = http.server.BaseHTTPRequestHandler


#: Strings longer than this are shown by length, digest and head, keeping replies short
#: (a reply is compared inline only up to 16 KiB).
LONG = 256


def short(value):
    """``ascii(value)``, or for a long string its length, SHA-256 prefix and first bytes."""
    if isinstance(value, str) and len(value) > LONG:
        digest = hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()[:16]
        return "<%d chars sha256:%s %s...>" % (len(value), digest, ascii(value[:32]))
    return ascii(value)


def describe(handler, body=None):
    """What ``handler`` parsed from the current request, as ASCII bytes."""
    headers = getattr(handler, "headers", None)
    if headers is not None and hasattr(headers, "items"):
        pairs = "[%s]" % ", ".join("(%s, %s)" % (short(k), short(v)) for k, v in headers.items())
    else:
        pairs = ascii(headers)
    lines = [
        "command: %s" % short(handler.command),
        "path: %s" % short(handler.path),
        "request_version: %s" % short(handler.request_version),
        "requestline: %s" % short(handler.requestline),
        "close_connection: %s" % ascii(handler.close_connection),
        "headers: %s" % pairs,
    ]
    if body is not None:
        lines.append("body: %s" % short(body))
    return ("\n".join(lines) + "\n").encode("ascii")


class Echo(BaseHTTPRequestHandler):
    """Reply 200 with a description of the request; POST and PUT read the declared body.

    Every reply carries ``Content-Length``, so that kept-alive connections stay usable.
    HEAD sends the same headers as GET and no body.
    """

    def reply(self, body, send_body=True):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def read_body(self):
        length = self.headers.get("Content-Length")
        if length is None:
            return None
        return self.rfile.read(int(length)).decode("latin-1")

    def do_GET(self):
        self.reply(describe(self))

    def do_HEAD(self):
        self.reply(describe(self), send_body=False)

    def do_POST(self):
        self.reply(describe(self, self.read_body()))

    do_PUT = do_POST


class CloseEcho(Echo):
    """Like ``Echo``, but the reply says ``Connection: close`` (sent by the handler)."""

    def reply(self, body, send_body=True):
        self.send_response(200)
        self.send_header("Connection", "close")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class KeepAliveEcho(Echo):
    """Like ``Echo``, but the reply says ``Connection: keep-alive`` (sent by the handler)
    unless the request asked for ``Connection: close``."""

    def reply(self, body, send_body=True):
        self.send_response(200)
        if self.headers.get("Connection", "").lower() != "close":
            self.send_header("Connection", "keep-alive")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class RefuseExpect(Echo):
    """``handle_expect_100`` refuses every ``Expect: 100-continue`` with 417."""

    def handle_expect_100(self):
        self.send_error(417, "Expectation refused", "this handler never continues")
        return False


class ExpectLogged(Echo):
    """``handle_expect_100`` notes that it ran (in the body), then continues."""

    expect_called = False

    def handle_expect_100(self):
        self.expect_called = True
        return BaseHTTPRequestHandler.handle_expect_100(self)

    def do_POST(self):
        body = describe(self, self.read_body())
        self.reply(body + b"expect_called: %s\n" % str(self.expect_called).encode())


class SendError(BaseHTTPRequestHandler):
    """``send_error`` with arguments taken from the path.

    ``/<code>?message=...&explain=...``: an absent ``message``/``explain`` is passed as
    None (the default); values are percent-decoded as UTF-8, so a non-Latin-1 message can
    be sent. Answers GET, HEAD and POST the same way.
    """

    def do_GET(self):
        parts = urllib.parse.urlsplit(self.path)
        code = int(parts.path.strip("/") or "404")
        query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
        message = query["message"][0] if "message" in query else None
        explain = query["explain"][0] if "explain" in query else None
        self.send_error(code, message, explain)

    do_HEAD = do_POST = do_GET


class CustomLog(Echo):
    """``log_message`` overridden: one line per call, its own format, to stderr."""

    def log_message(self, format, *args):
        sys.stderr.write("custom-log|%s|%s\n" % (self.command, format % args))


class LogError(Echo):
    """GET calls ``log_error`` and ``log_request`` with chosen arguments, then replies."""

    def do_GET(self):
        self.log_error("custom error %s with %d%%", "text\x07bell", 42)
        self.log_request(201, 1234)
        self.log_message("%s", "back\\slash and \x1b[31m escape")
        self.reply(describe(self))


class Responses(BaseHTTPRequestHandler):
    """Reply sequences chosen by the path: ``/<name>`` calls ``seq_<name>``.

    Each sequence uses the reply API in one particular way (``send_response_only``,
    ``flush_headers`` midway, headers before the status line, writing to ``wfile``
    directly, ...), so that implementations are compared on exactly what those calls write.
    """

    def do_GET(self):
        name = self.path.strip("/").split("?")[0] or "sanity"
        getattr(self, "seq_" + name)()

    do_HEAD = do_POST = do_GET

    def seq_sanity(self):
        self.send_response(200)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\n")

    def seq_only(self):
        self.send_response_only(200)
        self.send_header("X-Only", "yes")
        self.end_headers()
        self.wfile.write(b"only\n")

    def seq_flush_midway(self):
        self.send_response(200)
        self.send_header("X-First", "1")
        self.flush_headers()
        self.wfile.write(b"<between>")
        self.send_header("X-Second", "2")
        self.end_headers()
        self.wfile.write(b"body\n")

    def seq_header_first(self):
        self.send_header("X-Early", "before status")
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"early\n")

    def seq_raw(self):
        self.wfile.write(b"raw bytes, no status line\n")

    def seq_nothing(self):
        pass

    def seq_end_twice(self):
        self.send_response(200)
        self.end_headers()
        self.end_headers()
        self.wfile.write(b"twice\n")

    def seq_custom_phrase(self):
        self.send_response(200, "Fine & <dandy>")
        self.end_headers()

    def seq_unknown_code(self):
        self.send_response(799)
        self.end_headers()

    def seq_status_enum(self):
        import http

        self.send_response(http.HTTPStatus.ACCEPTED)
        self.end_headers()

    def seq_injection(self):
        self.send_response(200)
        self.send_header("X-Injected", "a\r\nSet-Cookie: evil=1")
        self.send_header("X-Tail", "t")
        self.end_headers()
        self.wfile.write(b"after\n")

    def seq_formats(self):
        version = re.sub(r"^Python/\d+\.\d+\.\d+\S*$", "Python/<version>", self.sys_version)
        server = re.sub(r"/\d+\.\d+$", "/<version>", self.server_version)
        full = self.version_string()
        log_time = self.log_date_time_string()
        lines = [
            "server_version: %s" % server,
            "sys_version: %s" % version,
            "version_string: %s"
            % (
                "server_version + ' ' + sys_version"
                if full == self.server_version + " " + self.sys_version
                else ascii(full)
            ),
            "date_time_string(0): %s" % self.date_time_string(0),
            "date_time_string(1234567890.5): %s" % self.date_time_string(1234567890.5),
            "date_time_string() format ok: %s"
            % bool(
                re.match(
                    r"^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$",
                    self.date_time_string(),
                )
            ),
            "log_date_time_string() format ok: %s"
            % bool(re.match(r"^\d{2}/[A-Z][a-z]{2}/\d{4} \d{2}:\d{2}:\d{2}$", log_time)),
            "address_string: %s" % self.address_string(),
        ]
        body = ("\n".join(lines) + "\n").encode("ascii")
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def seq_raise(self):
        self.send_response(200)
        self.end_headers()
        raise RuntimeError("handler failed after the headers")

    def seq_body_on_head(self):
        self.send_response(200)
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"body\n")

    def seq_log_request_size(self):
        self.send_response_only(200)
        self.end_headers()
        self.log_request(200, 17)

    def seq_error_after_headers(self):
        self.send_response(200)
        self.send_header("X-Partial", "1")
        self.send_error(500, "Changed my mind")
