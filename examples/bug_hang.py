"""Planted bug: a chunked-body reader that loops forever once the client stops sending."""

import http.server
import time


class Handler(http.server.BaseHTTPRequestHandler):
    """Reads a chunked body line by line until the ``0`` chunk; EOF is never noticed."""

    def _read(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                line = self.rfile.readline()
                if line.strip() == b"0":
                    break
                if not line:
                    time.sleep(0.01)  # the bug: EOF is b"" forever, and this loop waits on
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_PUT = _read
