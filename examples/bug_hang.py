"""Planted bug: a POST body reader that waits for a blank line and never notices EOF."""

import http.server
import time


class Handler(http.server.BaseHTTPRequestHandler):
    """Reads ``key=value`` lines of a POST body until a blank line; EOF is never noticed."""

    def do_POST(self):
        while True:
            line = self.rfile.readline()
            if line in (b"\r\n", b"\n"):
                break
            if not line:
                time.sleep(0.01)  # the bug: at EOF readline returns b"" forever
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        self.send_response(204)
        self.end_headers()
