"""A simple line handler for ``bench_fuzz_memory.py`` and the campaign tests: echoes each
line it reads, upper-cased, until the client stops sending."""

import socketserver


class LineHandler(socketserver.StreamRequestHandler):
    """Echo every line, upper-cased; stop at end of input."""

    def handle(self):
        """Read lines (at most 1024 bytes each) and answer each one."""
        while True:
            line = self.rfile.readline(1024)
            if not line:
                return
            self.wfile.write(line.upper())
