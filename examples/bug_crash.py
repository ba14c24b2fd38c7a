"""Planted bug: the whole server process exits when a path contains ``..``.

Think of a C extension that crashes on an input it did not expect.
"""

import http.server
import os


class Handler(http.server.BaseHTTPRequestHandler):
    """Ends the process on a dot-dot path."""

    def do_GET(self):
        if ".." in self.path:
            os._exit(70)  # the bug
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_HEAD = do_POST = do_GET
