"""Handlers for ``http/keepalive_replies``: replies over a kept-alive connection, written
to the socket in the different ways handlers do it.

``Files`` (from ``http_files``) is the plain ``SimpleHTTPRequestHandler``; the others
override one of the methods that sit between a reply's header block and its body, so a
server cannot treat them like the plain handler. Written against the stdlib names;
stdlib-only, Python 3.9-compatible.
"""

import http.server

from scenarios.handlers.http_files import Files


class CorsFiles(Files):
    """``end_headers`` overridden to add a header, the usual CORS recipe."""

    def end_headers(self):
        self.send_header("Access-Control-Allow-Origin", "*")
        super().end_headers()


class SmallPieceFiles(Files):
    """``copyfile`` overridden: the body goes out in 7-byte writes."""

    def copyfile(self, source, outputfile):
        while True:
            piece = source.read(7)
            if not piece:
                return
            outputfile.write(piece)


class WrappedSendHead(Files):
    """``send_head`` overridden, delegating to the original."""

    def send_head(self):
        return super().send_head()


class TwoWrites(http.server.BaseHTTPRequestHandler):
    """A ``BaseHTTPRequestHandler`` whose ``do_GET`` writes the header block and then the
    body (``two writes: <path>``); ``do_HEAD`` the header block only."""

    def _head(self):
        body = ("two writes: %s\n" % self.path).encode("latin-1")
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return body

    def do_GET(self):
        self.wfile.write(self._head())

    def do_HEAD(self):
        self._head()
