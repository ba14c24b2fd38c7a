"""Planted bug: a file opened for every request with a query string, never closed."""

import http.server
import os

_opened = []  # kept, so the garbage collector cannot close them either


class Handler(http.server.BaseHTTPRequestHandler):
    """Opens a 'log' file per query request and forgets it."""

    def do_GET(self):
        if "?" in self.path:
            _opened.append(open(os.devnull, "rb"))  # noqa: SIM115 - the bug
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_HEAD = do_POST = do_GET
