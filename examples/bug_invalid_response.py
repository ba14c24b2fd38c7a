"""Planted bug: an invalid header name in the reply when the path has a ``%``."""

import http.server


class Handler(http.server.BaseHTTPRequestHandler):
    """Adds a header whose name contains a space: not valid HTTP/1.x."""

    def do_GET(self):
        self.send_response(200)
        if "%" in self.path:
            self.send_header("Decoded Path", "yes")  # the bug: a space in a field name
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_HEAD = do_POST = do_GET
