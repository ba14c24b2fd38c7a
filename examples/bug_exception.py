"""Planted bug: ``int()`` of the Content-Length header, whatever it holds."""

import http.server


class Handler(http.server.BaseHTTPRequestHandler):
    """Echoes a POST body; raises ValueError on a non-numeric Content-Length."""

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)  # the bug: "abc" -> ValueError
        body = self.rfile.read(max(0, min(length, 65536)))
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_PUT = do_POST

    def do_GET(self):
        self.send_response(204)
        self.end_headers()
