"""Planted bug: a 'heartbeat' thread per keep-alive request that never ends."""

import http.server
import threading

_forever = threading.Event()


class Handler(http.server.BaseHTTPRequestHandler):
    """Starts a thread for each request that asks for keep-alive; none ever stops."""

    def do_GET(self):
        if "keep-alive" in self.headers.get("Connection", "").lower():
            threading.Thread(target=_forever.wait, daemon=True).start()  # the bug
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_HEAD = do_POST = do_GET
