"""Reference ``http.server``: HTTP/1.x servers and request handlers on ``socketserver``.

Drop-in for the standard library module of the interpreter it runs on (CPython 3.9 to
3.14, and PyPy). Class layout::

    implementation.socketserver.TCPServer
        HTTPServer ----------------------------- ThreadingHTTPServer (+ ThreadingMixIn)
            HTTPSServer (3.14+) ---------------- ThreadingHTTPSServer (3.14+)

    implementation.socketserver.StreamRequestHandler
        BaseHTTPRequestHandler        request line, headers, keep-alive, replies, logs
            SimpleHTTPRequestHandler  files, directory listings, redirects, 304s
                CGIHTTPRequestHandler scripts under cgi_directories (deprecated in 3.13)

Which behaviour: the wire output, hooks and attributes of the running interpreter's own
``http.server`` (details that changed between releases are chosen from
``sys.version_info`` at import), except for client-triggerable defects that a later
CPython release fixed. Those fixes are always on here, whatever the running version; each
one is listed, with the releases that carry it, in ``implementation.deviations``. Beyond
the stdlib, and with the same bytes on the wire, a kept-alive connection does not wait
~40 ms per reply for the client's delayed acknowledgement (``keepalive-nagle-stall``: a
GET reply's header block leaves with the start of its body, and whatever Nagle's algorithm
still holds is pushed when a request is done).

How it is built: the parts that only turn text into decisions (request-line parsing,
keep-alive, URL-to-file mapping, the HTML pages) are pure functions with a leading
underscore; the handler methods move bytes and keep the public hooks' contracts (for
instance ``parse_request()`` still returns True/False and sends the error itself, because
subclasses and CPython's own tests rely on it).

Security: like the original, this is a development server. It follows symlinks, runs CGI
scripts as the server's user when it cannot switch to ``nobody``, and does not reject
CR/LF in header values passed to ``send_header``.
"""

# The module's public names are the stdlib's (code looks names up on the module): imports
# the stdlib's module does not make are bound to private names, and ``copy``, which only
# the stdlib uses, is imported all the same.
import argparse as _argparse
import contextlib as _contextlib
import copy  # noqa: F401
import datetime
import email.utils
import html
import http.client
import io
import itertools
import mimetypes
import os
import posixpath
import select
import shutil
import socket
import sys
import time
import urllib.parse
import warnings as _warnings
from collections import namedtuple as _namedtuple
from http import HTTPStatus

from implementation import deviations as _deviations
from implementation import socketserver

# ---------------------------------------------------------------------------------------
# Version-dependent details (all observable on the wire or in the API).

_PY = sys.version_info[:2]
#: 3.11 switched the error page and the listing to HTML5 (bpo-46736).
_HTML5_PAGES = _PY >= (3, 11)
#: 3.14 added a colour-scheme ``<style>`` to the error page and the listing (gh-123430).
_COLOR_SCHEME_STYLE = _PY >= (3, 14)
#: 3.11 rejects version numbers that are not plain digits or longer than 10 (gh-103204).
_STRICT_VERSION_NUMBERS = _PY >= (3, 11)
#: 3.10 requires an index page to be a regular file (gh-100474).
_INDEX_MUST_BE_FILE = _PY >= (3, 10)
#: 3.10 always puts QUERY_STRING in a CGI environment, empty or not.
_CGI_QUERY_ALWAYS_SET = _PY >= (3, 10)
#: 3.11 added ``-p/--protocol`` and reworded the command-line help.
_CLI_PROTOCOL_OPTION = _PY >= (3, 11)
#: 3.12 exposes the index file names as ``SimpleHTTPRequestHandler.index_pages``.
_INDEX_PAGES_ATTRIBUTE = _PY >= (3, 12)
#: 3.13 deprecated ``CGIHTTPRequestHandler`` (gh-109096).
_CGI_DEPRECATED = _PY >= (3, 13)
#: 3.13 guesses content types from file paths with ``mimetypes.guess_file_type``.
_GUESS_FILE_TYPE = _PY >= (3, 13) and hasattr(mimetypes, "guess_file_type")
#: 3.13.4 stopped showing the query and fragment in a listing's title (gh-133889). Not a
#: defect a client can hurt the server with, so the reference follows the running version
#: (CPython's own test_undecodable_parameter asserts the older title).
_LISTING_TITLE_PATH_ONLY = sys.version_info[:3] >= (3, 13, 4)
#: 3.14 added HTTPS servers and the ``--tls-*`` options (gh-85162).
_HTTPS_SUPPORT = _PY >= (3, 14)


def _stdlib_has_fix(issue):
    """Return True if the running stdlib already carries the fix of deviation ``issue``."""
    return all(entry["id"] != issue for entry in _deviations.active_deviations())


#: The stdlib keeps the log escape table as ``BaseHTTPRequestHandler._control_char_table``
#: from the releases with the gh-100001 fix on; the reference has the attribute exactly
#: where the running stdlib does (and applies the escapes everywhere).
_CONTROL_CHAR_TABLE_ATTRIBUTE = _stdlib_has_fix("gh-100001")

__version__ = "0.6"

__all__ = [
    "BaseHTTPRequestHandler",
    "CGIHTTPRequestHandler",
    "HTTPServer",
    "SimpleHTTPRequestHandler",
    "ThreadingHTTPServer",
]
if _HTTPS_SUPPORT:
    __all__ += ["HTTPSServer", "ThreadingHTTPSServer"]


# ---------------------------------------------------------------------------------------
# Pages. The error template must match the stdlib's byte for byte, so it is assembled
# from (depth, text) pairs, four spaces per level.


def _indented(rows):
    """Join ``(depth, text)`` rows into lines indented by four spaces per level."""
    return "".join("    " * depth + text + "\n" for depth, text in rows)


def _error_page_template(html5, color_scheme):
    """Return the ``%``-template of the HTML error page for one CPython generation."""
    if html5:
        rows = [(0, "<!DOCTYPE HTML>"), (0, '<html lang="en">'), (1, "<head>")]
        rows.append((2, '<meta charset="utf-8">'))
    else:
        dtd = "http://www.w3.org/TR/html4/strict.dtd"
        rows = [(0, '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01//EN"'), (2, '"%s">' % dtd)]
        rows += [(0, "<html>"), (1, "<head>")]
        meta_content = "text/html;charset=utf-8"
        rows.append((2, '<meta http-equiv="Content-Type" content="%s">' % meta_content))
    if color_scheme:
        rows += [(2, '<style type="text/css">'), (3, ":root {")]
        rows += [(4, "color-scheme: light dark;"), (3, "}"), (2, "</style>")]
    rows += [(2, "<title>Error response</title>"), (1, "</head>"), (1, "<body>")]
    rows.append((2, "<h1>Error response</h1>"))
    rows.append((2, "<p>Error code: %(code)d</p>"))
    rows.append((2, "<p>Message: %(message)s.</p>"))
    rows.append((2, "<p>Error code explanation: %(code)s - %(explain)s.</p>"))
    rows += [(1, "</body>"), (0, "</html>")]
    return _indented(rows)


#: The body ``send_error`` fills in with ``code``, ``message`` and ``explain``.
DEFAULT_ERROR_MESSAGE = _error_page_template(_HTML5_PAGES, _COLOR_SCHEME_STYLE)

#: ``Content-Type`` of the error page.
DEFAULT_ERROR_CONTENT_TYPE = "text/html;charset=utf-8"


def _render_listing(title, entries, charset):
    """Return the directory listing page as text.

    Args:
        title: the already HTML-escaped title, also used as the ``<h1>``.
        entries: ``(href, label)`` pairs, already quoted and escaped, in display order.
        charset: the encoding announced in the page (the filesystem encoding).
    """
    if _HTML5_PAGES:
        lines = ["<!DOCTYPE HTML>", '<html lang="en">', "<head>"]
        lines.append('<meta charset="%s">' % charset)
    else:
        dtd = '"-//W3C//DTD HTML 4.01//EN" "http://www.w3.org/TR/html4/strict.dtd"'
        lines = ["<!DOCTYPE HTML PUBLIC %s>" % dtd, "<html>\n<head>"]
        meta = '<meta http-equiv="Content-Type" content="text/html; charset=%s">'
        lines.append(meta % charset)
    if _COLOR_SCHEME_STYLE:
        lines.append('<style type="text/css">\n:root {\ncolor-scheme: light dark;\n}\n</style>')
    lines.append("<title>" + title + "</title>\n</head>")
    lines.append("<body>\n<h1>" + title + "</h1>")
    lines.append("<hr>\n<ul>")
    lines.extend('<li><a href="%s">%s</a></li>' % entry for entry in entries)
    lines.append("</ul>\n<hr>\n</body>\n</html>\n")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# Sans-IO request-line parsing.

#: Longest request line accepted, line ending included; one more byte is read to detect it.
_MAX_REQUEST_LINE = 65536

#: Replies to these codes never carry the HTML error page.
_BODYLESS_ERROR_CODES = (HTTPStatus.NO_CONTENT, HTTPStatus.RESET_CONTENT, HTTPStatus.NOT_MODIFIED)

_RequestLine = _namedtuple("_RequestLine", "command path version keep_alive http09")
_RequestLine.__doc__ = """A request line the handler accepts.

``version`` is the third word (None for the two-word HTTP/0.9 form), ``keep_alive`` the
connection verdict before headers are seen, ``http09`` True for the two-word form, which
has no header block at all.
"""


class _RequestLineRefused(Exception):
    """A request line the handler must answer with an error: carries the status to send."""

    def __init__(self, status, reason):
        super().__init__(status, reason)
        self.status = status
        self.reason = reason


def _parse_http_version(token, strict):
    """Return ``(major, minor)`` for an ``HTTP/x.y`` token, or None if it is malformed.

    Leading zeros are allowed (RFC 2145). With ``strict`` (3.11+, gh-103204) each number
    must be ASCII-or-Unicode digits only and at most 10 characters long; before that,
    anything ``int()`` accepts passes (signs, underscores).
    """
    if not token.startswith("HTTP/"):
        return None
    numbers = token[len("HTTP/") :].split(".")
    if len(numbers) != 2:
        return None
    if strict and not all(part.isdigit() and len(part) <= 10 for part in numbers):
        return None
    try:
        return int(numbers[0]), int(numbers[1])
    except ValueError:
        return None


def _parse_request_line(line, protocol_version, strict=_STRICT_VERSION_NUMBERS):
    """Split a decoded request line into a ``_RequestLine``.

    Args:
        line: the request line, Latin-1 decoded, line ending removed.
        protocol_version: the handler's ``protocol_version`` (keep-alive needs >= HTTP/1.1).
        strict: apply the 3.11+ digit rules to the version numbers.

    Returns:
        None for a blank line (the connection is closed without a reply), otherwise the
        parsed line.

    Raises:
        _RequestLineRefused: with the status and reason phrase CPython sends.
    """
    words = line.split()
    if not words:
        return None
    version = None
    keep_alive = False
    if len(words) >= 3:
        version = words[-1]
        number = _parse_http_version(version, strict)
        if number is None:
            raise _RequestLineRefused(
                HTTPStatus.BAD_REQUEST, "Bad request version (%r)" % (version,)
            )
        keep_alive = number >= (1, 1) and protocol_version >= "HTTP/1.1"
        if number >= (2, 0):
            raise _RequestLineRefused(
                HTTPStatus.HTTP_VERSION_NOT_SUPPORTED,
                "Invalid HTTP version (%s)" % version[len("HTTP/") :],
            )
    if len(words) not in (2, 3):
        raise _RequestLineRefused(HTTPStatus.BAD_REQUEST, "Bad request syntax (%r)" % (line,))
    command, target = words[0], words[1]
    http09 = len(words) == 2
    if http09 and command != "GET":
        raise _RequestLineRefused(
            HTTPStatus.BAD_REQUEST, "Bad HTTP/0.9 request type (%r)" % (command,)
        )
    return _RequestLine(command, target, version, keep_alive and not http09, http09)


def _collapse_leading_slashes(target):
    """Reduce a leading run of slashes to one (gh-87389, CVE-2021-28861).

    ``//evil.example/x`` would otherwise end up in a ``Location`` header as a
    scheme-relative URL pointing at another host.
    """
    if target.startswith("//"):
        return "/" + target.lstrip("/")
    return target


def _connection_verdict(keep_alive, connection_header, protocol_version):
    """Return the keep-alive decision after the ``Connection`` header is known.

    The header is compared as a whole, case-insensitively: ``keep-alive, close`` is
    neither value and leaves the decision unchanged, as in CPython.
    """
    value = connection_header.lower()
    if value == "close":
        return False
    if value == "keep-alive" and protocol_version >= "HTTP/1.1":
        return True
    return keep_alive


def _wants_continue(expect_header, protocol_version, request_version):
    """Return True when ``Expect: 100-continue`` must be answered before the body."""
    return (
        expect_header.lower() == "100-continue"
        and protocol_version >= "HTTP/1.1"
        and request_version >= "HTTP/1.1"
    )


def _unquote_url_path(text):
    """Percent-decode a URL path as UTF-8, keeping lone surrogates if that fails."""
    try:
        return urllib.parse.unquote(text, errors="surrogatepass")
    except UnicodeDecodeError:
        return urllib.parse.unquote(text)


def _strip_query_and_fragment(target):
    """Return the path part of a request target (everything before ``?`` or ``#``)."""
    for mark in ("?", "#"):
        target = target.partition(mark)[0]
    return target


# ---------------------------------------------------------------------------------------
# Servers.


class HTTPServer(socketserver.TCPServer):
    """TCP server for HTTP handlers; remembers its host name and port after binding.

    ``allow_reuse_address`` is on so a restarted server can rebind at once. Binding
    resolves ``server_name`` with ``socket.getfqdn``, which may wait on reverse DNS.
    """

    allow_reuse_address = True if _PY >= (3, 14) else 1
    if _PY >= (3, 14):
        allow_reuse_port = False

    def server_bind(self):
        """Bind the socket, then record ``server_name`` and ``server_port``."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = socket.getfqdn(host)
        self.server_port = port


class ThreadingHTTPServer(socketserver.ThreadingMixIn, HTTPServer):
    """``HTTPServer`` running each connection in its own daemon thread.

    Resource handling: daemon threads are not tracked, so ``server_close()`` does not wait
    for connections that are still being served.
    """

    daemon_threads = True


if _HTTPS_SUPPORT:

    class HTTPSServer(HTTPServer):
        """``HTTPServer`` whose listening socket is wrapped in TLS after ``listen()``.

        The handshake runs inside ``accept()``, in the serving loop: a peer that never
        completes it holds up new connections, as in CPython 3.14.
        """

        def __init__(
            self,
            server_address,
            RequestHandlerClass,
            bind_and_activate=True,
            *,
            certfile,
            keyfile=None,
            password=None,
            alpn_protocols=None,
        ):
            """Store the TLS settings, then bind and activate like ``HTTPServer``.

            Raises:
                RuntimeError: the interpreter has no ``ssl`` module.
            """
            try:
                import ssl
            except ImportError:
                raise RuntimeError("SSL module is missing; HTTPS support is unavailable")
            self.ssl = ssl
            self.certfile = certfile
            self.keyfile = keyfile
            self.password = password
            self.alpn_protocols = ["http/1.1"] if alpn_protocols is None else alpn_protocols
            super().__init__(server_address, RequestHandlerClass, bind_and_activate)

        def server_activate(self):
            """Listen, then replace the socket with its TLS-wrapped version."""
            super().server_activate()
            tls = self._create_context()
            self.socket = tls.wrap_socket(self.socket, server_side=True)

        def _create_context(self):
            """Return the server-side ``SSLContext`` built from the stored settings."""
            tls = self.ssl.create_default_context(self.ssl.Purpose.CLIENT_AUTH)
            tls.load_cert_chain(self.certfile, self.keyfile, self.password)
            tls.set_alpn_protocols(self.alpn_protocols)
            return tls

    class ThreadingHTTPSServer(socketserver.ThreadingMixIn, HTTPSServer):
        """``HTTPSServer`` with one daemon thread per connection."""

        daemon_threads = True


# ---------------------------------------------------------------------------------------
# The protocol handler.


def _buffer_header_bytes(handler, data):
    """Append encoded header bytes to the buffer ``flush_headers`` writes out.

    The buffer is the handler's ``_headers_buffer``, the attribute the stdlib uses, created
    on first use.
    """
    if not hasattr(handler, "_headers_buffer"):
        handler._headers_buffer = []
    handler._headers_buffer.append(data)


_TCP_FAMILIES = tuple(
    getattr(socket, name) for name in ("AF_INET", "AF_INET6") if hasattr(socket, name)
)


def _push_reply(connection):
    """Send at once whatever of a finished reply Nagle's algorithm still holds back.

    A reply written in two sends (header block, then body) leaves its second, small
    segment waiting for the client to acknowledge the first, and a client waiting for the
    rest of the reply delays that acknowledgement (40 ms on Linux): a keep-alive client
    gets a few dozen replies a second. Turning ``TCP_NODELAY`` on sends what is pending
    (on Linux; where it does not, nothing changes); it is turned off again at once, so the
    connection's setting is unchanged. Sockets that already have it, and anything that is
    not a TCP socket, are left alone (deviation ``keepalive-nagle-stall``).
    """
    try:
        if connection.family not in _TCP_FAMILIES:
            return
        if connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY):
            return
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
    except (AttributeError, OSError, TypeError, ValueError):
        # Not a socket (a test double), or a socket already gone: nothing to push.
        pass


def _control_char_escapes():
    """Map C0/C1 control characters to ``\\xHH`` and ``\\`` to ``\\\\`` (gh-100001)."""
    table = {code: "\\x%02x" % code for code in itertools.chain(range(0x20), range(0x7F, 0xA0))}
    table[ord("\\")] = "\\\\"
    return str.maketrans(table)


#: ``str.translate`` table of ``log_message``.
_CONTROL_CHAR_ESCAPES = _control_char_escapes()


class BaseHTTPRequestHandler(socketserver.StreamRequestHandler):
    """Parse HTTP/0.9, 1.0 and 1.1 requests and dispatch them to ``do_<METHOD>`` methods.

    For each request the handler reads the request line (at most 65536 bytes) and, except
    for the two-word HTTP/0.9 form, a header block through ``http.client.parse_headers``,
    then calls ``do_<command>`` (case-sensitive; a missing method is a 501). A method
    writes its reply with ``send_response``/``send_header``/``end_headers`` and then the
    body to ``wfile``; ``send_error`` builds a complete error reply.

    Attributes filled in per request: ``raw_requestline``, ``requestline``, ``command``,
    ``path``, ``request_version``, ``headers`` (a ``MessageClass`` instance) and
    ``close_connection``. A connection is kept open only when both sides speak HTTP/1.1
    (``protocol_version`` defaults to HTTP/1.0) or a header says so.

    Error handling: malformed requests get an error reply and the connection is closed;
    a socket timeout is logged and closes the connection without a reply; other
    exceptions from ``do_*`` reach the server's ``handle_error``.
    """

    #: ``Python/<version>``, the second word of the ``Server`` header.
    sys_version = "Python/" + sys.version.split()[0]
    #: First word of the ``Server`` header; subclasses usually override it.
    server_version = "BaseHTTP/" + __version__
    error_message_format = DEFAULT_ERROR_MESSAGE
    error_content_type = DEFAULT_ERROR_CONTENT_TYPE
    #: Version assumed until a request line names one; HTTP/0.9 means "no status line".
    default_request_version = "HTTP/0.9"
    #: Version put in status lines; set to "HTTP/1.1" to allow persistent connections.
    protocol_version = "HTTP/1.0"
    MessageClass = http.client.HTTPMessage
    #: ``{status: (reason phrase, description)}`` for every ``HTTPStatus`` member.
    responses = {status: (status.phrase, status.description) for status in HTTPStatus}
    weekdayname = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    monthname = [None, "Jan", "Feb", "Mar", "Apr", "May", "Jun"]
    monthname += ["Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    if _CONTROL_CHAR_TABLE_ATTRIBUTE:
        _control_char_table = _CONTROL_CHAR_ESCAPES
    # Set by SimpleHTTPRequestHandler.do_GET for the header block of one reply: the next
    # flush_headers holds it back until the body's first write (_join_head_and_body).
    __hold_head = False

    # -- reading a request ---------------------------------------------------------------

    def parse_request(self):
        """Parse ``self.raw_requestline`` and the header block that follows it.

        Sets ``command``, ``path``, ``request_version``, ``headers`` and
        ``close_connection``, and answers ``Expect: 100-continue`` through
        ``handle_expect_100``.

        Returns:
            True when the request can be dispatched; False otherwise, in which case any
            error reply has already been sent (a blank line gets none).
        """
        self.command = None
        self.request_version = self.default_request_version
        self.close_connection = True
        self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        try:
            line = _parse_request_line(self.requestline, self.protocol_version)
        except _RequestLineRefused as refusal:
            line, refused = None, refusal
        else:
            refused = None
        if refused is not None:
            # Answered outside the ``except`` block: an error while sending (a client gone)
            # must not show our private exception chained in handle_error's traceback.
            # gh-54930: without the empty version the reply would be formatted as HTTP/0.9,
            # a bare HTML page with no status line, which no HTTP/1.x client can read.
            self.request_version = ""
            self.send_error(refused.status, refused.reason)
            return False
        if line is None:
            return False
        self.command = line.command
        self.path = _collapse_leading_slashes(line.path)
        if line.version is not None:
            self.request_version = line.version
        self.close_connection = not line.keep_alive
        if line.http09:
            # gh-70765: a two-word HTTP/0.9 request has no header block; waiting for one
            # would hang a client that sent just "GET /path\r\n".
            self.headers = self.MessageClass()
            return True
        try:
            self.headers = http.client.parse_headers(self.rfile, _class=self.MessageClass)
        except http.client.LineTooLong as problem:
            status = HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
            self.send_error(status, "Line too long", str(problem))
            return False
        except http.client.HTTPException as problem:
            status = HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
            self.send_error(status, "Too many headers", str(problem))
            return False
        keep_alive = _connection_verdict(
            not self.close_connection,
            self.headers.get("Connection", ""),
            self.protocol_version,
        )
        self.close_connection = not keep_alive
        expect = self.headers.get("Expect", "")
        if _wants_continue(expect, self.protocol_version, self.request_version):
            return bool(self.handle_expect_100())
        return True

    def handle_expect_100(self):
        """Answer ``Expect: 100-continue`` before the request body is read.

        The default sends ``100 Continue`` (not logged, no other headers) and returns
        True. An override may instead send an error reply and return False, in which
        case the ``do_*`` method is not called.
        """
        self.send_response_only(HTTPStatus.CONTINUE)
        self.end_headers()
        return True

    def handle_one_request(self):
        """Read, parse and dispatch one request; the reply is flushed afterwards."""
        try:
            self.raw_requestline = self.rfile.readline(_MAX_REQUEST_LINE + 1)
            if len(self.raw_requestline) > _MAX_REQUEST_LINE:
                self.requestline = self.request_version = self.command = ""
                self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG)
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():
                return
            method_name = "do_" + self.command
            if not hasattr(self, method_name):
                reason = "Unsupported method (%r)" % (self.command,)
                self.send_error(HTTPStatus.NOT_IMPLEMENTED, reason)
                return
            getattr(self, method_name)()
            self.wfile.flush()
            if not self.close_connection:
                _push_reply(getattr(self, "connection", None))
        except socket.timeout as exc:
            self.log_error("Request timed out: %r", exc)
            self.close_connection = True

    def handle(self):
        """Serve requests on the connection until ``close_connection`` is set."""
        self.close_connection = True
        self.handle_one_request()
        while not self.close_connection:
            self.handle_one_request()

    # -- writing a reply -----------------------------------------------------------------

    def send_error(self, code, message=None, explain=None):
        """Send a complete error reply and log it; the connection will be closed.

        Args:
            code: the status code.
            message: reason phrase for the status line (default: the standard phrase,
                ``???`` for unknown codes). Not escaped in the status line; it must be
                Latin-1.
            explain: longer text for the HTML page (default: the status description).

        Codes below 200 and 204, 205, 304 get headers only; other codes get the
        ``error_message_format`` page, HTML-escaped, sent unless the request was HEAD.
        """
        try:
            phrase, description = self.responses[code]
        except KeyError:
            phrase, description = "???", "???"
        message = phrase if message is None else message
        explain = description if explain is None else explain
        self.log_error("code %d, message %s", code, message)
        self.send_response(code, message)
        self.send_header("Connection", "close")
        page = None
        if code >= 200 and code not in _BODYLESS_ERROR_CODES:
            fields = {"code": code, "message": html.escape(message, quote=False)}
            fields["explain"] = html.escape(explain, quote=False)
            page = (self.error_message_format % fields).encode("UTF-8", "replace")
            self.send_header("Content-Type", self.error_content_type)
            self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        if page and self.command != "HEAD":
            self.wfile.write(page)

    def send_response(self, code, message=None):
        """Log the request, then buffer the status line, ``Server`` and ``Date``."""
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Server", self.version_string())
        self.send_header("Date", self.date_time_string())

    def send_response_only(self, code, message=None):
        """Buffer the status line alone (nothing for an HTTP/0.9 request)."""
        if self.request_version == "HTTP/0.9":
            return
        if message is None:
            message = self.responses[code][0] if code in self.responses else ""
        status_line = "%s %d %s\r\n" % (self.protocol_version, code, message)
        _buffer_header_bytes(self, status_line.encode("latin-1", "strict"))

    def send_header(self, keyword, value):
        """Buffer one header line; ``Connection: close/keep-alive`` also sets the verdict."""
        if self.request_version != "HTTP/0.9":
            field = "%s: %s\r\n" % (keyword, value)
            _buffer_header_bytes(self, field.encode("latin-1", "strict"))
        if keyword.lower() == "connection":
            verdict = value.lower()
            if verdict == "close":
                self.close_connection = True
            elif verdict == "keep-alive":
                self.close_connection = False

    def end_headers(self):
        """Terminate the header block and write everything buffered so far."""
        if self.request_version != "HTTP/0.9":
            _buffer_header_bytes(self, b"\r\n")
            self.flush_headers()

    def flush_headers(self):
        """Write the buffered status line and headers to ``wfile`` in one call."""
        if hasattr(self, "_headers_buffer"):
            if self.__hold_head:
                # A GET reply asked for its header block to leave with the body's first
                # bytes (see _join_head_and_body).
                self.__hold_head = False
                socketserver._hold_next_write(self.wfile)
            self.wfile.write(b"".join(self._headers_buffer))
            self._headers_buffer = []

    # -- logging -------------------------------------------------------------------------

    def log_request(self, code="-", size="-"):
        """Log the request line with a status code and size (``-`` when unknown)."""
        if isinstance(code, HTTPStatus):
            code = code.value
        self.log_message('"%s" %s %s', self.requestline, str(code), str(size))

    def log_error(self, format, *args):
        """Log a failure; the default just calls ``log_message``."""
        self.log_message(format, *args)

    def log_message(self, format, *args):
        """Write ``<client> - - [<local time>] <format % args>`` to stderr.

        Control characters in the message are written as ``\\xHH`` and backslashes are
        doubled, so a client cannot inject terminal escapes into the log.
        """
        table = getattr(self, "_control_char_table", _CONTROL_CHAR_ESCAPES)
        text = (format % args).translate(table)
        stamp = self.log_date_time_string()
        sys.stderr.write("%s - - [%s] %s\n" % (self.address_string(), stamp, text))

    def version_string(self):
        """Return the ``Server`` header value."""
        return "%s %s" % (self.server_version, self.sys_version)

    def date_time_string(self, timestamp=None):
        """Return ``timestamp`` (default: now) as an RFC 7231 date, e.g. for ``Date``."""
        if timestamp is None:
            timestamp = time.time()
        return email.utils.formatdate(timestamp, usegmt=True)

    def log_date_time_string(self):
        """Return the local time as ``DD/Mon/YYYY hh:mm:ss`` for log lines."""
        now = time.localtime(time.time())
        month = self.monthname[now.tm_mon]
        clock = (now.tm_hour, now.tm_min, now.tm_sec)
        return "%02d/%3s/%04d " % (now.tm_mday, month, now.tm_year) + "%02d:%02d:%02d" % clock

    def address_string(self):
        """Return the client's IP address (no reverse lookup)."""
        return self.client_address[0]


# ---------------------------------------------------------------------------------------
# Static files.

#: Index file names tried in a directory, in order (``index_pages`` from 3.12 on).
_DEFAULT_INDEX_PAGES = ("index.html", "index.htm")


def _url_path_ends_with_slash(url_path):
    """True if a URL path names a directory, looking through ``%2f`` (gh-134098)."""
    return urllib.parse.unquote(url_path).endswith("/")


def _redirect_to_directory(handler, target):
    """Send the ``301`` that appends ``/`` to a directory URL, keeping query/fragment.

    ``target`` is the ``urlsplit`` result of the request path.
    """
    location = urllib.parse.urlunsplit(target._replace(path=target.path + "/"))
    handler.send_response(HTTPStatus.MOVED_PERMANENTLY)
    handler.send_header("Location", location)
    handler.send_header("Content-Length", "0")
    handler.end_headers()


def _find_index_page(handler, directory):
    """Return the first index page present in ``directory``, or None."""
    # Before 3.12 the names are fixed: a subclass's ``index_pages`` is not consulted.
    names = handler.index_pages if _INDEX_PAGES_ATTRIBUTE else _DEFAULT_INDEX_PAGES
    present = os.path.isfile if _INDEX_MUST_BE_FILE else os.path.exists
    for name in names:
        candidate = os.path.join(directory, name)
        if present(candidate):
            return candidate
    return None


def _unmodified_since(headers, mtime):
    """Decide whether the request ``headers`` allow a ``304`` for a file of ``mtime``.

    ``If-Modified-Since`` counts only without ``If-None-Match``, when it parses, and when
    it is in UTC (a missing zone means UTC); the file time is compared to the second.
    """
    if "If-Modified-Since" not in headers or "If-None-Match" in headers:
        return False
    try:
        since = email.utils.parsedate_to_datetime(headers["If-Modified-Since"])
    except (TypeError, IndexError, OverflowError, ValueError):
        return False
    utc = datetime.timezone.utc
    if since.tzinfo is None:
        since = since.replace(tzinfo=utc)
    if since.tzinfo is not utc:
        return False
    modified = datetime.datetime.fromtimestamp(mtime, utc).replace(microsecond=0)
    return modified <= since


def _join_head_and_body(handler):
    """Hold the header block of a GET reply back until the first write of its body.

    Written apart, a small body waits for the client's delayed acknowledgement of the
    header block on a kept-alive connection (see ``_push_reply``); written together they
    leave in one segment. Done only when the bytes stay exactly the same and in the same
    order: the connection is kept alive (a closing one is flushed by its shutdown anyway),
    ``wfile`` is the unbuffered socket writer, and every method that runs between the
    header block and the body is the reference's own, so none can write to the socket
    behind the writer's back. Returns whether the hold is asked for: ``flush_headers``
    then holds the header block, and the caller ends the hold with ``wfile.flush()``.
    """
    if handler.close_connection or type(handler.wfile) is not socketserver._SocketWriter:
        return False
    cls = type(handler)
    simple, base = SimpleHTTPRequestHandler, BaseHTTPRequestHandler
    if (
        cls.send_head is not simple.send_head
        or cls.list_directory is not simple.list_directory
        or cls.copyfile is not simple.copyfile
        or cls.send_error is not base.send_error
        or cls.end_headers is not base.end_headers
        or cls.flush_headers is not base.flush_headers
    ):
        return False
    handler._BaseHTTPRequestHandler__hold_head = True
    return True


class SimpleHTTPRequestHandler(BaseHTTPRequestHandler):
    """Serve GET and HEAD from ``directory`` (default: the working directory).

    Directories get their index page or a generated listing, and a ``301`` to the
    slash-terminated URL when the slash is missing. Files carry ``Content-type`` (guessed
    from the name), ``Content-Length`` and ``Last-Modified``, and ``If-Modified-Since``
    can turn them into a ``304``. Symbolic links are followed.
    """

    server_version = "SimpleHTTP/" + __version__
    if _INDEX_PAGES_ATTRIBUTE:
        index_pages = _DEFAULT_INDEX_PAGES
    extensions_map = _encodings_map_default = {
        ".gz": "application/gzip",
        ".Z": "application/octet-stream",
        ".bz2": "application/x-bzip2",
        ".xz": "application/x-xz",
    }

    def __init__(self, *args, directory=None, **kwargs):
        """Remember the served directory, then handle the connection.

        Args:
            directory: a path-like; default ``os.getcwd()`` at construction time.
        """
        self.directory = os.fspath(os.getcwd() if directory is None else directory)
        super().__init__(*args, **kwargs)

    def do_GET(self):
        """Send the headers from ``send_head`` and then the body.

        On a kept-alive connection the header block goes out in one send with the start
        of the body (deviation ``keepalive-nagle-stall``), where nothing can write to the
        socket in between.
        """
        joined = _join_head_and_body(self)
        try:
            body = self.send_head()
            if body:
                try:
                    self.copyfile(body, self.wfile)
                finally:
                    body.close()
        except BaseException:
            if joined:
                # What the stdlib had sent before the failure is sent all the same.
                self._BaseHTTPRequestHandler__hold_head = False
                with _contextlib.suppress(OSError):
                    self.wfile.flush()
            raise
        if joined:
            self._BaseHTTPRequestHandler__hold_head = False
            self.wfile.flush()

    def do_HEAD(self):
        """Send the same headers as GET, without a body."""
        body = self.send_head()
        if body:
            body.close()

    def send_head(self):
        """Send the status line and headers for GET and HEAD.

        Returns:
            An open file-like object positioned at the body, which the caller copies (or
            not, for HEAD) and must close; or None when the reply is already complete
            (redirect, 304, error).
        """
        path = self.translate_path(self.path)
        if os.path.isdir(path):
            target = urllib.parse.urlsplit(self.path)
            if not _url_path_ends_with_slash(target.path):
                _redirect_to_directory(self, target)
                return None
            index = _find_index_page(self, path)
            if index is None:
                return self.list_directory(path)
            path = index
        content_type = self.guess_type(path)
        if path.endswith("/"):
            self.send_error(HTTPStatus.NOT_FOUND, "File not found")
            return None
        try:
            source = open(path, "rb")  # noqa: SIM115 (returned to the caller, who closes it)
        except OSError:
            self.send_error(HTTPStatus.NOT_FOUND, "File not found")
            return None
        try:
            stat = os.fstat(source.fileno())
            if _unmodified_since(self.headers, stat.st_mtime):
                self.send_response(HTTPStatus.NOT_MODIFIED)
                self.end_headers()
                source.close()
                return None
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-type", content_type)
            self.send_header("Content-Length", str(stat.st_size))
            self.send_header("Last-Modified", self.date_time_string(stat.st_mtime))
            self.end_headers()
            return source
        except BaseException:
            source.close()
            raise

    def list_directory(self, path):
        """Send a generated HTML listing of ``path``.

        Entries are sorted case-insensitively; directories get a trailing ``/``,
        symbolic links a trailing ``@``. Returns the page as a file-like object after
        sending the headers, or None after sending a 404 when the directory cannot be
        read: the same contract as ``send_head``.
        """
        try:
            names = os.listdir(path)
        except OSError:
            self.send_error(HTTPStatus.NOT_FOUND, "No permission to list directory")
            return None
        names.sort(key=str.lower)
        if _LISTING_TITLE_PATH_ONLY:
            shown = _unquote_url_path(_strip_query_and_fragment(self.path))
        else:
            shown = _unquote_url_path(self.path)
        title = "Directory listing for " + html.escape(shown, quote=False)
        entries = []
        for name in names:
            full = os.path.join(path, name)
            label = link = name
            if os.path.isdir(full):
                label = link = name + "/"
            if os.path.islink(full):
                label = name + "@"
            href = urllib.parse.quote(link, errors="surrogatepass")
            entries.append((href, html.escape(label, quote=False)))
        charset = sys.getfilesystemencoding()
        page = _render_listing(title, entries, charset).encode(charset, "surrogateescape")
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-type", "text/html; charset=%s" % charset)
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        return io.BytesIO(page)

    def translate_path(self, path):
        """Map a URL path to a file name under ``self.directory``.

        Query and fragment are dropped, the path is percent-decoded and normalised, and
        components that are empty, ``.``/``..`` or contain a separator or drive are
        skipped, so the result never leaves ``directory``. A trailing slash, judged after
        decoding (gh-134098), is kept so that ``/file/`` does not name a file.
        """
        path = _unquote_url_path(_strip_query_and_fragment(path))
        keep_slash = path.rstrip().endswith("/")
        result = self.directory
        for part in posixpath.normpath(path).split("/"):
            if not part or os.path.dirname(part) or part in (os.curdir, os.pardir):
                continue
            result = os.path.join(result, part)
        return result + "/" if keep_slash else result

    def copyfile(self, source, outputfile):
        """Copy ``source`` to ``outputfile`` (both file-like); override to transform."""
        shutil.copyfileobj(source, outputfile)

    def guess_type(self, path):
        """Return a MIME type for ``path``.

        ``extensions_map`` is consulted first (exact extension, then lower-cased), then
        ``mimetypes``; unknown types are ``application/octet-stream``.
        """
        extension = posixpath.splitext(path)[1]
        for key in (extension, extension.lower()):
            if key in self.extensions_map:
                return self.extensions_map[key]
        if _GUESS_FILE_TYPE:
            guessed = mimetypes.guess_file_type(path)[0]
        else:
            guessed = mimetypes.guess_type(path)[0]
        return guessed or "application/octet-stream"


# ---------------------------------------------------------------------------------------
# CGI.


def _url_collapse_path(path):
    """Normalise a URL path for CGI matching, resolving ``.`` and ``..`` segments.

    The query (after the first ``?``) is kept verbatim; the path is percent-decoded.
    The result always starts with ``/`` and separates the last segment with ``/``, so
    ``'a'`` becomes ``'//a'`` and ``''`` becomes ``'//'``.

    Raises:
        IndexError: a ``..`` would climb above the root.
    """
    path, _, query = path.partition("?")
    *directories, last = urllib.parse.unquote(path).split("/")
    kept = []
    for segment in directories:
        if segment == "..":
            kept.pop()
        elif segment not in ("", "."):
            kept.append(segment)
    if last == "..":
        kept.pop()
        last = ""
    elif last == ".":
        last = ""
    if query:
        last += "?" + query
    return "/" + "/".join(kept) + "/" + last


#: Cached uid of the ``nobody`` account (None until ``nobody_uid`` is first called).
nobody = None


def nobody_uid():
    """Return the uid CGI children switch to: ``nobody``'s, else one above the largest.

    Returns -1 where there is no ``pwd`` module.
    """
    global nobody
    if nobody:
        return nobody
    try:
        import pwd
    except ImportError:
        return -1
    try:
        nobody = pwd.getpwnam("nobody").pw_uid
    except KeyError:
        nobody = 1 + max(entry.pw_uid for entry in pwd.getpwall())
    return nobody


def executable(path):
    """Return True if ``path`` may be executed by this process."""
    return os.access(path, os.X_OK)


#: First read size for a CGI request body on the no-fork path; it doubles per read, so a
#: huge Content-Length never allocates more than the data actually received (gh-119452).
_CGI_FIRST_READ = 64 * 1024


def _split_script_path(handler):
    """Return ``(script URL, extra path, query)`` from the handler's ``cgi_info``.

    Sub-directories of the CGI directory are walked as long as ``translate_path`` maps
    them to directories on disk.
    """
    directory, rest = handler.cgi_info
    full = directory + "/" + rest
    cut = full.find("/", len(directory) + 1)
    while cut >= 0 and os.path.isdir(handler.translate_path(full[:cut])):
        directory, rest = full[:cut], full[cut + 1 :]
        cut = full.find("/", len(directory) + 1)
    rest, _, query = rest.partition("?")
    script, slash, extra = rest.partition("/")
    return directory + "/" + script, slash + extra, query


def _cgi_auth_variables(authorization):
    """Return AUTH_TYPE and, for well-formed Basic credentials, REMOTE_USER.

    ``authorization`` is the ``Authorization`` header's value, or None.
    """
    words = (authorization or "").split()
    if len(words) != 2:
        return {}
    variables = {"AUTH_TYPE": words[0]}
    if words[0].lower() == "basic":
        import base64
        import binascii

        try:
            decoded = base64.decodebytes(words[1].encode("ascii")).decode("ascii")
        except (binascii.Error, UnicodeError):
            return variables
        user_and_password = decoded.split(":")
        if len(user_and_password) == 2:
            variables["REMOTE_USER"] = user_and_password[0]
    return variables


def _cgi_environment(handler, script_url, extra_path, query):
    """Return the environment of a CGI child (RFC 3875 meta-variables).

    It is a plain dict: the stdlib builds it in a ``copy.deepcopy`` of ``os.environ``,
    whose item assignment still calls ``putenv``, so every request's values also land in
    the server process's C-level environment and in whatever it starts later. The
    reference keeps them out (deviation ``cgi-environ-leak``).
    """
    env = dict(os.environ)
    env["SERVER_SOFTWARE"] = handler.version_string()
    env["SERVER_NAME"] = handler.server.server_name
    env["GATEWAY_INTERFACE"] = "CGI/1.1"
    env["SERVER_PROTOCOL"] = handler.protocol_version
    env["SERVER_PORT"] = str(handler.server.server_port)
    env["REQUEST_METHOD"] = handler.command
    decoded_extra = urllib.parse.unquote(extra_path)
    env["PATH_INFO"] = decoded_extra
    env["PATH_TRANSLATED"] = handler.translate_path(decoded_extra)
    env["SCRIPT_NAME"] = script_url
    if query or _CGI_QUERY_ALWAYS_SET:
        env["QUERY_STRING"] = query
    env["REMOTE_ADDR"] = handler.client_address[0]
    headers = handler.headers
    env.update(_cgi_auth_variables(headers.get("authorization")))
    if headers.get("content-type") is None:
        env["CONTENT_TYPE"] = headers.get_content_type()
    else:
        env["CONTENT_TYPE"] = headers["content-type"]
    copied = (
        ("CONTENT_LENGTH", headers.get("content-length")),
        ("HTTP_REFERER", headers.get("referer")),
        ("HTTP_USER_AGENT", headers.get("user-agent")),
        ("HTTP_COOKIE", ", ".join(filter(None, headers.get_all("cookie", [])))),
    )
    env.update((name, value) for name, value in copied if value)
    env["HTTP_ACCEPT"] = ",".join(headers.get_all("accept", ()))
    # Inherited values must not leak into the script: these are always overridden.
    for name in ("QUERY_STRING", "REMOTE_HOST", "CONTENT_LENGTH"):
        env.setdefault(name, "")
    for name in ("HTTP_USER_AGENT", "HTTP_COOKIE", "HTTP_REFERER"):
        env.setdefault(name, "")
    return env


def _check_environment(env):
    """Raise what storing ``env``'s values in ``os.environ`` would raise.

    The stdlib fails while it builds the environment there, before the status line, so
    such a request gets no reply at all and reaches ``handle_error``; checking the values
    here keeps that, without writing to the process's environment.

    Raises:
        TypeError: a value is not a string.
        UnicodeEncodeError: a value the filesystem encoding cannot carry (POSIX).
        ValueError: a value holds a NUL (a header, or ``%00`` in the path).
    """
    encoding = sys.getfilesystemencoding()
    for value in env.values():
        if not isinstance(value, str):
            raise TypeError("str expected, not %s" % type(value).__name__)
        if os.name == "posix":
            value.encode(encoding, "surrogateescape")
        if "\0" in value:
            raise ValueError("embedded null byte")


def _run_cgi_forked(handler, script_file, script_url, query, env):
    """Fork; the child drops to ``nobody`` if it can and execs the script."""
    argv = [script_url.rpartition("/")[2]]
    search_words = query.replace("+", " ")
    if "=" not in search_words:
        argv.append(search_words)
    uid = nobody_uid()
    handler.wfile.flush()
    pid = os.fork()
    if pid:
        status = os.waitpid(pid, 0)[1]
        # Drop whatever the client sent beyond what the script read (bug #427345).
        while select.select([handler.rfile], [], [], 0)[0]:
            if not handler.rfile.read(1):
                break
        exit_code = os.waitstatus_to_exitcode(status)
        if exit_code:
            handler.log_error(f"CGI script exit code {exit_code}")
        return
    try:
        with _contextlib.suppress(OSError):
            os.setuid(uid)
        os.dup2(handler.rfile.fileno(), 0)
        os.dup2(handler.wfile.fileno(), 1)
        os.execve(script_file, argv, env)
    except BaseException:
        handler.server.handle_error(handler.request, handler.client_address)
        os._exit(127)


def _read_request_body(rfile, nbytes):
    """Read up to ``nbytes`` of body in doubling chunks (gh-119452).

    Stops early at EOF. A timeout after some of the body arrived ends the body there, as
    CPython's fix does, and the script gets what came; a timeout before any of it
    propagates (``handle_one_request`` logs it).
    """
    chunks = []
    chunk_size = _CGI_FIRST_READ
    while nbytes > 0:
        try:
            chunk = rfile.read(min(nbytes, chunk_size))
        except socket.timeout:
            if not chunks:
                raise
            break
        if not chunk:
            break
        chunks.append(chunk)
        nbytes -= len(chunk)
        chunk_size *= 2
    return b"".join(chunks)


def _discard_pending_input(sock):
    """Drop whatever the client sent beyond the body and has already arrived (#427345)."""
    while select.select([sock], [], [], 0)[0]:
        if not sock.recv(1):
            break


def _end_abandoned_script(child):
    """Close the pipes of a script whose request failed before it got its input, kill it
    and reap it, so that neither the process nor a pipe is left behind."""
    for stream in (child.stdin, child.stdout, child.stderr):
        stream.close()
    with _contextlib.suppress(OSError):
        child.kill()
    child.wait()


def _run_cgi_subprocess(handler, script_file, query, env):
    """Run the script with ``subprocess`` (platforms without ``fork``).

    The script starts before the body is read, as in the stdlib (a script that cannot
    start fails the request with the body unread). If reading the body fails (the client
    resets, or times out before sending any of it), the script is ended before the error
    goes on; the stdlib leaves it running, blocked on its stdin, with three open pipes.
    """
    import subprocess

    cmdline = [script_file]
    if handler.is_python(script_file):
        interpreter = sys.executable
        if interpreter.lower().endswith("w.exe"):
            interpreter = interpreter[:-5] + interpreter[-4:]
        cmdline = [interpreter, "-u", *cmdline]
    if "=" not in query:
        cmdline.append(query)
    handler.log_message("command: %s", subprocess.list2cmdline(cmdline))
    try:
        nbytes = int(handler.headers.get("content-length"))
    except (TypeError, ValueError):
        nbytes = 0
    pipe = subprocess.PIPE
    child = subprocess.Popen(cmdline, stdin=pipe, stdout=pipe, stderr=pipe, env=env)
    try:
        body = None
        if handler.command.lower() == "post" and nbytes > 0:
            body = _read_request_body(handler.rfile, nbytes)
        _discard_pending_input(handler.rfile._sock)
    except BaseException:
        _end_abandoned_script(child)
        raise
    out, err = child.communicate(body)
    handler.wfile.write(out)
    if err:
        handler.log_error("%s", err)
    child.stderr.close()
    child.stdout.close()
    if child.returncode:
        handler.log_error("CGI script exit status %#x", child.returncode)
    else:
        handler.log_message("CGI script exited OK")


class CGIHTTPRequestHandler(SimpleHTTPRequestHandler):
    """``SimpleHTTPRequestHandler`` that runs scripts under ``cgi_directories``.

    GET, HEAD and POST to a script run it (fork and exec where ``os.fork`` exists, a
    subprocess otherwise); POST elsewhere is a 501. The ``200 Script output follows``
    status line is sent before the script runs, so scripts cannot choose their status.
    Deprecated since 3.13 (a ``DeprecationWarning`` per handler instance there).
    """

    have_fork = hasattr(os, "fork")
    #: Unbuffered reads, so the script's stdin starts exactly at the request body.
    rbufsize = 0
    cgi_directories = ["/cgi-bin", "/htbin"]

    if _CGI_DEPRECATED:
        # Only where the stdlib defines it too: before 3.13 ``__init__`` is inherited.

        def __init__(self, *args, **kwargs):
            """Warn about the deprecation, then handle the connection."""
            _warnings.warn(
                "'http.server.CGIHTTPRequestHandler' is deprecated and slated for "
                "removal in Python 3.15",
                DeprecationWarning,
                stacklevel=2,
            )
            super().__init__(*args, **kwargs)

    def do_POST(self):
        """Run the CGI script the path names, or reply 501."""
        if self.is_cgi():
            self.run_cgi()
        else:
            self.send_error(HTTPStatus.NOT_IMPLEMENTED, "Can only POST to CGI scripts")

    def send_head(self):
        """Run a CGI script for GET/HEAD if the path names one, else serve a file."""
        if self.is_cgi():
            return self.run_cgi()
        return SimpleHTTPRequestHandler.send_head(self)

    def is_cgi(self):
        """Return True, setting ``cgi_info = (dir, rest)``, if the path is under a CGI dir.

        The collapsed path (see ``_url_collapse_path``) must start with one of
        ``cgi_directories`` followed by ``/``. Exceptions mean the path is unusable.
        """
        collapsed = _url_collapse_path(self.path)
        for cut, char in enumerate(collapsed):
            if cut and char == "/" and collapsed[:cut] in self.cgi_directories:
                self.cgi_info = collapsed[:cut], collapsed[cut + 1 :]
                return True
        return False

    def is_executable(self, path):
        """Return True if the script file may be executed."""
        return executable(path)

    def is_python(self, path):
        """Return True for ``.py``/``.pyw`` scripts (any case)."""
        return os.path.splitext(path)[1].lower() in (".py", ".pyw")

    def run_cgi(self):
        """Run the script in ``cgi_info`` with the request body on its stdin.

        Error handling: a missing script is a 404, a non-file or non-executable one a
        403. An environment value the process environment cannot hold (a NUL in a
        header or in the path) raises before anything is sent, as in the stdlib: the
        client gets no reply and the error reaches ``handle_error``. Once the script
        starts, its stdout is the reply after the status line; a non-zero exit is only
        logged.
        """
        script_url, extra_path, query = _split_script_path(self)
        script_file = self.translate_path(script_url)
        if not os.path.exists(script_file):
            self.send_error(HTTPStatus.NOT_FOUND, "No such CGI script (%r)" % (script_url,))
            return
        if not os.path.isfile(script_file):
            reason = "CGI script is not a plain file (%r)" % (script_url,)
            self.send_error(HTTPStatus.FORBIDDEN, reason)
            return
        needs_exec_bit = self.have_fork or not self.is_python(script_url)
        if needs_exec_bit and not self.is_executable(script_file):
            reason = "CGI script is not executable (%r)" % (script_url,)
            self.send_error(HTTPStatus.FORBIDDEN, reason)
            return
        env = _cgi_environment(self, script_url, extra_path, query)
        _check_environment(env)
        self.send_response(HTTPStatus.OK, "Script output follows")
        self.flush_headers()
        if self.have_fork:
            _run_cgi_forked(self, script_file, script_url, query, env)
        else:
            _run_cgi_subprocess(self, script_file, query, env)


# ---------------------------------------------------------------------------------------
# Running a server.


def _get_best_family(*address):
    """Return ``(family, sockaddr)`` of the first passive stream address for ``address``."""
    found = socket.getaddrinfo(*address, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _type, _proto, _name, sockaddr = found[0]
    return family, sockaddr


def _serve(ServerClass, addr, HandlerClass, tls):
    """Create the server, print the banner and serve until Ctrl-C (exit status 0)."""
    if tls:
        cert, key, password = tls
        server = ServerClass(addr, HandlerClass, certfile=cert, keyfile=key, password=password)
    else:
        server = ServerClass(addr, HandlerClass)
    scheme = "HTTPS" if tls else "HTTP"
    with server as httpd:
        host, port = httpd.socket.getsockname()[:2]
        url_host = "[%s]" % host if ":" in host else host
        url = "%s://%s:%s/" % (scheme.lower(), url_host, port)
        print("Serving %s on %s port %s (%s) ..." % (scheme, host, port, url))
        try:
            httpd.serve_forever()
        except KeyboardInterrupt:
            print("\nKeyboard interrupt received, exiting.")
            sys.exit(0)


if _HTTPS_SUPPORT:

    def test(
        HandlerClass=BaseHTTPRequestHandler,
        ServerClass=ThreadingHTTPServer,
        protocol="HTTP/1.0",
        port=8000,
        bind=None,
        tls_cert=None,
        tls_key=None,
        tls_password=None,
    ):
        """Serve ``HandlerClass`` on ``port`` (HTTPS when ``tls_cert`` is given).

        Sets ``ServerClass.address_family`` and ``HandlerClass.protocol_version``.
        """
        ServerClass.address_family, addr = _get_best_family(bind, port)
        HandlerClass.protocol_version = protocol
        tls = (tls_cert, tls_key, tls_password) if tls_cert else None
        _serve(ServerClass, addr, HandlerClass, tls)

else:

    def test(
        HandlerClass=BaseHTTPRequestHandler,
        ServerClass=ThreadingHTTPServer,
        protocol="HTTP/1.0",
        port=8000,
        bind=None,
    ):
        """Serve ``HandlerClass`` on ``port`` until interrupted.

        Sets ``ServerClass.address_family`` and ``HandlerClass.protocol_version``.
        """
        ServerClass.address_family, addr = _get_best_family(bind, port)
        HandlerClass.protocol_version = protocol
        _serve(ServerClass, addr, HandlerClass, None)


def _build_arg_parser():
    """Return the ``python -m http.server`` argument parser of the running version."""
    # 3.14 colours the help when the terminal allows it.
    parser = _argparse.ArgumentParser(**({"color": True} if _PY >= (3, 14) else {}))
    parser.add_argument("--cgi", action="store_true", help="run as CGI server")
    if _CLI_PROTOCOL_OPTION:
        parser.add_argument(
            "-b", "--bind", metavar="ADDRESS", help="bind to this address (default: all interfaces)"
        )
        parser.add_argument(
            "-d",
            "--directory",
            default=os.getcwd(),
            help="serve this directory (default: current directory)",
        )
        parser.add_argument(
            "-p",
            "--protocol",
            metavar="VERSION",
            default="HTTP/1.0",
            help="conform to this HTTP version (default: %(default)s)",
        )
        parser.add_argument(
            "port",
            default=8000,
            type=int,
            nargs="?",
            help="bind to this port (default: %(default)s)",
        )
    else:
        parser.add_argument(
            "--bind",
            "-b",
            metavar="ADDRESS",
            help="specify alternate bind address (default: all interfaces)",
        )
        parser.add_argument(
            "--directory",
            "-d",
            default=os.getcwd(),
            help="specify alternate directory (default: current directory)",
        )
        parser.add_argument(
            "port",
            action="store",
            default=8000,
            type=int,
            nargs="?",
            help="specify alternate port (default: 8000)",
        )
    if _HTTPS_SUPPORT:
        parser.add_argument(
            "--tls-cert", metavar="PATH", help="path to the TLS certificate chain file"
        )
        parser.add_argument("--tls-key", metavar="PATH", help="path to the TLS key file")
        parser.add_argument(
            "--tls-password-file",
            metavar="PATH",
            help="path to the password file for the TLS key",
        )
    return parser


def _read_tls_options(parser, args):
    """Validate the ``--tls-*`` options; return ``(cert, key, password)`` or None."""
    cert = getattr(args, "tls_cert", None)
    key = getattr(args, "tls_key", None)
    password_file = getattr(args, "tls_password_file", None)
    if key and not cert:
        parser.error("--tls-key requires --tls-cert to be set")
    password = None
    if password_file:
        if not cert:
            parser.error("--tls-password-file requires --tls-cert to be set")
        try:
            with open(password_file, encoding="utf-8") as stream:
                password = stream.read().strip()
        except OSError as exc:
            parser.error(f"Failed to read TLS password file: {exc}")
    return (cert, key, password) if cert else None


def _main(argv=None):
    """Command-line entry point: ``python -m implementation.http.server [options] [port]``."""
    parser = _build_arg_parser()
    args = parser.parse_args(argv)
    tls = _read_tls_options(parser, args)
    handler_class = CGIHTTPRequestHandler if args.cgi else SimpleHTTPRequestHandler
    base = ThreadingHTTPSServer if tls else ThreadingHTTPServer

    class DualStackServer(base):
        """Accept IPv4 too on an IPv6 socket, and serve ``--directory``."""

        def server_bind(self):
            # Fails harmlessly on an IPv4 socket.
            with _contextlib.suppress(Exception):
                self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            return super().server_bind()

        def finish_request(self, request, client_address):
            self.RequestHandlerClass(request, client_address, self, directory=args.directory)

    options = {"port": args.port, "bind": args.bind}
    if _CLI_PROTOCOL_OPTION:
        options["protocol"] = args.protocol
    if tls:
        options.update(tls_cert=tls[0], tls_key=tls[1], tls_password=tls[2])
    test(HandlerClass=handler_class, ServerClass=DualStackServer, **options)


# This module stands in for the stdlib one (harnesses install it as ``http.server``), so
# its public classes report that name, as ``_pydecimal`` does for ``decimal``; CPython's
# test_httpservers checks ``__all__`` against the classes whose ``__module__`` it is.
def _present_as_http_server():
    """Give the public classes the stdlib's ``__module__``, keeping ``__firstlineno__``.

    Python 3.13 drops a class's ``__firstlineno__`` when ``__module__`` is set; the
    stdlib's classes have it (``inspect.getsource`` reads it), so it is put back.
    """
    for name in __all__:
        cls = globals()[name]
        first_line = vars(cls).get("__firstlineno__")
        cls.__module__ = "http.server"
        if first_line is not None:
            cls.__firstlineno__ = first_line


_present_as_http_server()


if __name__ == "__main__":
    _main()
